// Attribution of denied attempts (issue 10 part 4): what each source costs, and what the
// kernel's record of senders (helper/kernel/send-trace.ts) costs the machine.
//   1. Look-up, per dropped packet, as the helper does it (median µs over --reps): today's
//      /proc/net/udp read and parse; sock_diag (UDP dump by port, both families; TCP exact
//      4-tuple look-up); the owner search in /proc/PID/fd; the eBPF record (one bpf(2)).
//   2. Loading the eBPF programs: BTF parse and load+attach, ms.
//   3. The sender's cost per dropped datagram (python sendto, EPERM from the drop), without
//      and with the programs attached, rounds alternating (the baseline is this run's).
//   4. The cost per datagram that is not dropped (veth to another namespace; the program
//      runs only on drops, so this is the control), without and with.
// Everything runs in two network namespaces this bench makes (joined by a veth pair, the
// first with an nftables table that drops 10.9.9.9) and removes at the end. Figures only.
//
//   node dist/bench/attribution.js [--reps N] [--datagrams N] [--rounds N]
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { ownerOfSocket } from '../helper/identity/attribution.js';
import { Btf } from '../helper/kernel/btf.js';
import { SendTrace } from '../helper/kernel/send-trace.js';
import { pickSocket, SockDiag } from '../helper/kernel/sock-diag.js';
import { parseProcNet } from '../helper/kernel/sockets.js';
import { num, summarize } from './lib/stats.js';

