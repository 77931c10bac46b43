// The read-only client commands, from one table: status, list, prompts, decisions, events,
// explain, audit. Each row says how its arguments become the call's params, and how the
// result is shown; the one action below connects, calls, prints (text through the
// sanitiser, or --json) and picks the exit code.
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import type { MethodName, Params, Result, StatusReport } from '../../../common/api.js';
import { safeJson } from '../../../common/format.js';
import { HelperUnavailable } from '../../../common/node/client.js';
import { parsePid, toExplainDst, UsageError } from '../args.js';
import { formatAudit, formatDecisions, formatEvent, formatExplain, formatList, formatPrompts, formatStatus } from '../format.js';
import { ExitCode, print, programPath, resolveHost, say, withClient } from '../io.js';
import { daysOption, jsonOption, runDirOption, uidOption, uidParams } from '../options.js';
import { downStatus, probeTable } from '../status-down.js';
import { followEvents } from './follow.js';

export interface QueryOptions {
  run?: string;
  json?: boolean;
  days?: number;
  limit?: number;
  follow?: boolean;
  dst?: string;
  uid?: number;
}

interface Query<M extends MethodName> {
  method: M;
  description: string;
  /** A positional argument: [name, description]. */
  argument?: [string, string];
  params(o: QueryOptions, arg: string | undefined): Params<M> | Promise<Params<M>>;
  text(r: Result<M>): string;
  /** `--json` output, if not one document. */
  json?(r: Result<M>): string;
  /** The exit code a result means (default 0). */
  exit?(r: Result<M>): number;
  /** What only the client can add to the result (status: the helper runs in another network namespace). */
  adjust?(r: Result<M>): Result<M>;
  /** Runs instead of the call when it returns true (events --follow). */
  instead?(o: QueryOptions): Promise<boolean>;
  /** What to show when no helper answers, instead of failing with its message. */
  unavailable?(message: string): Promise<{ value: unknown; text: string }>;
}

const limitOption = () =>
  ({
    flags: '--limit <n>',
    description: 'only the last N recent events',
    parse: (v: string) => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`invalid --limit "${v}"`);
      return Number(v);
    },
  }) as const;

async function explainParams(o: QueryOptions, target: string): Promise<Params<'explain'>> {
  const dst = o.dst !== undefined ? await toExplainDst(o.dst, resolveHost) : undefined;
  // A rule key (`corp:ssh`, `user.1000:ab12…`, `user 1000:ab12…`): no slash, a colon.
  if (/^[^/.][^/]*:[^/]+$/.test(target)) {
    if (o.dst !== undefined || o.uid !== undefined) throw new UsageError('a rule is explained on its own: no --dst, no --uid');
    return { rule: target };
  }
  const pid = parsePid(target);
  const subject = pid !== undefined ? { pid } : { path: await programPath(target) };
  return { ...subject, ...(dst ? { dst } : {}), ...uidParams(o.uid) };
}

/** Issue 9.0: a helper in another network namespace gates that one, not ours: say so, and not `enforcing`. */
function otherNetns(s: StatusReport): StatusReport {
  let own: number | undefined;
  try {
    own = statSync('/proc/self/ns/net').ino;
  } catch {
    return s;
  }
  if (s.helper?.netns === undefined || s.helper.netns === own) return s;
  const problem = `the helper (pid ${s.helper.pid}) runs in another network namespace (net:[${s.helper.netns}]) than this command (net:[${own}]): its state is not this namespace's`;
  return { ...s, state: s.state === 'down' ? 'down' : 'degraded', problems: [problem, ...s.problems] };
}

