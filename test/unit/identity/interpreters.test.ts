import { describe, expect, it } from 'vitest';
import { scriptArgument } from '../../../helper/identity/argv.js';
import type { Family } from '../../../helper/identity/argv.js';
import { chainStep, interpreterUnsafe, launcherKind } from '../../../helper/identity/interpreters.js';

const why = (family: Family, argv: string[]) => {
  const a = scriptArgument(family, argv);
  if (a.kind !== 'script') throw new Error(`no script in ${argv.join(' ')}`);
  return interpreterUnsafe(family, a);
};

describe('interpreterUnsafe: nothing but the script (and root-owned code) runs', () => {
  it('python needs -s or -I (the user site directory is the user\'s code)', () => {
    expect(why('python', ['python3', '/opt/corp/deploy.py'])).toMatch(/without -s or -I.*usercustomize\.py/);
    expect(why('python', ['python3', '-E', '/opt/corp/deploy.py'])).toMatch(/without -s or -I/);
    expect(why('python', ['python3', '-I', '/opt/corp/deploy.py'])).toBeUndefined();
    expect(why('python', ['python3', '-us', '/opt/corp/deploy.py'])).toBeUndefined();
  });

  it('perl is checked by argv and environment only; node, ruby and shells are refused with a reason', () => {
    expect(why('perl', ['perl', '-w', '/opt/corp/x.pl'])).toBeUndefined();
    expect(why('node', ['node', '/opt/corp/x.js'])).toMatch(/node_modules/);
    expect(why('ruby', ['ruby', '/opt/corp/x.rb'])).toMatch(/gem/);
    expect(why('shell', ['bash', '/opt/corp/x.sh'])).toMatch(/BASH_FUNC_/);
  });
});

describe('launchers `tunnelgate run` follows (issue 10.5)', () => {
  it('shells and env are launchers; python, curl and a chromium binary are not', () => {
    expect(['/usr/bin/dash', '/usr/bin/bash', '/bin/sh', '/usr/bin/zsh'].map(launcherKind)).toEqual(['shell', 'shell', 'shell', 'shell']);
    expect(launcherKind('/usr/bin/env')).toBe('env');
    expect(['/usr/bin/python3.11', '/usr/bin/perl', '/usr/bin/curl', '/usr/lib/chromium/chromium', '/usr/bin/envsubst'].map(launcherKind)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('names a step by its program and, for an interpreter, the script it was given', () => {
    expect(chainStep('/usr/bin/dash', ['/bin/sh', '/usr/bin/chromium', '--headless'])).toBe('/usr/bin/dash /usr/bin/chromium');
    expect(chainStep('/usr/bin/dash', ['sh', '-c', 'exec curl'])).toBe('/usr/bin/dash');
    expect(chainStep('/usr/bin/python3.11', ['/usr/bin/python3', '-I', '/opt/corp/deploy.py', 'x'])).toBe('/usr/bin/python3.11 /opt/corp/deploy.py');
    expect(chainStep('/usr/lib/chromium/chromium', ['/usr/lib/chromium/chromium', '--headless'])).toBe('/usr/lib/chromium/chromium');
  });
});
