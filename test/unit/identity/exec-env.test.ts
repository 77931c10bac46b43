import { describe, expect, it } from 'vitest';
import { envOccurrences, loaderValues, refusedInEnviron, refusedInExec } from '../../../helper/identity/exec-env.js';
import { heldExecOf } from '../../../helper/kernel/fanotify.js';

describe('the environment of an exec', () => {
  const envp = ['LD_PRELOAD=/a.so', 'PATH=/bin', 'LD_PRELOAD=/b.so', 'LD_AUDIT=/x.so', 'LD_AUDIT=/y.so', 'NOEQ', '=v', 'E='];

  it('keeps every occurrence, in order', () => {
    const occ = envOccurrences(envp);
    expect(occ.get('LD_PRELOAD')).toEqual(['/a.so', '/b.so']);
    expect(occ.get('E')).toEqual(['']);
    expect(occ.has('NOEQ')).toBe(false);
    expect(occ.has('')).toBe(false);
  });

  it('says what glibc ld.so uses: the last LD_PRELOAD, every LD_AUDIT', () => {
    const occ = envOccurrences(envp);
    expect(loaderValues(occ, 'LD_PRELOAD')).toEqual(['/b.so']);
    expect(loaderValues(occ, 'LD_AUDIT')).toEqual(['/x.so', '/y.so']);
    expect(loaderValues(occ, 'LD_LIBRARY_PATH')).toEqual([]);
  });

  it('refuses a variable set in any occurrence, even when another occurrence is empty', () => {
    expect(refusedInExec(['LD_PRELOAD=/evil.so', 'LD_PRELOAD='])).toEqual(['LD_PRELOAD']);
    expect(refusedInExec(['LD_PRELOAD=', 'LD_PRELOAD=/evil.so'])).toEqual(['LD_PRELOAD']);
    expect(refusedInExec(['LD_PRELOAD=', 'PATH=/bin'])).toEqual([]);
    expect(refusedInExec(['PYTHONPATH=/x'], false)).toEqual([]);
    expect(refusedInExec(['PYTHONPATH=/x'])).toEqual(['PYTHONPATH']);
  });

  it('/proc/PID/environ: every occurrence, not the first (the issue-9 case: an empty LD_PRELOAD, then the real one)', () => {
    expect(refusedInEnviron(Buffer.from('PATH=/bin\0LD_PRELOAD=\0LD_PRELOAD=/tmp/evil.so\0'))).toEqual(['LD_PRELOAD']);
    expect(refusedInEnviron('LD_LIBRARY_PATH=\0HOME=/h\0LD_LIBRARY_PATH=/tmp\0', false)).toEqual(['LD_LIBRARY_PATH']);
    expect(refusedInEnviron('HOME=/root\0')).toEqual([]);
  });

  it("glibc's set-id list counts, TMPDIR does not; names that only look alike do not count", () => {
    expect(refusedInExec(['GCONV_PATH=/tmp/g', 'GLIBC_TUNABLES=glibc.malloc.x=1', 'TMPDIR=/tmp/u'], false)).toEqual(['GCONV_PATH', 'GLIBC_TUNABLES']);
    expect(refusedInExec(['XLD_PRELOAD=1', 'LD_PRELOAD_X=1', 'ld_preload=1'])).toEqual([]);
  });

  it('an empty value counts where its consumer reads it, not where it means unset', () => {
    expect(refusedInExec(['LD_AUDIT=', 'PYTHONINSPECT=', 'NODE_OPTIONS='])).toEqual([]);
    expect(refusedInExec(['NLSPATH=', 'SHELLOPTS='])).toEqual(['NLSPATH', 'SHELLOPTS']);
    expect(refusedInExec(['PYTHONINSPECT=1', 'PYTHONPYCACHEPREFIX=/tmp/c', 'PERL5DB=x'])).toEqual(['PYTHONINSPECT', 'PYTHONPYCACHEPREFIX', 'PERL5DB']);
  });
});

describe('a held exec from the reader thread', () => {
  it('maps the raw message, keeping unreadable arguments apart from empty ones', () => {
    const raw = {
      kind: 'exec' as const, id: 3, tid: 12, tgid: 10, ppid: 1, uid: 1000, threads: 2, path: '/usr/bin/curl', dev: 2049n, ino: 77n,
      syscall: 59, argv: ['curl', 'x'], envp: [], truncated: false, readAtNs: 5n, inetSockets: 1, callerDev: 2049n, callerIno: 12n,
    };
    expect(heldExecOf(raw)).toEqual({
      id: 3, tid: 12, pid: 10, ppid: 1, uid: 1000, threads: 2, path: '/usr/bin/curl', dev: 2049n, ino: 77n, syscall: 59, argv: ['curl', 'x'], envp: [], truncated: false, readAtNs: 5n,
      inetSockets: 1, caller: { dev: 2049n, ino: 12n },
    });
    const bad = heldExecOf({ kind: 'exec', id: 4, tid: 5, tgid: 5, syscall: -1, argv: [], envp: [], error: 'the task is not in a system call' });
    expect(bad.argv).toBeUndefined();
    expect(bad.envp).toBeUndefined();
    expect(bad.error).toMatch(/not in a system call/);
    expect(bad.inetSockets).toBe(-1); // not told: counts as holding some (not admitted at the hold)
    expect(bad.caller).toBeUndefined();
  });
});