function flag(argv: readonly string[], name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i < 0 ? NaN : Number(argv[i + 1]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

const us = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e3;

async function timeIt(reps: number, f: () => Promise<unknown> | unknown): Promise<string> {
  const xs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await f();
    xs.push(us(t0));
  }
  const s = summarize(xs);
  return `median ${num(s.median)} µs (min ${num(s.min)}, max ${num(s.max)}, n ${s.n})`;
}

/** Part 1, inside the first namespace (run by nsenter). */
async function lookups(reps: number): Promise<void> {
  const u = dgram.createSocket('udp4');
  await new Promise<void>((r) => u.bind(0, '10.9.9.1', () => r()));
  const port = u.address().port;
  const srv = net.createServer().listen(0, '10.9.9.1');
  await new Promise((r) => srv.on('listening', r));
  const c = net.connect({ host: '10.9.9.1', port: (srv.address() as net.AddressInfo).port });
  await new Promise((r) => c.on('connect', r));
  const diag = new SockDiag();
  const pkt = { family: 4 as const, src: '10.9.9.1', dst: '10.9.9.9', dport: 7 };
  console.log(`  /proc/net/udp read + parse (today, IPv4 table only): ${await timeIt(reps, () => parseProcNet(readFileSync('/proc/net/udp', 'utf8')))}`);
  console.log(`  /proc/net/udp and udp6 (both tables, the fallback now): ${await timeIt(reps, () => [parseProcNet(readFileSync('/proc/net/udp', 'utf8')), parseProcNet(readFileSync('/proc/net/udp6', 'utf8'))])}`);
  console.log(`  sock_diag UDP dump by port, both families + pick: ${await timeIt(reps, async () => pickSocket(await diag.socketsOnPort('udp', port), pkt))}`);
  const tcp = { family: 4 as const, src: '10.9.9.1', sport: c.localPort as number, dst: '10.9.9.1', dport: (srv.address() as net.AddressInfo).port };
  console.log(`  sock_diag TCP exact 4-tuple look-up: ${await timeIt(reps, () => diag.tcpSocket(tcp))}`);
  console.log(`  sock_diag TCP dump by port (not used: walks the whole established hash): ${await timeIt(Math.min(reps, 50), () => diag.socketsOnPort('tcp', c.localPort as number))}`);
  const inode = String((await diag.tcpSocket(tcp))?.inode);
  console.log(`  owner search in /proc/PID/fd (${execFileSync('sh', ['-c', 'ls /proc | grep -c "^[0-9]"'], { encoding: 'utf8' }).trim()} processes, uid 0): ${await timeIt(Math.min(reps, 50), () => ownerOfSocket(inode, 0))}`);
  diag.close();
  u.close();
  c.destroy();
  srv.close();
}

const PY_DROPS = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n = int(sys.argv[1]); dst = (sys.argv[2], 7)
t = time.perf_counter_ns()
for i in range(n):
    try: s.sendto(b'x', dst)
    except PermissionError: pass
print((time.perf_counter_ns() - t) / n)
`;

export async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--inner') return lookups(flag(argv, 'reps', 300));
  const reps = flag(argv, 'reps', 300);
  const datagrams = flag(argv, 'datagrams', 50_000);
  const rounds = flag(argv, 'rounds', 3);
  const id = randomBytes(3).toString('hex');
  const [A, B] = [`tg-battr-a-${id}`, `tg-battr-b-${id}`];
  const inNs = (ns: string, cmd: string, args: string[], input?: string) => {
    const r = spawnSync('nsenter', [`--net=/var/run/netns/${ns}`, cmd, ...args], { input, encoding: 'utf8', stdio: input === undefined ? ['ignore', 'pipe', 'inherit'] : ['pipe', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns}: exit ${r.status}`);
    return r.stdout;
  };
  execFileSync('ip', ['netns', 'add', A]);
  try {
    execFileSync('ip', ['netns', 'add', B]);
    inNs(A, 'ip', ['link', 'set', 'lo', 'up']);
    inNs(A, 'ip', ['link', 'add', 'ba0', 'type', 'veth', 'peer', 'name', 'bb0', 'netns', B]);
    inNs(A, 'ip', ['addr', 'add', '10.9.9.1/24', 'dev', 'ba0']);
    inNs(A, 'ip', ['link', 'set', 'ba0', 'up']);
    inNs(B, 'ip', ['addr', 'add', '10.9.9.2/24', 'dev', 'bb0']);
    inNs(B, 'ip', ['link', 'set', 'bb0', 'up']);
    inNs(A, 'nft', ['-f', '-'], 'table inet tgbench {\n chain out {\n type filter hook output priority 0;\n ip daddr 10.9.9.9 drop\n }\n}\n');

    console.log('attribution: look-ups per dropped packet, in the bench namespace');
    inNs(A, process.execPath, [new URL(import.meta.url).pathname, '--inner', '--reps', String(reps)]).split('\n').filter(Boolean).forEach((l) => console.log(l));

    let t0 = process.hrtime.bigint();
    const btf = new Btf(readFileSync('/sys/kernel/btf/vmlinux'));
    const parseMs = us(t0) / 1e3;
    void btf;
    t0 = process.hrtime.bigint();
    let trace: SendTrace | undefined;
    try {
      trace = SendTrace.load();
    } catch (e) {
      console.log(`  eBPF: could not load (${(e as Error).message.split('\n')[0]}); the rest needs it`);
      return;
    }
    console.log(`  eBPF record look-up (one bpf(2) syscall): ${await timeIt(reps, () => trace?.lookup({ family: 4, protoNumber: 17, src: '10.9.9.1', dst: '10.9.9.9', sport: 1, dport: 7 }))}`);
    console.log(`eBPF load: BTF parse ${num(parseMs)} ms; parse + load + attach ${num(us(t0) / 1e3)} ms`);
    trace.close();

    const sender = (dst: string) => Number(inNs(A, '/usr/bin/python3', ['-c', PY_DROPS, String(datagrams), dst]).trim());
    const rows: Array<{ what: string; off: number[]; on: number[] }> = [
      { what: `dropped datagram (sendto -> EPERM), ns per datagram`, off: [], on: [] },
      { what: `datagram to the other namespace (veth, softirq), ns per datagram`, off: [], on: [] },
    ];
    for (let r = 0; r < rounds; r++) {
      for (const on of r % 2 ? [true, false] : [false, true]) {
        const t = on ? SendTrace.load() : undefined;
        try {
          (on ? rows[0]?.on : rows[0]?.off)?.push(sender('10.9.9.9'));
          (on ? rows[1]?.on : rows[1]?.off)?.push(sender('10.9.9.2'));
        } finally {
          t?.close();
        }
      }
    }
    console.log(`the sender's cost, ${datagrams} datagrams a round, ${rounds} rounds alternating (medians; without -> with the eBPF programs)`);
    for (const row of rows) {
      const off = summarize(row.off).median;
      const on = summarize(row.on).median;
      console.log(`  ${row.what}: ${num(off)} -> ${num(on)} (${on >= off ? '+' : ''}${num(on - off)} ns, ${num((100 * (on - off)) / off)}%; rounds off ${row.off.map((x) => num(x)).join(', ')}; on ${row.on.map((x) => num(x)).join(', ')})`);
    }
  } finally {
    spawnSync('ip', ['netns', 'del', A]);
    spawnSync('ip', ['netns', 'del', B]);
  }
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  });
}
