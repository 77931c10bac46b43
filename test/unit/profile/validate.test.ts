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
  const cases: { name: string; text: string; expected: Problem[] }[] = [
    { name: 'unknown top-level field', text: edited({ bogus: 1 }), expected: [{ path: 'bogus', message: 'unknown field' }] },
    { name: 'misspelt top-level field', text: edited({ userPrompt: 'deny' }),
      expected: [{ path: 'userPrompt', message: 'unknown field (did you mean "userPrompts"?)' }] },
    { name: 'unknown rule field', text: edited({ 'rules[0].bogus': true }),
      expected: [{ path: 'rules[0].bogus', message: 'unknown field' }] },
    { name: 'unknown binary field', text: edited({ 'rules[0].binary.sha265': ANY_HEX }),
      expected: [{ path: 'rules[0].binary.sha265', message: 'unknown field (did you mean "sha256"?)' }] },
    { name: 'odd key names are quoted', text: edited({ 'rules[0].my key': 1 }),
      expected: [{ path: 'rules[0]["my key"]', message: 'unknown field' }] },
    { name: 'bad sha256', text: edited({ 'rules[1].binary.sha256': ANY_HEX.toUpperCase() }),
      expected: [{ path: 'rules[1].binary.sha256', message: 'must be 64 lower-case hex characters' }] },
    { name: 'relative path', text: edited({ 'rules[0].binary.path': 'usr/bin/ssh' }),
      expected: [{ path: 'rules[0].binary.path',
        message: "must be an absolute path without '.' or '..' components, optionally ending in '*'" }] },
    { name: 'dot-dot in path', text: edited({ 'rules[0].binary.path': '/usr/bin/../bin/ssh' }),
      expected: [{ path: 'rules[0].binary.path',
        message: "must be an absolute path without '.' or '..' components, optionally ending in '*'" }] },
    { name: 'script without interpreter', text: edited({ 'rules[2].binary.path': '/usr/bin/git' }),
      expected: [{ path: 'rules[2].binary.script',
        message: 'only applies when path is an interpreter (python, perl, ruby, node, bash, ...); /usr/bin/git is not one' }] },
    { name: 'script with package', text: edited({ 'rules[3].binary.script': '/opt/x.py' }),
      expected: [{ path: 'rules[3].binary.script', message: 'only applies to a path naming an interpreter' }] },
    { name: 'sha256 with package', text: edited({ 'rules[3].binary.sha256': ANY_HEX }),
      expected: [{ path: 'rules[3].binary.sha256',
        message: 'only applies to a path (a package is checked against the package database)' }] },
    { name: 'path and package', text: edited({ 'rules[3].binary.path': '/usr/bin/ssh' }),
      expected: [{ path: 'rules[3].binary.package',
        message: 'cannot be combined with path: name either a path or a package' }] },
    { name: 'binary with neither path nor package', text: edited({ 'rules[0].binary': {} }),
      expected: [{ path: 'rules[0].binary', message: 'must name the program: path, package, flatpak, snap or appimage' }] },
    { name: 'bad package name', text: edited({ 'rules[3].binary.package': 'openssh client' }),
      expected: [{ path: 'rules[3].binary.package', message: 'must be a Debian/RPM package name (letters, digits, and . _ + -)' }] },
    { name: 'empty interfaces', text: edited({ interfaces: [] }),
      expected: [{ path: 'interfaces', message: 'must list at least one interface' }] },
    { name: 'bad interface name', text: edited({ 'interfaces[1]': 'wg corp' }),
      expected: [{ path: 'interfaces[1]',
        message: "must be an interface name (1-15 letters, digits, '_', '.', '-'), optionally ending in '*'" }] },
    { name: 'duplicate interface', text: edited({ interfaces: ['wg0', 'wg1', 'wg0'] }),
      expected: [{ path: 'interfaces', message: 'lists "wg0" more than once' }] },
    { name: 'bad cidr syntax', text: edited({ 'alwaysAllow[0].cidr': '198.18.0.53' }),
      expected: [{ path: 'alwaysAllow[0].cidr',
        message: 'must be an IPv4 or IPv6 CIDR such as 198.18.0.0/24 or fd00:7467::/64' }] },
    { name: 'bad IPv4 address', text: edited({ 'rules[1].destinations[0].cidr': '198.18.0.256/32' }),
      expected: [{ path: 'rules[1].destinations[0].cidr', message: '"198.18.0.256" is not an IPv4 or IPv6 address' }] },
    { name: 'prefix too long', text: edited({ 'rules[1].destinations[0].cidr': '198.18.0.0/33' }),
      expected: [{ path: 'rules[1].destinations[0].cidr', message: 'prefix length must be 0..32' }] },
    { name: 'host bits set', text: edited({ 'rules[1].destinations[0].cidr': '198.18.0.1/24' }),
      expected: [{ path: 'rules[1].destinations[0].cidr', message: 'host bits are set; did you mean 198.18.0.0/24?' }] },
    { name: 'host bits set (IPv6)', text: edited({ 'rules[4].destinations[0].cidr': 'fd00:7467::20/64' }),
      expected: [{ path: 'rules[4].destinations[0].cidr', message: 'host bits are set; did you mean fd00:7467::/64?' }] },
    { name: 'port 0', text: edited({ 'rules[1].destinations[0].ports': [0, 22] }),
      expected: [{ path: 'rules[1].destinations[0].ports[0]', message: 'must be a port number from 1 to 65535' }] },
    { name: 'port 70000', text: edited({ 'alwaysAllow[0].ports': [53, 70000] }),
      expected: [{ path: 'alwaysAllow[0].ports[1]', message: 'must be a port number from 1 to 65535' }] },
    { name: 'repeated port', text: edited({ 'alwaysAllow[0].ports': [53, 53] }),
      expected: [{ path: 'alwaysAllow[0].ports', message: 'lists 53 more than once' }] },
    { name: 'empty ports', text: edited({ 'alwaysAllow[0].ports': [] }),
      expected: [{ path: 'alwaysAllow[0].ports', message: 'must list at least one port (leave it out for every port)' }] },
    { name: 'bad proto', text: edited({ 'alwaysAllow[0].proto': 'icmp' }),
      expected: [{ path: 'alwaysAllow[0].proto', message: 'must be "tcp" or "udp"' }] },
    { name: 'duplicate rule id', text: edited({ 'rules[5].id': 'ssh' }),
      expected: [{ path: 'rules[5].id', message: 'duplicate rule id "ssh" (also rules[0])' }] },
    { name: 'bad rule id', text: edited({ 'rules[0].id': '-ssh' }),
      expected: [{ path: 'rules[0].id', message: "must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit" }] },
    { name: 'allow and deny name the same path', text: edited({ 'rules[5].binary.path': '/usr/bin/ssh' }),
      expected: [{ path: 'rules[0]', message: 'allow rule "ssh" can never match: deny rule "no-games" (rules[5]) covers it' }] },
    { name: 'deny pattern covers an allow path', text: edited({ 'rules[0].binary.path': '/usr/games/nethack' }),
      expected: [{ path: 'rules[0]', message: 'allow rule "ssh" can never match: deny rule "no-games" (rules[5]) covers it' }] },
    { name: 'allow and deny name the same package', text: edited({ 'rules[5].binary': { package: 'openssh-client' } }),
      expected: [{ path: 'rules[3]',
        message: 'allow rule "ssh-client" can never match: deny rule "no-games" (rules[5]) covers it' }] },
    { name: 'kernel rule with binary', text: edited({ 'rules[4].binary': { path: '/usr/sbin/mount.nfs' } }),
      expected: [{ path: 'rules[4].binary', message: 'a kernel rule has no binary' }] },
    { name: 'neither binary nor kernel', text: edited({ 'rules[4].kernel': undefined }),
      expected: [{ path: 'rules[4]', message: 'must have either a binary or kernel: true' }] },
    { name: 'kernel: false without binary', text: edited({ 'rules[4].kernel': false }),
      expected: [{ path: 'rules[4]', message: 'must have either a binary or kernel: true' }] },
    { name: 'rule is not an object', text: edited({ 'rules[0]': 'ssh' }),
      expected: [{ path: 'rules[0]', message: 'must be an object' }] },
    { name: 'missing required field', text: edited({ interfaces: undefined }),
      expected: [{ path: 'interfaces', message: 'missing required field' }] },
    { name: 'wrong schema string', text: edited({ schema: 'tunnelgate/profile@2', newField: 1 }),
      expected: [{ path: 'schema',
        message: 'unsupported profile format "tunnelgate/profile@2" (expected "tunnelgate/profile@1")' }] },
    { name: 'schema not a string', text: edited({ schema: 1 }),
      expected: [{ path: 'schema', message: 'must be "tunnelgate/profile@1"' }] },
    { name: 'version 0', text: edited({ version: 0 }), expected: [{ path: 'version', message: 'must be a positive integer' }] },
    { name: 'version 1.5', text: edited({ version: 1.5 }), expected: [{ path: 'version', message: 'must be a positive integer' }] },
    { name: 'version as a string', text: edited({ version: '7' }),
      expected: [{ path: 'version', message: 'must be a positive integer' }] },
    { name: 'bad mode', text: edited({ mode: 'enforcing' }), expected: [{ path: 'mode', message: 'must be "enforce" or "audit"' }] },
    { name: 'bad rule action', text: edited({ 'rules[0].action': 'permit' }),
      expected: [{ path: 'rules[0].action', message: 'must be "allow" or "deny"' }] },
    { name: 'expires without time', text: edited({ expires: '2027-06-30' }),
      expected: [{ path: 'expires', message: 'must be an RFC 3339 UTC timestamp such as 2027-06-30T00:00:00Z' }] },
    { name: 'expires with offset', text: edited({ expires: '2027-06-30T00:00:00+02:00' }),
      expected: [{ path: 'expires', message: 'must be an RFC 3339 UTC timestamp such as 2027-06-30T00:00:00Z' }] },
    { name: 'expires on an impossible date', text: edited({ expires: '2027-02-30T00:00:00Z' }),
      expected: [{ path: 'expires', message: 'is not a valid date and time' }] },
    { name: 'empty destinations', text: edited({ 'rules[1].destinations': [] }),
      expected: [{ path: 'rules[1].destinations',
        message: 'must list at least one destination (leave it out for the whole tunnel)' }] },
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
