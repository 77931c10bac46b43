// The standing campaign (issue 9), the attacks and faults that held on the landed code: each
// is one row `kind | case`, decided by packets (a drop is curl's own timeout, exit 28) with
// a positive control beside it (the same request from the allowed program gets HTTP 200),
// so a row fails the day the gate lets the attack through or the lab stops carrying
// traffic. Unprivileged attacks run as a uid made up here; faults as root, in the lab only.
// Rows that change the lab for good (interface re-creation) come last.
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import type { StatusReport } from '../../../common/api.js';
import { chooseNetClsMount, findNetClsMounts } from '../../../helper/kernel/netcls.js';
import { row } from '../../lab/campaign.js';
import { waitFor } from '../../lab/fixture.js';
import { CLI } from '../../lab/helper-proc.js';
import { expectDropped, labAndHelper } from '../../lab/suite.js';

const CURL = '/usr/bin/curl';
const PYTHON = '/usr/bin/python3.11';
/** Made-up unprivileged users: no passwd entry, no groups. */
const MALLORY = 61_001;
const ALICE = 61_002;
const BOB = 61_003;

let copy: string;

const fx = labAndHelper({
  prepare: ({ copyBinary }) => {
    copy = copyBinary(CURL, 'copy/curl');
  },
  profiles: ({ lab }) => ({
    'corp-test': {
      schema: 'tunnelgate/profile@1', id: 'corp-test', version: 1, mode: 'enforce', interfaces: [lab.wsIface], userPrompts: 'allow',
      rules: [{ id: 'curl', binary: { path: CURL } }],
    },
  }),
});

const http = (seconds = 3) => ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', String(seconds), '-m', String(seconds + 2)];
const url = () => fx.lab.urls.corpV4;

/** The positive control: the allowed curl, started directly (the watcher admits it), gets 200. */
async function allowedGets200(uid?: number): Promise<void> {
  const r = await fx.run(CURL, [...http(10), url()], uid === undefined ? {} : { uid });
  expect({ control: 'allowed curl', out: r.stdout, exit: r.exitCode }).toEqual({ control: 'allowed curl', out: '200', exit: 0 });
}

/** The copy of curl (no rule names it) run by Mallory is dropped; the allowed curl gets 200. */
async function copyDroppedAllowedServed(what: string): Promise<void> {
  expectDropped(await fx.run(copy, [...http(), url()], { uid: MALLORY }), what);
  await allowedGets200(MALLORY);
}

/** A scratch directory for `uid` (0755, its own) under the fixture's tmp. */
function userDir(name: string, uid: number): string {
  const d = path.join(fx.tmp, name);
  mkdirSync(d, { recursive: true, mode: 0o755 });
  chownSync(d, uid, uid);
  return d;
}

/** The directory of every rule cgroup of this helper (net_cls). */
function ruleCgroups(): string[] {
  const chosen = chooseNetClsMount(findNetClsMounts(readFileSync('/proc/self/mountinfo', 'utf8')), path.join(fx.helper.run, 'net_cls'));
  if (!chosen) throw new Error('no net_cls hierarchy is mounted');
  const root = path.join(chosen.mount, fx.helper.cgroupRoot);
  return readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(root, e.name));
}

const enforcing = (what: string, pred: (s: StatusReport) => boolean = () => true, ms = 60_000) =>
  waitFor(what, async () => {
    const s = await fx.status();
    return s.state === 'enforcing' && pred(s) ? s : undefined;
  }, ms, 200);

