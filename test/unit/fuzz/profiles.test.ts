// Fuzzing the policy path (issue 9, "a standing campaign"): random mutations of valid
// profiles through validate → merge → render, seeded so a failure replays. Claims:
// - 0 crashes: every text gets a result, and a rejection is typed problems {path, message};
// - a profile that validates renders (no render-time refusal of what validation let in), and a
//   sample of those tables passes `nft -c` in a throwaway network namespace;
// - 0 policy loss: beside a valid profile, a rejected one changes nothing in the merged
//   policy, and an accepted one never removes an interface, a deny, enforcement or the lock.
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Policy } from '../../../common/policy.js';
import type { Profile } from '../../../common/profile.js';
import { mergePolicy } from '../../../helper/policy/merge.js';
import { auditOn, userRulesOn } from '../../../helper/policy/scope.js';
import { validateProfile } from '../../../helper/profile/validate.js';
import { renderTable } from '../../../helper/ruleset/render.js';

const SEED = 0x74_67_09;
const RUNS = 3_000;
const NOW = new Date('2026-11-22T00:00:00Z');
const BASE_FILE = '/etc/tunnelgate/profiles.d/00-base.json';
const FUZZ_FILE = '/etc/tunnelgate/profiles.d/50-fuzzed.json';

// ---- valid profiles ---------------------------------------------------------------------
const iface = fc.constantFrom('wg0', 'wg-corp*', 'tun0', 'corp.vpn', 'w_1');
const cidr = fc.constantFrom('198.18.0.0/24', '198.18.0.53/32', '10.0.0.0/8', '0.0.0.0/0', 'fd00:7467::/64', '2001:db8::1/128', '::/0');
const destination = fc.record(
  { cidr, ports: fc.uniqueArray(fc.integer({ min: 1, max: 65_535 }), { minLength: 1, maxLength: 3 }), proto: fc.constantFrom('tcp', 'udp') },
  { requiredKeys: ['cidr'] },
);
const binary = fc.record(
  { path: fc.constantFrom('/usr/bin/curl', '/usr/bin/ssh', '/opt/corp/bin/*', '/usr/lib/firefox/firefox'), sha256: fc.stringMatching(/^[0-9a-f]{64}$/) },
  { requiredKeys: ['path'] },
);
const rule = fc.record(
  {
    action: fc.constantFrom('allow', 'deny'),
    binary,
    destinations: fc.array(destination, { minLength: 1, maxLength: 3 }),
    mode: fc.constantFrom('enforce', 'audit'),
    children: fc.constantFrom('inherit', 'confine'),
  },
  { requiredKeys: ['binary'] },
);
const validProfile = (id: string) =>
  fc
    .record({
      mode: fc.constantFrom('enforce', 'audit'),
      interfaces: fc.uniqueArray(iface, { minLength: 1, maxLength: 3 }),
      userPrompts: fc.constantFrom('allow', 'deny'),
      alwaysAllow: fc.array(destination, { maxLength: 2 }),
      rules: fc.array(rule, { maxLength: 5 }),
    })
    .map((p) => ({ schema: 'tunnelgate/profile@1', id, version: 3, ...p, rules: p.rules.map((r, i) => ({ id: `r${i}`, ...r })) }))
    .filter((p) => validateProfile(JSON.stringify(p), 'gen.json', { now: NOW }).ok);

// ---- mutations --------------------------------------------------------------------------
/** Strings that have broken parsers and nft text before: quotes, braces, newlines, bidi, NUL. */
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('wg0" } accept #', '0.0.0.0/0 accept', '/usr/bin/../bin/sh', '*', '', '\n', '\u202e', '\u0000', '1.2.3.4/33', 'x'.repeat(300), '-1', '__proto__'),
);
const value = fc.oneof(nasty, fc.jsonValue({ maxDepth: 2 }), fc.integer(), fc.double(), fc.constant(null));
type Op =
  | { kind: 'set'; at: number; v: unknown }
  | { kind: 'delete'; at: number }
  | { kind: 'add'; at: number; key: string; v: unknown };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), v: value }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(), key: fc.oneof(fc.constantFrom('path', 'sha256', 'kernel', 'expires', 'allowEnv', 'script', 'package'), fc.string({ maxLength: 8 })), v: value }),
);
type TextOp = { kind: 'truncate'; at: number } | { kind: 'insert'; at: number; s: string } | { kind: 'none' };
const textOp: fc.Arbitrary<TextOp> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), s: fc.string({ unit: 'binary', maxLength: 4 }) }) },
);

