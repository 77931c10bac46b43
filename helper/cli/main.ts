#!/usr/bin/env node
// `tunnelgate`: the helper itself (`tunnelgate helper`) and its client commands.
// Exit codes: 0 ok, 1 failure or deny, 2 usage error, 126 not allowed to use the tunnel.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { HelperClient, HelperError, HelperUnavailable } from '../../common/node/client.js';
import { resolvePaths } from '../daemon/config.js';
import { runHelper, uninstallRules } from '../daemon/helper.js';
import { VERSION } from '../daemon/version.js';
import { DEFAULT_KEY_NAME, encodeSignature, keygen, sign } from '../profile/signing.js';
import { writeFileAtomic } from '../profile/store.js';
import { formatProblems, validateProfile } from '../profile/validate.js';
import { formatList, formatStatus } from './format.js';
import { LaunchError, runWithTunnel } from './launch.js';

class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

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

  const profile = program.command('profile').description('IT profiles: validate, keys, signatures');
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
