// How long it takes to put a policy in force, by policy size: the pure part (validate the
// profile, merge, render the nft text) and the kernel part (`nft -f` of the rendered table
// in a throwaway network namespace), against a baseline measured in the same run, and
// optionally a whole Gate.setPolicy with real net_cls cgroups.
// Target (issue 2): applying a 1,000-rule policy under 100 ms. Printed, never asserted.
//
//   node dist/bench/apply.js [--sizes 10,100,1000,5000] [--apply-reps N] [--render-ms MS]
//                            [--gate-sizes 10,100,1000] [--gate-reps N] [--no-gate] [--long]
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { renderTable } from '../helper/ruleset/render.js';
import { mergePolicy } from '../helper/policy/merge.js';
import { validateProfile } from '../helper/profile/validate.js';
import { flags, intFlag, listFlag, requireRoot, runIfMain } from './lib/args.js';
import { fabricatedClassids, SCOPED_SHARE, syntheticProfile } from './lib/policy.js';
import { Scratch } from './lib/scratch.js';
import { heading, mmm, ms, num, summarize, table, type Summary } from './lib/stats.js';
import type { WorkerJob, WorkerResult } from './lib/apply-worker.js';


const TARGET_RULES = 1000;
const TARGET_MS = 100;

interface PureRow {
  rules: number;
  profileBytes: number;
  tableBytes: number;
  elements: number;
  validate: Summary;
  merge: Summary;
  render: Summary;
  total: Summary;
}

/** Validate + merge + render, many iterations per size until `budgetMs` is spent; medians. */
function measurePure(sizes: readonly number[], budgetMs: number): PureRow[] {
  const rows: PureRow[] = [];
  for (const n of sizes) {
    const text = JSON.stringify(syntheticProfile({ rules: n, interfaces: ['wg0'] }), null, 2);
    const samples = { validate: [] as number[], merge: [] as number[], render: [] as number[], total: [] as number[] };
    let rendered = '';
    const t0 = performance.now();
    // 3 warm-up iterations (JIT), then at least 5 measured ones and `budgetMs` of work.
    for (let i = 0; i < 8 || performance.now() - t0 < budgetMs; i++) {
      const a = performance.now();
      const v = validateProfile(text, 'bench.json');
      const b = performance.now();
      if (!v.ok) throw new Error(`synthetic ${n}-rule profile is invalid: ${JSON.stringify(v.problems.slice(0, 3))}`);
      const policy = mergePolicy({ profiles: [{ file: 'bench.json', profile: v.profile }], rejected: [], userRules: [], now: new Date() });
      const c = performance.now();
      // The classid map is the gate's state, not part of rendering; built outside the timing.
      const classids = fabricatedClassids(policy);
      const d = performance.now();
      rendered = renderTable({ policy, classids, listeners: [], nflogGroup: 7467 });
      const e = performance.now();
      if (i < 3) continue;
      samples.validate.push(b - a);
      samples.merge.push(c - b);
      samples.render.push(e - d);
      samples.total.push(b - a + (c - b) + (e - d));
    }
    rows.push({
      rules: n,
      profileBytes: Buffer.byteLength(text),
      tableBytes: Buffer.byteLength(rendered),
      elements: rendered.split('\n').filter((l) => l.startsWith('\t\t\t')).length,
      validate: summarize(samples.validate),
      merge: summarize(samples.merge),
      render: summarize(samples.render),
      total: summarize(samples.total),
    });
  }
  return rows;
}

async function runWorker(job: WorkerJob): Promise<WorkerResult> {
  const worker = fileURLToPath(new URL('./lib/apply-worker.js', import.meta.url));
  // nsenter --net only (not `ip netns exec`, which remounts /sys and hides the cgroup fs);
  // pdeathsig: the worker dies with us.
  const r = await execa('nsenter', [`--net=/var/run/netns/${job.netns}`, '--', 'setpriv', '--pdeathsig', 'KILL', '--', process.execPath, worker], {
    input: JSON.stringify(job),
    reject: false,
    timeout: 15 * 60_000,
  });
  if (r.failed) throw new Error(`apply worker failed (${r.shortMessage ?? ''}): ${r.stderr}`);
  return JSON.parse(r.stdout) as WorkerResult;
}

const kib = (b: number) => `${num(b / 1024)} KiB`;

