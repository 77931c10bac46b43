// `sudo npm run demo`: the README's quick start, and a smoke check of the whole product.
//
// It builds a throwaway lab (two network namespaces joined by a real WireGuard tunnel,
// see lab.ts), gives the real helper a one-rule IT profile (only /usr/bin/curl may use
// the tunnel), and shows side by side what an allowed program and an identical copy of
// it at another path get. Every expected outcome is checked: the exit code is 0 only if
// all of them happened. Everything it creates is removed at the end, also on Ctrl-C.
// Nothing in the host's own network namespace is touched.
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { createLab, type Lab } from './lab.js';
import { CLI, packageRoot, startHelper, type HelperHandle } from './helper-proc.js';

const ALLOWED = '/usr/bin/curl';
const TOOLS = ['ip', 'nsenter', 'setpriv', 'nft', 'wg', 'wireguard-go', 'curl'];
const APT_LINE = 'apt-get install -y nftables wireguard-tools wireguard-go iproute2 curl';

// ---------------------------------------------------------------------------------------
// Output

let stepNo = 0;
function step(title: string): void {
  stepNo += 1;
  const head = `[${stepNo}] ${title}`;
  console.log(`\n${head}\n${'-'.repeat(Math.min(head.length, 100))}`);
}

const say = (text: string): void => console.log(`  ${text.split('\n').join('\n  ')}`);

/** Print a command as typed at a root prompt in the workstation namespace, then its output. */
function show(cmdline: string, r: Result): void {
  console.log(`  ws# ${cmdline}`);
  const out = [String(r.stdout ?? ''), String(r.stderr ?? '')].map((s) => s.trimEnd()).filter(Boolean).join('\n');
  if (out) console.log(`      ${out.split('\n').join('\n      ')}`);
  console.log(`      (exit ${exitOf(r)})`);
}

function exitOf(r: Result): string {
  if (r.timedOut) return 'timed out';
  if (r.exitCode !== undefined) return String(r.exitCode);
  return r.signal ? `signal ${r.signal}` : '?';
}

/** `curl -w 'HTTP %{http_code}\n'` prints this as its last line; 000 means no answer. */
function httpCode(r: Result): string {
  return /HTTP (\d{3})\s*$/.exec(String(r.stdout ?? ''))?.[1] ?? '---';
}

/** The fields of `status --json` the demo reads; undefined if the output is not JSON. */
function statusJson(r: Result): { cgroupDir?: string; dropped?: { packets: number; bytes: number } } | undefined {
  try {
    return JSON.parse(String(r.stdout)) as { cgroupDir?: string; dropped?: { packets: number; bytes: number } };
  } catch {
    return undefined;
  }
}

interface Check {
  what: string;
  ok: boolean;
  detail: string;
}
const checks: Check[] = [];
function check(what: string, ok: boolean, detail: string): boolean {
  checks.push({ what, ok, detail });
  console.log(`  ${ok ? 'ok  ' : 'FAIL'}  ${what}: ${detail}`);
  return ok;
}

// ---------------------------------------------------------------------------------------
// Preconditions

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(path.join(dir || '.', tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function preconditions(): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) {
    return ['the demo creates network namespaces: run it as root, e.g. sudo npm run demo'];
  }
  const missing = TOOLS.filter((t) => !onPath(t));
  if (missing.length) problems.push(`missing tools: ${missing.join(', ')}; install them with: ${APT_LINE}`);
  if (!existsSync(ALLOWED)) problems.push(`${ALLOWED} is missing; install it with: apt-get install -y curl`);
  const addon = path.join(packageRoot(), 'build', 'Release', 'tunnelgate_native.node');
  if (!existsSync(addon)) problems.push(`the native addon ${addon} is missing; run npm ci first (it builds it with node-gyp)`);
  return problems;
}

// ---------------------------------------------------------------------------------------
// What the demo owns, and how to take it away synchronously (Ctrl-C)

let lab: Lab | undefined;
let helper: HelperHandle | undefined;
let startingHelper = false;
let scratch: string | undefined;
/** The helper's cgroup subtree, as `status --json` reports it (checked after cleanup). */
let cgroupDir: string | undefined;

