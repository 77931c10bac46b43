// Small statistics and formatting helpers for the benchmarks. Benchmarks print figures;
// nothing here passes or fails on a time.

export interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (!samples.length) return { n: 0, min: NaN, median: NaN, max: NaN };
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { n: s.length, min: s[0] as number, median, max: s[s.length - 1] as number };
}

/** Spread of a summary relative to its median: (max - min) / median. */
export const spread = (s: Summary): number => (s.max - s.min) / s.median;

/** A number with a sensible count of significant digits. */
export function num(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return '-';
  if (x === 0) return '0';
  const abs = Math.abs(x);
  if (abs >= 10 ** digits) return x.toFixed(0);
  return x.toPrecision(digits).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
}

export const ms = (x: number): string => (Number.isFinite(x) ? `${num(x)} ms` : '-');
export const pct = (ratio: number): string => (Number.isFinite(ratio) ? `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)}%` : '-');

/** min / median / max in one cell, e.g. "12.1 / 12.4 / 13.0". */
export const mmm = (s: Summary, f: (x: number) => string = (x) => num(x)): string => `${f(s.min)} / ${f(s.median)} / ${f(s.max)}`;

/** A plain-text table with right-aligned numeric columns (every column but the first). */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function heading(title: string): void {
  console.log(`\n${title}\n${'='.repeat(title.length)}`);
}
