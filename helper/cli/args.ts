// Parsing of the CLI's value arguments: durations and destination specs. Pure (the resolver
// of host names comes in as a function).
import { isIP } from 'node:net';
import type { ExplainDst } from '../../common/api.js';
import type { Destination } from '../../common/profile.js';
import { MAX_RULE_SECONDS } from '../../common/prompts.js';
import { parseCidr } from '../profile/cidr.js';

/** A mistake in how the command was called (exit 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** `90s`, `15m`, `1h`, `1h30m`, `2d`; or `logout` / `until-logout`. */
export function parseDuration(text: string): { seconds: number } | { untilLogout: true } {
  const t = text.trim().toLowerCase();
  if (t === 'logout' || t === 'until-logout') return { untilLogout: true };
  if (!/^(\d+[smhdw])+$/.test(t)) throw new UsageError(`invalid duration "${text}": use e.g. 90s, 15m, 1h, 1h30m, 2d, or until-logout`);
  let seconds = 0;
  for (const m of t.matchAll(/(\d+)([smhdw])/g)) seconds += Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number);
  if (seconds < 1 || seconds > MAX_RULE_SECONDS) throw new UsageError(`invalid duration "${text}": between 1 s and ten years`);
  return { seconds };
}

export interface DstSpec {
  host: string;
  prefix?: number;
  ports?: number[];
  proto?: 'tcp' | 'udp';
}

const PORT_LIST = /^\d{1,5}(,\d{1,5})*$/;

function ports(text: string | undefined, spec: string): number[] | undefined {
  if (text === undefined) return undefined;
  if (!PORT_LIST.test(text)) throw new UsageError(`invalid ports in "${spec}"`);
  const list = text.split(',').map(Number);
  if (list.some((p) => p < 1 || p > 65535)) throw new UsageError(`invalid port in "${spec}": 1..65535`);
  return [...new Set(list)];
}

/**
 * A destination: `HOST`, `ADDR/PREFIX`, either with `:PORT[,PORT…]`, and an optional
 * `/tcp` or `/udp` at the end. IPv6 addresses with a prefix or ports go in brackets:
 * `[fd00:7467::2]:443/tcp`, `[fd00:7467::]/64`.
 */
export function parseDstSpec(spec: string): DstSpec {
  let rest = spec.trim();
  let proto: 'tcp' | 'udp' | undefined;
  const p = /\/(tcp|udp)$/i.exec(rest);
  if (p) {
    proto = (p[1] as string).toLowerCase() as 'tcp' | 'udp';
    rest = rest.slice(0, -p[0].length);
  }
  let m: RegExpExecArray | null;
  let out: DstSpec;
  if ((m = /^\[([0-9A-Fa-f:.]+)\](?:\/(\d{1,3}))?(?::([\d,]+))?$/.exec(rest))) {
    out = { host: m[1] as string, ...(m[2] ? { prefix: Number(m[2]) } : {}) };
    const pl = ports(m[3], spec);
    if (pl) out.ports = pl;
  } else if ((rest.match(/:/g) ?? []).length > 1) {
    const [host, prefix, extra] = rest.split('/');
    if (extra !== undefined || !host || isIP(host) !== 6) throw new UsageError(`invalid destination "${spec}"`);
    out = { host, ...(prefix !== undefined ? { prefix: Number(prefix) } : {}) };
  } else if ((m = /^([A-Za-z0-9][A-Za-z0-9.-]*)(?:\/(\d{1,3}))?(?::([\d,]+))?$/.exec(rest))) {
    out = { host: m[1] as string, ...(m[2] ? { prefix: Number(m[2]) } : {}) };
    const pl = ports(m[3], spec);
    if (pl) out.ports = pl;
  } else {
    throw new UsageError(`invalid destination "${spec}": use HOST[:PORT[,PORT…]][/tcp|/udp], ADDR/PREFIX[:PORTS], or [IPV6]:PORT`);
  }
  if (out.prefix !== undefined && !isIP(out.host)) throw new UsageError(`invalid destination "${spec}": a prefix needs an address, not a name`);
  if (proto) out.proto = proto;
  return out;
}

export type Resolver = (host: string) => Promise<string[]>;

/** A spec as rule destinations: one per address a name resolves to. */
export async function toDestinations(spec: DstSpec, resolve: Resolver): Promise<Destination[]> {
  const addrs = isIP(spec.host) ? [spec.host] : await resolve(spec.host);
  if (!addrs.length) throw new UsageError(`${spec.host} resolves to no address`);
  return addrs.map((addr) => {
    const c = parseCidr(`${addr}/${spec.prefix ?? (addr.includes(':') ? 128 : 32)}`);
    if (!c.ok) throw new UsageError(`invalid destination ${addr}${spec.prefix !== undefined ? `/${spec.prefix}` : ''}: ${c.message}`);
    return { cidr: c.cidr.text, ...(spec.ports ? { ports: spec.ports } : {}), ...(spec.proto ? { proto: spec.proto } : {}) };
  });
}

/** `HOST[:PORT][/PROTO]` for explain: one address (the first a name resolves to), tcp by default. */
export async function toExplainDst(text: string, resolve: Resolver): Promise<ExplainDst> {
  const spec = parseDstSpec(text);
  if (spec.prefix !== undefined || (spec.ports?.length ?? 0) > 1) throw new UsageError(`--dst takes one address and at most one port: HOST:PORT[/PROTO]`);
  const addr = isIP(spec.host) ? spec.host : (await resolve(spec.host))[0];
  if (!addr) throw new UsageError(`${spec.host} resolves to no address`);
  const port = spec.ports?.[0];
  return { addr, ...(port !== undefined ? { port } : {}), proto: spec.proto ?? 'tcp' };
}

/** The largest pid Linux can hand out (PID_MAX_LIMIT on 64-bit; /proc/sys/kernel/pid_max is at most this). */
export const PID_MAX_LIMIT = 4_194_304;

/**
 * explain's TARGET read as a PID: digits only, 1 (init) up to PID_MAX_LIMIT. Undefined when
 * TARGET is not written as a number (a path or a rule). A number with a sign (`+5`, `-5`),
 * 0, or one above the limit is a usage error: it names no process (write `./+5` for a file
 * of that name). Whether the process exists is the helper's to say. Pure.
 * @throws UsageError
 */
export function parsePid(target: string): number | undefined {
  if (!/^[+-]?\d+$/.test(target)) return undefined;
  const pid = /^\d{1,8}$/.test(target) ? Number(target) : NaN;
  if (!(pid >= 1 && pid <= PID_MAX_LIMIT)) {
    throw new UsageError(`invalid PID "${target}": a process id is a number from 1 to ${PID_MAX_LIMIT}, without a sign (a file of that name: ./${target})`);
  }
  return pid;
}
