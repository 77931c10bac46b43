// The test lab: a "workstation" and a "corp" network namespace joined by a veth underlay
// (192.0.2.0/24) and a real wireguard-go tunnel (198.18.0.0/24, fd00:7467::/64), with HTTP
// and UDP echo services on the corp end. Used by integration tests, benchmarks and the demo.
//
// Rules it keeps (see shared/spec/LAB-NOTES.md):
//  - nothing in the host's own namespace is changed: every link, address and process lives
//    in the two namespaces it creates (interfaces are created from inside them);
//  - commands enter a namespace with `nsenter --net=...`, never `ip netns exec` (which
//    remounts /sys and hides the cgroup filesystem from the command);
//  - wireguard-go's control sockets (/var/run/wireguard/NAME.sock) are shared by every
//    namespace, so both tunnel ends get per-run unique names;
//  - only processes the lab started are ended, by PID, and everything is torn down even
//    after a createLab() that failed halfway or a test process that is dying.

import { execa, type Options, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNetnsSync, errMessage, NETNS_DIR, onExitUndo, parsePids, readComm, signalPids } from './cleanup.js';
import { SERVICES_READY_LINE, SERVICES_SOURCE, type ServicesConfig } from './services.js';

export const LAB_UNDERLAY_WS = '192.0.2.1';
export const LAB_UNDERLAY_CORP = '192.0.2.2';
export const LAB_WS_V4 = '198.18.0.1';
export const LAB_CORP_V4 = '198.18.0.2';
export const LAB_WS_V6 = 'fd00:7467::1';
export const LAB_CORP_V6 = 'fd00:7467::2';
export const LAB_TUNNEL_V4_CIDR = '198.18.0.0/24';
export const LAB_TUNNEL_V6_CIDR = 'fd00:7467::/64';
/** The second tunnel (LabOptions.secondTunnel): its own /24, IPv4 only. */
export const LAB_WS2_V4 = '198.18.1.1';
export const LAB_CORP2_V4 = '198.18.1.2';
export const LAB_TUNNEL2_V4_CIDR = '198.18.1.0/24';

const WG_SOCKET_DIR = '/var/run/wireguard';
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const ID_RE = /^[a-z0-9]{1,6}$/;

export interface LabPorts {
  /** HTTP on corpV4 and corpV6 (tunnel). */
  readonly http: number;
  /** A second HTTP port on the same tunnel addresses (destination-scoped rule tests). */
  readonly httpAlt: number;
  /** UDP echo on corpV4 and corpV6 (tunnel). */
  readonly udpEcho: number;
  /** HTTP on the corp underlay address (not through the tunnel). */
  readonly underlayHttp: number;
  /** wireguard-go listen port of the corp end (on the underlay). */
  readonly wireguard: number;
}

export const LAB_DEFAULT_PORTS: LabPorts = Object.freeze({
  http: 80,
  httpAlt: 8080,
  udpEcho: 7,
  underlayHttp: 80,
  wireguard: 51820,
});

export interface LabOptions {
  /** Suffix of every name (1-6 chars [a-z0-9]); default 6 random hex chars. */
  id?: string;
  /** Tunnel interface in the ws namespace, the one a profile gates. Default `wgw<id>`. */
  wsIface?: string;
  /** Tunnel interface in the corp namespace. Default `wgc<id>`. */
  corpIface?: string;
  /** Override some service / wireguard ports. */
  ports?: Partial<LabPorts>;
  /** Deadline of each waiting step (interface up, services listening, tunnel passing). Default 10 s. */
  stepTimeoutMs?: number;
  /** Progress lines (e.g. `console.log`); silent by default. */
  log?: (line: string) => void;
  /**
   * A second wireguard-go tunnel between the same namespaces (ws `wgx<id>`, corp `wgy<id>`,
   * 198.18.1.0/24, listen port wireguard+1), with HTTP on the corp end: for policies that
   * gate two tunnels (Lab.second). Default: none.
   */
  secondTunnel?: boolean;
}

/** The second tunnel of a lab created with `secondTunnel`. */
export interface LabSecondTunnel {
  readonly wsIface: string;
  readonly corpIface: string;
  readonly wsV4: string;
  readonly corpV4: string;
  /** http://198.18.1.2:<http>/ through the second tunnel. */
  readonly url: string;
}

