import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkDoc, DECISIONS_FILE, DecisionsStore, emptyDoc, MAX_SEEN, newId } from '../../../helper/store/decisions.js';
import type { StoredAllow } from '../../../helper/store/decisions.js';
import { removeInterruptedWrites } from '../../../helper/kernel/files.js';

let dir: string;
const file = () => path.join(dir, DECISIONS_FILE);
const now = () => new Date('2026-11-22T10:00:00.000Z');

function rule(over: Partial<StoredAllow> = {}): StoredAllow {
  return { id: newId(), uid: 1000, path: '/usr/bin/wget', lifetime: { kind: 'always' }, createdAt: '2026-11-22T10:00:00.000Z', createdBy: 1000, via: 'api', ...over };
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tg-decisions-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('DecisionsStore', () => {
  it('starts empty without a file, and reads back what it saved', async () => {
    const { store, problems } = await DecisionsStore.open(dir);
    expect(problems).toEqual([]);
    expect(store.current).toEqual(emptyDoc());
    const r = rule({ destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }], sha256: 'c'.repeat(64) });
    await store.update((d) => void d.allows.push(r));
    const again = await DecisionsStore.open(dir);
    expect(again.store.current.allows).toEqual([r]);
    expect(JSON.parse(readFileSync(file(), 'utf8'))).toEqual({ format: 1, allows: [r], denies: [], seen: {} });
  });

  it('is saved before update() resolves, and changes are saved in order', async () => {
    const { store } = await DecisionsStore.open(dir);
    const ids = Array.from({ length: 50 }, () => newId());
    await Promise.all(ids.map((id) => store.update((d) => void d.allows.push(rule({ id })))));
    expect(store.current.allows.map((r) => r.id)).toEqual(ids);
    expect((await DecisionsStore.open(dir)).store.current.allows.map((r) => r.id)).toEqual(ids);
  });

  it('a failed save changes nothing, in memory or on disk, and the next one works', async () => {
    const { store } = await DecisionsStore.open(dir);
    const first = rule();
    await store.update((d) => void d.allows.push(first));
    await expect(store.update(() => {
      throw new Error('refused in the middle');
    })).rejects.toThrow('refused in the middle');
    // A real I/O failure: the rename onto decisions.json fails (it is a non-empty directory now).
    const saved = readFileSync(file(), 'utf8');
    rmSync(file());
    mkdirSync(path.join(file(), 'x'), { recursive: true });
    await expect(store.update((d) => void d.allows.push(rule()))).rejects.toThrow(/^cannot save your rule: the state directory .* cannot be written \(.*\); nothing was changed$/);
    expect(store.current.allows).toEqual([first]);
    rmSync(file(), { recursive: true });
    writeFileSync(file(), saved);
    const second = rule();
    await store.update((d) => void d.allows.push(second));
    expect((await DecisionsStore.open(dir)).store.current.allows).toEqual([first, second]);
  });

  it('a crash before the rename leaves the old file and a temp file: the old one is read; the helper removes the litter of every state file at start', async () => {
    const { store } = await DecisionsStore.open(dir);
    const r = rule();
    await store.update((d) => void d.allows.push(r));
    const tmp = path.join(dir, `.${DECISIONS_FILE}.abcdef123456.tmp`);
    writeFileSync(tmp, '{"format":1,"allows":[{"id":"tru');
    const { store: again, problems } = await DecisionsStore.open(dir);
    expect(problems).toEqual([]);
    expect(again.current.allows).toEqual([r]);
    // Any file's (a SIGKILL during the save of gated-interfaces.json left one in the lab),
    // and only writeFileAtomic's own names.
    const others = ['.gated-interfaces.json.0123456789ab.tmp', '.attempts.json.ffffffffffff.tmp'];
    const kept = ['notes.tmp', '.x.12345.tmp', '.decisions.json.ABCDEF123456.tmp', 'decisions.json'];
    for (const n of [...others, ...kept.slice(0, 3)]) writeFileSync(path.join(dir, n), 'x');
    expect((await removeInterruptedWrites(dir)).sort()).toEqual([path.basename(tmp), ...others].sort());
    expect(readdirSync(dir).filter((n) => !n.startsWith('decisions.json.')).sort()).toEqual([...kept].sort());
  });

  it.each([
    ['not JSON', '{"format":1,"allows":[{"id":', /not JSON/],
    ['another format', JSON.stringify({ format: 2, allows: [], denies: [], seen: {} }), /format/],
    ['a malformed rule', JSON.stringify({ format: 1, allows: [{ id: 'zz', uid: -1 }], denies: [], seen: {} }), /allows/],
    ['an empty file', '', /not JSON/],
  ])('a corrupt file (%s) is reported loudly and set aside, never used or overwritten', async (_what, text, why) => {
    writeFileSync(file(), text);
    const { store, problems, corrupt } = await DecisionsStore.open(dir, now);
    const movedTo = `${file()}.corrupt-2026-11-22T10-00-00-000Z`;
    expect(corrupt).toMatchObject({ file: file(), movedTo });
    expect(corrupt?.reason).toMatch(why);
    expect(problems).toEqual([expect.stringContaining(`${file()} is corrupt`)]);
    expect(problems[0]).toContain(`set aside as ${movedTo}; no user decision from it is in force`);
    expect(readFileSync(movedTo, 'utf8')).toBe(text);
    expect(store.current).toEqual(emptyDoc());
    await store.update((d) => void d.allows.push(rule()));
    expect(readFileSync(movedTo, 'utf8')).toBe(text);
  });

  it('duplicate ids make a file corrupt', () => {
    const r = rule();
    expect(checkDoc({ ...emptyDoc(), allows: [r, r] })).toMatch(/appears twice/);
    expect(checkDoc({ ...emptyDoc(), allows: [r] })).toBeUndefined();
  });

  it('keeps at most MAX_SEEN binary hashes, forgetting the oldest', async () => {
    const { store } = await DecisionsStore.open(dir);
    await store.update((d) => {
      for (let i = 0; i < MAX_SEEN + 10; i++) d.seen[`/bin/p${i}`] = { sha256: 'e'.repeat(64), since: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() };
    });
    expect(Object.keys(store.current.seen)).toHaveLength(MAX_SEEN);
    expect(store.current.seen['/bin/p0']).toBeUndefined();
    expect(store.current.seen[`/bin/p${MAX_SEEN + 9}`]).toBeDefined();
  });

  it('writes nothing but decisions.json (and its temp file while saving)', async () => {
    const { store } = await DecisionsStore.open(dir);
    await store.update((d) => void d.allows.push(rule()));
    expect(readdirSync(dir)).toEqual([DECISIONS_FILE]);
  });
});