type Container = Record<string, unknown> | unknown[];
/** Every container in `v` with its keys: the places a mutation can act on. */
function places(v: unknown, out: Array<[Container, string | number]> = []): Array<[Container, string | number]> {
  const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((x, i) => [i, x]) : v && typeof v === 'object' ? Object.entries(v) : [];
  for (const [k, x] of entries) {
    out.push([v as Container, k]);
    places(x, out);
  }
  return out;
}

function mutate(profile: unknown, ops: readonly Op[], t: TextOp): string {
  const p = structuredClone(profile);
  for (const o of ops) {
    const all = places(p);
    const [c, k] = all[o.at % all.length] as [Container, string | number];
    if (o.kind === 'set') (c as Record<string | number, unknown>)[k] = o.v;
    else if (o.kind === 'delete' && Array.isArray(c)) c.splice(k as number, 1);
    else if (o.kind === 'delete') delete (c as Record<string, unknown>)[k];
    else if (!Array.isArray(c)) Object.defineProperty(c, o.key, { value: o.v, enumerable: true, writable: true, configurable: true });
  }
  const text = JSON.stringify(p, null, 1);
  if (t.kind === 'truncate') return text.slice(0, t.at % text.length);
  if (t.kind === 'insert') return text.slice(0, t.at % text.length) + t.s + text.slice(t.at % text.length);
  return text;
}

// ---- the path under test ----------------------------------------------------------------
const merge = (profiles: Array<[string, Profile]>, rejected: Array<{ file: string; problems: string[] }> = []): Policy =>
  mergePolicy({
    profiles: profiles.map(([file, profile]) => ({ file, profile })),
    rejected: rejected.map((r) => ({ ...r, state: 'rejected' as const })),
    userRules: [],
    now: NOW,
  });
const render = (policy: Policy): string =>
  renderTable({
    policy,
    classids: new Map(policy.rules.filter((r) => r.action === 'allow').map((r, i) => [r.key, 0x7467_0001 + i])),
    listeners: [{ proto: 'tcp', port: 22 }],
    nflogGroup: 7467,
  });
/** What a policy admits and gates, without the bookkeeping (sources, problems). */
const gist = (p: Policy) => ({ mode: p.mode, interfaces: p.interfaces, alwaysAllow: p.alwaysAllow, userPrompts: p.userPrompts, rules: p.rules });

const params = { seed: SEED, numRuns: RUNS };

