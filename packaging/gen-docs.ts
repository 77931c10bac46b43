// Writes tunnelgate.8, tunnelgate-profile.5 (pandoc markdown → roff with Debian's pandoc),
// the bash and fish completions into OUTDIR. Bundled by bundle.ts and run by build.sh:
//   node dist/packaging/gen-docs.mjs OUTDIR
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { buildProgram } from 'tunnelgate-cli-program';
import { bashCompletion, cliManMarkdown, fishCompletion, profileManMarkdown } from './docs.js';

const CLI_DESCRIPTION = `**tunnelgate** lets only the programs that an IT profile allows send traffic through a
workstation's WireGuard tunnel interface. Every other program keeps its normal network
access but cannot reach anything through the tunnel.

**tunnelgate helper** is the privileged part: run by **tunnelgate.service**, it owns one
nftables table (**inet tunnelgate**) and one cgroup subtree, and decides by the binary
the kernel reports for each process. The other commands are clients of the helper's
socket in */run/tunnelgate/*; users see and change only their own rules, root sees all.
The offline **profile** commands need no helper.`;

const JSON_ERRORS = `With **--json** every command prints JSON on stdout, also when it fails: a failure after
the command line was read (the helper is down or refused the call, a file cannot be read)
is one document \`{"error": {"kind": "helper-unavailable", "message": "..."}}\` (kinds
**helper-unavailable**, **helper-error** with the helper's **code**, **usage**,
**invalid-profile** with every problem, **failure**) with the exit status it has without
**--json**; every command with output for scripts takes **--json** (all but **helper** and
**run**). **status** with no helper reads the kernel of its own network namespace (as root):
the table **inet tunnelgate** still in force (fail-closed: restart the helper), or none (the
tunnel is not gated); not root it cannot tell; **status --json** then prints
\`{"state": "down", "table": "in-force|absent|unknown", "problems": [...]}\`. A command line
commander cannot parse is a text error on stderr and exit 2.

Logs escape text a program or a file chose: JSON lines (the audit trail, events, the
journal's TUNNELGATE_JSON, the state files) write DEL, C1 controls, bidi marks and overrides
and U+2028/9 as \\uXXXX besides JSON's own escapes; text lines write them as \\n, \\t,
\\r or \\uXXXX. An event's **seq** goes on across helper starts: the helper numbers on from
the last one in the audit trail.`;

async function main(outdir: string): Promise<void> {
  await mkdir(outdir, { recursive: true });
  const program = buildProgram();
  const version = program.version() ?? '0';
  const cli = cliManMarkdown(program, {
    version,
    description: `${CLI_DESCRIPTION}

${JSON_ERRORS}`,
    exitStatus: [
      ['0', 'success; for **explain**: the verdict is allow'],
      ['1', 'failure, a denial, a degraded or stopped gate, an invalid profile, or one **profile verify** finds the helper would refuse'],
      ['2', 'usage error'],
      ['126', '**run**: the program is not allowed to use the tunnel'],
    ],
    files: [
      ['/etc/tunnelgate/profiles.d/', 'signed IT profiles (*NAME*.json and *NAME*.json.sig); see **tunnelgate-profile**(5)'],
      ['/etc/tunnelgate/trusted-keys/', 'ed25519 public keys whose signatures the helper accepts'],
      ['/var/lib/tunnelgate/', 'state: user decisions, the audit trail, the last ruleset (restored at boot by **tunnelgate-restore.service**)'],
      ['/run/tunnelgate/', 'the helper\'s sockets'],
    ],
    seeAlso: ['**tunnelgate-profile**(5)', '**nft**(8)', '**wg-quick**(8)', '**systemd.exec**(5)', '**journalctl**(1)'],
  });
  const schema = JSON.parse(await readFile('schema/profile-v1.schema.json', 'utf8')) as Record<string, unknown>;
  const prose = await readFile('packaging/man/tunnelgate-profile.5.md', 'utf8');
  const profile = profileManMarkdown(prose, schema, version);
  const pages: [string, string][] = [
    ['tunnelgate.8', cli],
    ['tunnelgate-profile.5', profile],
  ];
  for (const [page, text] of pages) {
    await writeFile(path.join(outdir, `${page}.md`), text);
    // pandoc's own man writer: standalone page with the title block as .TH.
    execFileSync('pandoc', ['--standalone', '--from', 'markdown-smart', '--to', 'man', '-o', path.join(outdir, page), path.join(outdir, `${page}.md`)], { stdio: 'inherit' });
  }
  await writeFile(path.join(outdir, 'tunnelgate.bash'), bashCompletion(program));
  await writeFile(path.join(outdir, 'tunnelgate.fish'), fishCompletion(program));
}

const outdir = process.argv[2];
if (!outdir) {
  console.error('usage: gen-docs.mjs OUTDIR');
  process.exit(2);
}
await main(outdir);
