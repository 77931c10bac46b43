import { describe, expect, it } from 'vitest';
import { formatProblems, parseUtcTimestamp, validateProfile } from '../../../helper/profile/validate.js';
import type { Problem } from '../../../helper/profile/validate.js';
import { exampleJson, exampleProfile, NOW } from './example.js';

type Json = Record<string, unknown>;

/** Set (or with `undefined`, delete) the field at a path like `rules[1].binary.sha256`. */
function set(root: Json, path: string, value: unknown): void {
  const keys = path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '');
  let node: Json = root;
  for (const key of keys.slice(0, -1)) node = node[key] as Json;
  const last = keys.at(-1) ?? '';
  if (value === undefined) delete node[last];
  else node[last] = value;
}

function edited(edits: Record<string, unknown>): string {
  const p = exampleJson();
  for (const [path, value] of Object.entries(edits)) set(p, path, value);
  return JSON.stringify(p, null, 2);
}

function problemsOf(text: string): Problem[] {
  const r = validateProfile(text, 'corp.json', { now: NOW });
  return r.ok ? [] : r.problems;
}

describe('validateProfile', () => {
  it('accepts the PRODUCT.md example', () => {
    const r = validateProfile(JSON.stringify(exampleProfile, null, 2), 'corp.json', { now: NOW });
    expect(r).toEqual({ ok: true, profile: exampleProfile, warnings: [] });
  });

  it('accepts a minimal profile and IPv6 destinations', () => {
    const minimal = { schema: 'tunnelgate/profile@1', id: 'm', version: 1, mode: 'audit', interfaces: ['wg0'],
      userPrompts: 'deny', rules: [{ id: 'k', kernel: true, destinations: [{ cidr: 'fd00:7467::/64' }] }] };
    expect(validateProfile(JSON.stringify(minimal), 'm.json').ok).toBe(true);
  });

  const ANY_HEX = 'a'.repeat(64);
  type Case = { name: string; text: string; expected: Problem[] };
  /** The example profile with `edits` applied has one problem: `message` at `path`. */
  const bad = (name: string, edits: Record<string, unknown>, path: string, message: string): Case => ({ name, text: edited(edits), expected: [{ path, message }] });
  const cases: Case[] = [
    bad('unknown top-level field', { bogus: 1 }, 'bogus', 'unknown field'),
    bad('misspelt top-level field', { userPrompt: 'deny' }, 'userPrompt', 'unknown field (did you mean "userPrompts"?)'),
    bad('unknown rule field', { 'rules[0].bogus': true }, 'rules[0].bogus', 'unknown field'),
    bad('unknown binary field', { 'rules[0].binary.sha265': ANY_HEX }, 'rules[0].binary.sha265', 'unknown field (did you mean "sha256"?)'),
    bad('odd key names are quoted', { 'rules[0].my key': 1 }, 'rules[0]["my key"]', 'unknown field'),
    bad('bad sha256', { 'rules[1].binary.sha256': ANY_HEX.toUpperCase() }, 'rules[1].binary.sha256', 'must be 64 lower-case hex characters'),
    bad('relative path', { 'rules[0].binary.path': 'usr/bin/ssh' }, 'rules[0].binary.path', "must be an absolute path without '.' or '..' components, optionally ending in '*'"),
    bad('dot-dot in path', { 'rules[0].binary.path': '/usr/bin/../bin/ssh' }, 'rules[0].binary.path', "must be an absolute path without '.' or '..' components, optionally ending in '*'"),
    bad('script without interpreter', { 'rules[2].binary.path': '/usr/bin/git' }, 'rules[2].binary.script', 'only applies when path is an interpreter (python, perl, ruby, node, bash, ...); /usr/bin/git is not one'),
    bad('script with package', { 'rules[3].binary.script': '/opt/x.py' }, 'rules[3].binary.script', 'only applies to a path naming an interpreter'),
    bad('sha256 with package', { 'rules[3].binary.sha256': ANY_HEX }, 'rules[3].binary.sha256', 'only applies to a path (a package is checked against the package database)'),
    bad('path and package', { 'rules[3].binary.path': '/usr/bin/ssh' }, 'rules[3].binary.package', 'cannot be combined with path: name either a path or a package'),
    bad('binary with neither path nor package', { 'rules[0].binary': {} }, 'rules[0].binary', 'must name the program: path, package, flatpak, snap or appimage'),
    bad('bad package name', { 'rules[3].binary.package': 'openssh client' }, 'rules[3].binary.package', 'must be a Debian/RPM package name (letters, digits, and . _ + -)'),
    bad('empty interfaces', { interfaces: [] }, 'interfaces', 'must list at least one interface'),
    bad('bad interface name', { 'interfaces[1]': 'wg corp' }, 'interfaces[1]', "must be an interface name (1-15 letters, digits, '_', '.', '-'), optionally ending in '*'"),
    bad('duplicate interface', { interfaces: ['wg0', 'wg1', 'wg0'] }, 'interfaces', 'lists "wg0" more than once'),
    bad('bad cidr syntax', { 'alwaysAllow[0].cidr': '198.18.0.53' }, 'alwaysAllow[0].cidr', 'must be an IPv4 or IPv6 CIDR such as 198.18.0.0/24 or fd00:7467::/64'),
    bad('bad IPv4 address', { 'rules[1].destinations[0].cidr': '198.18.0.256/32' }, 'rules[1].destinations[0].cidr', '"198.18.0.256" is not an IPv4 or IPv6 address'),
    bad('prefix too long', { 'rules[1].destinations[0].cidr': '198.18.0.0/33' }, 'rules[1].destinations[0].cidr', 'prefix length must be 0..32'),
    bad('host bits set', { 'rules[1].destinations[0].cidr': '198.18.0.1/24' }, 'rules[1].destinations[0].cidr', 'host bits are set; did you mean 198.18.0.0/24?'),
    bad('host bits set (IPv6)', { 'rules[4].destinations[0].cidr': 'fd00:7467::20/64' }, 'rules[4].destinations[0].cidr', 'host bits are set; did you mean fd00:7467::/64?'),
    bad('port 0', { 'rules[1].destinations[0].ports': [0, 22] }, 'rules[1].destinations[0].ports[0]', 'must be a port number from 1 to 65535'),
    bad('port 70000', { 'alwaysAllow[0].ports': [53, 70000] }, 'alwaysAllow[0].ports[1]', 'must be a port number from 1 to 65535'),
    bad('repeated port', { 'alwaysAllow[0].ports': [53, 53] }, 'alwaysAllow[0].ports', 'lists 53 more than once'),
    bad('empty ports', { 'alwaysAllow[0].ports': [] }, 'alwaysAllow[0].ports', 'must list at least one port (leave it out for every port)'),
    bad('bad proto', { 'alwaysAllow[0].proto': 'icmp' }, 'alwaysAllow[0].proto', 'must be "tcp" or "udp"'),
    bad('duplicate rule id', { 'rules[5].id': 'ssh' }, 'rules[5].id', 'duplicate rule id "ssh" (also rules[0])'),
    bad('bad rule id', { 'rules[0].id': '-ssh' }, 'rules[0].id', "must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"),
    bad('allow and deny name the same path', { 'rules[5].binary.path': '/usr/bin/ssh' }, 'rules[0]', 'allow rule "ssh" can never match: deny rule "no-games" (rules[5]) covers it'),
    bad('deny pattern covers an allow path', { 'rules[0].binary.path': '/usr/games/nethack' }, 'rules[0]', 'allow rule "ssh" can never match: deny rule "no-games" (rules[5]) covers it'),
    bad('allow and deny name the same package', { 'rules[5].binary': { package: 'openssh-client' } }, 'rules[3]', 'allow rule "ssh-client" can never match: deny rule "no-games" (rules[5]) covers it'),
    bad('kernel rule with binary', { 'rules[4].binary': { path: '/usr/sbin/mount.nfs' } }, 'rules[4].binary', 'a kernel rule has no binary'),
    bad('neither binary nor kernel', { 'rules[4].kernel': undefined }, 'rules[4]', 'must have either a binary or kernel: true'),
    bad('kernel: false without binary', { 'rules[4].kernel': false }, 'rules[4]', 'must have either a binary or kernel: true'),
    bad('rule is not an object', { 'rules[0]': 'ssh' }, 'rules[0]', 'must be an object'),
    bad('missing required field', { interfaces: undefined }, 'interfaces', 'missing required field'),
    // An unknown format is said first, and the rest is still checked (every problem in one run).
    { name: 'wrong schema string', text: edited({ schema: 'tunnelgate/profile@2', newField: 1 }), expected: [
      { path: 'schema', message: 'unsupported profile format "tunnelgate/profile@2" (expected "tunnelgate/profile@1")' },
      { path: 'newField', message: expect.any(String) as unknown as string },
    ] },
    bad('schema not a string', { schema: 1 }, 'schema', 'must be "tunnelgate/profile@1"'),
    bad('version 0', { version: 0 }, 'version', 'must be a positive integer'),
    bad('version 1.5', { version: 1.5 }, 'version', 'must be a positive integer'),
    bad('version as a string', { version: '7' }, 'version', 'must be a positive integer'),
    bad('bad mode', { mode: 'enforcing' }, 'mode', 'must be "enforce" or "audit"'),
    bad('bad rule action', { 'rules[0].action': 'permit' }, 'rules[0].action', 'must be "allow" or "deny"'),
    bad('expires without time', { expires: '2027-06-30' }, 'expires', 'must be an RFC 3339 UTC timestamp such as 2027-06-30T00:00:00Z'),
    bad('expires with offset', { expires: '2027-06-30T00:00:00+02:00' }, 'expires', 'must be an RFC 3339 UTC timestamp such as 2027-06-30T00:00:00Z'),
    bad('expires on an impossible date', { expires: '2027-02-30T00:00:00Z' }, 'expires', 'is not a valid date and time'),
    bad('empty destinations', { 'rules[1].destinations': [] }, 'rules[1].destinations', 'must list at least one destination (leave it out for the whole tunnel)'),
    { name: 'not an object', text: '[]', expected: [{ path: '', message: 'a profile must be a JSON object' }] },
    { name: 'broken JSON (trailing comma)', text: '{\n  "schema": "tunnelgate/profile@1",\n}\n',
      expected: [{ path: '', message: "invalid JSON at line 3, column 1: expected a property name in double quotes, found '}'" }] },
    { name: 'broken JSON (truncated)', text: '{\n  "id": "corp', expected: [{ path: '',
      message: 'invalid JSON at line 2, column 14: expected a closing \'"\', found end of file' }] },
    { name: 'empty file', text: '', expected: [{ path: '', message: 'invalid JSON at line 1, column 1: expected a value, found end of file' }] },
    { name: 'a __proto__ key', text: edited({}).replace('{', '{"__proto__": {"mode": "audit"},'),
      expected: [{ path: '__proto__', message: 'unknown field' }] },
    { name: 'duplicate key', text: edited({}).replace('"mode": "enforce",', '"mode": "audit",\n  "mode": "enforce",'),
      expected: [{ path: 'mode', message: 'duplicate key (only one may appear)' }] },
  ];

  it.each(cases)('$name', ({ text, expected }) => {
    expect(problemsOf(text)).toEqual(expected);
  });

  it('reports every schema problem at once', () => {
    const problems = problemsOf(edited({ version: 0, bogus: 1, 'rules[1].binary.sha256': 'x', interfaces: [] }));
    expect(problems.map((p) => p.path).sort()).toEqual(['bogus', 'interfaces', 'rules[1].binary.sha256', 'version']);
  });

  it('allows a deny rule that only carves destinations out of an allow rule', () => {
    const text = edited({ 'rules[6]': { id: 'no-git-db', action: 'deny', binary: { path: '/usr/bin/git' },
      destinations: [{ cidr: '198.18.0.99/32' }] } });
    expect(problemsOf(text)).toEqual([]);
  });

  it('flags a deny rule whose destinations cover all of the allow rule', () => {
    const text = edited({ 'rules[6]': { id: 'no-git', action: 'deny', binary: { path: '/usr/bin/git' },
      destinations: [{ cidr: '198.18.0.0/16', proto: 'tcp' }] } });
    expect(problemsOf(text)).toEqual([{ path: 'rules[1]',
      message: 'allow rule "git" can never match: deny rule "no-git" (rules[6]) covers it' }]);
  });

  it('returns warnings as path: message lines', () => {
    const r = validateProfile(edited({ expires: '2025-01-01T00:00:00Z', 'rules[0].binary': { path: '/usr/bin/ssh*', sha256: ANY_HEX } }),
      'corp.json', { now: NOW });
    expect(r.ok && r.warnings).toEqual([
      'rules[0].binary.sha256: one digest pins every binary matching /usr/bin/ssh*',
      'expires: is in the past: this profile will not be in force',
    ]);
  });

  it('accepts a byte-order mark', () => {
    expect(validateProfile(`\uFEFF${edited({})}`, 'corp.json', { now: NOW }).ok).toBe(true);
  });
});

describe('formatProblems', () => {
  it('formats FILE: path: message, and FILE: message at the root', () => {
    expect(formatProblems('/etc/p.json', [
      { path: 'rules[2].binary.sha256', message: 'must be 64 lower-case hex characters' },
      { path: '', message: 'invalid JSON' },
    ])).toEqual(['/etc/p.json: rules[2].binary.sha256: must be 64 lower-case hex characters', '/etc/p.json: invalid JSON']);
  });
});

describe('parseUtcTimestamp', () => {
  it.each([
    ['2027-06-30T00:00:00Z', Date.UTC(2027, 5, 30)],
    ['2024-02-29T23:59:59.5Z', Date.UTC(2024, 1, 29, 23, 59, 59, 500)],
    ['2023-02-29T00:00:00Z', undefined],
    ['2027-01-01T24:00:00Z', undefined],
    ['2027-06-30T00:00:00+01:00', undefined],
  ])('%s', (text, expected) => {
    expect(parseUtcTimestamp(text)).toBe(expected);
  });
});
