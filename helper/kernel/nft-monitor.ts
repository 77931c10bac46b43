// Notices at once when anyone changes the ruleset, and whether our table was touched or
// deleted (issue 9.13: `nft flush ruleset`, run by Debian's nftables.service on every start
// or reload, deletes `inet tunnelgate`). The kernel announces every committed transaction to
// the NFNLGRP_NFTABLES netlink group; `nft monitor` prints each change as one line and ends
// each transaction with `# new generation N by process PID (COMM)` (nftables 1.0.6, measured
// in the lab: a flush printed ~70 deletes and then the generation line).
import { FAMILY, TABLE } from './nft.js';
import { startMonitor } from './monitor.js';
import type { MonitorOptions } from './monitor.js';
import { NETLINK_NETFILTER } from './netlink.js';

/** NFNLGRP_NFTABLES = 7 (linux/netfilter/nfnetlink.h), as a bit of the first group word. */
const NFNLGRP_NFTABLES_MASK = 1 << (7 - 1);

/** One committed nftables transaction, as the monitor reported it. */
export interface RulesetChange {
  /** The ruleset generation the transaction made. */
  generation: number;
  /** The process that committed it (`nft`, the helper's own nft, iptables-nft…), when the kernel said. */
  pid?: number;
  comm?: string;
  /** The change lines of the transaction (`delete rule inet tunnelgate gate_in handle 53`, …). */
  lines: string[];
  /** Some line names an object of table `inet tunnelgate` (or the table). */
  touchesTable: boolean;
  /**
   * The table is gone after the transaction (a flush of the ruleset, `nft delete table`, …):
   * its last table-level line is a delete. The helper's own replacement deletes and re-adds
   * the table in one transaction, which is not a deletion.
   */
  tableDeleted: boolean;
}

const OBJECT_OF_TABLE = new RegExp(`^(?:add|delete|destroy|flush|replace|insert|update|reset) \\S+ ${FAMILY} ${TABLE}(?=\\s|$)`);
const TABLE_LEVEL = new RegExp(`^(add|delete|destroy) table ${FAMILY} ${TABLE}(?=\\s|$)`);
const GENERATION = /^# new generation (\d+)(?: by process (\d+) \((.*)\))?/;

/**
 * Groups monitor lines into transactions. Pure: feed lines, get a change at each generation
 * line (and none before). Lines that are neither changes nor generations are ignored.
 */
export class ChangeAssembler {
  private pending: string[] = [];

  push(line: string): RulesetChange | undefined {
    const text = line.trim();
    if (!text) return undefined;
    const g = GENERATION.exec(text);
    if (!g) {
      if (!text.startsWith('#')) this.pending.push(text);
      return undefined;
    }
    const lines = this.pending;
    this.pending = [];
    return {
      generation: Number(g[1]),
      ...(g[2] !== undefined ? { pid: Number(g[2]) } : {}),
      ...(g[3] !== undefined ? { comm: g[3] } : {}),
      lines,
      touchesTable: lines.some((l) => OBJECT_OF_TABLE.test(l)),
      tableDeleted: /^(?:delete|destroy)/.test(lines.filter((l) => TABLE_LEVEL.test(l)).at(-1) ?? ''),
    };
  }
}

export interface NftMonitor {
  /** Resolves once the kernel has the monitor subscribed: no later change can be missed. */
  readonly ready: Promise<void>;
  /** Called after every committed transaction (anyone's, the helper's own included). */
  onChange(cb: (change: RulesetChange) => void): () => void;
  /** Called if the monitor dies: changes may have been missed, so check the table and restart it. */
  onLost(cb: (why: string) => void): () => void;
  close(): Promise<void>;
}

/**
 * Start `nft monitor` (in `opts.netns` if given: the namespace whose ruleset is watched).
 * The helper's own transactions are reported too; tell them apart by `pid` (the nft child
 * the helper ran) or, simpler, by checking the kernel's table against the last one applied
 * whenever `touchesTable` is set.
 */
export function startNftMonitor(opts: MonitorOptions = {}): NftMonitor {
  const assembler = new ChangeAssembler();
  const m = startMonitor({ file: 'nft', args: ['monitor'], protocol: NETLINK_NETFILTER, groupMask: NFNLGRP_NFTABLES_MASK, parse: (line) => assembler.push(line) }, opts);
  return { ready: m.ready, onChange: (cb) => m.onEvent(cb), onLost: (cb) => m.onLost(cb), close: () => m.close() };
}
