// The CLI entry's last statement, rewritten for bundling (pure; used by bundle.ts).

/**
 * The entry ends with `process.exitCode = await main(process.argv);`. CommonJS has no
 * top-level await, so for the executable the call becomes a promise chain, and for the
 * docs generator (which imports buildProgram() and must not run the CLI) it goes away.
 * Fails the build if the entry's last statement has another form, rather than guess.
 */
export const RUN_LINE = /^process\.exitCode = await main\(process\.argv\);\s*$/m;

export function rewriteEntry(source: string, mode: 'run' | 'library'): string {
  if (mode === 'library') return source.replace(RUN_LINE, '');
  if (!RUN_LINE.test(source)) throw new Error('packaging: the CLI entry no longer ends with `process.exitCode = await main(process.argv);`: update packaging/bundle.ts');
  return source.replace(RUN_LINE, 'void main(process.argv).then((code) => { process.exitCode = code; });\n');
}
