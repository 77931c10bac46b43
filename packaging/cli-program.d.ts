// The module that exports the CLI's commander program; esbuild aliases it to the real file
// (packaging/bundle.ts), so the docs generator names the CLI's location nowhere.
declare module 'tunnelgate-cli-program' {
  import type { Command } from 'commander';
  export function buildProgram(): Command;
}
