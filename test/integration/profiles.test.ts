// IT-pushed profiles on a real tunnel (issue 3, the profile sources): signed profiles,
// a tampered one refused while the last good policy keeps working, rollback refused after
// a helper restart, hot reload timed from file write to new verdict, and the remote pull
// from an HTTPS server in the lab's corp namespace with ETag / If-None-Match.
// Self-contained: it makes and removes its own lab, helper, keys, CA and server.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../common/api.js';
import type { SourceStatus } from '../../common/policy.js';
import { waitFor } from '../lab/fixture.js';
import { labAndHelper } from '../lab/suite.js';

const CURL = realpathSync('/usr/bin/curl');
const NODE = realpathSync(process.execPath);
const HTTPS_PORT = 8443;
const NOT_ALLOWED = 126;

let staging: string;
let privateKey: string;

// No profile yet: closed for every program.
const fx = labAndHelper({
  prepare: ({ tmp }) => {
    staging = path.join(tmp, 'staging');
    mkdirSync(staging);
  },
});

const status = () => fx.status();
/** `tunnelgate run -- curl …` to the corp HTTP service: its HTTP code, or the exit code when refused. */
async function curlViaRun(): Promise<string> {
  const r = await fx.cli(['run', '--', CURL, '-s', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', fx.lab.urls.corpV4]);
  return r.exitCode === 0 ? String(r.stdout) : `exit ${r.exitCode}`;
}
/** The helper's event lines so far, over every run of it (seq goes on across runs: it continues the audit trail). */
const events = () => fx.events();
const source = (s: StatusReport, file: string, state: SourceStatus['state']) => s.sources.find((x) => x.file === file && x.state === state);

/** Wait for `probe` (a deadline of 30 s: under load 20 a reload has taken over 10 s); on a timeout, the helper's last output is part of the error. */
const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> =>
  waitFor(what, probe, timeoutMs).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${fx.helper.output().slice(-3000)}`);
  });

const profile = (id: string, version: number, rules: Array<{ id: string; path: string }>) =>
  fx.profile({ id, version, rules: rules.map((r) => ({ id: r.id, binary: { path: r.path } })) });
const allowCurl = (version: number) => profile('corp', version, [{ id: 'curl', path: CURL }, { id: 'node', path: NODE }]);
const nodeOnly = (version: number) => profile('corp', version, [{ id: 'node', path: NODE }]);

/** Write NAME.json in the staging dir and sign it with the real CLI; returns the staged path. */
async function stageSigned(name: string, p: unknown): Promise<string> {
  const file = path.join(staging, name);
  writeFileSync(file, `${JSON.stringify(p, null, 2)}\n`);
  const r = await fx.helper.cli(['profile', 'sign', file, '--key', privateKey]);
  expect(r.exitCode, String(r.stderr)).toBe(0);
  return file;
}

/** Copy a file into place by rename: readers see the old or the new one, never half. */
function replace(from: string, to: string): void {
  const t = path.join(path.dirname(to), `.${path.basename(to)}.tmp`);
  copyFileSync(from, t);
  chmodSync(t, 0o644);
  renameSync(t, to);
}

/** Install a staged profile as config management does: the signature first, then the profile. */
function install(staged: string, dir: string, name = path.basename(staged)): { file: string; writtenAt: number } {
  const target = path.join(dir, name);
  replace(`${staged}.sig`, `${target}.sig`);
  replace(staged, target);
  return { file: target, writtenAt: Date.now() };
}

const profilesD = () => path.join(fx.helper.etc, 'profiles.d');

describe('IT profiles: signatures, versions, last good copy, hot reload', () => {
  it('keygen makes a key pair; with its public key trusted, an unsigned profile is refused', async () => {
    const keys = path.join(fx.tmp, 'keys');
    const r = await fx.helper.cli(['profile', 'keygen', '--out', keys]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    privateKey = path.join(keys, 'tunnelgate-profile.key');
    mkdirSync(path.join(fx.helper.etc, 'trusted-keys'), { mode: 0o755 });
    copyFileSync(path.join(keys, 'tunnelgate-profile.pub'), path.join(fx.helper.etc, 'trusted-keys', 'it.pub'));
    chmodSync(path.join(fx.helper.etc, 'trusted-keys', 'it.pub'), 0o644);

    const file = fx.helper.writeProfile('corp.json', allowCurl(1));
    const s = await until('the unsigned profile rejected', async () => {
      const st = await status();
      return source(st, file, 'rejected') ? st : undefined;
    });
    expect(s.state).toBe('degraded');
    expect(source(s, file, 'rejected')?.problems[0]).toMatch(/^not signed: corp\.json\.sig is missing, and trusted keys are configured in /);
    expect(await curlViaRun()).toBe(`exit ${NOT_ALLOWED}`);
  });

  it('a signed profile is applied: status lists it active and the allowed binary gets through', async () => {
    const { file } = install(await stageSigned('corp.json', allowCurl(1)), profilesD());
    const s = await until('corp v1 active', async () => {
      const st = await status();
      return st.state === 'enforcing' && source(st, file, 'active')?.version === 1 ? st : undefined;
    });
    expect(s.sources).toEqual([{ file, profileId: 'corp', version: 1, state: 'active', problems: [] }]);
    expect(await curlViaRun()).toBe('200');
    expect(events()).toContainEqual(expect.objectContaining({ type: 'profile.loaded', file, profileId: 'corp', version: 1, signedBy: 'it' }));
  });

  it('a tampered profile (one byte changed after signing) is rejected; the last good policy stays in force', async () => {
    const staged = await stageSigned('corp.json', nodeOnly(2));
    const bytes = readFileSync(staged);
    const at = bytes.indexOf('"node"') + 1;
    bytes[at] = 'N'.charCodeAt(0); // rules[0].id "node" -> "Node": still valid JSON and schema
    writeFileSync(staged, bytes);
    const { file } = install(staged, profilesD());
    const s = await until('the tampered copy rejected', async () => {
      const st = await status();
      return source(st, file, 'rejected') ? st : undefined;
    });
    expect(s.state).toBe('degraded');
    expect(source(s, file, 'rejected')?.problems).toEqual([
      'bad signature (corp.json.sig): signature does not match any trusted key (tried it)',
      'the last good copy (profile corp version 1) stays in force',
    ]);
    expect(source(s, file, 'active')?.version).toBe(1);
    expect(s.problems.join('\n')).toContain(`${file}: rejected: bad signature`);
    // Version 2 would refuse curl; the last good version 1 still admits it.
    expect(await curlViaRun()).toBe('200');
    expect(events()).toContainEqual(expect.objectContaining({ type: 'profile.rejected', file }));
  });

  it('a rollback is refused after a helper restart, and the last good copy is enforced from the state dir', async () => {
    const { file } = install(await stageSigned('corp.json', allowCurl(3)), profilesD());
    await until('corp v3 active', async () => ((await status()).state === 'enforcing' && source(await status(), file, 'active')?.version === 3 ? true : undefined));

    await fx.helper.kill('SIGTERM');
    install(await stageSigned('corp.json', nodeOnly(2)), profilesD()); // validly signed, but older
    await fx.helper.restart();

    const s = await until('the rollback rejected after the restart', async () => {
      const st = await status();
      return source(st, file, 'rejected') ? st : undefined;
    });
    expect(s.state).toBe('degraded');
    expect(source(s, file, 'rejected')).toMatchObject({ profileId: 'corp', version: 2 });
    expect(source(s, file, 'rejected')?.problems).toEqual([
      'rollback from version 3 to 2 refused (profile corp); publish version 3 or higher',
      'the last good copy (profile corp version 3) stays in force',
    ]);
    expect(source(s, file, 'active')?.version).toBe(3);
    expect(await curlViaRun()).toBe('200');
    const versions = JSON.parse(readFileSync(path.join(fx.helper.state, 'profile-versions.json'), 'utf8')) as { profiles: Record<string, { version: number }> };
    expect(versions.profiles.corp?.version).toBe(3);
  });

  it('hot reload: a new version is in force quickly after the file is written (figures printed)', async () => {
    const refused = `exit ${NOT_ALLOWED}`;
    const steps = [
      { version: 4, make: nodeOnly, expect: refused, verdict: 'launch.refused' },
      { version: 5, make: allowCurl, expect: '200', verdict: 'launch.admitted' },
      { version: 6, make: nodeOnly, expect: refused, verdict: 'launch.refused' },
    ] as const;
    const figures: string[] = [];
    for (const step of steps) {
      const staged = await stageSigned('corp.json', step.make(step.version));
      const before = events().length;
      const { file, writtenAt } = install(staged, profilesD());
      const loaded = await until(`profile.loaded v${step.version}`, async () =>
        events().slice(before).find((e) => e.type === 'profile.loaded' && e.version === step.version),
      );
      const ranAt = Date.now();
      expect(await curlViaRun()).toBe(step.expect);
      const verdict = events().slice(before).filter((e) => e.type === step.verdict).at(-1);
      expect(verdict).toBeDefined();
      figures.push(
        `v${step.version}: in force ${Date.parse(loaded.time) - writtenAt} ms after the write; ` +
          `\`tunnelgate run curl\` started at ${ranAt - writtenAt} ms got its verdict (${step.expect}) at ${Date.parse(verdict?.time ?? '') - writtenAt} ms`,
      );
      const s = await status();
      expect(s.state).toBe('enforcing');
      expect(s.sources).toEqual([{ file, profileId: 'corp', version: step.version, state: 'active', problems: [] }]);
      expect(events().slice(before).some((e) => e.type === 'policy.applied')).toBe(true);
    }
    console.log(`hot reload (file written by rename -> new policy / new verdict):\n  ${figures.join('\n  ')}`);
  }, 120_000);

  it('an update that would remove every rule at the same version is refused; with a higher version it is accepted', async () => {
    const { file } = install(await stageSigned('corp.json', profile('corp', 6, [])), profilesD());
    const s = await until('the emptying refused', async () => {
      const st = await status();
      return source(st, file, 'rejected') ? st : undefined;
    });
    expect(source(s, file, 'rejected')?.problems[0]).toMatch(/^would remove every rule on this machine \(version 6 in force had 1, this copy has none\)/);
    expect(s.ruleCount).toBe(1);
    install(await stageSigned('corp.json', profile('corp', 7, [])), profilesD());
    await until('v7 without rules in force', async () => {
      const st = await status();
      return source(st, file, 'active')?.version === 7 && st.ruleCount === 0 ? true : undefined;
    });
  });
});

