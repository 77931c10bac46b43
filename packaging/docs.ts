// Man pages and shell completion generated from ONE source each, so they cannot drift:
// the CLI's commander program (the same objects `tunnelgate --help` prints) and the
// profile JSON Schema plus a prose page. Pure: text in, text out; gen-docs.ts writes files
// and converts the markdown to roff with pandoc.
import type { Argument, Command, Option } from 'commander';

/** The commands under CMD that a user sees (no implicit `help`), depth first, with their path. */
export function commandTree(cmd: Command, prefix: string[] = []): { path: string[]; cmd: Command }[] {
  const help = cmd.createHelp();
  const out: { path: string[]; cmd: Command }[] = [];
  for (const sub of help.visibleCommands(cmd)) {
    if (sub.name() === 'help') continue;
    const p = [...prefix, sub.name()];
    out.push({ path: p, cmd: sub });
    out.push(...commandTree(sub, p));
  }
  return out;
}

const visibleOptions = (cmd: Command): Option[] => cmd.createHelp().visibleOptions(cmd).filter((o) => o.long !== '--help');
const args = (cmd: Command): readonly Argument[] => cmd.registeredArguments;

/** Markdown-escapes text that goes into a pandoc man page. */
const md = (s: string) => s.replace(/([\\`*_[\]<>#|])/g, '\\$1');

/** Prose the program cannot say about itself: exit codes, files, environment. */
export interface CliManExtras {
  version: string;
  description: string;
  exitStatus: [code: string, meaning: string][];
  files: [path: string, meaning: string][];
  seeAlso: string[];
}

/** tunnelgate(8) as pandoc markdown: every command, argument and option of PROGRAM. */
export function cliManMarkdown(program: Command, x: CliManExtras): string {
  const help = program.createHelp();
  const name = program.name();
  const lines: string[] = [
    `% ${name.toUpperCase()}(8) ${name} ${x.version} | System Manager's Manual`,
    '',
    '# NAME',
    '',
    `${name} - ${md(program.description())}`,
    '',
    '# SYNOPSIS',
    '',
    `**${name}** *COMMAND* [*OPTIONS*] [*ARGUMENTS*]`,
    '',
    `**${name}** **--version** | **--help**`,
    '',
    '# DESCRIPTION',
    '',
    x.description,
    '',
    '# COMMANDS',
    '',
  ];
  for (const { path, cmd } of commandTree(program)) {
    if (cmd.commands.length && !args(cmd).length && !visibleOptions(cmd).length) {
      lines.push(`## ${name} ${path.join(' ')}`, '', md(cmd.description()), '');
      continue;
    }
    lines.push(`## ${name} ${path.join(' ')}`, '', `**${name} ${path.join(' ')}**${args(cmd).map((a) => ` ${argTerm(a)}`).join('')}${visibleOptions(cmd).length ? ' [*OPTIONS*]' : ''}`, '', md(cmd.description()), '');
    for (const a of args(cmd)) lines.push(argTerm(a), ':   ' + md(a.description || a.name()), '');
    for (const o of visibleOptions(cmd)) lines.push(`**${md(help.optionTerm(o))}**`, ':   ' + md(help.optionDescription(o)), '');
  }
  lines.push('# EXIT STATUS', '');
  for (const [c, m] of x.exitStatus) lines.push(`**${c}**`, `:   ${m}`, '');
  lines.push('# ENVIRONMENT', '');
  const envs = new Map<string, string>();
  for (const { cmd } of commandTree(program)) for (const o of visibleOptions(cmd)) if (o.envVar) envs.set(o.envVar, `the same as **${o.long}**: ${md(o.description)}`);
  for (const [k, v] of [...envs].sort()) lines.push(`**${k}**`, `:   ${v}`, '');
  lines.push('# FILES', '');
  for (const [f, m] of x.files) lines.push(`*${f}*`, `:   ${m}`, '');
  lines.push('# SEE ALSO', '', x.seeAlso.join(', '), '');
  return lines.join('\n');
}

function argTerm(a: Argument): string {
  const n = `*${a.name().toUpperCase()}*${a.variadic ? '...' : ''}`;
  return a.required ? n : `[${n}]`;
}

/** The long and short flags of an option, and whether it takes a value. */
function flagsOf(o: Option): { names: string[]; takesValue: boolean; choices?: readonly string[] } {
  return { names: [o.long, o.short].filter((f): f is string => !!f), takesValue: o.required || o.optional, choices: o.argChoices };
}

/**
 * A bash completion script for PROGRAM: completes command words, then each command's options,
 * the choices of an option that has them, and file names for arguments and path-like values.
 */
export function bashCompletion(program: Command): string {
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const tree = commandTree(program);
  const cases: string[] = [];
  const top = tree.filter((t) => t.path.length === 1).map((t) => t.path[0]);
  cases.push(`    '') words_here="${top.join(' ')} --help --version" ;;`);
  for (const { path, cmd } of tree) {
    const subs = cmd.createHelp().visibleCommands(cmd).map((c) => c.name()).filter((n) => n !== 'help');
    const opts = visibleOptions(cmd).flatMap((o) => flagsOf(o).names);
    cases.push(`    '${path.join(' ')}') words_here="${[...subs, ...opts, '--help'].join(' ')}" ;;`);
  }
  const valueCases: string[] = [];
  for (const { path, cmd } of tree) {
    for (const o of visibleOptions(cmd)) {
      const f = flagsOf(o);
      if (!f.takesValue) continue;
      const pattern = f.names.map((n) => `'${path.join(' ')}:${n}'`).join('|');
      valueCases.push(f.choices ? `    ${pattern}) COMPREPLY=($(compgen -W "${f.choices.join(' ')}" -- "$cur")); return ;;` : `    ${pattern}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`);
    }
  }
  return `# bash completion for ${name}(8). Generated from the CLI's own definition by
# packaging/gen-docs.ts: do not edit.
${fn}() {
  local cur prev words_here cmdpath="" i w
  cur=\${COMP_WORDS[COMP_CWORD]}
  prev=\${COMP_WORDS[COMP_CWORD-1]}
  # The command path: the leading words that are commands (not options or their values).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case "$w" in -*) break ;; esac
    case " $(${fn}_subs "$cmdpath") " in *" $w "*) cmdpath=\${cmdpath:+$cmdpath }$w ;; *) break ;; esac
  done
  case "$cmdpath:$prev" in
${valueCases.join('\n')}
  esac
  case "$cmdpath" in
${cases.join('\n')}
    *) words_here="" ;;
  esac
  if [[ "$cur" == -* || -n "$(${fn}_subs "$cmdpath")" ]]; then
    COMPREPLY=($(compgen -W "$words_here" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
${fn}_subs() {
  case "$1" in
${[['', top] as const, ...tree.map((t) => [t.path.join(' '), t.cmd.commands.map((c) => c.name()).filter((n) => n !== 'help')] as const)]
  .map(([p, s]) => `    '${p}') echo "${s.join(' ')}" ;;`)
  .join('\n')}
  esac
}
complete -F ${fn} ${name}
`;
}