/** A namespace: the role `'ws'` / `'corp'` of this lab, or any namespace name. */
export type LabNs = 'ws' | 'corp' | (string & Record<never, never>);

export interface LabUrls {
  /** http://198.18.0.2:<http>/ */
  readonly corpV4: string;
  /** http://[fd00:7467::2]:<http>/ */
  readonly corpV6: string;
  /** http://198.18.0.2:<httpAlt>/ */
  readonly corpV4Alt: string;
  /** http://[fd00:7467::2]:<httpAlt>/ */
  readonly corpV6Alt: string;
  /** http://192.0.2.2:<underlayHttp>/ (underlay, not through the tunnel) */
  readonly underlay: string;
}

export interface Lab {
  readonly id: string;
  /** Namespace names (`tg-ws-<id>`, `tg-corp-<id>`). */
  readonly ws: string;
  readonly corp: string;
  /** WireGuard interface names: wsIface is the one to put in a profile's `interfaces`. */
  readonly wsIface: string;
  readonly corpIface: string;
  /** veth ends of the underlay. */
  readonly wsVeth: string;
  readonly corpVeth: string;
  readonly underlayWs: string;
  readonly underlayCorp: string;
  readonly wsV4: string;
  readonly corpV4: string;
  readonly wsV6: string;
  readonly corpV6: string;
  readonly tunnelV4Cidr: string;
  readonly tunnelV6Cidr: string;
  readonly ports: LabPorts;
  readonly urls: LabUrls;
  /** PIDs of the lab's own long-running processes. */
  readonly pids: { readonly wsWireguard: number; readonly corpWireguard: number; readonly services: number };
  /** How long createLab took, in ms. */
  readonly setupMs: number;
  /** The second tunnel, when created with `secondTunnel`. */
  readonly second?: LabSecondTunnel;

  /** /var/run/netns/<name>, for `nsenter --net=` or setns. */
  netnsPath(ns: LabNs): string;
  /**
   * Run `cmd args` in a namespace (`nsenter --net=... -- cmd args`) and return execa's
   * result promise; every execa option works (`reject: false`, `timeout`, `input`, ...).
   * The PID is the command's own (nsenter execs it). A command still running at destroy()
   * is ended by it.
   */
  exec<O extends Options = Record<never, never>>(ns: LabNs, cmd: string, args?: readonly string[], opts?: O): ResultPromise<O>;
  /**
   * Like exec, for long-running processes (servers, iperf3 -s, a helper): returns the
   * subprocess at once; destroy() ends it (SIGTERM, then SIGKILL) by its PID. It runs under
   * `setpriv --pdeathsig TERM` (which execs, so the PID is still the command's), so it also
   * ends if this process is SIGKILLed. Its promise never causes an unhandled rejection
   * when the lab kills it.
   */
  spawn<O extends Options = Record<never, never>>(ns: LabNs, cmd: string, args?: readonly string[], opts?: O): ResultPromise<O>;
  /** Tear everything down. Idempotent, never throws; problems are reported with console.warn. */
  destroy(): Promise<void>;
}

type Child = ResultPromise<Options>;

/** The mutable record of what a lab created: destroy() undoes exactly this, nothing else. */
class LabState {
  readonly namespaces: string[] = [];
  readonly wgSockets: string[] = [];
  /** Private temp directories (0700) for key files. */
  readonly tempDirs: string[] = [];
  readonly children = new Set<Child>();
  /** Children ended last (wireguard-go), after the processes that may be using the tunnel. */
  readonly lateChildren = new Set<Child>();
  destroying: Promise<void> | undefined;
  destroyed = false;
  /** Takes this lab off the safety net (onExitUndo), once destroy() has run. */
  private readonly disarm: () => void;

  constructor(readonly id: string, readonly log: (line: string) => void) {
    // If the process exits or is signalled with the lab up, tear it down at once.
    this.disarm = onExitUndo(() => this.destroySync());
  }

  track(child: Child, late = false): void {
    const set = late ? this.lateChildren : this.children;
    set.add(child);
    child.once('exit', () => set.delete(child));
  }

