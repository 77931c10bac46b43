// The only code that talks to nft. Every change is one `nft -f -` transaction
// that names our table and nothing else.
import { createHash } from 'node:crypto';
import type { Runner } from './run.js';

export const TABLE = 'tunnelgate';
export const FAMILY = 'inet';

/**
 * A digest of `nft list table inet tunnelgate` output that stays the same while the table
 * is what the helper applied (issue 9.0): counter values are zeroed, and the elements of
 * every `type iface_index` set (`gated_if`, each zone's `zN_if`, `enforce_if`: printed as
 * interface *names* when the index exists, so a rename would change the text) are reduced
 * to their number. Any other change — a rule, a chain, a set element, a flag — changes the
 * digest. Pure.
 */
export function tableDigest(listing: string): string {
  const text = listing
    .replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0')
    .replace(/(set \S+ \{\s*type iface_index\b[^{}]*?elements = \{)([^}]*)\}/g, (_m, head: string, body: string) => `${head} ${body.split(',').filter((e) => e.trim()).length} }`);
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The outline of a table: its comment and the names of its chains and sets, from a listing
 * or from the text the helper rendered (both use nft's `chain NAME {` / `set NAME {`
 * syntax). Two tables with one outline were rendered for the same policy shape. Pure.
 */
export function tableOutline(text: string): string {
  const comment = /comment "([^"]*)"/.exec(text)?.[1] ?? '';
  const names = [...text.matchAll(/^\s*(chain|set) (\S+) \{/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
  return [comment, ...new Set(names)].join('\n');
}

export class Nft {
  constructor(private readonly run: Runner) {}

  /** Apply a rendered transaction atomically; nft rejects it whole or applies it whole. */
  async apply(transaction: string): Promise<void> {
    await this.run('nft', ['-f', '-'], { input: transaction });
  }

  async tableExists(): Promise<boolean> {
    return (await this.listTable()) !== undefined;
  }

  /** `nft list table inet tunnelgate` as the kernel has it now; undefined when there is no such table. */
  async listTable(): Promise<string | undefined> {
    const r = await this.run('nft', ['list', 'table', FAMILY, TABLE], { reject: false });
    return r.exitCode === 0 ? r.stdout : undefined;
  }

  async deleteTable(): Promise<void> {
    if (await this.tableExists()) await this.apply(`delete table ${FAMILY} ${TABLE}\n`);
  }

  /** Packets and bytes of a named counter in our table; zeros when it does not exist. */
  async counter(name: string): Promise<{ packets: number; bytes: number }> {
    const r = await this.run('nft', ['-j', 'list', 'counter', FAMILY, TABLE, name], { reject: false });
    if (r.exitCode !== 0) return { packets: 0, bytes: 0 };
    const doc = JSON.parse(r.stdout) as { nftables: Array<{ counter?: { packets: number; bytes: number } }> };
    const c = doc.nftables.find((o) => o.counter)?.counter;
    return { packets: c?.packets ?? 0, bytes: c?.bytes ?? 0 };
  }
}
