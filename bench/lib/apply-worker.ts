// Runs inside a throwaway network namespace (started by bench/apply.ts through
// `nsenter --net=…`, so it sees the host's cgroup filesystem) and times what the helper
// does there: `nft -f -` through the helper's own Nft/Runner, and optionally a whole
// Gate.setPolicy with real net_cls cgroups. Reads its job as JSON on stdin, writes the
// samples as JSON on stdout. Never run it in the host namespace: it replaces the
// `inet tunnelgate` table of whatever namespace it is in.
import { readFileSync } from 'node:fs';
import type { Policy } from '../../common/policy.js';
import { Gate } from '../../helper/core/gate.js';
import { classidMajor, NetClsTree } from '../../helper/kernel/netcls.js';
import { Nft } from '../../helper/kernel/nft.js';
import { HashCache } from '../../helper/kernel/proc.js';
import { run } from '../../helper/kernel/run.js';
import { renderTable } from '../../helper/ruleset/render.js';
import { fabricatedClassids, syntheticPolicy } from './policy.js';

export interface WorkerJob {
  /** The namespace the worker must be in (checked, as a guard against the host's). */
  netns: string;
  sizes: number[];
  reps: number;
  gate?: { mount: string; root: string; sizes: number[]; reps: number };
}

export interface ApplySamples {
  rules: number;
  bytes: number;
  /** Table absent before (first start of a helper). */
  cold: number[];
  /** Same-size table present before (a reload): the transaction deletes it and creates the new one. */
  replace: number[];
}

export interface GateSamples {
  rules: number;
  /** New gate, no cgroups yet: creates one net_cls cgroup per allow rule, then applies. */
  cold: number[];
  /** Same gate, same policy again: cgroups exist, render + apply only. */
  warm: number[];
}

export interface WorkerResult {
  /** `nft -f -` with empty input: process start and netlink setup, nothing applied. */
  floor: number[];
  apply: ApplySamples[];
  gate: GateSamples[];
}

const NFLOG_GROUP = 7467;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(0, 'utf8')) as WorkerJob;
  // The namespace this process is in must be the one named in the job: never the host's.
  const ns = (await run('ip', ['netns', 'identify', String(process.pid)])).stdout.trim();
  if (ns !== job.netns) throw new Error(`apply worker: in namespace "${ns}", expected "${job.netns}": refusing to touch nftables here`);

  const nft = new Nft(run);
  const texts = new Map<number, string>();
  const policies = new Map<number, Policy>();
  for (const n of new Set([...job.sizes, ...(job.gate?.sizes ?? [])])) {
    const policy = syntheticPolicy(n);
    policies.set(n, policy);
    texts.set(n, renderTable({ policy, classids: fabricatedClassids(policy), listeners: [], nflogGroup: NFLOG_GROUP }));
  }
  const text = (n: number) => texts.get(n) as string;

  const result: WorkerResult = { floor: [], apply: job.sizes.map((n) => ({ rules: n, bytes: Buffer.byteLength(text(n)), cold: [], replace: [] })), gate: [] };
  // Warm-up: first nft runs pay for page cache and module loading.
  for (const n of job.sizes) await nft.apply(text(n));
  await nft.deleteTable();

  // Interleaved by size, so load from elsewhere on the machine spreads over all sizes alike.
  for (let rep = 0; rep < job.reps; rep++) {
    result.floor.push(await timed(() => run('nft', ['-f', '-'], { input: '' })));
    for (const s of result.apply) {
      await nft.apply(text(s.rules));
      s.replace.push(await timed(() => nft.apply(text(s.rules))));
      await nft.deleteTable();
      s.cold.push(await timed(() => nft.apply(text(s.rules))));
    }
  }
  await nft.deleteTable();

  if (job.gate) {
    const { mount, root, sizes, reps } = job.gate;
    const cgroups = new NetClsTree(mount, root);
    const makeGate = () => new Gate({
      nft,
      cgroups,
      classidMajor: classidMajor(root),
      nflogGroup: NFLOG_GROUP,
      hashes: new HashCache(),
      events: { emit: () => undefined },
      listInterfaces: async () => [],
      listeningPorts: async () => [],
      version: 'bench',
    });
    for (const n of sizes) {
      const g: GateSamples = { rules: n, cold: [], warm: [] };
      result.gate.push(g);
      const policy = policies.get(n) as Policy;
      for (let rep = 0; rep < reps; rep++) {
        const gate = makeGate();
        try {
          g.cold.push(await timed(() => gate.setPolicy(policy)));
          for (let i = 0; i < 2; i++) g.warm.push(await timed(() => gate.setPolicy(policy)));
        } finally {
          await gate.uninstall();
        }
      }
    }
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  console.error(`apply worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
});
