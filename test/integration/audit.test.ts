// Issue 3 in the lab: audit mode passes traffic and records it; `profile test` replays
// the records against a draft; a package rule admits an installed Debian binary and
// refuses the same file with one byte changed; a locked profile refuses user rules.
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditReport, ProfileTestResult } from '../../common/audit.js';
import type { StatusReport } from '../../common/api.js';
import { CLI } from '../lab/helper-proc.js';
import { waitFor } from '../lab/fixture.js';
import { expectDropped, labAndHelper } from '../lab/suite.js';

const CURL = realpathSync('/usr/bin/curl');
const USER = 4000 + Math.floor(Math.random() * 1000);
const http = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3'];

let copy: string;

const profile = (over: Record<string, unknown>) => fx.profile({ id: 'corp', mode: 'audit', rules: [{ id: 'curl', binary: { path: CURL } }], ...over });
const fx = labAndHelper({
  prepare: ({ copyBinary }) => {
    copy = copyBinary(CURL, 'curl-copy');
  },
  profiles: ({ lab }) => ({
    corp: { schema: 'tunnelgate/profile@1', id: 'corp', version: 1, mode: 'audit', interfaces: [lab.wsIface], userPrompts: 'allow', rules: [{ id: 'curl', binary: { path: CURL } }] },
  }),
});
const json = <T>(args: string[], uid?: number): Promise<T> => fx.json<T>(args, uid);
async function setProfile(p: unknown, version: number): Promise<void> {
  fx.writeProfile('corp', p);
  await waitFor(`version ${version} in force`, async () =>
    (await json<StatusReport>(['status'])).sources.some((s) => s.version === version && s.state === 'active') || undefined);
}

describe('audit mode and profile test', () => {
  it('audit mode lets a program that is not allowed through, and records it', async () => {
    expect((await json<StatusReport>(['status'])).state).toBe('audit');
    // A download that lasts about 2 s (200 kB at 100 kB/s; a 20 kB body went out in the
    // first burst): attribution finds the sender while it still runs. A program that is
    // gone before its first packet is read is recorded without a binary.
    const slow = (url: string) => ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '10', '--limit-rate', '100k', `${url}bytes/200000`];
    expect((await fx.run(copy, slow(fx.lab.urls.corpV4))).stdout).toBe('200');
    expect((await fx.run(copy, slow(fx.lab.urls.corpV4))).stdout).toBe('200');
    expect((await fx.run(copy, slow(fx.lab.urls.corpV4Alt), { uid: USER })).stdout).toBe('200');
    const report = await waitFor('the records', async () => {
      const r = await json<AuditReport>(['audit']);
      return r.records.some((x) => x.uid === USER) && r.records.some((x) => x.uid === 0 && x.exe === copy && x.count >= 2) ? r : undefined;
    });
    expect(report.records).toContainEqual(expect.objectContaining({
      mode: 'audit', uid: 0, exe: copy, dst: { addr: fx.lab.corpV4, port: fx.lab.ports.http, proto: 'tcp' },
    }));
    expect(report.coverage).toMatch(/not covered/);
    // A user sees their own records only.
    const mine = await json<AuditReport>(['audit'], USER);
    expect(mine.records.length).toBeGreaterThan(0);
    expect(mine.records.every((x) => x.uid === USER)).toBe(true);
    const human = await fx.helper.cli(['audit']);
    expect(String(human.stdout)).toContain(`${copy} -> ${fx.lab.corpV4}:${fx.lab.ports.http}/tcp`);
  });

  it('profile test lists a recorded attempt that an enforcing draft would newly drop, and writes nothing', async () => {
    const draft = path.join(fx.tmp, 'draft.json');
    writeFileSync(draft, JSON.stringify(profile({ version: 2, mode: 'enforce' })));
    const t = await json<ProfileTestResult>(['profile', 'test', draft]);
    expect(t.draft).toMatchObject({ id: 'corp', version: 2 });
    expect(t.newlyDropped).toContainEqual(expect.objectContaining({
      record: expect.objectContaining({ exe: copy, dst: { addr: fx.lab.corpV4, port: fx.lab.ports.http, proto: 'tcp' } }),
      before: 'pass-audit', after: 'drop', reason: `no rule allows ${copy}`,
    }));
    expect(t.newlyAdmitted).toEqual([]);
    // A draft that allows the copy too drops nothing of it.
    writeFileSync(draft, JSON.stringify(profile({ version: 2, mode: 'enforce', rules: [{ id: 'curl', binary: { path: CURL } }, { id: 'copy', binary: { path: copy } }] })));
    expect((await json<ProfileTestResult>(['profile', 'test', draft])).newlyDropped.filter((l) => l.record.exe === copy)).toEqual([]);
    // Nothing changed: still audit, same version, the copy still passes (audit).
    const s = await json<StatusReport>(['status']);
    expect(s.state).toBe('audit');
    expect(s.sources.map((x) => x.version)).toEqual([1]);
    const user = await fx.helper.cli(['profile', 'test', draft], { uid: USER });
    expect(user.exitCode).toBe(1);
  });

  it('a package rule admits an installed Debian binary, and not the same file with one byte changed', async () => {
    await setProfile(profile({ version: 3, mode: 'enforce', rules: [{ id: 'curl-pkg', binary: { package: 'curl' } }] }), 3);
    expect((await fx.helper.cli(['run', '--', CURL, ...http, fx.lab.urls.corpV4])).stdout).toBe('200');
    // The changed file is bind-mounted over /usr/bin/curl in a private mount namespace:
    // the path is the package's, the bytes are not. The host's file is never touched.
    const changed = path.join(fx.tmp, 'curl-changed');
    const bytes = readFileSync(CURL);
    bytes.writeUInt8((bytes.at(-1) as number) ^ 0xff, bytes.length - 1);
    writeFileSync(changed, bytes, { mode: 0o755 });
    const script = `mount --bind ${changed} ${CURL} && exec node ${JSON.stringify(CLI)} run --run ${fx.helper.run} -- ${CURL} ${http.join(' ')} ${fx.lab.urls.corpV4}`;
    const r = await fx.lab.exec('ws', 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { reject: false, timeout: 20_000 });
    expect(r.exitCode).toBe(126);
    expect(String(r.stderr)).toMatch(/differs from what package curl installed|may not use the tunnel/);
    // And the watcher does not admit it when it is started directly either.
    const direct = await fx.lab.exec('ws', 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${changed} ${CURL} && exec ${CURL} ${http.join(' ')} ${fx.lab.urls.corpV4}`], { reject: false, timeout: 20_000 });
    expectDropped(direct);
  });

  it('a locked profile refuses tunnelgate allow', async () => {
    await setProfile(profile({ version: 4, mode: 'enforce', userPrompts: 'deny' }), 4);
    const r = await fx.helper.cli(['allow', copy], { uid: USER });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toMatch(/userPrompts to "deny", so only IT profiles decide/);
    expectDropped(await fx.run(copy, [...http, fx.lab.urls.corpV4]));
  });
});
