// Campaign (issue 9.9): ordinary users flooding the helper's API socket never stop root's
// `tunnelgate status`. Floods run as uids the test makes up, from the workstation namespace,
// against the real helper; outcomes are asserted (root answered, the flood refused and
// recorded), durations and the helper's memory are printed, never asserted.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import type { StampedEvent } from '../../../common/events.js';
import { socketPathOf } from '../../../common/node/client.js';
import { row } from '../../lab/campaign.js';
import { waitFor } from '../../lab/fixture.js';
import { labAndHelper } from '../../lab/suite.js';

const BASE_UID = 6000 + Math.floor(Math.random() * 1000);
let flooder = '';

const fx = labAndHelper({
  prepare: ({ tmp }) => {
    // flood SOCKET COUNT MODE: open COUNT connections in order; MODE idle (send nothing),
    // garbage (random bytes and newlines), long (a line that never ends, growing). Prints
    // "ready OPEN CLOSED" once every connect resolved or failed, then holds them.
    flooder = path.join(tmp, 'flood.mjs');
    writeFileSync(flooder, `
import net from 'node:net';
const [sock, count, mode] = process.argv.slice(2);
let open = 0, closed = 0, settled = 0;
const socks = [];
const done = () => { if (++settled === Number(count)) console.log('ready', open, closed); };
for (let i = 0; i < Number(count); i++) {
  const s = net.connect(sock);
  socks.push(s);
  let settledOne = false;
  const once = () => { if (!settledOne) { settledOne = true; done(); } };
  s.on('connect', () => { open++; once(); });
  s.on('error', once);
  s.on('close', () => { closed++; once(); });
}
setInterval(() => {
  for (const s of socks) {
    if (s.destroyed || s.connecting) continue;
    if (mode === 'garbage') s.write(Buffer.concat([Buffer.from(Array.from({ length: 512 }, () => Math.floor(Math.random() * 256))), Buffer.from('\\n')]));
    if (mode === 'long') s.write('x'.repeat(16 * 1024));
  }
}, 200);
`, { mode: 0o644 });
  },
  profiles: (ctx) => ({
    'corp-api': { schema: 'tunnelgate/profile@1', id: 'corp-api', version: 1, mode: 'enforce', interfaces: [ctx.lab.wsIface], userPrompts: 'deny', rules: [] },
  }),
});

const rssMb = () => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${fx.helper.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);

/** Start a flood as `uid`; resolves once its connects settled (the helper accepts in order). */
async function flood(uid: number, count: number, mode: 'idle' | 'garbage' | 'long'): Promise<{ stop: () => Promise<void> }> {
  const p = fx.spawn(process.execPath, [flooder, socketPathOf(fx.helper.run), String(count), mode], { uid });
  let out = '';
  p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(`the flood of uid ${uid} to connect`, () => (/ready/.test(out) ? true : undefined), 60_000);
  console.log(`flood of uid ${uid} (${count}, ${mode}): ${out.trim()}`);
  return {
    stop: async () => {
      p.kill('SIGKILL');
      await p;
    },
  };
}

/** root's `tunnelgate status --json` answered: its state; the time taken is printed. */
async function rootStatus(what: string): Promise<string> {
  const t0 = performance.now();
  const s = await fx.status();
  console.log(`${what}: root's status answered (${s.state}) after ${Math.round(performance.now() - t0)} ms; helper RSS ${rssMb()} MB`);
  return s.state;
}

const refusedConnects = (uid: number, reason: RegExp) =>
  fx.events().filter((e): e is Extract<StampedEvent, { type: 'api.refused' }> => e.type === 'api.refused' && e.uid === uid && e.method === '(connect)' && reason.test(e.reason));

describe('campaign: the API under flood', () => {
  const kind = 'API flood: root is always served';
  row(kind, '1,000 idle connections from a made-up uid; root status answered, the excess refused and recorded', async () => {
    console.log(`helper RSS before: ${rssMb()} MB`);
    const p = await flood(BASE_UID, 1000, 'idle');
    try {
      expect(['enforcing', 'degraded']).toContain(await rootStatus('1,000 idle connections'));
      const ev = await waitFor('api.refused for the flood', () => refusedConnects(BASE_UID, /too many connections from uid/).at(0));
      expect(ev.reason).toMatch(/at most \d+ per user/);
      // Rate-limited: not one audit line per refused connection.
      expect(refusedConnects(BASE_UID, /./).length).toBeLessThan(100);
    } finally {
      await p.stop();
    }
  }, 180_000);

  row(kind, 'garbage and never-ending long lines on every connection a user may hold; root status answered', async () => {
    const garbage = await flood(BASE_UID + 1, 200, 'garbage');
    const long = await flood(BASE_UID + 2, 200, 'long');
    try {
      expect(['enforcing', 'degraded']).toContain(await rootStatus('garbage and long lines'));
      expect(refusedConnects(BASE_UID + 1, /too many connections from uid/).length).toBeGreaterThan(0);
    } finally {
      await Promise.all([garbage.stop(), long.stop()]);
    }
  }, 180_000);

  row(kind, 'many uids, each under its own limit, together over the ordinary users\' share; root status answered', async () => {
    const ps = [];
    for (let i = 0; i < 10; i++) ps.push(await flood(BASE_UID + 10 + i, 30, 'idle'));
    try {
      expect(['enforcing', 'degraded']).toContain(await rootStatus('10 uids x 30 connections'));
      const refused = fx.events().filter((e) => e.type === 'api.refused' && e.method === '(connect)' && /ordinary users/.test(e.reason));
      expect(refused.length).toBeGreaterThan(0);
    } finally {
      await Promise.all(ps.map((p) => p.stop()));
    }
  }, 180_000);
});
