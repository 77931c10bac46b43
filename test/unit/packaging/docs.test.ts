// Man pages and completion generated from the commander program (packaging/docs.ts), and the
// entry rewrite that lets the CLI be bundled as CommonJS (packaging/bundle.ts).
import { Command, Option } from 'commander';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../../helper/cli/program.js';
import { rewriteEntry } from '../../../packaging/entry-rewrite.js';
import { bashCompletion, cliManMarkdown, commandTree, fishCompletion, profileManMarkdown } from '../../../packaging/docs.js';

const REPO = path.resolve(import.meta.dirname, '../../..');

/** A program with the CLI's kinds of commands: nested, arguments, choices, env, negation. */
function sample(): Command {
  const p = new Command('tg').description('sample cli').version('1.2.3');
  p.command('status').description('show the state').option('--json', 'one JSON document').addOption(new Option('--run <dir>', 'runtime dir').env('TG_RUN'));
  p.command('answer').description('answer a prompt').argument('<id>', 'the prompt').addOption(new Option('--scope <scope>', 'how wide').choices(['tunnel', 'destination']));
  const profile = p.command('profile').description('profiles');
  profile.command('validate').description('check a file').argument('<file>');
  profile.command('sign').description('sign a file').argument('<file>').requiredOption('--key <key>', 'private key');
  return p;
}

const extras = { version: '1.2.3', description: 'A sample.', exitStatus: [['0', 'ok']] as [string, string][], files: [['/etc/tg', 'config']] as [string, string][], seeAlso: ['**nft**(8)'] };

describe('man page from the commander program', () => {
  it('lists every command, argument and option, with env vars and choices', () => {
    const md = cliManMarkdown(sample(), extras);
    expect(md.split('\n')[0]).toBe("% TG(8) tg 1.2.3 | System Manager's Manual");
    for (const s of ['## tg status', '## tg answer', '## tg profile validate', '## tg profile sign', '**--key \\<key\\>**', 'choices: "tunnel", "destination"', '**TG_RUN**']) {
      expect(md).toContain(s);
    }
    expect(commandTree(sample()).map((t) => t.path.join(' '))).toEqual(['status', 'answer', 'profile', 'profile validate', 'profile sign']);
  });

  it('pandoc turns it into a man page that man(1) formats', () => {
    const roff = execFileSync('pandoc', ['--standalone', '--from', 'markdown-smart', '--to', 'man'], { input: cliManMarkdown(sample(), extras), encoding: 'utf8' });
    expect(roff).toMatch(/^\.TH "TG" "8"/m);
    const text = execFileSync('man', ['-l', '-'], { input: roff, encoding: 'utf8', env: { ...process.env, MANWIDTH: '100', MAN_KEEP_FORMATTING: '0' } });
    // man(1) marks bold and underline by overstriking: drop that to read the text.
    expect(text.replace(new RegExp(`.${String.fromCharCode(8)}`, 'g'), '')).toContain('tg profile sign FILE [OPTIONS]');
  });

  it('the profile page takes its field reference from the schema', () => {
    const schema = JSON.parse(readFileSync(path.join(REPO, 'schema/profile-v1.schema.json'), 'utf8')) as Record<string, unknown>;
    const prose = readFileSync(path.join(REPO, 'packaging/man/tunnelgate-profile.5.md'), 'utf8');
    const md = profileManMarkdown(prose, schema, '9.9.9');
    expect(md).toContain('% TUNNELGATE-PROFILE(5) tunnelgate 9.9.9');
    expect(md).toContain('**userPrompts** (required)');
    expect(md).toContain('one of `allow`, `deny`');
    expect(md).toContain('## rule');
    expect(md).not.toContain('<!-- FIELDS -->');
  });
});

