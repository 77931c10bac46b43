// Bundles the CLI+helper into one CommonJS file for a Node single executable application
// (Node 20's SEA runs one CommonJS script; require() there sees only built-in modules),
// and the docs generator into one ESM file. Run by packaging/build.sh:
//   node dist/packaging/bundle.mjs OUTDIR ENTRY PROGRAM
// ENTRY is the process entry (helper/main.ts) and PROGRAM the module that exports
// buildProgram() (helper/cli/program.ts): build.sh keeps each in one variable.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { rewriteEntry } from './entry-rewrite.js';

function entryPlugin(entry: string, mode: 'run' | 'library'): Plugin {
  const abs = path.resolve(entry);
  return {
    name: 'tunnelgate-entry',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (path.resolve(args.path) !== abs) return undefined;
        return { contents: rewriteEntry(await readFile(abs, 'utf8'), mode), loader: 'ts' };
      });
    },
  };
}

async function main(outdir: string, entry: string, program: string): Promise<void> {
  const common = { bundle: true, platform: 'node' as const, target: 'node20', logLevel: 'warning' as const, legalComments: 'none' as const };
  await build({
    ...common,
    entryPoints: [entry],
    format: 'cjs',
    outfile: path.join(outdir, 'tunnelgate.cjs'),
    plugins: [entryPlugin(entry, 'run')],
    // import.meta is empty in CommonJS: helper/native/index.ts then loads the addons from
    // beside the executable or /usr/lib/tunnelgate/ (the installed layout).
    logOverride: { 'empty-import-meta': 'silent' },
  });
  await build({
    ...common,
    entryPoints: ['packaging/gen-docs.ts'],
    format: 'esm',
    outfile: path.join(outdir, 'gen-docs.mjs'),
    plugins: [entryPlugin(program, 'library')],
    // gen-docs.ts imports buildProgram() from this alias (declared in cli-entry.d.ts).
    alias: { 'tunnelgate-cli-program': path.resolve(program) },
    // esbuild's ESM output for Node needs a require() for the CommonJS dependencies.
    banner: { js: "import { createRequire as __tgCreateRequire } from 'node:module'; const require = __tgCreateRequire(import.meta.url);" },
  });
}

const [outdir, entry, program] = process.argv.slice(2);
if (!outdir || !entry || !program) {
  console.error('usage: bundle.mjs OUTDIR ENTRY PROGRAM');
  process.exit(2);
}
await main(outdir, entry, program);