  /** Asynchronous, orderly teardown. */
  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    const problems: string[] = [];
    const t0 = performance.now();
    try {
      problems.push(...(await endChildren([...this.children])));
      problems.push(...(await endChildren([...this.lateChildren])));
      for (const ns of this.namespaces) problems.push(...(await endStrays(ns)));
      for (const ns of this.namespaces) {
        if (!existsSync(`${NETNS_DIR}/${ns}`)) continue;
        const r = await execa('ip', ['netns', 'del', ns], { reject: false, timeout: 10_000 });
        if (r.failed) problems.push(`ip netns del ${ns}: ${oneLine(r.stderr || (r.shortMessage ?? 'failed'))}`);
      }
      for (const path of [...this.wgSockets, ...this.tempDirs]) {
        try {
          rmSync(path, { force: true, recursive: true });
        } catch (err) {
          problems.push(`rm ${path}: ${errMessage(err)}`);
        }
      }
    } catch (err) {
      problems.push(`unexpected: ${errMessage(err)}`);
    } finally {
      this.destroyed = true;
      this.disarm();
    }
    this.log(`lab ${this.id}: destroyed in ${Math.round(performance.now() - t0)} ms`);
    if (problems.length > 0) console.warn(`lab ${this.id}: destroy problems:\n  ${problems.join('\n  ')}`);
  }

  /** Last-resort synchronous teardown, for a process that is exiting with the lab up. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const child of [...this.children, ...this.lateChildren]) {
      if (child.pid !== undefined && isRunning(child)) signalPids([child.pid], 'SIGKILL');
    }
    for (const ns of this.namespaces) deleteNetnsSync(ns);
    for (const path of [...this.wgSockets, ...this.tempDirs]) {
      try {
        rmSync(path, { force: true, recursive: true });
      } catch {
        /* best effort */
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Small helpers

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' | ');
}

function isRunning(child: Child): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function waitExit(child: Child, ms: number): Promise<boolean> {
  if (!isRunning(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', done);
      resolve(false);
    }, ms);
    function done(): void {
      clearTimeout(timer);
      resolve(true);
    }
    child.once('exit', done);
  });
}

/**
 * End children by PID: SIGTERM, 2 s grace, SIGKILL. Uses the ChildProcess handle, which
 * refuses to signal a child that has already been reaped, so a recycled PID is never hit.
 */
async function endChildren(children: Child[]): Promise<string[]> {
  const problems: string[] = [];
  await Promise.all(
    children.map(async (child) => {
      if (!isRunning(child)) return;
      child.kill('SIGTERM');
      if (await waitExit(child, 2_000)) return;
      child.kill('SIGKILL');
      if (!(await waitExit(child, 2_000))) problems.push(`pid ${child.pid} did not die after SIGKILL`);
    }),
  );
  return problems;
}

/**
 * Processes still inside a lab namespace that the lab did not start itself (children of
 * spawned commands, e.g. the program a `tunnelgate run` started). They exist only because
 * of this lab, and would keep the namespace alive invisibly after `ip netns del`.
 */
async function endStrays(ns: string): Promise<string[]> {
  if (!existsSync(`${NETNS_DIR}/${ns}`)) return [];
  const list = async (): Promise<number[]> => {
    const r = await execa('ip', ['netns', 'pids', ns], { reject: false, timeout: 5_000 });
    return r.failed ? [] : parsePids(r.stdout);
  };
  const pids = await list();
  if (pids.length === 0) return [];
  const listed = pids.map((pid) => `${pid} (${readComm(pid)})`).join(', ');
  signalPids(pids, 'SIGTERM');
  let left = pids;
  const deadline = Date.now() + 2_000;
  while (left.length > 0 && Date.now() < deadline) {
    await delay(50);
    const now = new Set(await list());
    left = left.filter((pid) => now.has(pid));
  }
  if (left.length > 0) signalPids(left, 'SIGKILL');
  return [`namespace ${ns} still held processes the lab did not start directly, ended them: ${listed}`];
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `probe` until it returns a value (not undefined) or the deadline passes. */
async function pollUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, everyMs = 25): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() >= deadline) throw new Error(`lab: ${what} within ${timeoutMs / 1000}s`);
    await delay(everyMs);
  }
}

