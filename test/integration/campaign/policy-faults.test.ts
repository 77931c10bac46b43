// Campaign rows (issue 9): policy faults that must never open the gate, and state-dir write
// failures that must be visible and lose nothing (9.10). One lab and helper for the file; the
// rows run in order and each leaves the helper in a known state for the next.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import type { StatusReport } from '../../../common/api.js';
import type { StampedEvent } from '../../../common/events.js';
import { HelperClient } from '../../../common/node/client.js';
import { waitFor } from '../../lab/fixture.js';
import { row } from '../../lab/campaign.js';
import { expectDropped, labAndHelper } from '../../lab/suite.js';

const CURL = realpathSync('/usr/bin/curl');
const USER = 4711;
/** helper.json's adminGroup: its members may do what root may over the API, but not write what the helper trusts. */
const ADMIN_GID = 4712;
let allowed = '';
let other = '';
let third = '';

const fx = labAndHelper({
  helperJson: { adminGroup: ADMIN_GID },
  prepare: (ctx) => {
    allowed = ctx.copyBinary(CURL, 'bin/allowed-curl');
    other = ctx.copyBinary(CURL, 'bin/other-curl');
    third = ctx.copyBinary(CURL, 'bin/third-curl');
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


// ---- State-dir write failures (issue 9.10): the state dir on a small tmpfs of its own ----

/** Mounts the rows below made over the state dir, innermost first; the last row takes them away. */
const mounts: string[] = [];
// Registered after the fixture, so it runs before the fixture's teardown: never leave a mount behind.
afterAll(() => {
  for (const m of mounts.splice(0).reverse()) execFileSync('umount', ['-l', m]);
});

/** Stop the helper, move the state dir onto a 4 MiB tmpfs (contents kept), start it again. */
async function onTmpfs(): Promise<void> {
  await fx.helper.kill('SIGTERM');
  const st = fx.helper.state;
  const aside = `${st}.aside`;
  execFileSync('cp', ['-a', st, aside]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tg-test-state', st]);
  mounts.push(st);
  execFileSync('cp', ['-a', `${aside}/.`, st]);
  rmSync(aside, { recursive: true, force: true });
  await fx.helper.restart();
  await until('the helper on the small state dir', async () => ((await fx.status().catch(() => undefined))?.state === 'enforcing' ? true : undefined));
}

/** Stop the helper, put the state dir back on the real file system (contents kept), start it again. */
async function offTmpfs(): Promise<void> {
  await fx.helper.kill('SIGTERM');
  const st = fx.helper.state;
  execFileSync('cp', ['-a', st, `${st}.aside`]);
  for (const m of mounts.splice(0).reverse()) execFileSync('umount', [m]);
  rmSync(st, { recursive: true, force: true });
  execFileSync('mv', [`${st}.aside`, st]);
  await fx.helper.restart();
}

/**
 * The helper's status and events as it pushes them (an API subscription, as the tray app
 * has), to wait on: nothing here sleeps or polls on a clock; `until` fails only at its deadline.
 */
interface HelperWatch {
  status(): StatusReport;
  /** Events heard since the subscription, in order. */
  readonly events: StampedEvent[];
  until<T>(what: string, pred: () => T | undefined): Promise<T>;
  /** SIGHUP; resolves with the policy.applied event of the reload and the status pushed after it. */
  reload(): Promise<StampedEvent>;
  close(): void;
}

async function watchHelper(): Promise<HelperWatch> {
  const c = await HelperClient.connect(fx.helper.run);
  const events: StampedEvent[] = [];
  /** For each event heard, how many status pushes had been heard before it (notifications come in order). */
  const pushesBefore: number[] = [];
  const wakes = new Set<() => void>();
  let pushes = 0;
  let status: StatusReport | undefined;
  c.onNotification((n) => {
    if (n.method === 'status') {
      status = n.params;
      pushes++;
    }
    if (n.method === 'event') {
      events.push(n.params);
      pushesBefore.push(pushes);
    }
    for (const w of [...wakes]) w();
  });
  const first = await c.subscribe(['status', 'events']);
  status ??= first.status;
  const until = <T>(what: string, pred: () => T | undefined): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const v = pred();
        if (v === undefined) return;
        done();
        resolve(v);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`not within 45 s: ${what}\nstatus: ${JSON.stringify({ state: status?.state, problems: status?.problems })}\n${fx.helper.output().slice(-2000)}`));
      }, 45_000);
      const done = () => {
        clearTimeout(timer);
        wakes.delete(check);
      };
      wakes.add(check);
      check();
    });
  return {
    status: () => status as StatusReport,
    events,
    until,
    async reload() {
      const from = events.length;
      process.kill(fx.helper.pid, 'SIGHUP');
      const at = await until('the reload is in force', () => {
        const i = events.findIndex((e, j) => j >= from && e.type === 'policy.applied');
        return i < 0 ? undefined : i;
      });
      // policy.applied makes the helper push its status (debounced): wait for a push heard after the event.
      await until('status pushed after the reload', () => (pushes > (pushesBefore[at] ?? 0) ? true : undefined));
      return events[at] as StampedEvent;
    },
    close: () => c.close(),
  };
}

