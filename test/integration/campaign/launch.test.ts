// Campaign rows of issues 9.6 and 10.5: `tunnelgate run` decides on what the program
// becomes, not on the first file it execs. Each exec of the launched process is decided by
// the verdict a direct start gets; a wrapper script (Debian's /usr/bin/chromium, a
// `#!/bin/sh` wrapper of our own) is followed to the program it execs and never gets the
// tunnel itself; a chain that ends in a program no rule names is refused before that
// program runs. Real helper in the lab; the launches run as a uid the test makes up.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Result } from 'execa';
import { describe, expect } from 'vitest';
import type { StampedEvent } from '../../../common/events.js';
import { row } from '../../lab/campaign.js';
import { waitFor } from '../../lab/fixture.js';
import { CLI } from '../../lab/helper-proc.js';
import { expectDropped, labAndHelper } from '../../lab/suite.js';

const CHROMIUM_WRAPPER = '/usr/bin/chromium';
const CHROMIUM = '/usr/lib/chromium/chromium';
const DASH = realpathSync('/bin/sh');
const PYTHON = realpathSync(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : '/usr/bin/python3.11');
const USER = 6000 + Math.floor(Math.random() * 1000);
const f: Record<string, string> = {};

const fx = labAndHelper({
  prepare: ({ tmp, copyBinary }) => {
    const curl = realpathSync('/usr/bin/curl');
    f.curl = copyBinary(curl, 'allowed/curl');
    f.other = copyBinary(curl, 'unnamed/curl');
    const wrapper = (name: string, body: string) => {
      const file = path.join(tmp, 'bin', name);
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      return file;
    };
    // Launchers of our own: the same shape as Debian's chromium wrapper, ending in `exec`.
    f.wrapsAllowed = wrapper('wraps-allowed', `CURL_FLAGS="-s -o /dev/null"\nexec "${f.curl}" $CURL_FLAGS "$@"`);
    f.wrapsUnnamed = wrapper('wraps-unnamed', `exec "${f.other}" -s -o /dev/null "$@"`);
    f.wrapsViaEnv = wrapper('wraps-via-env', `exec /usr/bin/env TG_WRAPPED=1 "${f.curl}" -s -o /dev/null "$@"`);
    f.exits = wrapper('exits', 'echo "wrapper: nothing to start" >&2; exit 3');
    // A wrapper that forks a child before it execs the allowed curl: the child waits until
    // the wrapper's pid runs the allowed curl, then runs a program no rule names.
    f.forksFirst = wrapper('forks-first', `( until [ "$(readlink /proc/$$/exe)" = "${f.curl}" ]; do :; done; exec "${f.other}" -s -o /dev/null -w 'evil %{http_code}\\n' -m 3 "$1" ) &\nexec "${f.curl}" -s -o /dev/null -w 'allowed %{http_code}\\n' --limit-rate 100k -m 6 "$1bytes/100000000"`);
    // A script rule's program, root-owned in a root-owned directory; one with `#!… -I`.
    mkdirSync(path.join(tmp, 'corp'), { mode: 0o755 });
    const deploy = ['import sys, urllib.request', 'try:', '    print("deploy", urllib.request.urlopen(sys.argv[1], timeout=3).status, flush=True)', 'except Exception:', '    print("deploy dropped", flush=True)', ''];
    f.deploy = path.join(tmp, 'corp', 'deploy.py');
    writeFileSync(f.deploy, deploy.join('\n'), { mode: 0o644 });
    f.deployExec = path.join(tmp, 'corp', 'deploy-I.py');
    writeFileSync(f.deployExec, [`#!${PYTHON} -I`, ...deploy].join('\n'), { mode: 0o755 });
    // The made-up user's home: chromium's profile, and a usercustomize.py in the user's site directory.
    f.home = path.join(tmp, 'home');
    const pyver = execFileSync(PYTHON, ['-c', 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")'], { encoding: 'utf8' }).trim();
    const site = path.join(f.home, '.local', 'lib', `python${pyver}`, 'site-packages');
    mkdirSync(site, { recursive: true });
    writeFileSync(path.join(site, 'usercustomize.py'), 'print("EVIL usercustomize ran", flush=True)\n');
    for (let d = site; d.startsWith(f.home); d = path.dirname(d)) chownSync(d, USER, USER);
    chownSync(path.join(site, 'usercustomize.py'), USER, USER);
  },
  profiles: (ctx) => ({
    'corp-run': {
      schema: 'tunnelgate/profile@1', id: 'corp-run', version: 1, mode: 'enforce', interfaces: [ctx.lab.wsIface], userPrompts: 'deny',
      rules: [
        { id: 'chromium', binary: { path: CHROMIUM } },
        { id: 'curl', binary: { path: f.curl } },
        { id: 'deploy', binary: { path: PYTHON, script: f.deploy } },
        { id: 'deploy-i', binary: { path: PYTHON, script: f.deployExec } },
      ],
    },
  }),
});

/** `tunnelgate run -- ARGS` as the made-up user, with its own HOME, in the workstation namespace. */
const runAs = (args: string[], timeout = 60_000): Promise<Result> =>
  fx.run(process.execPath, [CLI, 'run', '--run', fx.helper.run, '--', ...args], { uid: USER, env: { HOME: f.home as string }, timeout });

const launchEvents = () => fx.events().filter((e): e is Extract<StampedEvent, { type: 'launch.admitted' | 'process.admitted' }> => e.type === 'launch.admitted' || e.type === 'process.admitted');

describe('campaign: `tunnelgate run` decides on what the program becomes', () => {
  const kindChain = 'run follows a launcher to the program it execs (10.5)';

  row(kindChain, "Debian's /usr/bin/chromium (a shell script) with a rule for /usr/lib/chromium/chromium loads the corp page; the wrapper shell is never admitted", async () => {
    const before = launchEvents().length;
    const r = await runAs([CHROMIUM_WRAPPER, '--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${f.home}/chromium`, '--dump-dom', fx.lab.urls.corpV4], 120_000);
    expect({ code: r.exitCode, err: r.exitCode ? String(r.stderr).slice(-2000) : '' }).toEqual({ code: 0, err: '' });
    expect(String(r.stdout)).toContain(`${fx.lab.corpV4}:${fx.lab.ports.http} GET /`);
    const admitted = launchEvents().slice(before);
    expect(admitted.filter((e) => e.type === 'launch.admitted').map((e) => [e.path, e.rule])).toEqual([[CHROMIUM, 'corp-run:chromium']]);
    expect(admitted.filter((e) => e.path === DASH)).toEqual([]);
    // The same user's program that no rule names, started right after: still nothing.
    expectDropped(await fx.run(f.other as string, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', fx.lab.urls.corpV4], { uid: USER }));
  }, 180_000);

  row(kindChain, 'a `#!/bin/sh` wrapper of our own that execs an allowed curl copy: HTTP 200; one through `exec env VAR=… curl` too', async () => {
    const a = await runAs([f.wrapsAllowed as string, '-w', '%{http_code}', '-m', '5', fx.lab.urls.corpV4]);
    expect({ out: String(a.stdout), err: String(a.stderr), code: a.exitCode }).toEqual({ out: '200', err: '', code: 0 });
    const b = await runAs([f.wrapsViaEnv as string, '-w', '%{http_code}', '-m', '5', fx.lab.urls.corpV4]);
    expect({ out: String(b.stdout), code: b.exitCode }).toEqual({ out: '200', code: 0 });
  });

  row(kindChain, 'a wrapper that execs a program no rule names: exit 126 naming the chain, and that program never runs', async () => {
    const r = await runAs([f.wrapsUnnamed as string, '-w', '%{http_code}', '-m', '3', fx.lab.urls.corpV4]);
    expect(r.exitCode).toBe(126);
    expect(String(r.stderr).trim()).toBe(`tunnelgate: ${f.other} may not use the tunnel: no rule allows ${f.other} (exec chain: ${DASH} ${f.wrapsUnnamed} → ${f.other})`);
    expect(String(r.stdout)).toBe(''); // curl -w would have printed 000
  });

  row(kindChain, 'a wrapper that exits without starting anything: exit 126 naming it', async () => {
    const r = await runAs([f.exits as string]);
    expect(r.exitCode).toBe(126);
    expect(String(r.stderr)).toContain('wrapper: nothing to start');
    expect(String(r.stderr)).toContain(`tunnelgate: ${DASH} ${f.exits} exited without starting a program a rule allows`);
  });

  row(kindChain, 'a wrapper that forks a child before it execs the allowed curl: the child gets nothing', async () => {
    const r = await runAs([f.forksFirst as string, fx.lab.urls.corpV4]);
    // The evil child's curl gives up after 3 s; the allowed one, admitted, is still downloading then.
    expect(String(r.stdout).split('\n')).toEqual(['evil 000', 'allowed 200']);
  });

  const kindScript = 'run decides as a direct start does (9.6)';

  row(kindScript, '`run -- python3 -I deploy.py` (a script rule) is admitted, as the same command started directly', async () => {
    const viaRun = await runAs([PYTHON, '-I', f.deploy as string, fx.lab.urls.corpV4]);
    expect({ out: String(viaRun.stdout).trim(), err: String(viaRun.stderr) }).toEqual({ out: 'deploy 200', err: '' });
    const direct = await fx.run(PYTHON, ['-I', f.deploy as string, fx.lab.urls.corpV4], { uid: USER, env: { HOME: f.home as string }, timeout: 30_000 });
    expect(String(direct.stdout).trim()).toBe('deploy 200');
  });

  row(kindScript, '`run -- deploy-I.py` (its own `#!python3 -I` line) is admitted: the script the kernel hands python decides', async () => {
    const r = await runAs([f.deployExec as string, fx.lab.urls.corpV4]);
    expect({ out: String(r.stdout).trim(), err: String(r.stderr) }).toEqual({ out: 'deploy 200', err: '' });
  });

  row(kindScript, '`run -- python3 deploy.py` without -I: refused with the reason a direct start gets, before usercustomize.py runs', async () => {
    const r = await runAs([PYTHON, f.deploy as string, fx.lab.urls.corpV4]);
    expect(r.exitCode).toBe(126);
    expect(String(r.stdout)).toBe('');
    const direct = await fx.run(PYTHON, [f.deploy as string, fx.lab.urls.corpV4], { uid: USER, env: { HOME: f.home as string }, timeout: 30_000 });
    expect(String(direct.stdout)).toMatch(/deploy dropped/);
    const reason = await waitFor('the direct start refused', () =>
      fx.events().filter((e): e is Extract<StampedEvent, { type: 'process.refused' }> => e.type === 'process.refused' && e.path === PYTHON && e.uid === USER).at(-1)?.reason);
    expect(reason).toMatch(/without -s or -I/);
    expect(String(r.stderr).trim()).toBe(`tunnelgate: ${PYTHON} may not use the tunnel: ${reason}`);
  });
});