/** A bounded tail of a child's output, for error messages. */
function collectTail(child: Child, maxChars = 4_000): () => string {
  let text = '';
  const add = (chunk: Buffer | string): void => {
    text = (text + chunk.toString()).slice(-maxChars);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => oneLine(text);
}

/** Run a setup command; on failure throw an error that says what the lab was doing. */
async function run(what: string, cmd: string, args: readonly string[], opts: { input?: string } = {}): Promise<string> {
  const r = await execa(cmd, args, { reject: false, timeout: 15_000, ...opts });
  if (r.failed) {
    const detail = oneLine(r.stderr || r.stdout || '') || (r.shortMessage ?? 'failed');
    throw new Error(`lab: ${what} failed (${cmd} ${args.join(' ')}): ${detail}`);
  }
  return r.stdout;
}

function randomId(): string {
  return randomBytes(3).toString('hex');
}

// ---------------------------------------------------------------------------------------

/** Build a lab. On any failure it tears down what it built and rethrows. */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const t0 = performance.now();
  const id = opts.id ?? randomId();
  if (!ID_RE.test(id)) throw new Error(`lab: id "${id}" must be 1-6 characters of [a-z0-9]`);
  const ws = `tg-ws-${id}`;
  const corp = `tg-corp-${id}`;
  const wsIface = opts.wsIface ?? `wgw${id}`;
  const corpIface = opts.corpIface ?? `wgc${id}`;
  const second = opts.secondTunnel ? { wsIface: `wgx${id}`, corpIface: `wgy${id}` } : undefined;
  const wsVeth = `vw${id}`;
  const corpVeth = `vc${id}`;
  for (const [what, name] of [['wsIface', wsIface], ['corpIface', corpIface]] as const) {
    if (!IFNAME_RE.test(name)) throw new Error(`lab: ${what} "${name}" is not a valid interface name (1-15 chars of [A-Za-z0-9_.-])`);
  }
  if (wsIface === corpIface) throw new Error(`lab: wsIface and corpIface must differ (wireguard-go sockets are shared by all namespaces), both are "${wsIface}"`);
  const ports: LabPorts = Object.freeze({ ...LAB_DEFAULT_PORTS, ...opts.ports });
  const stepMs = opts.stepTimeoutMs ?? 10_000;
  const log = opts.log ?? ((): void => undefined);

  const state = new LabState(id, log);

  const netnsPath = (ns: LabNs): string => `${NETNS_DIR}/${ns === 'ws' ? ws : ns === 'corp' ? corp : ns}`;
  const nsenterArgs = (ns: LabNs, cmd: string, args: readonly string[]): string[] => [`--net=${netnsPath(ns)}`, '--', cmd, ...args];
  // Long-running processes get SIGTERM from the kernel when their parent (this process)
  // dies, even by SIGKILL, when no exit handler can run. nsenter and setpriv both exec,
  // so the PID stays the command's own.
  const withParentDeathSignal = (cmd: string, args: readonly string[]): [string, string[]] => ['setpriv', ['--pdeathsig', 'TERM', '--', cmd, ...args]];

  const start = <O extends Options>(what: string, ns: LabNs, cmd: string, args: readonly string[], o: O | undefined): ResultPromise<O> => {
    if (state.destroyed || state.destroying) throw new Error(`lab ${id}: ${what} ${cmd} after destroy()`);
    const finalArgs = what === 'spawn' ? nsenterArgs(ns, ...withParentDeathSignal(cmd, args)) : nsenterArgs(ns, cmd, args);
    const child = execa('nsenter', finalArgs, o ?? ({} as O)) as unknown as ResultPromise<O>;
    state.track(child as unknown as Child);
    return child;
  };
  const exec = <O extends Options = Record<never, never>>(ns: LabNs, cmd: string, args: readonly string[] = [], o?: O): ResultPromise<O> =>
    start('exec', ns, cmd, args, o);
  const spawn = <O extends Options = Record<never, never>>(ns: LabNs, cmd: string, args: readonly string[] = [], o?: O): ResultPromise<O> => {
    const child = start('spawn', ns, cmd, args, o);
    // The lab may kill it: keep that rejection from surfacing as "unhandled". Whoever
    // awaits the subprocess still sees it.
    child.catch(() => undefined);
    return child;
  };

  try {
    // -- names must be free: a leftover socket means another wireguard-go uses the name.
    for (const name of [wsIface, corpIface, ...(second ? [second.wsIface, second.corpIface] : [])]) {
      const sock = `${WG_SOCKET_DIR}/${name}.sock`;
      if (existsSync(sock)) throw new Error(`lab: ${sock} already exists: another wireguard-go owns the name "${name}"; pick another interface name`);
    }

    // -- namespaces and underlay. The veth pair is created from inside ws, so it never
    //    appears in the host namespace.
    for (const ns of [ws, corp]) {
      await run(`creating namespace ${ns}`, 'ip', ['netns', 'add', ns]);
      state.namespaces.push(ns);
      await run(`bringing up lo in ${ns}`, 'ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await run(`creating veth ${wsVeth}/${corpVeth}`, 'ip', ['-n', ws, 'link', 'add', wsVeth, 'type', 'veth', 'peer', 'name', corpVeth, 'netns', corp]);
    await run(`addressing ${wsVeth}`, 'ip', ['-n', ws, 'addr', 'add', `${LAB_UNDERLAY_WS}/24`, 'dev', wsVeth]);
    await run(`addressing ${corpVeth}`, 'ip', ['-n', corp, 'addr', 'add', `${LAB_UNDERLAY_CORP}/24`, 'dev', corpVeth]);
    await run(`bringing up ${wsVeth}`, 'ip', ['-n', ws, 'link', 'set', wsVeth, 'up']);
    await run(`bringing up ${corpVeth}`, 'ip', ['-n', corp, 'link', 'set', corpVeth, 'up']);

    // -- keys: private keys never appear on a command line.
    const [wsKey, corpKey] = await Promise.all([run('wg genkey', 'wg', ['genkey']), run('wg genkey', 'wg', ['genkey'])]);
    const [wsPub, corpPub] = await Promise.all([
      run('wg pubkey', 'wg', ['pubkey'], { input: wsKey }),
      run('wg pubkey', 'wg', ['pubkey'], { input: corpKey }),
    ]);

    // -- wireguard-go, one per end, in the foreground (-f) of its own session.
    const startWireguard = async (ns: string, iface: string): Promise<number> => {
      const sock = `${WG_SOCKET_DIR}/${iface}.sock`;
      // detached: Node calls setsid() in the child before exec, i.e. `setsid wireguard-go`
      // without setsid(1)'s fork when it is already a group leader, so the PID is exact.
      const child = execa('nsenter', nsenterArgs(ns, ...withParentDeathSignal('wireguard-go', ['-f', iface])), {
        detached: true,
        cleanup: false,
        buffer: false,
        reject: false,
        stdin: 'ignore',
      }) as unknown as Child;
      state.track(child, true);
      state.wgSockets.push(sock);
      const tail = collectTail(child);
      const pid = child.pid;
      if (pid === undefined) {
        await child;
        throw new Error(`lab: could not start wireguard-go for ${iface} in ${ns}: ${tail()}`);
      }
      await pollUntil(`wireguard-go for ${iface} (pid ${pid}) did not create its interface in ${ns}`, stepMs, async () => {
        if (!isRunning(child)) throw new Error(`lab: wireguard-go for ${iface} in ${ns} exited early (code ${child.exitCode}, signal ${child.signalCode}): ${tail()}`);
        if (!existsSync(sock)) return undefined;
        const r = await execa('ip', ['-n', ns, 'link', 'show', 'dev', iface], { reject: false, timeout: 5_000 });
        return r.failed ? undefined : true;
      });
      return pid;
    };
    const [wsWgPid, corpWgPid] = await Promise.all([startWireguard(ws, wsIface), startWireguard(corp, corpIface)]);
    if (second) await Promise.all([startWireguard(ws, second.wsIface), startWireguard(corp, second.corpIface)]);

    // wg reads the private key from a file. Not /dev/stdin: Node's child stdin is a
    // socketpair, which cannot be open()ed (ENXIO). So: a 0600 file in a 0700 directory,
    // deleted as soon as wg has read it (and by destroy() if we fail in between).
    const keyDir = mkdtempSync(join(tmpdir(), `tg-lab-${id}-`));
    state.tempDirs.push(keyDir);
    const wgSet = async (ns: string, iface: string, key: string, args: string[]): Promise<void> => {
      const keyFile = join(keyDir, `${iface}.key`);
      writeFileSync(keyFile, `${key}\n`, { mode: 0o600, flag: 'wx' });
      try {
        await run(`configuring ${iface} in ${ns}`, 'nsenter', nsenterArgs(ns, 'wg', ['set', iface, 'private-key', keyFile, ...args]));
      } finally {
        rmSync(keyFile, { force: true });
      }
    };
    await wgSet(corp, corpIface, corpKey, ['listen-port', String(ports.wireguard), 'peer', wsPub, 'allowed-ips', `${LAB_WS_V4}/32,${LAB_WS_V6}/128`]);
    await wgSet(ws, wsIface, wsKey, ['peer', corpPub, 'endpoint', `${LAB_UNDERLAY_CORP}:${ports.wireguard}`, 'allowed-ips', `${LAB_TUNNEL_V4_CIDR},${LAB_TUNNEL_V6_CIDR}`]);
    if (second) {
      const [k1, k2] = await Promise.all([run('wg genkey', 'wg', ['genkey']), run('wg genkey', 'wg', ['genkey'])]);
      const [p1, p2] = await Promise.all([run('wg pubkey', 'wg', ['pubkey'], { input: k1 }), run('wg pubkey', 'wg', ['pubkey'], { input: k2 })]);
      await wgSet(corp, second.corpIface, k2, ['listen-port', String(ports.wireguard + 1), 'peer', p1, 'allowed-ips', `${LAB_WS2_V4}/32`]);
      await wgSet(ws, second.wsIface, k1, ['peer', p2, 'endpoint', `${LAB_UNDERLAY_CORP}:${ports.wireguard + 1}`, 'allowed-ips', LAB_TUNNEL2_V4_CIDR]);
      for (const [ns, iface, v4] of [[ws, second.wsIface, LAB_WS2_V4], [corp, second.corpIface, LAB_CORP2_V4]] as const) {
        await run(`addressing ${iface}`, 'ip', ['-n', ns, 'addr', 'add', `${v4}/24`, 'dev', iface]);
        await run(`bringing up ${iface}`, 'ip', ['-n', ns, 'link', 'set', iface, 'up']);
      }
    }
    rmSync(keyDir, { recursive: true, force: true });
    for (const [ns, iface, v4, v6] of [
      [ws, wsIface, LAB_WS_V4, LAB_WS_V6],
      [corp, corpIface, LAB_CORP_V4, LAB_CORP_V6],
    ] as const) {
      await run(`addressing ${iface}`, 'ip', ['-n', ns, 'addr', 'add', `${v4}/24`, 'dev', iface]);
      await run(`addressing ${iface}`, 'ip', ['-n', ns, 'addr', 'add', `${v6}/64`, 'dev', iface, 'nodad']);
      await run(`bringing up ${iface}`, 'ip', ['-n', ns, 'link', 'set', iface, 'up']);
    }

    // -- services on the corp end.
    const config: ServicesConfig = {
      http: [
        { label: 'corp', host: LAB_CORP_V4, port: ports.http },
        { label: 'corp', host: LAB_CORP_V6, port: ports.http },
        { label: 'corp-alt', host: LAB_CORP_V4, port: ports.httpAlt },
        { label: 'corp-alt', host: LAB_CORP_V6, port: ports.httpAlt },
        { label: 'underlay', host: LAB_UNDERLAY_CORP, port: ports.underlayHttp },
        ...(second ? [{ label: 'corp2', host: LAB_CORP2_V4, port: ports.http }] : []),
      ],
      udpEcho: [
        { host: LAB_CORP_V4, port: ports.udpEcho },
        { host: LAB_CORP_V6, port: ports.udpEcho },
      ],
    };
    const services = execa(
      'nsenter',
      nsenterArgs(corp, ...withParentDeathSignal(process.execPath, ['--input-type=module', '-e', SERVICES_SOURCE, '--', JSON.stringify(config)])),
      // stdin stays an open pipe: the services exit when it closes (see services.ts).
      { stdin: 'pipe', buffer: false, reject: false, cleanup: false },
    ) as unknown as Child;
    state.track(services);
    const servicesTail = collectTail(services);
    let servicesOut = '';
    services.stdout?.on('data', (chunk: Buffer) => {
      servicesOut += chunk.toString();
    });
    await pollUntil('corp services did not start listening', stepMs, () => {
      if (servicesOut.includes(SERVICES_READY_LINE)) return true;
      if (!isRunning(services)) throw new Error(`lab: corp services in ${corp} exited early (code ${services.exitCode}): ${servicesTail()}`);
      return undefined;
    });
    if (services.pid === undefined) throw new Error('lab: corp services have no pid');

    // -- the tunnel passes traffic (the first packet also triggers the handshake).
    const urls: LabUrls = {
      corpV4: `http://${LAB_CORP_V4}:${ports.http}/`,
      corpV6: `http://[${LAB_CORP_V6}]:${ports.http}/`,
      corpV4Alt: `http://${LAB_CORP_V4}:${ports.httpAlt}/`,
      corpV6Alt: `http://[${LAB_CORP_V6}]:${ports.httpAlt}/`,
      underlay: `http://${LAB_UNDERLAY_CORP}:${ports.underlayHttp}/`,
    };
    const secondUrl = `http://${LAB_CORP2_V4}:${ports.http}/`;
    for (const url of [urls.corpV4, urls.corpV6, ...(second ? [secondUrl] : [])]) {
      let last = '';
      try {
        await pollUntil(`the tunnel ${wsIface} -> ${corpIface} did not carry HTTP to ${url}`, stepMs, async () => {
          const r = await execa('nsenter', nsenterArgs(ws, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', url]), { reject: false, timeout: 5_000 });
          if (r.stdout === '200') return true;
          last = oneLine(r.stderr || `HTTP ${r.stdout}`);
          return undefined;
        }, 50);
      } catch (err) {
        const show = await execa('nsenter', nsenterArgs(ws, 'wg', ['show', wsIface]), { reject: false, timeout: 5_000 });
        throw new Error(`${errMessage(err)} (last attempt: ${last}; wg show ${wsIface}: ${oneLine(show.stdout || show.stderr)})`);
      }
    }

    const setupMs = Math.round(performance.now() - t0);
    log(`lab ${id}: up in ${setupMs} ms (${ws} ${wsIface} <-> ${corp} ${corpIface})`);
    const lab: Lab = {
      id,
      ws,
      corp,
      wsIface,
      corpIface,
      wsVeth,
      corpVeth,
      underlayWs: LAB_UNDERLAY_WS,
      underlayCorp: LAB_UNDERLAY_CORP,
      wsV4: LAB_WS_V4,
      corpV4: LAB_CORP_V4,
      wsV6: LAB_WS_V6,
      corpV6: LAB_CORP_V6,
      tunnelV4Cidr: LAB_TUNNEL_V4_CIDR,
      tunnelV6Cidr: LAB_TUNNEL_V6_CIDR,
      ports,
      urls: Object.freeze(urls),
      pids: Object.freeze({ wsWireguard: wsWgPid, corpWireguard: corpWgPid, services: services.pid }),
      setupMs,
      ...(second ? { second: Object.freeze({ ...second, wsV4: LAB_WS2_V4, corpV4: LAB_CORP2_V4, url: secondUrl }) } : {}),
      netnsPath,
      exec,
      spawn,
      destroy: () => state.destroy(),
    };
    return Object.freeze(lab);
  } catch (err) {
    await state.destroy();
    throw err;
  }
}

/** Run `fn` with a fresh lab and destroy it afterwards, whatever happens. */
export async function withLab<T>(fn: (lab: Lab) => Promise<T> | T, opts: LabOptions = {}): Promise<T> {
  const lab = await createLab(opts);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}