const said = (st: StatusReport, re: RegExp) => st.problems.some((p) => re.test(p));
/** `cannot write the WHAT (STATE/FILE): the state directory … REASON` as status says it. */
const cannotWrite = (what: string, file: string, reason: string) => new RegExp(`cannot write the ${what} \\(.*/${file.replace('.', '\\.')}\\): the state directory .* ${reason}`);

/**
 * `allow bin` while the state dir cannot be written: refused with `reason` and nothing
 * changed (no internal error), `bin` still dropped, status says the decisions cannot be written.
 */
async function allowRefused(w: HelperWatch, bin: string, reason: string): Promise<void> {
  const r = await fx.cli(['allow', bin]);
  expect(r.exitCode).not.toBe(0);
  expect(String(r.stderr)).toMatch(new RegExp(`cannot save your rule: the state directory .* ${reason}; nothing was changed`));
  expect(String(r.stderr)).not.toMatch(/internal error/);
  await w.until('status says the user decisions cannot be written', () => (said(w.status(), cannotWrite('user decisions', 'decisions.json', reason)) ? true : undefined));
  expectDropped(await get(bin), 'the program whose allow failed');
}

/**
 * Nothing acknowledged is lost: every event heard from `from` up to `upto` (kept in memory
 * while audit.log could not be written) becomes a line of audit.log. Waits for the lines
 * (the file is read again until they are there), fails with those missing at the deadline.
 */
async function everyEventLogged(w: HelperWatch, from: number, upto: number): Promise<void> {
  const heard = w.events.slice(from, upto).map((e) => `${e.seq} ${e.time} ${e.type}`);
  expect(heard.length).toBeGreaterThan(0);
  const missing = () => {
    const logged = new Set(readFileSync(path.join(fx.helper.state, 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => {
      const e = JSON.parse(l) as StampedEvent;
      return `${e.seq} ${e.time} ${e.type}`;
    }));
    return heard.filter((k) => !logged.has(k));
  };
  await until('every event heard while the state dir was full is in audit.log', async () => (missing().length === 0 ? true : undefined)).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}\nmissing: ${missing().join(', ')}`);
  });
}

// On tmpfs (as on ext4) an append into the last page audit.log already holds needs no new
// block: after the disk is full, the audit trail still writes lines (truly: they are on disk)
// until that page is used up, up to 4 KiB later. How many lines that takes depends on what
// happened before (in a clean clone, where the eBPF sender trace works, the denied attempts
// fit there), so the row reloads, one audit line each, until a line does not fit.
/** Upper bound of reloads: 4 KiB of slack in audit.log's last page over the shortest line (~80 bytes). */
const MAX_RELOADS = 64;

row('state dir write failures are visible and lose nothing acknowledged', 'the state dir fills up (ENOSPC)', async () => {
  await onTmpfs();
  const w = await watchHelper();
  const filler = path.join(fx.helper.state, 'filler');
  try {
    // Every last page: 64k blocks first, then what is left 4k at a time.
    for (const [name, bs] of [[filler, '64k'], [`${filler}2`, '4k']] as const) {
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${name}`, `bs=${bs}`], { stdio: 'ignore' });
      } catch {
        /* dd ends with ENOSPC: that is the point */
      }
    }
    const from = w.events.length;
    const since = new Date().toISOString();
    await allowRefused(w, other, 'is full \\(ENOSPC\\)');
    // Reloads while full: each policy goes in force, but the ruleset in force cannot be saved.
    const full = () => said(w.status(), cannotWrite('audit log', 'audit.log', 'is full \\(ENOSPC\\)')) && said(w.status(), cannotWrite('saved ruleset', 'ruleset.nft', 'is full \\(ENOSPC\\)'));
    let reloads = 0;
    for (; reloads < MAX_RELOADS && !full(); reloads++) await w.reload();
    console.log(`state dir full: audit.log refused a line after ${reloads} reload(s)`);
    const s = await w.until('status says the audit log and the saved ruleset cannot be written', () => (full() ? w.status() : undefined));
    expect(s.state).toBe('degraded');
    expect(s.problems.join('\n')).toMatch(/line\(s\) kept in memory/);
    // A write failure is the state dir's, not a profile's: every source is still in force.
    expect(s.sources.filter((x) => x.state !== 'active')).toEqual([]);
    expectDropped(await get(other), 'the program whose allow failed, while degraded');
    rmSync(filler);
    rmSync(`${filler}2`, { force: true });
    const upto = await w.until('writing resumes and status is enforcing again', () => (w.status().state === 'enforcing' ? w.events.length : undefined));
    await everyEventLogged(w, from, upto);
    expect(statSync(path.join(fx.helper.state, 'ruleset.nft')).mtime.toISOString() >= since).toBe(true);
  } finally {
    // Whatever happened, the next rows start with the space back.
    rmSync(filler, { force: true });
    rmSync(`${filler}2`, { force: true });
    w.close();
  }
}, 180_000);

