import { chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePasswd, ProgramInfo } from '../../../helper/identity/program-info.js';

describe('.desktop entries', () => {
  it('parses /etc/passwd', () => {
    expect(parsePasswd('root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n').get(1000)).toEqual({ name: 'alice', home: '/home/alice' });
  });
});

describe('ProgramInfo', () => {
  let dir: string;
  let info: ProgramInfo;
  let exe: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tg-apps-'));
    const sys = path.join(dir, 'sys');
    const home = path.join(dir, 'home');
    const userApps = path.join(home, '.local', 'share', 'applications');
    mkdirSync(sys);
    mkdirSync(userApps, { recursive: true });
    exe = path.join(dir, 'tool');
    writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
    symlinkSync(exe, path.join(dir, 'tool-link'));
    writeFileSync(path.join(sys, 'tool.desktop'), `[Desktop Entry]\nName=Work Tool\nIcon=work-tool\nExec=${path.join(dir, 'tool-link')} %f\n`);
    writeFileSync(path.join(sys, 'hidden.desktop'), `[Desktop Entry]\nName=Hidden Tool\nNoDisplay=true\nExec=${exe}\n`);
    writeFileSync(path.join(dir, 'passwd'), `root:x:0:0::/root:/bin/sh\nalice:x:4321:4321::${home}:/bin/sh\nbob:x:4322:4322::${home}:/bin/sh\n`);
    // Alice's own entry, and one in her directory that is not hers (ignored).
    writeFileSync(path.join(userApps, 'mine.desktop'), `[Desktop Entry]\nName=Alice's Tool\nIcon=/home/alice/tool.png\nExec=${exe}\n`);
    chownSync(path.join(userApps, 'mine.desktop'), 4321, 4321);
    info = new ProgramInfo({ systemDirs: [sys], passwdFile: path.join(dir, 'passwd') });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a user's own entry first, only if it is theirs; then the system's (through symlinks); then the file name", async () => {
    expect(await info.program(4321, exe)).toMatchObject({ name: "Alice's Tool", icon: '/home/alice/tool.png' });
    expect(await info.program(4322, exe)).toMatchObject({ name: 'Work Tool', icon: 'work-tool', desktopEntry: path.join(dir, 'sys', 'tool.desktop') });
    expect(await info.program(4322, '/usr/bin/unknown-thing')).toEqual({ name: 'unknown-thing' });
    expect(await info.userName(4321)).toBe('alice');
    expect(await info.userName(4999)).toBe('uid 4999');
  });
});