describe('shell completion from the commander program', () => {
  /** What bash completes for the words typed so far (the last one being completed). */
  function complete(words: string[]): string[] {
    const script = `${bashCompletion(sample())}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_tg; printf '%s\\n' "\${COMPREPLY[@]}"`;
    return execFileSync('bash', ['-c', script], { encoding: 'utf8', cwd: REPO }).split('\n').filter(Boolean).sort();
  }

  it('bash: commands, subcommands, options, choices', () => {
    expect(complete(['tg', ''])).toEqual(['--help', '--version', 'answer', 'profile', 'status'].sort());
    expect(complete(['tg', 'st'])).toEqual(['status']);
    expect(complete(['tg', 'profile', ''])).toEqual(['--help', 'sign', 'validate'].sort());
    expect(complete(['tg', 'status', '--'])).toEqual(['--help', '--json', '--run'].sort());
    expect(complete(['tg', 'answer', 'abc', '--scope', ''])).toEqual(['destination', 'tunnel']);
    expect(complete(['tg', 'profile', 'validate', 'packagi'])).toEqual(['packaging']);
  });

  it('fish: one complete line per command and option', () => {
    const fish = fishCompletion(sample());
    expect(fish).toContain("complete -c tg -n '__fish_use_subcommand' -a status -d 'show the state'");
    expect(fish).toContain("complete -c tg -n '__fish_seen_subcommand_from answer' -l scope -x -a 'tunnel destination' -d 'how wide'");
    expect(fish).toContain("complete -c tg -n '__fish_seen_subcommand_from sign; and __fish_seen_subcommand_from profile' -l key -r -F -d 'private key'");
  });
});

describe("the real CLI's man page and completion", () => {
  it('pick up profile verify and the --json of profile validate', () => {
    const program = buildProgram();
    const md = cliManMarkdown(program, extras);
    for (const s of ['## tunnelgate profile verify', '## tunnelgate profile validate']) expect(md).toContain(s);
    const section = (name: string) => md.slice(md.indexOf(`## tunnelgate ${name}`), md.indexOf('\n## ', md.indexOf(`## tunnelgate ${name}`) + 1));
    expect(section('profile validate')).toContain('**--json**');
    for (const s of ['**--etc \\<dir\\>**', 'TUNNELGATE\\_ETC', '**--state \\<dir\\>**', '**--json**', '*FILE*\n:   the profile file']) expect(section('profile verify')).toContain(s);
    const script = `${bashCompletion(program)}
for words in "tunnelgate profile ''" "tunnelgate profile verify x --"; do
  eval "COMP_WORDS=($words)"; COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _tunnelgate; echo "\${COMPREPLY[*]}"
done`;
    const [profileWords, verifyOptions] = execFileSync('bash', ['-c', script], { encoding: 'utf8' }).split('\n');
    expect(profileWords?.split(' ')).toContain('verify');
    expect(verifyOptions?.split(' ').sort()).toEqual(['--etc', '--help', '--json', '--state']);
    expect(fishCompletion(program)).toContain("complete -c tunnelgate -n '__fish_seen_subcommand_from validate; and __fish_seen_subcommand_from profile' -l json");
  });
});

describe('bundling the CLI entry as CommonJS', () => {
  const entry = "export async function main(argv: string[]) { return 0; }\n\nprocess.exitCode = await main(process.argv);\n";

  it('run: the top-level await becomes a promise chain', () => {
    expect(rewriteEntry(entry, 'run')).toContain('void main(process.argv).then((code) => { process.exitCode = code; });');
    expect(rewriteEntry(entry, 'run')).not.toContain('await main(process.argv)');
  });

  it('library (docs generator): the CLI does not run', () => {
    expect(rewriteEntry(entry, 'library')).not.toContain('main(process.argv)');
  });

  it('refuses an entry whose last statement changed, instead of guessing', () => {
    expect(() => rewriteEntry('await run();\n', 'run')).toThrow(/update packaging\/bundle.ts/);
  });

  it('the real entry today has the expected last statement', () => {
    expect(() => rewriteEntry(readFileSync(path.join(REPO, 'helper/main.ts'), 'utf8'), 'run')).not.toThrow();
  });
});
