// The client commands that change something: run a program with tunnel access, answer a
// prompt, add or revoke a user rule. Each parses its arguments, makes one call to the
// helper and prints what it answered.
import type { Command } from 'commander';
import { Option } from 'commander';
import { PROMPT_DECISIONS, PROMPT_ID_PATTERN, PROMPT_SCOPES } from '../../../common/prompts.js';
import type { PromptDecision, PromptScope } from '../../../common/prompts.js';
import { UsageError } from '../args.js';
import { formatDecision } from '../format.js';
import { destinationsOf, durationParams, ExitCode, print, programPath, runDirOf, withClient } from '../io.js';
import { runWithTunnel } from '../launch.js';
import { collect, jsonOption, runDirOption, uidOption, uidParams } from '../options.js';

const admittedLine = (pids: number[], indent = '') => (pids.length ? [`${indent}admitted now: pid ${pids.join(', ')}`] : []);

interface AnswerOptions {
  run?: string;
  for?: string;
  dst?: string[];
  scope?: PromptScope;
  json?: boolean;
}

/** `tunnelgate answer ID DECISION`: the arguments checked before anything is asked. */
function checkAnswer(id: string, decision: string, o: AnswerOptions): PromptDecision {
  if (!(PROMPT_DECISIONS as readonly string[]).includes(decision)) throw new UsageError(`unknown decision "${decision}": one of ${PROMPT_DECISIONS.join(', ')}`);
  if (!PROMPT_ID_PATTERN.test(id)) throw new UsageError(`invalid prompt id "${id}"`);
  if ((decision === 'allow-for') !== (o.for !== undefined)) throw new UsageError(decision === 'allow-for' ? 'allow-for needs --for DURATION' : '--for goes with allow-for');
  return decision as PromptDecision;
}

export function addRunCommand(program: Command): void {
  program
    .command('run')
    .description('start CMD with tunnel access if a rule allows the program it runs (a wrapper script is followed to the program it execs); exit 126 if not')
    .addOption(runDirOption())
    .argument('<cmd...>', 'the command and its arguments (after --)')
    .passThroughOptions()
    .action(async (cmd: string[], o: { run?: string }) => {
      throw new ExitCode(await runWithTunnel(runDirOf(o.run), cmd));
    });
}

export function addAnswerCommand(program: Command): void {
  program
    .command('answer')
    .description(`answer a prompt: ${PROMPT_DECISIONS.join(', ')}`)
    .addOption(runDirOption())
    .argument('<id>', 'the prompt (tunnelgate prompts)')
    .argument('<decision>', PROMPT_DECISIONS.join('|'))
    .option('--for <duration>', 'allow-for: how long (90s, 15m, 1h, 2d, until-logout)')
    .option('--dst <spec>', 'only this destination (repeatable); without: the scope given by --scope', collect)
    .addOption(new Option('--scope <scope>', 'tunnel: the whole tunnel; destination: the destinations it tried').choices(PROMPT_SCOPES))
    .addOption(jsonOption())
    .action(async (id: string, decisionText: string, o: AnswerOptions) => {
      const decision = checkAnswer(id, decisionText, o);
      const destinations = await destinationsOf(o.dst);
      const params = { id, decision, ...(o.scope ? { scope: o.scope } : {}), ...(destinations ? { destinations } : {}), ...durationParams(o.for) };
      const r = await withClient(o.run, (c) => c.call('answer', params));
      print(o.json, r, () =>
        [`prompt ${id}: ${r.decision}`, ...(r.decisionRecord ? [`  ${formatDecision(r.decisionRecord)}`] : []), ...admittedLine(r.admitted, '  ')].join('\n'),
      );
    });
}

export function addAllowCommand(program: Command): void {
  program
    .command('allow')
    .description('add a user rule for PATH (refused where policy forbids it)')
    .addOption(runDirOption())
    .argument('<path>', 'the program (symbolic links are resolved)')
    .option('--dst <spec>', 'only this destination (repeatable): HOST[:PORT[,PORT…]][/tcp|/udp], ADDR/PREFIX[:PORTS], [IPV6]:PORT', collect)
    .option('--for <duration>', 'only for this long (90s, 15m, 1h, 2d, until-logout)')
    .option('--no-pin', "do not pin the binary's sha256 (an update keeps the rule)")
    .addOption(uidOption())
    .addOption(jsonOption())
    .action(async (file: string, o: { run?: string; dst?: string[]; for?: string; pin: boolean; uid?: number; json?: boolean }) => {
      const destinations = await destinationsOf(o.dst);
      const p = await programPath(file);
      const params = { path: p, ...(destinations ? { destinations } : {}), ...durationParams(o.for), pin: o.pin, ...uidParams(o.uid) };
      const r = await withClient(o.run, (c) => c.call('allow', params));
      print(o.json, r, () => [`allowed: ${formatDecision(r.rule)}`, ...admittedLine(r.admitted)].join('\n'));
    });
}

export function addRevokeCommand(program: Command): void {
  program
    .command('revoke')
    .description('remove a user rule (by PATH, rule key or id); its processes lose tunnel access at once')
    .addOption(runDirOption())
    .argument('<target>', 'PATH, or a RULE-ID from tunnelgate list / decisions')
    .addOption(uidOption())
    .addOption(jsonOption())
    .action(async (target: string, o: { run?: string; uid?: number; json?: boolean }) => {
      const t = target.includes('/') && !target.startsWith('user.') ? await programPath(target) : target;
      const r = await withClient(o.run, (c) => c.call('revoke', { target: t, ...uidParams(o.uid) }));
      print(o.json, r, () => [...r.removed.map((d) => `revoked: ${formatDecision(d)}`), `${r.released} process(es) lost tunnel access`].join('\n'));
    });
}