// ---- remote pull ---------------------------------------------------------------------------

/** An HTTPS server for the corp namespace: serves files from DIR with an ETag, logs every request. */
const SERVER = String.raw`
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
const cfg = JSON.parse(process.argv[process.argv.length - 1]);
const server = https.createServer({ key: readFileSync(cfg.key), cert: readFileSync(cfg.cert) }, (req, res) => {
  const log = (status) => console.log(JSON.stringify({ path: req.url, inm: req.headers['if-none-match'] ?? null, status }));
  let body;
  try { body = readFileSync(join(cfg.dir, new URL(req.url, 'https://x/').pathname.slice(1))); }
  catch { res.writeHead(404).end(); return log(404); }
  const etag = '"' + createHash('sha256').update(body).digest('hex').slice(0, 16) + '"';
  if (req.headers['if-none-match'] === etag) { res.writeHead(304, { etag }).end(); return log(304); }
  res.writeHead(200, { etag, 'content-type': 'application/json' }).end(body);
  log(200);
});
server.listen(cfg.port, cfg.host, () => console.log('READY'));
`;

interface Logged {
  path: string;
  inm: string | null;
  status: number;
}

describe('remote pull from an HTTPS server in the lab', () => {
  let server: ResultPromise<{ reject: false }>;
  const requests: Logged[] = [];
  let url: string;
  let webroot: string;

  beforeAll(async () => {
    const pki = path.join(fx.tmp, 'pki');
    mkdirSync(pki);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tunnelgate lab CA');
    ssl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', `/CN=${fx.lab.underlayCorp}`);
    writeFileSync(path.join(pki, 'san.ext'), `subjectAltName=IP:${fx.lab.underlayCorp}\n`);
    ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'san.ext');
    copyFileSync(path.join(pki, 'ca.pem'), path.join(fx.helper.etc, 'remote-ca.pem'));

    webroot = path.join(fx.tmp, 'www');
    mkdirSync(webroot, { mode: 0o755 });
    install(await stageSigned('remote.json', profile('corp-remote', 1, [{ id: 'curl', path: CURL }])), webroot, 'corp.json');

    const cfg = { key: path.join(pki, 'srv.key'), cert: path.join(pki, 'srv.pem'), dir: webroot, host: fx.lab.underlayCorp, port: HTTPS_PORT };
    server = fx.lab.spawn('corp', process.execPath, ['--input-type=module', '-e', SERVER, '--', JSON.stringify(cfg)], { reject: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the HTTPS server did not start')), 10_000);
      server.stdout?.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) {
          if (line === 'READY') {
            clearTimeout(timer);
            resolve();
          } else if (line.startsWith('{')) requests.push(JSON.parse(line) as Logged);
        }
      });
    });
    url = `https://${fx.lab.underlayCorp}:${HTTPS_PORT}/corp.json`;
  });

  it('pulls a signed profile over HTTPS and merges it like a profiles.d file', async () => {
    expect(await curlViaRun()).toBe(`exit ${NOT_ALLOWED}`); // corp v7 has no rules
    writeFileSync(path.join(fx.helper.etc, 'remote.json'), JSON.stringify({ url, intervalSeconds: 1, ca: path.join(fx.helper.etc, 'remote-ca.pem') }));
    const s = await until('the pulled profile active', async () => {
      const st = await status();
      return source(st, url, 'active') ? st : undefined;
    });
    expect(source(s, url, 'active')).toEqual({ file: url, profileId: 'corp-remote', version: 1, state: 'active', problems: [] });
    expect(s.state).toBe('enforcing');
    expect(await curlViaRun()).toBe('200');
    expect(requests.slice(0, 2)).toEqual([
      { path: '/corp.json', inm: null, status: 200 },
      { path: '/corp.json.sig', inm: null, status: 200 },
    ]);
  });

  it('the next poll sends If-None-Match with the cached ETag and gets 304', async () => {
    const etag = await until('a 304', async () => requests.find((r) => r.path === '/corp.json' && r.status === 304)?.inm ?? undefined);
    const cached = JSON.parse(readFileSync(path.join(fx.helper.state, 'profiles-last-good', 'remote.json'), 'utf8')) as { etag: string; file: string };
    expect(cached).toMatchObject({ etag, file: url });
    // A 304 costs one request: no signature fetched after it. (A poll that started before
    // the first copy was taken in may have fetched both again: the helper sends the ETag of
    // the copy in force, and on a loaded machine the next poll can come first.)
    const notModified = requests.findIndex((r) => r.path === '/corp.json' && r.status === 304);
    const next = await until('the request after the 304 (the next poll, 1 s later)', async () => requests[notModified + 1]);
    expect(next).toMatchObject({ path: '/corp.json', inm: etag, status: 304 });
  });

  it('a pulled update without a valid signature is refused, the cached copy stays in force', async () => {
    const staged = await stageSigned('remote.json', profile('corp-remote', 2, [{ id: 'node', path: NODE }]));
    replace(staged, path.join(webroot, 'corp.json')); // the new profile, the old signature
    const s = await until('the unsigned update rejected', async () => {
      const st = await status();
      return source(st, url, 'rejected') ? st : undefined;
    });
    expect(source(s, url, 'rejected')?.problems).toEqual([
      `bad signature (${url}.sig): signature does not match any trusted key (tried it)`,
      'the last good copy (profile corp-remote version 1) stays in force',
    ]);
    expect(await curlViaRun()).toBe('200');
    replace(`${staged}.sig`, path.join(webroot, 'corp.json.sig'));
    await until('v2 pulled with its signature', async () => (source(await status(), url, 'active')?.version === 2 ? true : undefined));
    expect(await curlViaRun()).toBe(`exit ${NOT_ALLOWED}`);
    install(await stageSigned('remote.json', profile('corp-remote', 3, [{ id: 'curl', path: CURL }])), webroot, 'corp.json');
    await until('v3 pulled', async () => (source(await status(), url, 'active')?.version === 3 ? true : undefined));
  });

  it('with the server unreachable, the cached copy is used, also after a helper restart', async () => {
    server.kill('SIGTERM');
    await server;
    const s = await until('the failure reported', async () => {
      const st = await status();
      return st.problems.some((p) => p.startsWith(`${url}: cannot pull since`)) ? st : undefined;
    });
    expect(source(s, url, 'active')?.version).toBe(3);
    await fx.helper.kill('SIGTERM');
    await fx.helper.restart();
    const after = await until('the cached copy in force after the restart', async () => {
      const st = await status();
      return source(st, url, 'active') && st.problems.some((p) => p.includes('cannot pull')) ? st : undefined;
    });
    expect(source(after, url, 'active')?.version).toBe(3);
    expect(await curlViaRun()).toBe('200');
  });
});
