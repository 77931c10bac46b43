// Text for people: the one sanitiser of text a program chose, and the formatters every
// front end shares (the CLI, the tray app's main process and its page). Pure: no Node, no
// DOM, so the renderer loads it as it is.
//
// A program chooses its own path, arguments, process name and desktop entry. Written raw
// to a terminal, an ESC sequence in an argument could clear the screen or rewrite what the
// admin reads; a bidi override (U+202E) turns "gpj.exe" around to pass for another program;
// a line break forges a line of output. Every such string goes through `visible` (or
// `oneLine`, for one-line labels) before it is shown.
//
// The same holds for the logs an admin reads (the helper's stderr and the journal, STATE/
// audit.log, the JSON files of the state dir): the writer escapes, with the functions here.
//   - text lines (stderr, syslog, journal MESSAGE): `logLine` — `visible`, so a line break
//     in a program's path cannot forge a second log line;
//   - JSON (audit.log lines, events on stderr, decisions.json, TUNNELGATE_JSON, --json):
//     `safeJson` — JSON's own escaping covers C0 (\n, \u001b) but leaves DEL, C1 controls,
//     the bidi marks and overrides and U+2028/9 raw, so those are written as \uXXXX too.
//     Still valid JSON, and JSON.parse gives back the exact original string.

import type { Destination } from './profile.js';
import type { RuleLifetime } from './prompts.js';

/**
 * What is never shown as it is: C0 controls (ESC, line breaks, tab …), DEL, C1 controls
 * (incl. the 8-bit CSI U+009B), the direction marks and overrides (U+061C, U+200E/F,
 * U+202A–202E, U+2066–2069) and the Unicode line and paragraph separators.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const unicodeEscape = (c: string) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;
const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };

/**
 * The sanitiser: text a program chose (argv, paths, names, comm), shown so that it cannot
 * pass for something else. Each unsafe character is written out as an escape, `\n`, `\t`,
 * `\r` or `\uXXXX` (ESC is `\u001b`), visible and never interpreted by a terminal or the
 * bidi algorithm. Everything else, other Unicode included, stays as it is.
 */
export function visible(s: string): string {
  return s.replace(UNSAFE, (c) => SHORT_ESCAPES[c] ?? unicodeEscape(c));
}


/** True if `visible` would change `s`. */
export function hasUnsafe(s: string): boolean {
  return s.search(UNSAFE) !== -1;
}

/** For one plain line (tray labels, tooltips, notifications): unsafe characters become spaces, runs of white space one space. */
export function oneLine(s: string): string {
  return s.replace(UNSAFE, ' ').replace(/\s+/g, ' ');
}

/** At most `max` characters, with an ellipsis where cut. */
export function clipText(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** A command line as a person would type it: each argument `visible`, single-quoted where a shell would need it. */
export function formatCommandLine(argv: readonly string[]): string {
  return argv.map((a) => (a === '' || /[^\w@%+=:,./-]/.test(a) ? `'${visible(a).replaceAll("'", "'\\''")}'` : a)).join(' ');
}

// ---- destinations ---------------------------------------------------------------------

/**
 * One address, port and protocol, as a packet went or as explain asks about it:
 * `198.18.0.2:443/tcp`, `[fd00::2]:53/udp`, `198.18.0.2/icmp`, `198.18.0.2:22` (no protocol).
 */
export function formatDestination(d: { addr: string; port?: number; proto?: string }): string {
  const host = d.addr.includes(':') ? `[${d.addr}]` : d.addr;
  return `${host}${d.port !== undefined ? `:${d.port}` : ''}${d.proto ? `/${d.proto}` : ''}`;
}

/** A rule destination as `--dst` takes it: `198.18.0.0/24:22,443/tcp`. */
export function formatRuleDestination(d: Destination): string {
  return `${d.cidr}${d.ports?.length ? `:${d.ports.join(',')}` : ''}${d.proto ? `/${d.proto}` : ''}`;
}

/** A rule's scope as `--dst` takes it, space-separated; `whole tunnel` without destinations. */
export function formatRuleScope(r: { destinations?: readonly Destination[] }): string {
  return r.destinations?.length ? r.destinations.map(formatRuleDestination).join(' ') : 'whole tunnel';
}

/** A rule destination in words, for the tray's page: `198.18.0.0/24 tcp ports 22, 443`. */
export function describeDestination(d: Destination): string {
  const proto = d.proto ? ` ${d.proto}` : '';
  const ports = d.ports?.length ? ` port${d.ports.length === 1 ? '' : 's'} ${d.ports.join(', ')}` : '';
  return `${d.cidr}${proto}${ports}`;
}

// ---- durations, lifetimes, rule ids ---------------------------------------------------

/** A rule's lifetime: `always`, `until 2026-…Z`, `while pid 12, 13 runs`, `until logout`. */
export function describeLifetime(l: RuleLifetime): string {
  switch (l.kind) {
    case 'always':
      return 'always';
    case 'until':
      return `until ${l.expires}`;
    case 'process':
      return `while pid ${l.pids.join(', ')} runs`;
    case 'session':
      return 'until logout';
  }
}

/** Time left, in milliseconds, rounded up to seconds: `27 s`, `1 min 05 s`; never negative. */
export function formatRemaining(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** The policy key of a user's rule (also its cgroup name): `user.1000:ab12…`. */
export function userRuleKey(uid: number, id: string): string {
  return `user.${uid}:${id}`;
}

/**
 * A rule's id as every front end writes it (list, decisions, revoke, events, the page): its
 * policy key, `corp-dev:ssh` for a profile's rule, `user.1000:ab12…` for a user's (also its
 * cgroup name). The one spelling; `normalRuleKey` still reads the older `user 1000:…`.
 */
export function describeRuleId(source: { kind: 'profile'; profileId: string } | { kind: 'user'; uid: number }, id: string): string {
  return source.kind === 'profile' ? `${source.profileId}:${id}` : userRuleKey(source.uid, id);
}

/** A rule key as typed: `user 1000:ab12…` (the spelling `list` used to print) becomes `user.1000:ab12…`; anything else is kept. */
export function normalRuleKey(key: string): string {
  const m = /^user (\d+):(.+)$/.exec(key);
  return m ? userRuleKey(Number(m[1]), m[2] as string) : key;
}

/** The first 12 hex digits of a sha256, with an ellipsis: enough to tell binaries apart. */
export function shortHash(sha256: string): string {
  return `${sha256.slice(0, 12)}…`;
}

/** UNSAFE less C0: JSON.stringify escapes those inside strings itself, and the line breaks of indented JSON stand outside strings. */
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON for a terminal or a log, on one line: `JSON.stringify`, with the unsafe characters it
 * leaves raw (DEL, C1 controls, direction marks, U+2028/9) written as `\uXXXX` escapes too.
 * The same JSON value; only inside strings, as those characters never stand outside one.
 * One parameter on purpose: `list.map(safeJson)` must not indent by the index.
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(JSON_UNSAFE, unicodeEscape);
}

/** safeJson indented by two spaces, for the JSON files of the state dir that admins read. */
export function safeJsonIndented(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(JSON_UNSAFE, unicodeEscape);
}

/** One line of a text log (stderr, syslog, a journal MESSAGE): every unsafe character escaped, line breaks included, so it stays one line. */
export function logLine(text: string): string {
  return visible(text);
}

/** Every line of a text made `visible`, the line breaks between them kept. */
export function visibleLines(text: string): string {
  return text.split('\n').map(visible).join('\n');
}
