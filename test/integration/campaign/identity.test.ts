// Campaign (issue 9.4, 9.5): process identity read as the process's own code reads it.
// - The environment: every occurrence of every variable of the loader's (glibc's set-id
//   list) and the interpreters' lists, as ld.so and the interpreters read them.
// - Script rules: nothing but the named script (and root-owned code) runs in the process.
// Real helper and watcher in the lab; unprivileged cases run as a uid the test makes up.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import type { StampedEvent } from '../../../common/events.js';
import { row } from '../../lab/campaign.js';
import { waitFor } from '../../lab/fixture.js';
import { expectDropped, labAndHelper } from '../../lab/suite.js';
import { buildRawexec } from '../../lab/rawexec.js';

const CURL = realpathSync('/usr/bin/curl');
const PYTHON = realpathSync(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : '/usr/bin/python3.11');
const USER = 5000 + Math.floor(Math.random() * 1000);
const f: Record<string, string> = {};

const fx = labAndHelper({
  prepare: ({ tmp }) => {
    // execve with exactly the envp given (duplicates kept), and a harmless preload library.
    f.rawexec = buildRawexec(tmp);
    f.evil = path.join(tmp, 'evil.so');
    writeFileSync(`${f.evil}.c`, 'void __attribute__((constructor)) evil(void) {}\n');
    execFileSync('gcc', ['-shared', '-fPIC', '-o', f.evil, `${f.evil}.c`]);
    // A root-owned script in a root-owned directory: the program a script rule names.
    mkdirSync(path.join(tmp, 'corp'), { mode: 0o755 });
    f.deploy = path.join(tmp, 'corp', 'deploy.py');
    writeFileSync(f.deploy, [
      'import sys, urllib.request',
      'try:',
      '    print("deploy", urllib.request.urlopen(sys.argv[1], timeout=3).status, flush=True)',
      'except Exception:',
      '    print("deploy dropped", flush=True)',
      '',
    ].join('\n'), { mode: 0o644 });
    // The made-up user's home, with a usercustomize.py in its own user site directory.
    f.home = path.join(tmp, 'home');
    const site = path.join(f.home, '.local', 'lib', `python${pyVersion()}`, 'site-packages');
    mkdirSync(site, { recursive: true });
    writeFileSync(path.join(site, 'usercustomize.py'), [
      'import os, urllib.request',
      'try:',
      '    print("EVIL", urllib.request.urlopen(os.environ["TG_URL"], timeout=3).status, flush=True)',
      'except Exception:',
      '    print("EVIL dropped", flush=True)',
      '',
    ].join('\n'));
    for (const d of [f.home, path.join(f.home, '.local'), path.join(f.home, '.local', 'lib'), path.dirname(site), site, path.join(site, 'usercustomize.py')]) chownSync(d, USER, USER);
  },
  profiles: (ctx) => ({
    'corp-ident': {
      schema: 'tunnelgate/profile@1', id: 'corp-ident', version: 1, mode: 'enforce', interfaces: [ctx.lab.wsIface], userPrompts: 'deny',
      rules: [{ id: 'curl', binary: { path: CURL } }, { id: 'deploy', binary: { path: PYTHON, script: f.deploy } }],
    },
  }),
});