describe('fuzz: profiles through validate → merge → render', () => {
  const rendered: string[] = [];
  let accepted = 0;
  let rejected = 0;

  it(`${RUNS} mutated profiles: no crash, typed problems, and every valid one renders`, () => {
    fc.assert(
      fc.property(validProfile('fuzzed'), fc.array(op, { minLength: 1, maxLength: 4 }), textOp, (p, ops, t) => {
        const text = mutate(p, ops, t);
        const r = validateProfile(text, 'fuzzed.json', { now: NOW });
        if (!r.ok) {
          rejected++;
          expect(r.problems.length).toBeGreaterThan(0);
          for (const pr of r.problems) expect(pr).toEqual({ path: expect.any(String), message: expect.stringMatching(/\S/) });
          return;
        }
        accepted++;
        const table = render(merge([[FUZZ_FILE, r.profile]]));
        expect(table).toContain('table inet tunnelgate {');
        if (rendered.length < 60 && accepted % 5 === 1) rendered.push(table);
      }),
      params,
    );
    console.log(`fuzz profiles: ${RUNS} cases (seed ${SEED}): ${accepted} valid after mutation, ${rejected} rejected`);
    expect(accepted).toBeGreaterThan(50);
    expect(rejected).toBeGreaterThan(50);
  }, 60_000);

  it(`0 policy loss: beside a valid profile, a mutated one never releases an interface or adds an allow when rejected (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(validProfile('base'), validProfile('fuzzed'), fc.array(op, { minLength: 1, maxLength: 4 }), textOp, (base, p, ops, t) => {
        const b = base as unknown as Profile;
        const alone = merge([[BASE_FILE, b]]);
        const r = validateProfile(mutate(p, ops, t), 'fuzzed.json', { now: NOW });
        if (!r.ok) {
          const both = merge([[BASE_FILE, b]], [{ file: FUZZ_FILE, problems: r.problems.map((x) => x.message) }]);
          expect(gist(both)).toEqual(gist(alone));
          return;
        }
        // Same id: the later file is ignored (a separate finding, not fuzzed here).
        fc.pre(r.profile.id !== b.id);
        const both = merge([[BASE_FILE, b], [FUZZ_FILE, r.profile]]);
        for (const i of alone.interfaces) expect(both.interfaces).toContain(i);
        for (const d of alone.rules.filter((x) => x.action === 'deny')) expect(both.rules).toContainEqual(d);
        // Per interface (helper/policy/scope.ts): where the base profile locks, no user rule
        // opens; where it enforces, nothing passes as audit.
        const names = alone.interfaces.map((i) => i.replace(/\*$/, 'x'));
        if (alone.userPrompts === 'deny') for (const n of names) expect(userRulesOn(both, n)).toBe(false);
        if (alone.mode === 'enforce') for (const n of names) expect(auditOn(both, n)).toBe(false);
        if (alone.mode === 'enforce') expect(both.mode).toBe('enforce');
        const table = render(both);
        for (const i of alone.interfaces) expect(table).toContain(`"${i}"`);
      }),
      params,
    );
  }, 60_000);

  it('a sample of the rendered tables passes `nft -c` in a throwaway network namespace', () => {
    expect(rendered.length).toBeGreaterThan(20);
    const refused = rendered.flatMap((table) => {
      const why = nftCheck(table);
      return why === undefined ? [] : [{ why, table }];
    });
    console.log(`fuzz profiles: ${rendered.length} rendered tables checked by nft -c; ${refused.length} refused`);
    expect(refused.map((r) => `${r.why}\n${r.table}`)).toEqual([]);
  }, 60_000);

  // Found by this fuzzer: a destination without ports (ports 0-65535) and one with ports on
  // the same cidr and proto were overlapping elements of one interval set, which nft refuses
  // ("File exists"). render now normalises each set's elements to disjoint ones
  // (helper/ruleset/intervals.ts); test/integration/ruleset.test.ts applies such tables.
  it('overlapping destinations of one profile render a table nft accepts', () => {
    const p = { schema: 'tunnelgate/profile@1', id: 'x', version: 1, mode: 'enforce', interfaces: ['wg0'], userPrompts: 'allow', rules: [],
      alwaysAllow: [{ cidr: '10.0.0.0/8', proto: 'tcp' }, { cidr: '10.0.0.0/8', proto: 'tcp', ports: [952] }] };
    const r = validateProfile(JSON.stringify(p), 'x.json', { now: NOW });
    expect(r.ok).toBe(true);
    if (r.ok) expect(nftCheck(render(merge([[FUZZ_FILE, r.profile]])))).toBeUndefined();
  }, 30_000);
});

/** `nft -c -f -` of `table` in a network namespace of its own: undefined, or nft's complaint. */
function nftCheck(table: string): string | undefined {
  try {
    execFileSync('unshare', ['-n', 'nft', '-c', '-f', '-'], { input: table, stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
    return undefined;
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr ?? e);
  }
}

