import { describe, expect, it } from 'vitest';
import { interpreterFamily, resolveScript, scriptArgument } from '../../../helper/identity/argv.js';

const script = (path: string, loads: string[] = []) => ({ kind: 'script', path, loads });

describe('interpreterFamily', () => {
  it.each([
    ['/usr/bin/python3.11', 'python'],
    ['/usr/bin/pypy3', 'python'],
    ['/usr/bin/perl5.36.0', 'perl'],
    ['/usr/bin/ruby3.1', 'ruby'],
    ['/usr/local/bin/node', 'node'],
    ['/usr/bin/bash', 'shell'],
    ['/usr/bin/dash', 'shell'],
    ['/usr/bin/curl', undefined],
    ['/usr/bin/python-config', undefined],
  ] as const)('knows the common interpreters by the base name of their exe: %s is %s', (input, expected) => {
    expect(interpreterFamily(input)).toBe(expected);
  });
});

describe('scriptArgument', () => {
  it('python: skips flags, bundles and options with values', () => {
    expect(scriptArgument('python', ['python3', 'deploy.py', '-u'])).toEqual(script('deploy.py'));
    expect(scriptArgument('python', ['python3', '-u', '-E', 'deploy.py'])).toEqual(script('deploy.py'));
    expect(scriptArgument('python', ['python3', '-uE', '-X', 'dev', '-W', 'error', '/opt/x.py', 'arg'])).toEqual(script('/opt/x.py'));
    expect(scriptArgument('python', ['python3', '-Xdev', '-OO', 'x.py'])).toEqual(script('x.py'));
    expect(scriptArgument('python', ['python3', '--check-hash-based-pycs', 'never', 'x.py'])).toEqual(script('x.py'));
    expect(scriptArgument('python', ['python3', '-I', '--', '-weird.py'])).toEqual({ ...script('-weird.py'), noUserSite: true });
  });

  it('python: -s / -I turn the user site off; -i and -X pycache_prefix load other code', () => {
    expect(scriptArgument('python', ['python3', '-us', 'x.py'])).toEqual({ ...script('x.py'), noUserSite: true });
    expect(scriptArgument('python', ['python3', '-I', 'x.py'])).toEqual({ ...script('x.py'), noUserSite: true });
    expect(scriptArgument('python', ['python3', '-E', 'x.py'])).toEqual(script('x.py'));
    expect(scriptArgument('python', ['python3', '-i', '-s', 'x.py'])).toEqual({ ...script('x.py', ['-i']), noUserSite: true });
    expect(scriptArgument('python', ['python3', '-X', 'pycache_prefix=/tmp/c', 'x.py'])).toEqual(script('x.py', ['-X pycache_prefix']));
    expect(scriptArgument('python', ['python3', '-Xpycache_prefix=/tmp/c', 'x.py'])).toEqual(script('x.py', ['-X pycache_prefix']));
    expect(scriptArgument('python', ['python3', '-X', 'importtime', 'x.py'])).toEqual(script('x.py'));
  });

  it('python: -c, -m, stdin and interactive have no script file', () => {
    expect(scriptArgument('python', ['python3', '-c', 'import x', 'deploy.py']).kind).toBe('none');
    expect(scriptArgument('python', ['python3', '-uc', 'print(1)']).kind).toBe('none');
    expect(scriptArgument('python', ['python3', '-m', 'http.server'])).toEqual({ kind: 'none', why: 'started with -m' });
    expect(scriptArgument('python', ['python3', '-'])).toEqual({ kind: 'none', why: 'the program is read from standard input' });
    expect(scriptArgument('python', ['python3', '-u']).kind).toBe('none');
  });

  it('shells: --norc, -o opt, +o opt; -c has no script', () => {
    expect(scriptArgument('shell', ['bash', '--norc', '--noprofile', '-e', 'run.sh'])).toEqual(script('run.sh'));
    expect(scriptArgument('shell', ['bash', '-o', 'pipefail', '+o', 'posix', '-eu', 'run.sh'])).toEqual(script('run.sh'));
    expect(scriptArgument('shell', ['sh', '-c', 'curl x', 'run.sh']).kind).toBe('none');
    expect(scriptArgument('shell', ['bash', '-s']).kind).toBe('none');
    expect(scriptArgument('shell', ['bash', '--rcfile', '/tmp/rc', 'run.sh'])).toEqual(script('run.sh', ['--rcfile']));
  });

  it('node: value options, preloads reported, -e has no script', () => {
    expect(scriptArgument('node', ['node', '--enable-source-maps', '--title', 'x', 'app.js'])).toEqual(script('app.js'));
    expect(scriptArgument('node', ['node', '--max-old-space-size=100', 'app.js'])).toEqual(script('app.js'));
    expect(scriptArgument('node', ['node', '-r', '/tmp/evil.js', 'app.js'])).toEqual(script('app.js', ['-r']));
    expect(scriptArgument('node', ['node', '--import=/tmp/e.mjs', 'app.js'])).toEqual(script('app.js', ['--import']));
    expect(scriptArgument('node', ['node', '-e', 'x']).kind).toBe('none');
    expect(scriptArgument('node', ['node', '--eval=x']).kind).toBe('none');
  });

  it('perl and ruby: attached values, code-loading options reported', () => {
    expect(scriptArgument('perl', ['perl', '-w', '-Mstrict', 'x.pl'])).toEqual(script('x.pl', ['-M']));
    expect(scriptArgument('perl', ['perl', '-I', '/tmp/lib', 'x.pl'])).toEqual(script('x.pl', ['-I']));
    expect(scriptArgument('perl', ['perl', '-e', 'print 1']).kind).toBe('none');
    expect(scriptArgument('ruby', ['ruby', '-w', '-r', 'json', 'x.rb'])).toEqual(script('x.rb', ['-r']));
    expect(scriptArgument('ruby', ['ruby', '-e', 'p 1']).kind).toBe('none');
  });
});

describe('resolveScript', () => {
  it('joins relative paths to the cwd and normalises . and ..', () => {
    expect(resolveScript('/opt/corp', 'deploy.py')).toBe('/opt/corp/deploy.py');
    expect(resolveScript('/opt/corp/bin', '../deploy.py')).toBe('/opt/corp/deploy.py');
    expect(resolveScript('/home/u', '/opt/./corp//deploy.py')).toBe('/opt/corp/deploy.py');
    expect(resolveScript('/', '../../x')).toBe('/x');
  });
});