row('state dir write failures are visible and lose nothing acknowledged', 'the state dir runs out of inodes (ENOSPC with blocks free: "no inodes left")', async () => {
  const st = fx.helper.state;
  execFileSync('mount', ['-o', 'remount,nr_inodes=400', st]);
  const many = path.join(st, 'inodes');
  const w = await watchHelper();
  try {
    mkdirSync(many);
    try {
      for (let i = 0; ; i++) writeFileSync(path.join(many, String(i)), '');
    } catch {
      /* ENOSPC: no inode left */
    }
    await allowRefused(w, other, 'has no inodes left \\(ENOSPC\\)');
    await w.reload();
    const s = await w.until('status says the attempt records and the saved ruleset cannot be written, for want of inodes', () =>
      said(w.status(), cannotWrite('attempt records', 'attempts.json', 'has no inodes left \\(ENOSPC\\)')) && said(w.status(), cannotWrite('saved ruleset', 'ruleset.nft', 'has no inodes left \\(ENOSPC\\)')) ? w.status() : undefined,
    );
    expect(s.state).toBe('degraded');
    // Appending needs no inode: the audit trail's lines still reach audit.log, and status does not claim otherwise.
    expect(said(s, /cannot write the audit log/)).toBe(false);
    rmSync(many, { recursive: true, force: true });
    await w.until('writing resumes', () => (w.status().state === 'enforcing' ? true : undefined));
  } finally {
    rmSync(many, { recursive: true, force: true });
    w.close();
  }
  const ok = await fx.cli(['allow', other]);
  expect(ok.exitCode, String(ok.stderr)).toBe(0);
  await reaches(other); // positive control: the saved rule is in force
}, 180_000);

row('state dir write failures are visible and lose nothing acknowledged', 'the state dir turned read-only (EROFS; a read-only bind mount over it)', async () => {
  const st = fx.helper.state;
  const w = await watchHelper();
  try {
    // The helper's open audit.log stays writable through the mount it was opened on (its
    // lines still land); every file opened anew in the state dir is refused with EROFS.
    execFileSync('mount', ['--bind', st, st]);
    mounts.push(st);
    execFileSync('mount', ['-o', 'remount,bind,ro', st]);
    await allowRefused(w, third, 'is on a read-only file system \\(EROFS\\)');
    await w.reload();
    const s = await w.until('status says the saved ruleset cannot be written (EROFS)', () => (said(w.status(), cannotWrite('saved ruleset', 'ruleset.nft', 'is on a read-only file system \\(EROFS\\)')) ? w.status() : undefined));
    expect(s.state).toBe('degraded');
    expectDropped(await get(third), 'the program whose allow failed, while degraded');
    execFileSync('umount', [st]);
    mounts.pop();
    await w.until('writing resumes', () => (w.status().state === 'enforcing' ? true : undefined));
  } finally {
    w.close();
  }
  const ok = await fx.cli(['allow', third]);
  expect(ok.exitCode, String(ok.stderr)).toBe(0);
  await reaches(third); // positive control: the saved rule is in force
  // Back on the real dir, so that the fixture's teardown finds it as it left it.
  await offTmpfs();
}, 180_000);