function pyVersion(): string {
  return execFileSync(PYTHON, ['-c', 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")'], { encoding: 'utf8' }).trim();
}

const http = (url: string) => ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', url];

/** The last process.refused event for `exe` (waited for: the watcher reports it). */
async function refusedReason(exe: string, pattern: RegExp): Promise<string> {
  return waitFor(`a process.refused event for ${exe} matching ${pattern}`, () => {
    const ev = fx.events().filter((e): e is Extract<StampedEvent, { type: 'process.refused' }> => e.type === 'process.refused' && e.path === exe && pattern.test(e.reason));
    return ev.at(-1)?.reason;
  });
}

describe('campaign: identity and environment', () => {
  const kindEnv = 'the environment is read as its consumer reads it';
  row(kindEnv, 'execve of an allowed curl with LD_PRELOAD= then LD_PRELOAD=evil.so (ld.so uses the last)', async () => {
    const r = await fx.run(f.rawexec as string, [CURL, ...http(fx.lab.urls.corpV4), '--', 'LD_PRELOAD=', `LD_PRELOAD=${f.evil}`, 'PATH=/usr/bin:/bin'], { timeout: 20_000 });
    expectDropped(r);
    expect(await refusedReason(CURL, /LD_PRELOAD/)).toMatch(/started with LD_PRELOAD in its environment/);
  });

  row(kindEnv, 'an allowed curl with GCONV_PATH (glibc\'s set-id list: iconv loads modules from it)', async () => {
    const r = await fx.run(f.rawexec as string, [CURL, ...http(fx.lab.urls.corpV4), '--', 'PATH=/usr/bin:/bin', `GCONV_PATH=${path.dirname(f.evil as string)}`], { timeout: 20_000 });
    expectDropped(r);
    expect(await refusedReason(CURL, /GCONV_PATH/)).toMatch(/started with GCONV_PATH/);
  });

  row(kindEnv, 'an allowed curl with OPENSSL_CONF (OpenSSL loads the providers and engines a config names)', async () => {
    const conf = path.join(path.dirname(f.evil as string), 'evil.cnf');
    writeFileSync(conf, `openssl_conf = init\n[init]\nproviders = prov\n[prov]\nevil = evil_sect\n[evil_sect]\nmodule = ${f.evil as string}\nactivate = 1\n`);
    const r = await fx.run(f.rawexec as string, [CURL, ...http(fx.lab.urls.corpV4), '--', 'PATH=/usr/bin:/bin', `OPENSSL_CONF=${conf}`], { timeout: 20_000 });
    expectDropped(r);
    expect(await refusedReason(CURL, /OPENSSL_CONF/)).toMatch(/started with OPENSSL_CONF/);
  });

  row(kindEnv, 'control: the same allowed curl with a clean environment is admitted', async () => {
    const r = await fx.run(f.rawexec as string, [CURL, ...http(fx.lab.urls.corpV4), '--', 'PATH=/usr/bin:/bin', 'TMPDIR=/tmp'], { timeout: 20_000 });
    expect(String(r.stdout)).toBe('200');
  });

  const kindScript = 'a script rule admits only its script';
  row(kindScript, 'python -I -i deploy.py with code on stdin (interactive after the script)', async () => {
    const code = `import urllib.request\\ntry: print("CODE", urllib.request.urlopen("${fx.lab.urls.corpV4}", timeout=3).status)\\nexcept Exception: print("CODE dropped")\\n`;
    const r = await fx.run('sh', ['-c', `printf '${code}' | ${PYTHON} -I -i ${f.deploy} ${fx.lab.urls.corpV4}`], { timeout: 30_000 });
    expect(String(r.stdout)).toMatch(/CODE dropped/);
    expect(String(r.stdout)).not.toMatch(/CODE 200/);
    expect(await refusedReason(PYTHON, /-i/)).toMatch(/started with -i, which loads code besides/);
  });

  row(kindScript, "a usercustomize.py in the user's own site-packages (python without -s / -I)", async () => {
    const r = await fx.run(PYTHON, [f.deploy as string, fx.lab.urls.corpV4], { uid: USER, env: { HOME: f.home as string, TG_URL: fx.lab.urls.corpV4 }, timeout: 30_000 });
    expect(String(r.stdout)).toMatch(/EVIL dropped/);
    expect(String(r.stdout)).toMatch(/deploy dropped/);
    expect(await refusedReason(PYTHON, /usercustomize/)).toMatch(/without -s or -I/);
  });

  row(kindScript, 'control: python -I deploy.py as the same user is admitted and the usercustomize.py does not run', async () => {
    const r = await fx.run(PYTHON, ['-I', f.deploy as string, fx.lab.urls.corpV4], { uid: USER, env: { HOME: f.home as string, TG_URL: fx.lab.urls.corpV4 }, timeout: 30_000 });
    expect(String(r.stdout).trim()).toBe('deploy 200');
  });
});