/** Mount points of every cgroup hierarchy (v1 and v2), from /proc/self/mountinfo. */
function cgroupMounts(): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    const fstype = sep < 0 ? '' : line.slice(sep + 3).split(' ')[0];
    const mountPoint = line.slice(0, Math.max(sep, 0)).split(' ')[4];
    if ((fstype === 'cgroup' || fstype === 'cgroup2') && mountPoint) {
      out.push(mountPoint.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
    }
  }
  return out;
}

/** `tunnelgate helper --uninstall-rules` in the lab's workstation namespace (never the host's). */
function uninstallSync(l: Lab, cgroupRoot: string, dirs: { etc: string; state: string; run: string }): void {
  try {
    execFileSync(
      'nsenter',
      [`--net=${l.netnsPath('ws')}`, '--', process.execPath, CLI, 'helper', '--uninstall-rules',
        '--etc', dirs.etc, '--state', dirs.state, '--run', dirs.run, '--cgroup-root', cgroupRoot],
      { stdio: 'ignore', timeout: 15_000 },
    );
  } catch (e) {
    console.error(`demo: could not remove the helper's rules and cgroups (${cgroupRoot}): ${(e as Error).message}`);
  }
}

/** SIGKILL the helper this process started on `dir` (a child of ours, by PID), and give it a moment to go. */
function killOurHelper(dir: string): void {
  let killed = false;
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]);
      if (ppid === process.pid && argv.includes('helper') && argv.includes(path.join(dir, 'etc'))) {
        process.kill(Number(entry), 'SIGKILL');
        killed = true;
      }
    } catch {
      /* gone meanwhile */
    }
  }
  if (killed) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
}

/**
 * Run on SIGINT/SIGTERM/SIGHUP before the lab's own safety net (registered earlier, so
 * it runs first): the helper's cgroups live in the host's cgroup tree, and must go
 * while the lab's namespace still exists; the lab then removes itself on exit.
 */
