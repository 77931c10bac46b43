// Which net_cls hierarchy the helper uses (helper/kernel/netcls.ts: ensureNetClsMount), on the
// real kernel: in a private mount namespace (unshare -m; nothing leaks into the host's mount
// table) a "system" mount of net_cls is made, once writable and once remounted read-only
// (a per-mount flag: the hierarchy itself stays writable for everyone else). The built
// module runs inside, chooses, and creates and removes a cgroup of its own in what it chose.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(tmpdir(), 'tg-netcls-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** In a private mount namespace: a system net_cls mount at SYS (read-only if asked), then the module's choice. */
interface Chosen {
  mount: string;
  own: boolean;
  reason: string;
  wrote: boolean;
  /** Where the test mounted the "system" hierarchy. */
  sys: string;
}

async function chooseIn(readOnly: boolean): Promise<Chosen> {
  const id = randomBytes(4).toString('hex');
  const sys = path.join(tmp, `sys-${id}`);
  const own = path.join(tmp, `own-${id}`);
  const script = `
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { ensureNetClsMount } from ${JSON.stringify(path.join(REPO, 'dist/helper/kernel/netcls.js'))};
import { run } from ${JSON.stringify(path.join(REPO, 'dist/helper/kernel/run.js'))};
const c = await ensureNetClsMount(run, process.argv[1]);
// A cgroup of this test's own in the hierarchy chosen: created, given a classid, removed.
const dir = c.mount + '/tg-netcls-test-${id}';
mkdirSync(dir);
writeFileSync(dir + '/net_cls.classid', '1\\n');
rmdirSync(dir);
console.log(JSON.stringify({ ...c, wrote: true }));`;
  const sh = `set -e
mkdir -p "$1"
mount -t cgroup -o net_cls cgroup "$1"
${readOnly ? 'mount -o remount,bind,ro "$1"' : ''}
node --input-type=module -e "$3" "$2"`;
  const r = await execa('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', sh, 'sh', sys, own, script], { reject: false, timeout: 30_000 });
  if (r.exitCode !== 0) throw new Error(`${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as Omit<Chosen, 'sys'>), sys };
}

describe('the net_cls hierarchy in use', () => {
  it("a writable system mount: the system's", async () => {
    const c = await chooseIn(false);
    expect(c).toMatchObject({ mount: c.sys, own: false, reason: "the system's net_cls mount", wrote: true });
  });

  it("a read-only system mount: the helper's own, which it can write, and why", async () => {
    const c = await chooseIn(true);
    expect(c.mount).not.toBe(c.sys);
    expect(c).toMatchObject({ own: true, reason: `the helper's own net_cls mount: the system's ${c.sys} is read-only`, wrote: true });
  });
});
