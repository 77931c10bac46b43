// Network interfaces of the helper's namespace: list them (`ip -j link show`) and notice
// every change at once (`ip -o monitor link`: the kernel's RTM_NEWLINK / RTM_DELLINK on
// the RTNLGRP_LINK group; a rename is a NEWLINK with the new name, a move to another
// namespace a DELLINK here). Which indexes to gate is decided in helper/ruleset/interfaces.ts.
import type { Runner } from './run.js';
import { startMonitor } from './monitor.js';
import type { Monitor, MonitorOptions } from './monitor.js';

export interface Link {
  /** The kernel's interface index: stable across renames; kept across a namespace round trip when free. */
  index: number;
  name: string;
}

const NETLINK_ROUTE = 0;
/** RTMGRP_LINK (linux/rtnetlink.h). */
const RTMGRP_LINK = 1;

/** Links from `ip -j link show` output. Throws on text that is not its JSON. */
export function parseLinks(json: string): Link[] {
  const doc = JSON.parse(json) as Array<{ ifindex?: unknown; ifname?: unknown }>;
  return doc
    .filter((l): l is { ifindex: number; ifname: string } => typeof l.ifindex === 'number' && typeof l.ifname === 'string')
    .map((l) => ({ index: l.ifindex, name: l.ifname }))
    .sort((a, b) => a.index - b.index);
}

/** Interfaces of the caller's network namespace now. */
export async function listLinks(run: Runner): Promise<Link[]> {
  return parseLinks((await run('ip', ['-j', 'link', 'show'])).stdout);
}

/** One line of `ip -o monitor link`: `[Deleted ]INDEX: NAME[@PEER]: <FLAGS> …`. */
export interface LinkEvent {
  deleted: boolean;
  index: number;
  name: string;
}

export function parseLinkEvent(line: string): LinkEvent | undefined {
  const m = /^(Deleted )?(\d+): ([^:@\s]+)(?:@[^:\s]*)?:/.exec(line.trim());
  if (!m) return undefined;
  return { deleted: m[1] !== undefined, index: Number(m[2]), name: m[3] as string };
}

/**
 * Every link added, changed (renamed, up/down, moved in) or deleted (or moved out). Lost:
 * changes may have been missed; list the links again and restart it.
 */
export type LinkMonitor = Monitor<LinkEvent>;

/** Start `ip -o monitor link` (in `opts.netns` if given). */
export function startLinkMonitor(opts: MonitorOptions = {}): LinkMonitor {
  return startMonitor({ file: 'ip', args: ['-o', 'monitor', 'link'], protocol: NETLINK_ROUTE, groupMask: RTMGRP_LINK, parse: parseLinkEvent }, opts);
}