export async function main(argv: string[]): Promise<void> {
  const f = flags(argv);
  const long = f.long === true;
  const sizes = listFlag(f, 'sizes', [10, 100, 1000, 5000]).filter((n) => n > 0);
  const reps = intFlag(f, 'apply-reps', long ? 41 : 11);
  const budget = intFlag(f, 'render-ms', long ? 3000 : 400);
  // A cold 5,000-rule setPolicy creates 5,000 cgroups (over a second a time): --long only.
  const gateSizes = listFlag(f, 'gate-sizes', long ? sizes : sizes.filter((n) => n <= 1000)).filter((n) => n > 0);
  const gateReps = intFlag(f, 'gate-reps', long ? 11 : 5);
  const withGate = f['no-gate'] !== true && gateSizes.length > 0;

  heading('apply: time to put a policy in force');
  const nftVersion = (await execa('nft', ['--version'], { reject: false })).stdout.trim();
  console.log(`policies: ${sizes.join(', ')} allow rules; ${Math.round((1 - SCOPED_SHARE) * 100)}% whole-tunnel path rules, ` +
    `${Math.round(SCOPED_SHARE * 100)}% destination-scoped (1-3 CIDRs, v4+v6, 0-3 ports each)`);
  console.log(`machine: ${cpus().length} CPUs, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${nftVersion}; node ${process.version}`);
  console.log('cells are min / median / max; medians are what to compare.');

  console.log(`\n(a) pure CPU, in this process (validate the profile JSON, merge, render the nft text; >= ${budget} ms of iterations per size)`);
  const pure = measurePure(sizes, budget);
  console.log(table(
    ['rules', 'profile', 'nft text', 'set elements', 'validate ms', 'merge ms', 'render ms', 'sum (median) ms', 'iterations'],
    pure.map((r) => [String(r.rules), kib(r.profileBytes), kib(r.tableBytes), String(r.elements),
      mmm(r.validate), mmm(r.merge), mmm(r.render), num(r.total.median), String(r.total.n)]),
  ));

  requireRoot('apply (b)/(c)');
  const scratch = new Scratch();
  let result: WorkerResult;
  let gateRoot = '';
  try {
    const netns = await scratch.netns();
    const job: WorkerJob = { netns, sizes: [0, ...sizes], reps };
    if (withGate) {
      gateRoot = `tg-bench-${scratch.id}`;
      job.gate = { mount: await scratch.netClsMount(gateRoot), root: gateRoot, sizes: gateSizes, reps: gateReps };
    }
    console.log(`\n(b) nft -f of the rendered table, in throwaway namespace ${netns}, through the helper's own Nft.apply (execa);`);
    console.log(`    fabricated classids (meta cgroup matches a number); ${reps} repetitions, sizes interleaved`);
    result = await runWorker(job);
  } finally {
    await scratch.destroy();
  }

  const floor = summarize(result.floor);
  const base = result.apply.find((a) => a.rules === 0) as WorkerResult['apply'][number];
  const baseCold = summarize(base.cold);
  const baseReplace = summarize(base.replace);
  console.log(`(c) baselines, same namespace, same run: nft -f of empty input (process + netlink, applies nothing) ${mmm(floor, ms)};`);
  console.log(`    our table with 0 rules (every chain, empty sets): create ${mmm(baseCold, ms)}, replace ${mmm(baseReplace, ms)}`);
  console.log(table(
    ['rules', 'nft text', 'create (no table before) ms', 'replace (reload) ms', 'replace - 0-rule ms', 'replace / 0-rule', `replace vs ${TARGET_MS} ms`],
    result.apply.map((a) => {
      const cold = summarize(a.cold);
      const rep = summarize(a.replace);
      return [String(a.rules), kib(a.bytes), mmm(cold), mmm(rep), num(rep.median - baseReplace.median),
        `${num(rep.median / baseReplace.median)}x`, `${num((rep.median / TARGET_MS) * 100)}%`];
    }),
  ));

  if (result.gate.length) {
    console.log(`\nGate.setPolicy (real net_cls cgroups under ${gateRoot}, real nft, same namespace; ${gateReps} repetitions):`);
    console.log('  cold: a new gate, no cgroups yet (helper start): mkdir + classid write per allow rule, render, nft -f');
    console.log('  warm: the same policy again on the same gate (reload without rule changes): render, nft -f');
    console.log(table(
      ['rules', 'cold ms', 'warm ms', `warm vs ${TARGET_MS} ms`],
      result.gate.map((g) => {
        const warm = summarize(g.warm);
        return [String(g.rules), mmm(summarize(g.cold)), mmm(warm), `${num((warm.median / TARGET_MS) * 100)}%`];
      }),
    ));
  }

  const p = pure.find((r) => r.rules === TARGET_RULES);
  const a = result.apply.find((r) => r.rules === TARGET_RULES);
  const g = result.gate.find((r) => r.rules === TARGET_RULES);
  if (p && a) {
    const rep = summarize(a.replace).median;
    const sum = p.total.median + rep;
    console.log(`\nagainst the target (${TARGET_RULES} rules < ${TARGET_MS} ms), medians:`);
    console.log(`  validate ${num(p.validate.median)} + merge ${num(p.merge.median)} + render ${num(p.render.median)} + nft -f replace ${num(rep)} = ${num(sum)} ms ` +
      `(${num((sum / TARGET_MS) * 100)}% of the budget; nft -f alone is ${num(rep / baseReplace.median)}x the 0-rule table)`);
    if (g) {
      console.log(`  Gate.setPolicy: warm ${num(summarize(g.warm).median)} ms, cold ${num(summarize(g.cold).median)} ms ` +
        '(cold = first start: also creates the cgroups; the helper does this once, then only reloads)');
    }
  }
  console.log('\nnotes: timings include starting the nft process (see the empty-input floor); the machine is shared, so');
  console.log('compare medians and treat differences within the min-max spread as noise.');
}

runIfMain(import.meta.url, main);
