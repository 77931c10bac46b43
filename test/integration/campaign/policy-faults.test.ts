// Campaign rows (issue 9): policy faults that must never open the gate. One lab and helper
// for the file; the rows run in order and each leaves the helper in a known state for the
// next. (The two state-dir-full rows on a tmpfs, issue 9.10, are out again: they passed run
// alone 3 of 3 and failed both in a full run; their code is in this file at commit 28504b6.)
import { chmodSync, chownSync, copyFileSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { waitFor } from '../../lab/fixture.js';
import { row } from '../../lab/campaign.js';
import { expectDropped, labAndHelper } from '../../lab/suite.js';

const CURL = realpathSync('/usr/bin/curl');
const USER = 4711;
/** helper.json's adminGroup: its members may do what root may over the API, but not write what the helper trusts. */
const ADMIN_GID = 4712;
let allowed = '';
let other = '';

const fx = labAndHelper({
  helperJson: { adminGroup: ADMIN_GID },
  prepare: (ctx) => {
    allowed = ctx.copyBinary(CURL, 'bin/allowed-curl');
    other = ctx.copyBinary(CURL, 'bin/other-curl');
  },
});

const get = (bin: string) => fx.run(bin, ['-s', '-m', '4', '-o', '/dev/null', '-w', '%{http_code}', fx.lab.urls.corpV4]);
const until = <T>(what: string, probe: () => Promise<T | undefined>) =>
  waitFor(what, probe, 45_000, 200).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}\n${fx.helper.output().slice(-2000)}`);
  });
const reaches = (bin: string) => until(`${bin} reaches corp`, async () => ((await get(bin)).stdout === '200' ? true : undefined));
const allowCurl = (version: number) => fx.profile({ id: 'corp', version, rules: [{ id: 'curl', binary: { path: allowed } }] });
const keysDir = () => path.join(fx.helper.etc, 'trusted-keys');

row('a policy that fails to load never releases an interface', 'a trusted key arrives before the .sig files', async () => {
  fx.writeProfile('corp', allowCurl(1));
  await until('the profile is in force', async () => ((await fx.status()).sources.some((x) => x.profileId === 'corp' && x.state === 'active') ? true : undefined));
  await reaches(allowed); // positive control: the tunnel works and the profile is in force
  expectDropped(await get(other), 'a program no rule names');
  const keys = path.join(fx.tmp, 'keys');
  const r = await fx.helper.cli(['profile', 'keygen', '--out', keys]);
  expect(r.exitCode, String(r.stderr)).toBe(0);
  mkdirSync(keysDir(), { mode: 0o755 });
  copyFileSync(path.join(keys, 'tunnelgate-profile.pub'), path.join(keysDir(), 'it.pub'));
  chmodSync(path.join(keysDir(), 'it.pub'), 0o644);
  const s = await until('the unsigned profile is rejected', async () => {
    const st = await fx.status();
    return st.sources.some((x) => x.state === 'rejected') && !st.sources.some((x) => x.state === 'active') ? st : undefined;
  });
  expect(s.state).toBe('degraded');
  expect(s.interfaces.map((i) => i.pattern)).toContain(fx.lab.wsIface);
  expect(s.problems.join('\n')).toMatch(new RegExp(`${fx.lab.wsIface}.* gated with no profile rules`));
  expect(s.problems.join('\n')).not.toMatch(/closed to every program/);
  expectDropped(await get(other), 'a program no rule names, after the trust change');
  expectDropped(await get(allowed), 'the unsigned rule, after the trust change');
});

row('a policy that fails to load never releases an interface', 'a helper restart while every profile is rejected', async () => {
  await fx.helper.kill('SIGTERM');
  rmSync(path.join(fx.helper.state, 'profiles-last-good'), { recursive: true, force: true });
  await fx.helper.restart();
  const s = await until('the restarted helper reports', async () => {
    const st = await fx.status().catch(() => undefined);
    return st && st.state !== 'down' ? st : undefined;
  });
  expect(s.state).toBe('degraded');
  expect(s.interfaces.map((i) => i.pattern)).toContain(fx.lab.wsIface);
  expectDropped(await get(other), 'a program no rule names, after the restart');
  // Positive control: the signed profile arrives and the gate opens for its rule only.
  const staged = path.join(fx.tmp, 'corp.json');
  writeFileSync(staged, `${JSON.stringify(allowCurl(2), null, 2)}\n`); // the bytes writeProfile writes
  const signed = await fx.helper.cli(['profile', 'sign', staged, '--key', path.join(fx.tmp, 'keys', 'tunnelgate-profile.key')]);
  expect(signed.exitCode, String(signed.stderr)).toBe(0);
  const d = path.join(fx.helper.etc, 'profiles.d');
  copyFileSync(`${staged}.sig`, path.join(d, 'corp.json.sig'));
  chmodSync(path.join(d, 'corp.json.sig'), 0o644);
  fx.writeProfile('corp', allowCurl(2));
  await reaches(allowed);
  expectDropped(await get(other), 'a program no rule names, with the signed profile');
});

row('a profile is trusted only on a root-owned path nobody else can write', 'a symlink in profiles.d to a user-owned file', async () => {
  const userDir = path.join(fx.tmp, 'home');
  mkdirSync(userDir, { mode: 0o755 });
  chownSync(userDir, USER, USER);
  const evil = path.join(userDir, 'mine.json');
  writeFileSync(evil, `${JSON.stringify(fx.profile({ id: 'mine', version: 1, rules: [{ id: 'x', binary: { path: other } }] }))}\n`, { mode: 0o644 });
  chownSync(evil, USER, USER);
  const link = path.join(fx.helper.etc, 'profiles.d', 'mine.json');
  symlinkSync(evil, link);
  // Unsigned profiles are refused anyway while keys exist: take the key away for this row.
  rmSync(keysDir(), { recursive: true, force: true });
  const s = await until('the symlinked profile is refused', async () => {
    const st = await fx.status();
    return st.sources.find((x) => x.file === link && x.state === 'rejected') ? st : undefined;
  });
  expect(s.sources.find((x) => x.file === link)?.problems.join(' ')).toMatch(/owned by uid 4711, not root/);
  await reaches(allowed); // the last good policy stays
  expectDropped(await get(other), 'the program the user\'s profile names');
  rmSync(link);
});

/**
 * profiles.d made group-writable by `gid`, holding a profile `name` that user USER wrote and
 * that names `other`: refused (with `problem`, if given), `other` stays dropped, the last good
 * copies stay in force; put back, enforcing again.
 */
async function groupWritableRefused(gid: number, name: string, problem?: RegExp): Promise<void> {
  const d = path.join(fx.helper.etc, 'profiles.d');
  chownSync(d, 0, gid);
  chmodSync(d, 0o775);
  const file = path.join(d, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(fx.profile({ id: name, version: 1, rules: [{ id: 'x', binary: { path: other } }] }))}\n`, { mode: 0o644 });
  chownSync(file, USER, gid);
  const s = await until('the group-writable directory is refused', async () => {
    const st = await fx.status();
    return st.sources.find((x) => x.file === d && x.state === 'rejected') ? st : undefined;
  });
  expect(s.state).toBe('degraded');
  if (problem) expect(s.sources.find((x) => x.file === d)?.problems.join(' ')).toMatch(problem);
  expectDropped(await get(other), `the program the profile ${name} names`);
  await reaches(allowed); // the last good copies stay in force
  rmSync(file);
  chmodSync(d, 0o755);
  chownSync(d, 0, 0);
  await until('profiles.d trusted again', async () => ((await fx.status()).state === 'enforcing' ? true : undefined));
}

row('a profile is trusted only on a root-owned path nobody else can write', 'a profiles.d group-writable by a user\'s group', async () => {
  await groupWritableRefused(USER, 'user');
});

row('a profile is trusted only on a root-owned path nobody else can write', 'a profiles.d group-writable by the configured admin group (no exception)', async () => {
  // Written by a member of the admin group.
  await groupWritableRefused(ADMIN_GID, 'admin', new RegExp(`writable by group ${ADMIN_GID}: not trusted`));
});
