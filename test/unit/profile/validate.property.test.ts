import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { profileSchema } from '../../../helper/profile/schema.js';
import { validateProfile } from '../../../helper/profile/validate.js';
import { exampleJson, NOW } from './example.js';

type Json = unknown;
type Container = Record<string, unknown> | unknown[];

/** Every field name the schema defines, anywhere. */
const KNOWN = new Set<string>();
(function collect(node: unknown): void {
  if (typeof node !== 'object' || node === null) return;
  const props = (node as { properties?: object }).properties;
  if (props) Object.keys(props).forEach((k) => KNOWN.add(k));
  Object.values(node).forEach(collect);
})(profileSchema);

function containers(node: Json, acc: Container[] = []): Container[] {
  if (typeof node === 'object' && node !== null) {
    acc.push(node as Container);
    Object.values(node).forEach((v) => containers(v, acc));
  }
  return acc;
}

function hasUnknownKey(node: Json): boolean {
  return containers(node).some((c) => !Array.isArray(c) && Object.keys(c).some((k) => !KNOWN.has(k)));
}

type Mutation =
  | { kind: 'drop'; at: number; pick: number }
  | { kind: 'inject'; at: number; key: string; value: Json }
  | { kind: 'replace'; at: number; pick: number; value: Json };

const unknownKey = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !KNOWN.has(k));
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat(), pick: fc.nat() }),
  fc.record({ kind: fc.constant('inject' as const), at: fc.nat(), key: unknownKey, value: fc.jsonValue() }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), pick: fc.nat(), value: fc.jsonValue() }),
);

/** Apply one mutation to a container chosen by index; own properties only (even `__proto__`). */
function apply(root: Record<string, unknown>, m: Mutation): void {
  const all = containers(root);
  const target = all[m.at % all.length];
  if (target === undefined) return;
  const keys = Object.keys(target);
  const key = keys[('pick' in m ? m.pick : 0) % Math.max(1, keys.length)];
  if (m.kind === 'inject') {
    if (Array.isArray(target)) target.push({ [m.key]: m.value });
    else Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
  } else if (key !== undefined) {
    if (m.kind === 'drop') {
      if (Array.isArray(target)) target.splice(Number(key), 1);
      else delete target[key];
    } else {
      Object.defineProperty(target, key, { value: m.value, enumerable: true, writable: true, configurable: true });
    }
  }
}

describe('validateProfile under random mutation', () => {
  it('never throws, and never accepts a profile with an unknown key', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (mutations) => {
        const profile = exampleJson();
        mutations.forEach((m) => apply(profile, m));
        const text = JSON.stringify(profile);
        const result = validateProfile(text, 'p.json', { now: NOW });
        if (result.ok) expect(hasUnknownKey(JSON.parse(text))).toBe(false);
        else expect(result.problems.length).toBeGreaterThan(0);
        if (mutations.at(-1)?.kind === 'inject') expect(result.ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary or truncated text', () => {
    const valid = JSON.stringify(exampleJson(), null, 2);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.nat(valid.length).map((n) => valid.slice(0, n))), (text) => {
        const result = validateProfile(text, 'p.json');
        if (!result.ok) expect(result.problems.every((p) => typeof p.message === 'string')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
