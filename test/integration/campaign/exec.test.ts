// Campaign rows of issue 10 (exec-time admission and process identity): an allowed program
// started directly gets the tunnel before its first instruction, so its first packet
// passes. Real helper, real fanotify exec hold, real tunnel. Nothing here is timed: each
// row counts the gate's drops (status `dropped`, attempt.denied events, prompts), which a
// lost first packet would add to.
import { realpathSync } from 'node:fs';
import { expect } from 'vitest';
import { row } from '../../lab/campaign.js';
import { waitFor } from '../../lab/fixture.js';
import { labAndHelper } from '../../lab/suite.js';

const bin: Record<string, string> = {};

const fx = labAndHelper({
  prepare: ({ copyBinary }) => {
    bin.curl = copyBinary(realpathSync('/usr/bin/curl'), 'allowed/curl');
    bin.ping = copyBinary(realpathSync('/usr/bin/busybox'), 'allowed-ping/ping'); // busybox: its ping applet, by argv[0]
  },
});

async function enforce(): Promise<void> {
  const before = fx.events().filter((e) => e.type === 'policy.applied').length;
  fx.writeProfile('corp-exec', fx.profile({ id: 'corp-exec', rules: [{ id: 'curl', binary: { path: bin.curl } }, { id: 'ping', binary: { path: bin.ping } }] }));
  await waitFor('the profile applied', () => (fx.events().filter((e) => e.type === 'policy.applied').length > before ? true : undefined));
}

/**
 * What a lost first packet leaves behind: a denied attempt (the drop of a live program's
 * socket is attributed to it), a prompt, a refusal. The status `dropped` counter is not
 * compared: the lab's tunnel sees unrelated drops of packets no socket sent.
 */
async function refusals(): Promise<{ denied: number; prompts: number; refused: number }> {
  const ev = fx.events();
  return {
    denied: ev.filter((e) => e.type === 'attempt.denied').length,
    prompts: ev.filter((e) => e.type === 'prompt.opened').length,
    refused: ev.filter((e) => e.type === 'process.refused').length,
  };
}

row('exec-time admission', 'an allowed curl started directly 100 times: every first SYN passes, nothing refused', async () => {
  await enforce();
  const before = await refusals();
  const url = `${fx.lab.urls.corpV4}`;
  // One shell starts curl 100 times: each exec is held, admitted, and let go.
  const loop = `ok=0; for i in $(seq 100); do c=$("${bin.curl}" -s -o /dev/null -w '%{http_code}' -m 10 "${url}"); [ "$c" = 200 ] && ok=$((ok+1)); done; echo $ok`;
  const r = await fx.run('/bin/sh', ['-c', loop], { timeout: 300_000 });
  expect(String(r.stdout).trim()).toBe('100');
  expect(await refusals()).toEqual(before);
}, 400_000);

row('exec-time admission', 'an allowed ping -c1 started directly: 10 of 10 answered, nothing refused', async () => {
  await enforce();
  const before = await refusals();
  const loop = `ok=0; for i in $(seq 10); do "${bin.ping}" -c1 -W5 ${fx.lab.corpV4} >/dev/null && ok=$((ok+1)); done; echo $ok`;
  const r = await fx.run('/bin/sh', ['-c', loop], { timeout: 120_000 });
  expect(String(r.stdout).trim()).toBe('10');
  expect(await refusals()).toEqual(before);
}, 200_000);
