// The only code that talks to nft. Every change is one `nft -f -` transaction
// that names our table and nothing else.
import type { Runner } from './run.js';

export const TABLE = 'tunnelgate';
export const FAMILY = 'inet';

export class Nft {
  constructor(private readonly run: Runner) {}

  /** Apply a rendered transaction atomically; nft rejects it whole or applies it whole. */
  async apply(transaction: string): Promise<void> {
    await this.run('nft', ['-f', '-'], { input: transaction });
  }

  async tableExists(): Promise<boolean> {
    const r = await this.run('nft', ['list', 'table', FAMILY, TABLE], { reject: false });
    return r.exitCode === 0;
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