describe('campaign: attacks that held', () => {
  row('process identity', 'an unprivileged process writes its pid into a rule cgroup (cgroup join)', async () => {
    // The allowed curl creates (or fills) the rule's cgroup.
    await allowedGets200();
    const cgroups = ruleCgroups();
    expect(cgroups.length).toBeGreaterThan(0);
    const joins = cgroups.map((c) => `echo $$ > ${path.join(c, 'cgroup.procs')} 2>/dev/null && echo JOINED >&2;`).join(' ');
    const r = await fx.run('sh', ['-c', `${joins} exec ${copy} "$@"`, 'sh', ...http(), url()], { uid: MALLORY });
    expect(String(r.stderr)).not.toContain('JOINED');
    expectDropped(r, 'copy of curl after writing cgroup.procs');
  }, 60_000);

  row('process identity', 'a byte copy of an allowed binary at another path', async () => {
    await copyDroppedAllowedServed('copy');
  }, 60_000);

  row('process identity', 'a hard link to an allowed binary (made by root: protected_hardlinks stops users)', async () => {
    const dir = userDir('links', 0);
    const link = path.join(dir, 'curl');
    linkSync(CURL, link);
    // A user may not hard-link a file they do not own (fs.protected_hardlinks=1); what root can make is tried.
    const own = await fx.run('ln', [CURL, path.join(userDir('mallory-links', MALLORY), 'curl')], { uid: MALLORY });
    if (readFileSync('/proc/sys/fs/protected_hardlinks', 'utf8').trim() === '1') expect(own.exitCode).not.toBe(0);
    expectDropped(await fx.run(link, [...http(), url()], { uid: MALLORY }), 'hard link');
    await allowedGets200(MALLORY);
  }, 60_000);

  row('process identity', 'a bind mount of an allowed binary over another path (private mount namespace)', async () => {
    const target = fx.copyBinary('/usr/bin/true', 'bind/target');
    const r = await fx.run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${CURL} ${target} && exec ${target} "$@"`, 'sh', ...http(), url()]);
    expectDropped(r, 'bind-mounted curl');
    await allowedGets200();
  }, 60_000);

  row('process identity', 'fexecve of a memfd holding an allowed binary', async () => {
    const script = `import os, sys
fd = os.memfd_create('curl', 0)
os.write(fd, open('${CURL}', 'rb').read())
os.execve(fd, ['curl', *sys.argv[1:]], dict(os.environ))`;
    expectDropped(await fx.run(PYTHON, ['-c', script, ...http(), url()], { uid: MALLORY }), 'memfd curl');
    await allowedGets200(MALLORY);
  }, 60_000);

  row('process identity', 'argv[0] renamed to the allowed path (exec -a)', async () => {
    expectDropped(await fx.run('bash', ['-c', `exec -a ${CURL} ${copy} "$@"`, 'bash', ...http(), url()], { uid: MALLORY }), 'exec -a');
    await allowedGets200(MALLORY);
  }, 60_000);

  row('process identity', 'comm renamed to curl (prctl PR_SET_NAME)', async () => {
    const script = `import ctypes, socket
ctypes.CDLL(None).prctl(15, b'curl', 0, 0, 0)
assert open('/proc/self/comm').read().strip() == 'curl'
try:
    socket.create_connection(('${fx.lab.corpV4}', ${fx.lab.ports.http}), timeout=3)
    print('CONNECTED')
except socket.timeout:
    print('TIMEOUT')`;
    const r = await fx.run(PYTHON, ['-c', script], { uid: MALLORY });
    expect({ out: String(r.stdout).trim(), err: String(r.stderr).trim() }).toEqual({ out: 'TIMEOUT', err: '' });
    await allowedGets200(MALLORY);
  }, 60_000);

  row('api', "a fake helper socket owned by a user: the CLI refuses it", async () => {
    const dir = userDir('fake-run', MALLORY);
    const heard = path.join(dir, 'heard');
    const server = `const net = require('node:net'); const fs = require('node:fs');
net.createServer((c) => { fs.appendFileSync(${JSON.stringify(heard)}, 'connection\\n'); c.end('{"jsonrpc":"2.0","id":1,"result":{}}\\n'); })
  .listen(${JSON.stringify(path.join(dir, 'api.sock'))}, () => console.log('LISTENING'));`;
    const fake = fx.spawn(process.execPath, ['-e', server], { uid: MALLORY });
    try {
      await waitFor('the fake socket', () => (existsSync(path.join(dir, 'api.sock')) ? true : undefined));
      const r = await fx.run(process.execPath, [CLI, 'status', '--run', dir]);
      expect(r.exitCode).not.toBe(0);
      expect(`${String(r.stdout)} ${String(r.stderr)}`).toMatch(/refusing .*(owned by root|writable only by root)/);
      expect(existsSync(heard)).toBe(false);
      // Control: the real socket answers.
      expect((await fx.run(process.execPath, [CLI, 'status', '--json', '--run', fx.helper.run])).exitCode).toBe(0);
    } finally {
      fake.kill('SIGTERM');
      await fake;
    }
  }, 60_000);

  row('api', "another user's prompt answered by a different user is refused", async () => {
    const bin = fx.copyBinary(CURL, 'alice/curl', ALICE);
    const curl = fx.spawn(bin, [...http(12), url()], { uid: ALICE });
    const p = await waitFor('a prompt for alice', async () => {
      const r = await fx.cli(['prompts', '--json'], { uid: ALICE });
      return (JSON.parse(String(r.stdout)) as Array<{ id: string; exe: string }>).find((x) => x.exe === bin);
    }, 30_000, 200);
    const bob = await fx.cli(['answer', p.id, 'allow-always'], { uid: BOB });
    expect(bob.exitCode).not.toBe(0);
    expectDropped(await curl, "alice's curl after bob's answer");
    const list = JSON.parse(String((await fx.cli(['list', '--json'], { uid: ALICE })).stdout)) as { rules: Array<{ source: { kind: string } }> };
    expect(list.rules.filter((r) => r.source.kind === 'user')).toEqual([]);
    await allowedGets200(ALICE);
  }, 60_000);

  row('faults', 'kill -9 of the helper during an apply: the gate stays shut', async () => {
    fx.writeProfile('corp-test', fx.profile({ version: 2, rules: [{ id: 'curl', binary: { path: CURL } }, { id: 'true', binary: { path: '/usr/bin/true' } }] }));
    await fx.helper.kill('SIGKILL');
    try {
      expectDropped(await fx.run(copy, [...http(), url()], { uid: MALLORY }), 'copy while the helper is dead');
    } finally {
      await fx.helper.restart();
    }
    await enforcing('the restarted helper enforcing 2 rules', (s) => s.ruleCount === 2);
    await copyDroppedAllowedServed('copy after restart');
  }, 120_000);

  row('faults', 'nft fails (a failing nft first in the PATH the helper uses): the gate stays shut', async () => {
    // The helper runs `nft` by PATH (helper/kernel/run.ts, execa): a wrapper that fails while a flag file exists.
    const bin = userDir('fake-nft', 0);
    const flag = path.join(bin, 'fail');
    const failed = path.join(bin, 'failed.log');
    const realNft = String((await fx.run('sh', ['-c', 'command -v nft'])).stdout).trim();
    writeFileSync(path.join(bin, 'nft'), `#!/bin/sh\nif [ -e ${flag} ]; then echo "$*" >> ${failed}; echo "nft: injected failure" >&2; exit 1; fi\nexec ${realNft} "$@"\n`);
    chmodSync(path.join(bin, 'nft'), 0o755);
    await fx.helper.kill('SIGTERM');
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath ?? ''}`;
    const restarting = fx.helper.restart();
    process.env.PATH = oldPath;
    await restarting;
    await enforcing('the helper enforcing behind the wrapper');
    writeFileSync(flag, '');
    fx.writeProfile('corp-test', fx.profile({ version: 3, rules: [{ id: 'curl', binary: { path: CURL } }] }));
    // The helper tried to apply the new profile through the failing nft.
    await waitFor('an nft -f through the failing wrapper', () => (existsSync(failed) && readFileSync(failed, 'utf8').includes('-f') ? true : undefined), 30_000, 100);
    await copyDroppedAllowedServed('copy while nft fails');
    // Back to a helper with the real nft.
    await fx.helper.kill('SIGTERM');
    await fx.helper.restart();
    await enforcing('the helper with the real nft');
  }, 150_000);

  // 1,000 allow rules (a net_cls cgroup each: creating and removing 10,000 cgroups takes
  // minutes on a loaded 2-core machine) and 9,000 scoped deny rules.
  row('faults', '10,000 rules applied (1,000 allow, 9,000 deny): a program no rule names is still dropped', async () => {
    const allows = Array.from({ length: 1_000 }, (_, i) => ({ id: `a${i}`, binary: { path: `/o/a${i}` } }));
    const denies = Array.from({ length: 9_000 }, (_, i) => ({ id: `d${i}`, action: 'deny', binary: { path: `/o/d${i}` }, destinations: [{ cidr: `10.${i >> 8}.${i & 255}.0/24` }] }));
    // Compact JSON: a profile file may hold at most 1 MiB (helper/profile/sources.ts).
    fx.writeProfile('corp-test', JSON.stringify(fx.profile({ version: 4, rules: [{ id: 'curl', binary: { path: CURL } }, ...allows, ...denies] })));
    try {
      await enforcing('10,001 rules in force', (s) => s.ruleCount === 10_001, 150_000).catch(async (e: unknown) => {
        throw new Error(`${String(e)}; status: ${JSON.stringify(await fx.status()).slice(0, 600)}`);
      });
      await copyDroppedAllowedServed('copy under 10,001 rules');
    } finally {
      fx.writeProfile('corp-test', fx.profile({ version: 5, rules: [{ id: 'curl', binary: { path: CURL } }] }));
      await enforcing('back to one rule', (s) => s.ruleCount === 1, 150_000);
    }
  }, 330_000);

  row('faults', 'the tunnel interface deleted and re-created: still gated', async () => {
    const { lab } = fx;
    const peer = `tgr${lab.id}`.slice(0, 15);
    // wireguard-go ends with its interface; the new one is a veth of the same name to corp.
    await lab.exec('ws', 'ip', ['link', 'del', lab.wsIface]);
    await lab.exec('ws', 'ip', ['link', 'add', lab.wsIface, 'type', 'veth', 'peer', 'name', peer, 'netns', lab.corp]);
    await lab.exec('ws', 'ip', ['addr', 'add', `${lab.wsV4}/24`, 'dev', lab.wsIface]);
    await lab.exec('ws', 'ip', ['link', 'set', lab.wsIface, 'up']);
    await lab.exec('corp', 'ip', ['link', 'set', peer, 'up']);
    await lab.exec('corp', 'ip', ['route', 'add', `${lab.wsV4}/32`, 'dev', peer]);
    await enforcing('the re-created interface present', (s) => s.interfaces.some((i) => i.present.includes(lab.wsIface)));
    await copyDroppedAllowedServed('copy over the re-created interface');
  }, 90_000);
});