const QUERIES: { [M in 'status' | 'list' | 'prompts' | 'decisions' | 'events' | 'explain' | 'audit']: Query<M> } = {
  status: {
    method: 'status',
    description: 'gate state, interfaces, rule count, profile sources, problems',
    params: () => ({}),
    text: formatStatus,
    exit: (s) => (s.state === 'degraded' || s.state === 'down' ? 1 : 0),
    adjust: otherNetns,
    // The table outlives the helper: say whether this namespace's kernel still has it.
    unavailable: async (message) => {
      const { run } = await import('../../kernel/run.js');
      return downStatus(message, await probeTable(run, process.geteuid?.() ?? 0));
    },
  },
  list: { method: 'list', description: 'effective whitelist: each rule with its source, scope and lock', params: () => ({}), text: formatList },
  prompts: { method: 'prompts', description: 'pending allow prompts of your processes (root: of everyone)', params: () => ({}), text: (l) => formatPrompts(l) },
  decisions: {
    method: 'decisions',
    description: "your decisions: user rules and deny-always answers (root: everyone's)",
    params: () => ({}),
    text: formatDecisions,
  },
  events: {
    method: 'events',
    description: 'denied attempts, prompts, decisions, policy changes (yours; root: all)',
    params: (o) => (o.limit !== undefined ? { limit: o.limit } : {}),
    text: (list) => list.map(formatEvent).join('\n'),
    json: (list) => list.map((e) => safeJson(e)).join('\n'),
    instead: async (o) => {
      if (!o.follow) return false;
      await followEvents(o);
      return true;
    },
  },
  explain: {
    method: 'explain',
    description: 'the verdict for a process or program, and the rule or reason behind it; or what a rule does (exit 0 allow, 1 deny)',
    argument: ['<target>', 'PID, PATH, or a RULE key from tunnelgate list'],
    params: (o, target) => explainParams(o, target ?? ''),
    text: formatExplain,
    exit: (r) => (r.verdict === 'allow' ? 0 : 1),
  },
  audit: {
    method: 'audit',
    description: 'what the gate refused, or would refuse in audit mode: per program and destination (yours; root: all)',
    params: (o) => (o.days !== undefined ? { days: o.days } : {}),
    text: formatAudit,
  },
};

export type QueryName = keyof typeof QUERIES;

async function runQuery<M extends MethodName>(q: Query<M>, o: QueryOptions, arg: string | undefined): Promise<void> {
  if (q.instead && (await q.instead(o))) return;
  let r: Result<M>;
  try {
    const params = await q.params(o, arg);
    r = await withClient(o.run, (c) => c.call(q.method, params));
    r = q.adjust?.(r) ?? r;
  } catch (e) {
    if (!(e instanceof HelperUnavailable) || !q.unavailable) throw e;
    const down = await q.unavailable(e.message);
    print(o.json, down.value, () => down.text);
    throw new ExitCode(1);
  }
  const out = o.json ? (q.json?.(r) ?? safeJson(r)) : q.text(r);
  // An empty list of events prints nothing at all, as it always has.
  if (out !== '') {
    if (o.json) process.stdout.write(`${out}\n`);
    else say(out);
  }
  const code = q.exit?.(r) ?? 0;
  if (code !== 0) throw new ExitCode(code);
}

/** The options each query takes beyond --run and --json. */
const EXTRA_OPTIONS: Partial<Record<QueryName, (cmd: Command) => void>> = {
  events: (cmd) => {
    const l = limitOption();
    cmd.option('--follow', 'keep printing new events').option(l.flags, l.description, l.parse);
  },
  explain: (cmd) => {
    cmd.option('--dst <host:port/proto>', 'for this destination: HOST[:PORT][/tcp|/udp]').addOption(uidOption());
  },
  audit: (cmd) => {
    cmd.addOption(daysOption('records last seen within N days (default 30)'));
  },
};

/** Adds the read-only command `name` to the program. */
export function addQueryCommand(program: Command, name: QueryName): void {
  const q = QUERIES[name] as Query<MethodName>;
  const cmd = program.command(name).description(q.description).addOption(runDirOption());
  if (q.argument) cmd.argument(...q.argument);
  EXTRA_OPTIONS[name]?.(cmd);
  cmd.addOption(jsonOption(name === 'events' ? 'one JSON document per line' : undefined));
  cmd.action(async (...args: unknown[]) => {
    const arg = q.argument ? (args[0] as string) : undefined;
    const o = (q.argument ? args[1] : args[0]) as QueryOptions;
    await runQuery(q, o, arg);
  });
}
