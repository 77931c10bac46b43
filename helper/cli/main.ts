#!/usr/bin/env node
// `tunnelgate`: the helper itself (`tunnelgate helper`) and its client commands.
// Exit codes: 0 ok, 1 failure or deny, 2 usage error, 126 not allowed to use the tunnel.
import { readFileSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { PromptDecision } from '../../common/api.js';
import { ErrorCode, PROMPT_DECISIONS } from '../../common/api.js';
import type { StampedEvent } from '../../common/events.js';
import type { Destination } from '../../common/profile.js';
import { HelperClient, HelperError, HelperUnavailable } from '../../common/node/client.js';
import { resolvePaths } from '../daemon/config.js';
import { runHelper, uninstallRules } from '../daemon/helper.js';
import { VERSION } from '../daemon/version.js';
import { DEFAULT_KEY_NAME, encodeSignature, keygen, sign } from '../profile/signing.js';
import { writeFileAtomic } from '../profile/store.js';
import { formatProblems, validateProfile } from '../profile/validate.js';
import { parseDstSpec, parseDuration, toDestinations, toExplainDst, UsageError } from './args.js';
import type { Resolver } from './args.js';
import {
  formatAudit, formatDecision, formatDecisions, formatEvent, formatExplain, formatList, formatProfileTest, formatPrompts, formatStatus,
} from './format.js';
import { LaunchError, runWithTunnel } from './launch.js';

class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

const daysOption = (what: string) =>
  new Option('--days <n>', what).argParser((v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 366) throw new UsageError(`invalid --days "${v}" (1..366)`);
    return Number(v);
  });

const runDirOption = () => new Option('--run <dir>', 'runtime dir of the helper (sockets)').env('TUNNELGATE_RUN');

