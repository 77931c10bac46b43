import { describe, expect, it } from 'vitest';
import { parseEnviron, refusedEnv } from '../../../helper/identity/environ.js';

describe('environ', () => {
  it('parses NUL-separated NAME=VALUE, first of a repeated name wins, junk skipped', () => {
    const env = parseEnviron('A=1\0B=x=y\0A=2\0=nope\0junk\0EMPTY=\0');
    expect([...env]).toEqual([['A', '1'], ['B', 'x=y'], ['EMPTY', '']]);
  });

  it('finds the loader variables, not empty ones, and interpreter ones when asked', () => {
    const env = parseEnviron(Buffer.from('PATH=/usr/bin\0LD_PRELOAD=/tmp/x.so\0LD_AUDIT=\0PYTHONPATH=/tmp\0LD_LIBRARY_PATH=/opt\0'));
    expect(refusedEnv(env, false)).toEqual(['LD_PRELOAD', 'LD_LIBRARY_PATH']);
    expect(refusedEnv(env)).toEqual(['LD_PRELOAD', 'LD_LIBRARY_PATH', 'PYTHONPATH']);
    expect(refusedEnv(parseEnviron('HOME=/root\0'))).toEqual([]);
  });

  it('names that only look alike do not count', () => {
    expect(refusedEnv(parseEnviron('XLD_PRELOAD=1\0LD_PRELOAD_X=1\0ld_preload=1\0'))).toEqual([]);
  });
});