/** A fish completion script for PROGRAM (commands, subcommands, options with their descriptions). */
export function fishCompletion(program: Command): string {
  const name = program.name();
  const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const out = [`# fish completion for ${name}(8). Generated by packaging/gen-docs.ts: do not edit.`, `complete -c ${name} -f`];
  const tree = commandTree(program);
  const cond = (path: string[]) =>
    path.length === 0
      ? `__fish_use_subcommand`
      : `__fish_seen_subcommand_from ${path.at(-1)}` + (path.length > 1 ? `; and __fish_seen_subcommand_from ${path[0]}` : '');
  for (const t of tree.filter((x) => x.path.length === 1)) out.push(`complete -c ${name} -n ${q(cond([]))} -a ${t.path[0]} -d ${q(t.cmd.description())}`);
  for (const { path, cmd } of tree) {
    for (const sub of cmd.commands.filter((c) => c.name() !== 'help')) out.push(`complete -c ${name} -n ${q(cond(path))} -a ${sub.name()} -d ${q(sub.description())}`);
    for (const o of visibleOptions(cmd)) {
      const f = flagsOf(o);
      const long = o.long ? ` -l ${o.long.replace(/^--/, '')}` : '';
      const short = o.short ? ` -s ${o.short.replace(/^-/, '')}` : '';
      const value = f.choices ? ` -x -a ${q(f.choices.join(' '))}` : f.takesValue ? ' -r -F' : '';
      out.push(`complete -c ${name} -n ${q(cond(path))}${long}${short}${value} -d ${q(o.description)}`);
    }
    if (args(cmd).length) out.push(`complete -c ${name} -n ${q(cond(path))} -F`);
  }
  return `${out.join('\n')}\n`;
}

type Schema = { [k: string]: unknown };

/** One line describing the constraint of a schema node (following $ref into definitions). */
export function describeSchemaNode(node: Schema, root: Schema): string {
  if (typeof node.$ref === 'string') {
    const name = node.$ref.replace('#/definitions/', '');
    const def = (root.definitions as Record<string, Schema>)[name];
    if (!def) throw new Error(`schema: no definition ${name}`);
    return def.type === 'object' ? `object (see **${name}**)` : describeSchemaNode(def, root);
  }
  if ('const' in node) return `the string \`${String(node.const)}\``;
  if (Array.isArray(node.enum)) return `one of ${node.enum.map((e) => `\`${String(e)}\``).join(', ')}`;
  const parts: string[] = [];
  if (node.type === 'array') {
    parts.push(`array of ${describeSchemaNode(node.items as Schema, root)}`);
    if (typeof node.minItems === 'number') parts.push(`at least ${node.minItems}`);
    if (node.uniqueItems) parts.push('no duplicates');
    return parts.join(', ');
  }
  parts.push(String(node.type ?? 'value'));
  if (typeof node.minimum === 'number') parts.push(`${node.minimum}..${String(node.maximum ?? '')}`);
  if (typeof node.maxLength === 'number') parts.push(`at most ${node.maxLength} characters`);
  if (typeof node.pattern === 'string') parts.push(`matching \`${node.pattern}\``);
  return parts.join(', ');
}

/** The field reference of an object node: each property, whether required, its constraint. */
export function schemaFields(title: string, node: Schema, root: Schema): string {
  const required = new Set((node.required as string[] | undefined) ?? []);
  const lines = [`## ${title}`, ''];
  for (const [k, v] of Object.entries(node.properties as Record<string, Schema>)) {
    lines.push(`**${k}**${required.has(k) ? ' (required)' : ''}`, `:   ${describeSchemaNode(v, root).replace(/\\/g, '\\\\')}`, '');
  }
  return lines.join('\n');
}

/**
 * tunnelgate-profile(5): the prose page with its `<!-- FIELDS -->` marker replaced by the
 * reference generated from the schema (top level, then each object definition).
 */
export function profileManMarkdown(prose: string, schema: Schema, version: string): string {
  if (!prose.includes('<!-- FIELDS -->')) throw new Error('profile prose: no <!-- FIELDS --> marker');
  const defs = schema.definitions as Record<string, Schema>;
  const ref = [
    schemaFields('Top level', schema, schema),
    ...Object.entries(defs).filter(([, d]) => d.type === 'object').map(([n, d]) => schemaFields(n, d, schema)),
  ].join('\n');
  return prose.replace('@VERSION@', version).replace('<!-- FIELDS -->', ref);
}
