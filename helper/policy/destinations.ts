// Destinations of user decisions: from what a program tried, and whether a rule's scope covers it.
import type { AttemptDestination } from '../../common/attempts.js';
import type { Destination } from '../../common/profile.js';
import { parseCidr, cidrContains } from '../profile/cidr.js';

/** The narrowest rule destination for what a program tried: that address, port and protocol. */
export function destinationOf(dst: AttemptDestination): Destination {
  const cidr = `${dst.addr}/${dst.addr.includes(':') ? 128 : 32}`;
  const canonical = parseCidr(cidr);
  const out: Destination = { cidr: canonical.ok ? canonical.cidr.text : cidr };
  if (dst.proto === 'tcp' || dst.proto === 'udp') {
    out.proto = dst.proto;
    if (dst.port !== undefined) out.ports = [dst.port];
  }
  return out;
}

/**
 * Does a rule destination include this one? A port or protocol the rule names must match;
 * ports exist only for tcp and udp (the ruleset matches them as `th dport` of those two).
 * The one test of a destination against a scope: replay, explain, prompts and the evidence
 * all use it.
 */
export function covers(d: Destination, dst: { addr: string; port?: number; proto?: string }): boolean {
  const net = parseCidr(d.cidr);
  const host = parseCidr(`${dst.addr}/${dst.addr.includes(':') ? 128 : 32}`);
  if (!net.ok || !host.ok || !cidrContains(net.cidr, host.cidr)) return false;
  if (d.proto !== undefined && d.proto !== dst.proto) return false;
  if (d.ports?.length) return (dst.proto === 'tcp' || dst.proto === 'udp') && dst.port !== undefined && d.ports.includes(dst.port);
  return true;
}

/**
 * Does a scope include this destination? A scope is a rule's (or an answer's) destinations:
 * absent or empty means the whole tunnel, as the ruleset renders it.
 */
export function scopeCovers(scope: readonly Destination[] | undefined, dst: { addr: string; port?: number; proto?: string }): boolean {
  return !scope?.length || scope.some((d) => covers(d, dst));
}

/** `198.18.0.0/24:22,443/tcp` */
export function formatRuleDestination(d: Destination): string {
  return `${d.cidr}${d.ports?.length ? `:${d.ports.join(',')}` : ''}${d.proto ? `/${d.proto}` : ''}`;
}

/** Destinations of both, each once. */
export function unionDestinations(a: readonly Destination[], b: readonly Destination[]): Destination[] {
  const seen = new Set<string>();
  const out: Destination[] = [];
  for (const d of [...a, ...b]) {
    const k = JSON.stringify([d.cidr, d.proto ?? null, [...(d.ports ?? [])].sort((x, y) => x - y)]);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(d);
  }
  return out;
}

/** Every destination is a valid network address (no host bits set). */
export function checkDestinations(ds: readonly Destination[]): string | undefined {
  for (const d of ds) {
    const c = parseCidr(d.cidr);
    if (!c.ok) return `destination ${d.cidr}: ${c.message}`;
  }
  return undefined;
}