function cleanupOnSignal(): void {
  const l = lab;
  const h = helper;
  if (l && h) {
    void h.kill('SIGKILL').catch(() => undefined); // the signal is sent at once, by PID
    uninstallSync(l, h.cgroupRoot, h);
    rmSync(h.dir, { recursive: true, force: true });
  } else if (l && startingHelper) {
    // Interrupted while the helper was starting: no handle yet. Its directory
    // (mkdtemp /tmp/tg-helper-*) is the one whose profile names this lab's interface,
    // and its cgroup root is named after the lab.
    const dirs = readdirSync('/tmp')
      .filter((n) => n.startsWith('tg-helper-'))
      .map((n) => path.join('/tmp', n))
      .filter((dir) => {
        try {
          return readFileSync(path.join(dir, 'etc', 'profiles.d', 'demo.json'), 'utf8').includes(`"${l.wsIface}"`);
        } catch {
          return false; // not ours, or not written yet
        }
      });
    for (const dir of dirs) killOurHelper(dir);
    const prefix = `tg-test-${l.id}-`;
    const roots = new Set<string>();
    for (const mount of cgroupMounts()) {
      try {
        for (const n of readdirSync(mount)) if (n.startsWith(prefix)) roots.add(n);
      } catch {
        /* unreadable hierarchy */
      }
    }
    const none = path.join(scratch ?? tmpdir(), 'none');
    const where = dirs[0] ? { etc: path.join(dirs[0], 'etc'), state: path.join(dirs[0], 'state'), run: path.join(dirs[0], 'run') } : { etc: none, state: none, run: none };
    for (const root of roots) uninstallSync(l, root, where);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

let interrupted = false;
function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  console.error(`\ndemo: ${signal}: cleaning up…`);
  cleanupOnSignal();
  console.error('demo: interrupted; the lab is removed as the demo exits');
  process.exit(128 + (osConstants.signals[signal] ?? 2)); // 'exit' runs the lab's own teardown (namespaces, wireguard-go, services)
}
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

// ---------------------------------------------------------------------------------------

async function demo(): Promise<void> {
  console.log('tunnelgate demo');
  console.log('===============');
  say(
    [
      'A throwaway lab: a "workstation" and a "corp" network namespace, joined by a real',
      'WireGuard tunnel (wireguard-go). The corp end serves HTTP on 198.18.0.2 (only',
      'through the tunnel) and on 192.0.2.2 (the underlay, outside the tunnel). The',
      "helper gates the workstation's tunnel interface. Nothing outside the lab changes.",
      '"ws#" below is a root shell inside the workstation namespace.',
    ].join('\n'),
  );

  step('Building the lab');
  lab = await createLab({ log: (line) => say(line) });
  say(`workstation: namespace ${lab.ws}, tunnel interface ${lab.wsIface} (${lab.wsV4})`);
  say(`corp:        namespace ${lab.corp}, tunnel interface ${lab.corpIface} (${lab.corpV4})`);

  step(`An IT profile: only ${ALLOWED} may use the tunnel`);
  scratch = mkdtempSync(path.join(tmpdir(), 'tg-demo-'));
  chmodSync(scratch, 0o755);
  const copy = path.join(scratch, 'curl');
  copyFileSync(ALLOWED, copy);
  chmodSync(copy, 0o755);
  const profile = {
    schema: 'tunnelgate/profile@1',
    id: 'demo',
    version: 1,
    mode: 'enforce',
    interfaces: [lab.wsIface],
    userPrompts: 'deny',
    alwaysAllow: [],
    rules: [{ id: 'curl', binary: { path: ALLOWED } }],
  };
  const profileFile = path.join(scratch, 'demo.json');
  writeFileSync(profileFile, `${JSON.stringify(profile, null, 2)}\n`);
  say(readFileSync(profileFile, 'utf8').trimEnd());
  const validated = (await execa(process.execPath, [CLI, 'profile', 'validate', profileFile], { reject: false, timeout: 20_000 })) as Result;
  show(`tunnelgate profile validate ${profileFile}`, validated);
  check('the profile is valid', validated.exitCode === 0, `exit ${exitOf(validated)}`);
  say(`A byte-for-byte copy of curl at ${copy}: same program, other path, NOT in the profile.`);

  step('Starting the helper (tunnelgate helper) in the workstation namespace');
  startingHelper = true;
  const h = await startHelper(lab, { profiles: { 'demo.json': profile } });
  helper = h;
  startingHelper = false;
  cgroupDir = statusJson(await h.cli(['status', '--json']))?.cgroupDir;
  say(`helper pid ${h.pid}: tunnelgate helper --etc ${h.etc} --state ${h.state} --run ${h.run} --cgroup-root ${h.cgroupRoot}`);
  say('(the commands below find it through --run; they are shown without it)');

  step('What the helper reports');
  const status = await h.cli(['status']);
  show('tunnelgate status', status);
  check('status says enforcing', status.exitCode === 0 && /^gate:\s+enforcing/m.test(String(status.stdout)), `exit ${exitOf(status)}`);
  const list = await h.cli(['list']);
  show('tunnelgate list', list);
  check(`list shows the rule for ${ALLOWED}`, list.exitCode === 0 && String(list.stdout).includes(ALLOWED), `exit ${exitOf(list)}`);

  const curlArgs = (url: string) => ['-s', '-m', '3', '-w', 'HTTP %{http_code}\\n', url];
  const curlText = (prog: string, url: string) => `${prog} -s -m 3 -w 'HTTP %{http_code}\\n' ${url}`;
  // As a user types them: http://198.18.0.2/ rather than http://198.18.0.2:80/.
  const tunnelUrl = new URL(lab.urls.corpV4).href;
  const underlayUrl = new URL(lab.urls.underlay).href;
  const results: Array<[string, string, string]> = [];

  step(`Allowed: ${ALLOWED}, started with tunnelgate run`);
  const allowed = await h.cli(['run', '--', 'curl', ...curlArgs(tunnelUrl)]);
  show(`tunnelgate run -- ${curlText('curl', tunnelUrl)}`, allowed);
  check('the allowed curl reaches the corp server through the tunnel', allowed.exitCode === 0 && httpCode(allowed) === '200',
    `HTTP ${httpCode(allowed)}, exit ${exitOf(allowed)}`);
  results.push(['tunnelgate run -- curl', `${tunnelUrl} (tunnel)`, `HTTP ${httpCode(allowed)}`]);

  step('Not allowed: the copy of curl, started directly');
  const blocked = (await lab.exec('ws', copy, curlArgs(tunnelUrl), { reject: false, timeout: 15_000 })) as Result;
  show(curlText(copy, tunnelUrl), blocked);
  check('the copy gets no answer through the tunnel', blocked.exitCode === 28,
    blocked.exitCode === 28 ? 'curl exit 28 (timed out: its packets were dropped)' : `expected curl exit 28, got exit ${exitOf(blocked)}, HTTP ${httpCode(blocked)}`);
  results.push([copy, `${tunnelUrl} (tunnel)`, blocked.exitCode === 28 ? 'no answer (curl exit 28)' : `exit ${exitOf(blocked)}`]);
  const underlay = (await lab.exec('ws', copy, curlArgs(underlayUrl), { reject: false, timeout: 15_000 })) as Result;
  show(curlText(copy, underlayUrl), underlay);
  check('other programs keep their normal network (the underlay)', underlay.exitCode === 0 && httpCode(underlay) === '200',
    `HTTP ${httpCode(underlay)}, exit ${exitOf(underlay)}`);
  results.push([copy, `${underlayUrl} (underlay)`, `HTTP ${httpCode(underlay)}`]);

  step('Not allowed, even through tunnelgate run');
  const before = h.output().length;
  const refused = await h.cli(['run', '--', copy, ...curlArgs(tunnelUrl)]);
  show(`tunnelgate run -- ${curlText(copy, tunnelUrl)}`, refused);
  check('tunnelgate run refuses the copy with exit 126 and a reason', refused.exitCode === 126 && String(refused.stderr).trim() !== '',
    `exit ${exitOf(refused)}`);
  const logged = h.output().slice(before).split('\n').filter((l) => l.includes('launch.refused'));
  if (logged.length) say(`the helper logged:\n  ${logged.join('\n  ')}`);
  results.push([`tunnelgate run -- ${copy}`, '(not started)', `refused (exit ${exitOf(refused)})`]);

  step('The drop counter');
  const json = await h.cli(['status', '--json']);
  const dropped = statusJson(json)?.dropped;
  console.log(`  ws# tunnelgate status --json    (its "dropped" field)`);
  console.log(`      "dropped": ${JSON.stringify(dropped ?? null)}`);
  check("the gate counted the copy's dropped packets", (dropped?.packets ?? 0) > 0, `${dropped?.packets ?? '?'} packets`);
  results.push(['gate counter "dropped"', '', `${dropped?.packets ?? '?'} packets, ${dropped?.bytes ?? '?'} bytes`]);

  step('Side by side');
  const rows: Array<[string, string, string]> = [['program', 'destination', 'result'], ...results];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  for (const [prog, dest, result] of rows) say(`${prog.padEnd(w0)}  ${dest.padEnd(w1)}  ${result}`.trimEnd());
}

async function cleanUp(): Promise<void> {
  step('Cleaning up');
  const l = lab;
  const h = helper;
  if (h) {
    await h.cleanup().catch((e: Error) => console.error(`demo: helper cleanup: ${e.message}`));
    const left = [...(cgroupDir ? [cgroupDir] : []), h.dir].filter((p) => existsSync(p));
    check("helper stopped, its table, cgroups and directories removed", left.length === 0,
      left.length ? `still there: ${left.join(', ')}` : 'done');
    helper = undefined;
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
  if (l) {
    await l.destroy();
    const netns = await execa('ip', ['netns', 'list'], { reject: false });
    const still = [l.ws, l.corp].filter((ns) => String(netns.stdout).split('\n').some((line) => line.split(' ')[0] === ns));
    check('lab namespaces removed', still.length === 0, still.length ? `still there: ${still.join(', ')}` : 'done');
    lab = undefined;
  }
}

async function main(): Promise<number> {
  const problems = preconditions();
  if (problems.length) {
    for (const p of problems) console.error(`demo: ${p}`);
    return 1;
  }
  // Before createLab: this handler must run before the lab's own (see cleanupOnSignal).
  for (const s of SIGNALS) process.on(s, onSignal);
  let error: unknown;
  try {
    await demo();
  } catch (e) {
    error = e;
  } finally {
    await cleanUp();
    for (const s of SIGNALS) process.off(s, onSignal);
  }
  console.log('');
  if (error !== undefined) {
    console.error(`demo: FAILED: ${(error as Error).message ?? String(error)}`);
    return 1;
  }
  const failed = checks.filter((c) => !c.ok);
  if (failed.length) {
    console.error(`demo: FAILED: ${failed.length} of ${checks.length} expected outcomes did not happen:`);
    for (const c of failed) console.error(`  - ${c.what}: ${c.detail}`);
    return 1;
  }
  console.log(`demo: all ${checks.length} expected outcomes happened.`);
  return 0;
}

process.exitCode = await main();
