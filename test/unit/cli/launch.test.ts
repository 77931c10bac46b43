// `tunnelgate run`'s command lookup (helper/cli/launch.ts resolveCommand): execvp's rules,
// and the path as the user named it (symbolic links kept: the helper decides on the file
// the kernel executes, and argv[0] stays what a shell would pass).
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LaunchError, resolveCommand } from '../../../helper/cli/launch.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-launch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const prog = path.join(dir, 'real-prog');
writeFileSync(prog, '#!/bin/sh\n');
chmodSync(prog, 0o755);
symlinkSync(prog, path.join(dir, 'prog'));
writeFileSync(path.join(dir, 'not-exec'), '');

describe('resolveCommand', () => {
  it('searches PATH for a bare name and keeps the symbolic link the user named', () => {
    expect(resolveCommand('prog', { PATH: `/nonexistent:${dir}` })).toBe(path.join(dir, 'prog'));
    expect(resolveCommand('./prog', {}, dir)).toBe(path.join(dir, 'prog'));
    expect(resolveCommand(prog, {})).toBe(prog);
  });

  it('exit 127 for nothing executable', () => {
    const fail = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof LaunchError ? e.exitCode : 'other';
      }
      return 'none';
    };
    expect(fail(() => resolveCommand('not-exec', { PATH: dir }))).toBe(127);
    expect(fail(() => resolveCommand(path.join(dir, 'not-exec'), {}))).toBe(127);
    expect(fail(() => resolveCommand('missing', { PATH: dir }))).toBe(127);
  });
});
