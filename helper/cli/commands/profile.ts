// `tunnelgate profile …`: IT's tools for profiles. validate, verify, keygen and sign work
// offline, on files (verify reads the machine's trusted-keys/ and state dir as the helper
// would); test asks the helper to replay its recorded attempts against a draft.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_KEY_NAME } from '../../profile/signing.js';
import { formatProfileTest } from '../format.js';
import { complain, ExitCode, print, say, withClient } from '../io.js';
import { resolvePaths } from '../../config.js';
import { formatVerify } from '../format.js';
import { daysOption, etcOption, jsonOption, runDirOption, stateOption } from '../options.js';

/** A profile that does not validate, where a command needs a valid one (sign): with --json, `{"error": {kind: "invalid-profile", message, problems}}`. */
export class InvalidProfile extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
    after?: string,
  ) {
    super([...problems, ...(after ? [after] : [])].join('\n'));
    this.name = 'InvalidProfile';
  }
}

/** The profile if it is valid; else throws InvalidProfile with every problem (program.ts shows them: stderr, or JSON). The validator (ajv) is loaded only here. */
async function validOrThrow(text: string, file: string, after?: string) {
  const { formatProblems, validateProfile } = await import('../../profile/validate.js');
  const v = validateProfile(text, file);
  if (v.ok) return v;
  throw new InvalidProfile(file, formatProblems(file, v.problems), after);
}

export function addProfileCommands(program: Command): void {
  const profile = program.command('profile').description('IT profiles: validate, test, keys, signatures');
  profile
    .command('test')
    .description('replay the recorded attempts against a draft profile: what it would newly drop or admit (writes nothing)')
    .argument('<file>')
    .addOption(runDirOption())
    .addOption(daysOption('attempts last seen within N days (default 30)'))
    .addOption(jsonOption())
    .action(async (file: string, o: { run?: string; days?: number; json?: boolean }) => {
      const text = await readFile(file, 'utf8');
      const t = await withClient(o.run, (c) => c.call('profile.test', { text, file: path.resolve(file), ...(o.days !== undefined ? { days: o.days } : {}) }));
      print(o.json, t, () => formatProfileTest(t));
    });
  profile
    .command('validate')
    .description('exit 0, or exit 1 with every problem as FILE: path.to.field: message')
    .argument('<file>', 'the profile file')
    .addOption(jsonOption('one JSON document: {file, ok, problems: [{path, message}], warnings, profile}'))
    .action(async (file: string, o: { json?: boolean }) => {
      const { formatProblems, validateProfile, validationReport } = await import('../../profile/validate.js');
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        const message = `cannot read: ${(e as Error).message}`;
        if (o.json) print(true, { file, ok: false, problems: [{ path: '', message }], warnings: [] }, () => '');
        else complain(`${file}: ${message}`);
        throw new ExitCode(1);
      }
      const v = validateProfile(text, file);
      if (o.json) {
        print(true, validationReport(file, v), () => '');
        if (!v.ok) throw new ExitCode(1);
        return;
      }
      if (!v.ok) {
        complain(formatProblems(file, v.problems).join('\n'));
        throw new ExitCode(1);
      }
      for (const w of v.warnings) complain(`${file}: warning: ${w}`);
      say(`${file}: ok (profile ${v.profile.id} version ${v.profile.version}, ${v.profile.rules.length} rules)`);
    });
  profile
    .command('verify')
    .description('what the helper would do with FILE: whether it reads it at all (ETC/profiles.d/*.json), owner and modes of the file and its directories, signature against trusted-keys/, version against the one in force (exit 0: it would be accepted; 1: refused, or never loaded)')
    .argument('<file>', 'the profile file')
    .addOption(etcOption())
    .addOption(stateOption())
    .addOption(jsonOption())
    .action(async (file: string, o: { etc?: string; state?: string; json?: boolean }) => {
      const { readVerifyInput, verifyReport } = await import('../../profile/verify.js');
      const paths = resolvePaths({ etc: o.etc ?? '', state: o.state ?? '' });
      const r = verifyReport(await readVerifyInput(file, paths.etc, paths.state));
      print(o.json, r, () => formatVerify(r));
      if (!r.ok) throw new ExitCode(1);
    });
  profile
    .command('keygen')
    .description('make an ed25519 key pair: NAME.key (private, 0600) and NAME.pub (for trusted-keys/)')
    .requiredOption('--out <dir>', 'directory to write the key pair into')
    .option('--name <name>', 'file name of the pair', DEFAULT_KEY_NAME)
    .addOption(jsonOption('one JSON document: {privateKey, publicKey} (the paths written)'))
    .action(async (o: { out: string; name: string; json?: boolean }) => {
      const { keygen } = await import('../../profile/signing.js');
      const k = await keygen(o.out, o.name);
      print(o.json, { privateKey: path.resolve(k.privateKeyPath), publicKey: path.resolve(k.publicKeyPath) }, () =>
        [
          `private key: ${k.privateKeyPath} (keep it off the workstations)`,
          `public key:  ${k.publicKeyPath} (install it in trusted-keys/ on each workstation)`,
        ].join('\n'),
      );
    });
  profile
    .command('sign')
    .description('write FILE.sig, an ed25519 signature of the exact bytes of FILE')
    .argument('<file>')
    .requiredOption('--key <key>', 'private key file (from profile keygen)')
    .addOption(jsonOption('one JSON document: {file, signature, profile: {id, version}}'))
    .action(async (file: string, o: { key: string; json?: boolean }) => {
      const [bytes, keyPem] = await Promise.all([readFile(file), readFile(o.key, 'utf8')]);
      const v = await validOrThrow(bytes.toString('utf8'), file, `${file}: not signed: fix the problems first`);
      const [{ encodeSignature, sign }, { writeFileAtomic }] = await Promise.all([import('../../profile/signing.js'), import('../../profile/store.js')]);
      await writeFileAtomic(`${file}.sig`, encodeSignature(sign(bytes, keyPem)), 0o644);
      const sig = `${file}.sig`;
      print(o.json, { file: path.resolve(file), signature: path.resolve(sig), profile: { id: v.profile.id, version: v.profile.version } }, () =>
        `${sig}: signed profile ${v.profile.id} version ${v.profile.version}`,
      );
    });
}
