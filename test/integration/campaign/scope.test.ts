// Campaign rows (issue 9, found by a fresh tester): a rule opens only the interfaces its own
// source names. Two real wireguard-go tunnels in the lab: profile corp gates the first
// (wsIface) and allows curl, and locks it against user decisions; profile lab gates the
// second (second.wsIface), allows a byte copy of curl at its own path, and lets users decide.
// Before scoping, every allow rule applied on every gated interface, and a lock anywhere
// locked everything.
import { realpathSync } from 'node:fs';
import { expect } from 'vitest';
import { waitFor } from '../../lab/fixture.js';
import { row } from '../../lab/campaign.js';
import { expectDropped, labAndHelper } from '../../lab/suite.js';

const CURL = realpathSync('/usr/bin/curl');
let labCurl = '';
let userCurl = '';

const fx = labAndHelper({
  lab: { secondTunnel: true },
  prepare: (ctx) => {
    labCurl = ctx.copyBinary(CURL, 'bin/lab-curl');
    userCurl = ctx.copyBinary(CURL, 'bin/user-curl');
  },
  profiles: (ctx) => ({
    corp: ctx.profile({ id: 'corp', userPrompts: 'deny', rules: [{ id: 'curl', binary: { path: CURL } }] }),
    lab: ctx.profile({ id: 'lab', interfaces: [ctx.lab.second?.wsIface], userPrompts: 'allow', rules: [{ id: 'lab-curl', binary: { path: labCurl } }] }),
  }),
});

const corpUrl = () => fx.lab.urls.corpV4;
const labUrl = () => fx.lab.second?.url as string;
const get = (bin: string, url: string) => fx.run(bin, ['-s', '-m', '4', '-o', '/dev/null', '-w', '%{http_code}', url]);
const until = <T>(what: string, probe: () => Promise<T | undefined>) =>
  waitFor(what, probe, 45_000, 200).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}\n${fx.helper.output().slice(-2000)}`);
  });
/** Positive control: `bin` gets HTTP 200 over `url` (admission may take a retransmission). */
const reaches = (bin: string, url: string) => until(`${bin} reaches ${url}`, async () => ((await get(bin, url)).stdout === '200' ? true : undefined));

row('a rule opens only the interfaces its own source names', 'a second VPN\'s profile allows a program: it passes its own tunnel and is dropped on the corporate one (and the corporate rule vice versa)', async () => {
  await reaches(CURL, corpUrl());
  await reaches(labCurl, labUrl());
  expectDropped(await get(labCurl, corpUrl()), 'the lab profile\'s program over the corporate tunnel');
  expectDropped(await get(CURL, labUrl()), 'the corporate profile\'s program over the lab tunnel');
  // A program no rule names: dropped on both.
  expectDropped(await get(userCurl, corpUrl()), 'a program no rule names, corporate tunnel');
  expectDropped(await get(userCurl, labUrl()), 'a program no rule names, lab tunnel');
}, 180_000);

row('a rule opens only the interfaces its own source names', '`tunnelgate allow` under a profile that lets users decide on one tunnel only: the user rule opens that tunnel, never the locked one', async () => {
  const r = await fx.cli(['allow', userCurl]);
  expect(r.exitCode, String(r.stderr)).toBe(0);
  await reaches(userCurl, labUrl());
  expectDropped(await get(userCurl, corpUrl()), 'a user-allowed program over the tunnel whose profile locks it');
  const explained = await fx.json<{ verdict: string; reason: string; notes: string[] }>(['explain', userCurl]);
  expect(explained.verdict).toBe('allow');
  expect([explained.reason, ...explained.notes].join('\n')).toContain(`not on ${fx.lab.wsIface}`);
  const revoked = await fx.cli(['revoke', userCurl]);
  expect(revoked.exitCode, String(revoked.stderr)).toBe(0);
}, 180_000);

row('a rule opens only the interfaces its own source names', 'the second tunnel renamed while the helper runs keeps its profile\'s scope, by index', async () => {
  const second = fx.lab.second?.wsIface as string;
  const other = `tgs${fx.lab.id}`.slice(0, 15);
  const r = await fx.lab.exec('ws', 'ip', ['link', 'set', 'dev', second, 'name', other], { reject: false });
  expect(r.exitCode, String(r.stderr)).toBe(0);
  try {
    await until('status names the renamed tunnel', async () => ((await fx.status()).problems.join('\n').includes(`now named ${other}`) ? true : undefined));
    await reaches(labCurl, labUrl());
    expectDropped(await get(CURL, labUrl()), 'the corporate profile\'s program over the renamed lab tunnel');
    expectDropped(await get(userCurl, labUrl()), 'a program no rule names over the renamed lab tunnel');
    expectDropped(await get(labCurl, corpUrl()), 'the lab profile\'s program over the corporate tunnel');
  } finally {
    await fx.lab.exec('ws', 'ip', ['link', 'set', 'dev', other, 'name', second], { reject: false });
  }
}, 180_000);

row('a rule opens only the interfaces its own source names', 'the corporate tunnel renamed to the name the lab profile gates keeps the corporate scope: the lab\'s program stays dropped on it (a fresh tester got 200)', async () => {
  const corp = fx.lab.wsIface;
  const second = fx.lab.second?.wsIface as string;
  const aside = `tgq${fx.lab.id}`.slice(0, 15);
  const rename = async (from: string, to: string) => {
    const r = await fx.lab.exec('ws', 'ip', ['link', 'set', 'dev', from, 'name', to], { reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
  };
  await rename(second, aside);
  try {
    await rename(corp, second);
    try {
      await until('status names the renamed corporate tunnel', async () => ((await fx.status()).problems.join('\n').includes(`${corp} is now named ${second}`) ? true : undefined));
      // Positive control: the corporate program still passes its own (renamed) tunnel.
      await reaches(CURL, corpUrl());
      expectDropped(await get(labCurl, corpUrl()), 'the lab profile\'s program over the corporate tunnel now carrying the lab\'s name');
      expectDropped(await get(userCurl, corpUrl()), 'a program no rule names over the renamed corporate tunnel');
    } finally {
      await rename(second, corp);
    }
  } finally {
    await rename(aside, second);
  }
  await reaches(labCurl, labUrl());
}, 180_000);
