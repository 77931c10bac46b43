// Layering is enforced here, not by review (STYLE.md 1). Every product folder has an
// allow-list of the folders it may import from; a product file in no layer fails lint;
// import cycles fail lint; no product function runs past 100 lines.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const nodeBuiltins = ['node:*', 'fs', 'child_process', 'net', 'os', 'path', 'crypto'];

/**
 * Each layer: the files it covers, and the folders (or files) of this repository it may
 * import from besides its own. Paths are relative to the repository root. Lower layers
 * come first; nothing imports upwards.
 */
const layers = [
  { name: 'common', files: ['common/*.ts'], own: 'common', may: [],
    why: 'common/*.ts is shared with the renderer: it imports only common/*.ts.' },
  { name: 'common/node', files: ['common/node/**/*.ts'], own: 'common/node', may: ['common'],
    why: 'common/node is shared by helper, CLI and main: it imports only common/.' },
  { name: 'helper/native', files: ['helper/native/**/*.ts'], own: 'helper/native', may: [],
    why: 'helper/native wraps the addon and imports nothing of ours.' },
  { name: 'helper/kernel', files: ['helper/kernel/**/*.ts'], own: 'helper/kernel', may: ['common', 'helper/native'],
    why: 'helper/kernel is the thin edge to the kernel: it imports only common/ and the addon.' },
  { name: 'helper/profile', files: ['helper/profile/**/*.ts'], own: 'helper/profile', may: ['common', 'helper/kernel'],
    why: 'helper/profile (validation, signatures, sources) sits on kernel/ and common/ only.' },
  { name: 'helper/policy', files: ['helper/policy/**/*.ts'], own: 'helper/policy', may: ['common', 'helper/profile'],
    why: 'helper/policy is pure: merge and decide from common/ and profile/ types.' },
  { name: 'helper/ruleset', files: ['helper/ruleset/**/*.ts'], own: 'helper/ruleset', may: ['common', 'helper/policy', 'helper/kernel', 'helper/profile/cidr.ts'],
    why: 'helper/ruleset renders a policy to nft text: policy/, common/ and the address arithmetic of profile/cidr.ts only.' },
  { name: 'helper/identity', files: ['helper/identity/**/*.ts'], own: 'helper/identity',
    may: ['common', 'helper/kernel', 'helper/native', 'helper/policy', 'helper/profile'],
    why: 'helper/identity reads what a process is: kernel/, policy/ and common/ only.' },
  { name: 'helper/evidence', files: ['helper/evidence/**/*.ts'], own: 'helper/evidence',
    may: ['common', 'helper/kernel', 'helper/policy', 'helper/profile'],
    why: 'helper/evidence stores attempts and replays them against policies.' },
  { name: 'helper/store', files: ['helper/store/**/*.ts'], own: 'helper/store', may: ['common', 'helper/kernel'],
    why: 'helper/store keeps the files of the state dir (user decisions, the audit trail, their write failures): kernel/ and common/ only.' },
  { name: 'helper/core', files: ['helper/core/**/*.ts'], own: 'helper/core',
    may: ['common', 'helper/config.ts', 'helper/native', 'helper/kernel', 'helper/profile', 'helper/policy', 'helper/ruleset', 'helper/identity', 'helper/evidence', 'helper/store'],
    why: 'helper/core (the stateful core) never imports the API edge, the CLI or start-up.' },
  { name: 'helper/admission', files: ['helper/admission/**/*.ts'], own: 'helper/admission',
    may: ['common', 'helper/native', 'helper/kernel', 'helper/policy', 'helper/identity', 'helper/core/event-bus.ts'],
    why: 'helper/admission (the proc-connector watcher and the fanotify exec hold) decides from identity/ and policy/ and reports on the event bus; the gate reaches it only through start-up.' },
  { name: 'helper/api', files: ['helper/api/**/*.ts'], own: 'helper/api',
    may: ['common', 'helper/config.ts', 'helper/native', 'helper/kernel', 'helper/profile', 'helper/policy', 'helper/identity', 'helper/evidence', 'helper/core'],
    why: 'helper/api is the edge: it checks, calls the core and returns; it never imports start-up or the CLI.' },
  { name: 'helper/cli', files: ['helper/cli/**/*.ts'], own: 'helper/cli',
    may: ['common', 'helper/profile', 'helper/kernel', 'helper/config.ts', 'helper/version.ts', 'helper/startup.ts'],
    why: 'helper/cli is a client of the helper: common/, the offline profile tools, and start-up for `tunnelgate helper`.' },
  { name: 'helper (start-up)', files: ['helper/*.ts'], own: 'helper', may: ['common'],
    why: 'helper/*.ts is start-up wiring: it may import any helper/ folder.' },
  { name: 'main', files: ['main/**/*.ts', 'main/**/*.cts'], own: 'main', may: ['common'],
    why: 'main/ talks to the helper only through common/node/client.' },
  { name: 'renderer', files: ['renderer/**/*.ts'], own: 'renderer', may: ['common/prompts.ts', 'common/format.ts', 'common/api.ts', 'common/events.ts', 'common/ipc.ts', 'common/policy.ts', 'common/profile.ts', 'common/attempts.ts', 'common/audit.ts', 'common/ui.ts'],
    why: 'renderer/ is untrusted web content: it imports only common/*.ts and talks through the preload API.' },
  // Tests, benchmarks and build tooling may import anything.
  { name: 'tests, bench, packaging', files: ['test/**/*.ts', 'bench/**/*.ts', 'packaging/**/*.ts', 'vitest.config.ts'], own: '.', may: [], why: '' },
];

const restrictedZones = (layer) =>
  layer.own === '.'
    ? []
    : [{
        target: `./${layer.own}${layer.own.endsWith('.ts') ? '' : '/'}`,
        from: './',
        except: ['./node_modules', `./${layer.own}`, ...layer.may.map((m) => `./${m}`)],
        message: layer.why,
      }];

const productFiles = layers.filter((l) => l.own !== '.').flatMap((l) => l.files);

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver': undefined,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: ['tsconfig.json', 'tsconfig.renderer.json'] })],
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  // Import cycles and overlong functions in product code.
  {
    files: productFiles,
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'max-lines-per-function': ['error', { max: 100, skipBlankLines: true, skipComments: true }],
    },
  },
  // A product file that no layer covers fails: add its folder above with an allow-list.
  {
    files: ['**/*.ts', '**/*.cts', '**/*.mts'],
    ignores: [...layers.flatMap((l) => l.files), '**/*.d.ts'],
    rules: {
      'no-restricted-syntax': ['error', { selector: 'Program', message: 'This file is in no layer of eslint.config.js: add its folder there with an allow-list of what it may import.' }],
    },
  },
  // One block per layer: what it may import from this repository.
  ...layers
    .filter((l) => l.own !== '.')
    .map((l) => ({ files: l.files, rules: { 'import-x/no-restricted-paths': ['error', { zones: restrictedZones(l) }] } })),
  // Runtimes: common/*.ts and renderer/ have no Node; helper/ never sees Electron.
  {
    files: ['common/*.ts', 'renderer/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['electron', ...nodeBuiltins], message: 'common/*.ts and renderer/ run in the browser: no Node, no Electron.' }] }],
    },
  },
  {
    files: ['helper/**/*.ts', 'common/node/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['electron'], message: 'helper/ runs without any UI.' }] }],
    },
  },
);