async function withClient<T>(runDir: string | undefined, fn: (c: HelperClient) => Promise<T>): Promise<T> {
  const client = await HelperClient.connect(resolvePaths({ run: runDir ?? '' }).run);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(value) : human()}\n`);
}

const resolveHost: Resolver = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/** `--dst SPEC`, repeatable. */
const collect = (v: string, prev: string[] = []) => [...prev, v];

async function destinationsOf(specs: string[] | undefined): Promise<Destination[] | undefined> {
  if (!specs?.length) return undefined;
  const out: Destination[] = [];
  for (const s of specs) out.push(...(await toDestinations(parseDstSpec(s), resolveHost)));
  return out;
}

function durationParams(text: string | undefined): { seconds?: number; untilLogout?: boolean } {
  return text === undefined ? {} : parseDuration(text);
}

/** The program a PATH names as the kernel reports it: absolute, symbolic links resolved. */
async function programPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  return realpath(abs).catch(() => abs);
}

const uidOption = () => new Option('--uid <uid>', 'admins: for this user').argParser((v) => {
  if (!/^\d+$/.test(v)) throw new UsageError(`invalid uid "${v}"`);
  return Number(v);
});

export function buildProgram(): Command {
  const program = new Command('tunnelgate')
    .description("per-application gatekeeper for a workstation's VPN tunnel")
    .version(VERSION)
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError();

  program
    .command('helper')
    .description('run the privileged helper in the foreground')
    .addOption(new Option('--etc <dir>', 'configuration dir (profiles.d/, trusted-keys/)').env('TUNNELGATE_ETC'))
    .addOption(new Option('--state <dir>', 'state dir (user decisions, audit log)').env('TUNNELGATE_STATE'))
    .addOption(runDirOption())
    .addOption(new Option('--cgroup-root <name>', 'name of the cgroup subtree').env('TUNNELGATE_CGROUP_ROOT'))
    .option('--uninstall-rules', 'remove the tunnelgate table and cgroups, then exit')
    .action(async (o: { etc?: string; state?: string; run?: string; cgroupRoot?: string; uninstallRules?: boolean }) => {
      const paths = resolvePaths(o);
      if (o.uninstallRules) {
        await uninstallRules({ paths });
        console.error('tunnelgate: table inet tunnelgate and its cgroups removed');
      } else {
        await runHelper({ paths });
      }
    });

  program
    .command('status')
    .description('gate state, interfaces, rule count, profile sources, problems')
    .addOption(runDirOption())
    .option('--json', 'one JSON document')
    .action(async (o: { run?: string; json?: boolean }) => {
      try {
        const s = await withClient(o.run, (c) => c.call('status', {}));
        print(o.json, s, () => formatStatus(s));
        if (s.state === 'degraded' || s.state === 'down') throw new ExitCode(1);
      } catch (e) {
        if (!(e instanceof HelperUnavailable)) throw e;
        print(o.json, { state: 'down', problems: [e.message] }, () => `gate:       down\nproblems:\n  - ${e.message}`);
        throw new ExitCode(1);
      }
    });

  program
    .command('list')
    .description('effective whitelist: each rule with its source, scope and lock')
    .addOption(runDirOption())
    .option('--json', 'one JSON document')
    .action(async (o: { run?: string; json?: boolean }) => {
      const l = await withClient(o.run, (c) => c.call('list', {}));
      print(o.json, l, () => formatList(l));
    });

  program
    .command('run')
    .description('start CMD with tunnel access if its binary is allowed (exit 126 if not)')
    .addOption(runDirOption())
    .argument('<cmd...>', 'the command and its arguments (after --)')
    .passThroughOptions()
    .action(async (cmd: string[], o: { run?: string }) => {
      throw new ExitCode(await runWithTunnel(resolvePaths({ run: o.run ?? '' }).run, cmd));
    });

  program
    .command('prompts')
    .description('pending allow prompts of your processes (root: of everyone)')
    .addOption(runDirOption())
    .option('--json', 'one JSON document')
    .action(async (o: { run?: string; json?: boolean }) => {
      const list = await withClient(o.run, (c) => c.call('prompts', {}));
      print(o.json, list, () => formatPrompts(list));
    });

  program
    .command('answer')
    .description(`answer a prompt: ${PROMPT_DECISIONS.join(', ')}`)
    .addOption(runDirOption())
    .argument('<id>', 'the prompt (tunnelgate prompts)')
    .argument('<decision>', PROMPT_DECISIONS.join('|'))
    .option('--for <duration>', 'allow-for: how long (90s, 15m, 1h, 2d, until-logout)')
    .option('--dst <spec>', 'only this destination (repeatable); without: the scope given by --scope', collect)
    .addOption(new Option('--scope <scope>', 'tunnel: the whole tunnel; destination: the destinations it tried').choices(['tunnel', 'destination']))
    .option('--json', 'one JSON document')
    .action(async (id: string, decision: string, o: { run?: string; for?: string; dst?: string[]; scope?: 'tunnel' | 'destination'; json?: boolean }) => {
      if (!(PROMPT_DECISIONS as readonly string[]).includes(decision)) throw new UsageError(`unknown decision "${decision}": one of ${PROMPT_DECISIONS.join(', ')}`);
      if (!/^[0-9a-f]{16}$/.test(id)) throw new UsageError(`invalid prompt id "${id}"`);
      if ((decision === 'allow-for') !== (o.for !== undefined)) throw new UsageError(decision === 'allow-for' ? 'allow-for needs --for DURATION' : '--for goes with allow-for');
      const destinations = await destinationsOf(o.dst);
      const r = await withClient(o.run, (c) =>
        c.call('answer', {
          id,
          decision: decision as PromptDecision,
          ...(o.scope ? { scope: o.scope } : {}),
          ...(destinations ? { destinations } : {}),
          ...durationParams(o.for),
        }),
      );
      print(o.json, r, () =>
        [`prompt ${id}: ${r.decision}`, ...(r.decisionRecord ? [`  ${formatDecision(r.decisionRecord)}`] : []), ...(r.admitted.length ? [`  admitted now: pid ${r.admitted.join(', ')}`] : [])].join('\n'),
      );
    });

  program
    .command('allow')
    .description('add a user rule for PATH (refused where policy forbids it)')
    .addOption(runDirOption())
    .argument('<path>', 'the program (symbolic links are resolved)')
    .option('--dst <spec>', 'only this destination (repeatable): HOST[:PORT[,PORT…]][/tcp|/udp], ADDR/PREFIX[:PORTS], [IPV6]:PORT', collect)
    .option('--for <duration>', 'only for this long (90s, 15m, 1h, 2d, until-logout)')
    .option('--no-pin', 'do not pin the binary\'s sha256 (an update keeps the rule)')
    .addOption(uidOption())
    .option('--json', 'one JSON document')
    .action(async (file: string, o: { run?: string; dst?: string[]; for?: string; pin: boolean; uid?: number; json?: boolean }) => {
      const destinations = await destinationsOf(o.dst);
      const p = await programPath(file);
      const r = await withClient(o.run, (c) =>
        c.call('allow', { path: p, ...(destinations ? { destinations } : {}), ...durationParams(o.for), pin: o.pin, ...(o.uid !== undefined ? { uid: o.uid } : {}) }),
      );
      print(o.json, r, () => [`allowed: ${formatDecision(r.rule)}`, ...(r.admitted.length ? [`admitted now: pid ${r.admitted.join(', ')}`] : [])].join('\n'));
    });

  program
    .command('revoke')
    .description('remove a user rule (by PATH, rule key or id); its processes lose tunnel access at once')
    .addOption(runDirOption())
    .argument('<target>', 'PATH, or a RULE-ID from tunnelgate list / decisions')
    .addOption(uidOption())
    .option('--json', 'one JSON document')
    .action(async (target: string, o: { run?: string; uid?: number; json?: boolean }) => {
      const t = target.includes('/') && !target.startsWith('user.') ? await programPath(target) : target;
      const r = await withClient(o.run, (c) => c.call('revoke', { target: t, ...(o.uid !== undefined ? { uid: o.uid } : {}) }));
      print(o.json, r, () => [...r.removed.map((d) => `revoked: ${formatDecision(d)}`), `${r.released} process(es) lost tunnel access`].join('\n'));
    });

  program
    .command('decisions')
    .description('your decisions: user rules and deny-always answers (root: everyone\'s)')
    .addOption(runDirOption())
    .option('--json', 'one JSON document')
    .action(async (o: { run?: string; json?: boolean }) => {
      const list = await withClient(o.run, (c) => c.call('decisions', {}));
      print(o.json, list, () => formatDecisions(list));
    });

  program
    .command('events')
    .description('denied attempts, prompts, decisions, policy changes (yours; root: all)')
    .addOption(runDirOption())
    .option('--follow', 'keep printing new events')
    .option('--json', 'one JSON document per line')
    .option('--limit <n>', 'only the last N recent events', (v) => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`invalid --limit "${v}"`);
      return Number(v);
    })
    .action(async (o: { run?: string; follow?: boolean; json?: boolean; limit?: number }) => {
      const show = (e: StampedEvent) => process.stdout.write(`${o.json ? JSON.stringify(e) : formatEvent(e)}\n`);
      if (!o.follow) {
        const list = await withClient(o.run, (c) => c.call('events', o.limit !== undefined ? { limit: o.limit } : {}));
        for (const e of list) show(e);
        return;
      }
      const client = await HelperClient.connect(resolvePaths({ run: o.run ?? '' }).run);
      // A notification may come before the subscription's snapshot: hold those, then show
      // each event once, in seq order.
      let last = 0;
      let held: StampedEvent[] | undefined = [];
      const showNew = (e: StampedEvent) => {
        if (e.seq <= last) return;
        last = e.seq;
        show(e);
      };
      client.onNotification((n) => {
        if (n.method !== 'event') return;
        if (held) held.push(n.params);
        else showNew(n.params);
      });
      const r = await client.subscribe(['events']);
      const recent = r.events ?? [];
      for (const e of o.limit !== undefined ? recent.slice(-o.limit) : recent) show(e);
      last = recent.at(-1)?.seq ?? 0;
      for (const e of held) showNew(e);
      held = undefined;
      await client.closed;
      console.error('tunnelgate: the helper closed the connection');
      throw new ExitCode(1);
    });

  program
    .command('explain')
    .description('the verdict for a process or program, and the rule or reason behind it (exit 0 allow, 1 deny)')
    .addOption(runDirOption())
    .argument('<target>', 'PID or PATH')
    .option('--dst <host:port/proto>', 'for this destination: HOST[:PORT][/tcp|/udp]')
    .addOption(uidOption())
    .option('--json', 'one JSON document')
    .action(async (target: string, o: { run?: string; dst?: string; uid?: number; json?: boolean }) => {
      const dst = o.dst !== undefined ? await toExplainDst(o.dst, resolveHost) : undefined;
      const pid = /^\d+$/.test(target) ? Number(target) : undefined;
      if (pid !== undefined && (pid < 2 || pid > 4194304)) throw new UsageError(`invalid PID ${target}`);
      const subject = pid !== undefined ? { pid } : { path: await programPath(target) };
      const r = await withClient(o.run, (c) => c.call('explain', { ...subject, ...(dst ? { dst } : {}), ...(o.uid !== undefined ? { uid: o.uid } : {}) }));
      print(o.json, r, () => formatExplain(r));
      if (r.verdict !== 'allow') throw new ExitCode(1);
    });

  program
    .command('audit')
    .description('what the gate refused, or would refuse in audit mode: per program and destination (yours; root: all)')
    .addOption(runDirOption())
    .addOption(daysOption('records last seen within N days (default 30)'))
    .option('--json', 'one JSON document')
    .action(async (o: { run?: string; days?: number; json?: boolean }) => {
      const a = await withClient(o.run, (c) => c.call('audit', o.days !== undefined ? { days: o.days } : {}));
      print(o.json, a, () => formatAudit(a));
    });

  const profile = program.command('profile').description('IT profiles: validate, test, keys, signatures');
  profile
    .command('test')
    .description('replay the recorded attempts against a draft profile: what it would newly drop or admit (writes nothing)')
    .argument('<file>')
    .addOption(runDirOption())
    .addOption(daysOption('attempts last seen within N days (default 30)'))
    .option('--json', 'one JSON document')
    .action(async (file: string, o: { run?: string; days?: number; json?: boolean }) => {
      const text = await readFile(file, 'utf8');
      const t = await withClient(o.run, (c) => c.call('profile.test', { text, file: path.resolve(file), ...(o.days !== undefined ? { days: o.days } : {}) }));
      print(o.json, t, () => formatProfileTest(t));
    });
  profile
    .command('validate')
    .description('exit 0, or exit 1 with every problem as FILE: path.to.field: message')
    .argument('<file>')
    .action((file: string) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        console.error(`${file}: cannot read: ${(e as Error).message}`);
        throw new ExitCode(1);
      }
      const v = validateProfile(text, file);
      if (!v.ok) {
        for (const line of formatProblems(file, v.problems)) console.error(line);
        throw new ExitCode(1);
      }
      for (const w of v.warnings) console.error(`${file}: warning: ${w}`);
      console.log(`${file}: ok (profile ${v.profile.id} version ${v.profile.version}, ${v.profile.rules.length} rules)`);
    });
  profile
    .command('keygen')
    .description('make an ed25519 key pair: NAME.key (private, 0600) and NAME.pub (for trusted-keys/)')
    .requiredOption('--out <dir>', 'directory to write the key pair into')
    .option('--name <name>', 'file name of the pair', DEFAULT_KEY_NAME)
    .action(async (o: { out: string; name: string }) => {
      const k = await keygen(o.out, o.name);
      console.log(`private key: ${k.privateKeyPath} (keep it off the workstations)`);
      console.log(`public key:  ${k.publicKeyPath} (install it in trusted-keys/ on each workstation)`);
    });
  profile
    .command('sign')
    .description('write FILE.sig, an ed25519 signature of the exact bytes of FILE')
    .argument('<file>')
    .requiredOption('--key <key>', 'private key file (from profile keygen)')
    .action(async (file: string, o: { key: string }) => {
      const [bytes, keyPem] = await Promise.all([readFile(file), readFile(o.key, 'utf8')]);
      const v = validateProfile(bytes.toString('utf8'), file);
      if (!v.ok) {
        for (const line of formatProblems(file, v.problems)) console.error(line);
        console.error(`${file}: not signed: fix the problems first`);
        throw new ExitCode(1);
      }
      await writeFileAtomic(`${file}.sig`, encodeSignature(sign(bytes, keyPem)), 0o644);
      console.log(`${file}.sig: signed profile ${v.profile.id} version ${v.profile.version}`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof ExitCode) return e.code;
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError || (e instanceof HelperError && e.code === ErrorCode.InvalidParams)) {
      console.error(`tunnelgate: ${e.message}`);
      return 2;
    }
    if (e instanceof LaunchError) {
      console.error(e.message);
      return e.exitCode;
    }
    if (e instanceof HelperUnavailable || e instanceof HelperError) {
      console.error(`tunnelgate: ${e.message}`);
      return 1;
    }
    console.error(`tunnelgate: ${(e as Error).message ?? e}`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
