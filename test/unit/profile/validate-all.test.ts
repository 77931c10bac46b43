// Issue 11 part 6: every problem in one run, the editor's `$schema` key, the schema's $id,
// and the --json report.
import Ajv from 'ajv';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROFILE_SCHEMA_FILE_URL, PROFILE_SCHEMA_ID, profileSchema } from '../../../helper/profile/schema.js';
import { validateProfile, validationReport } from '../../../helper/profile/validate.js';
import { exampleJson, NOW } from './example.js';

const validate = (p: unknown) => validateProfile(JSON.stringify(p, null, 2), 'corp.json', { now: NOW });

describe('profile validate reports every problem in one run', () => {
  it('a file with eight mistakes of shape and meaning gets all of them (nine lines: one mistake is two)', () => {
    const p = exampleJson();
    p.mode = 'enforcing'; // 1 shape: enum
    p.interfaces = []; // 2 shape: minItems
    p.alwaysAllow = [{ cidr: '198.18.0.1/24' }]; // 3 meaning: host bits set
    p.rules[0] = { id: 'ssh', binary: { path: 'usr/bin/ssh' } }; // 4 shape: relative path
    p.rules[1] = { id: 'ssh', binary: { path: '/usr/bin/git' } }; // 5 meaning: duplicate id
    p.rules[2] = { id: 'deploy-tool', binary: { path: '/usr/bin/git', script: '/opt/x.py' } }; // 6 meaning: not an interpreter
    p.rules.push({ id: "typo", binray: { path: "/bin/x" } }); // 7 shape: unknown field, and so no binary (two lines)
    p.rules.push({ id: 'games', binary: { path: '/usr/games/nethack' } }); // 8 meaning: covered by the deny rule
    const r = validate(p);
    expect(r.ok).toBe(false);
    const paths = r.ok ? [] : r.problems.map((x) => x.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'mode', 'interfaces', 'rules[0].binary.path', 'rules[6].binray', 'rules[6]', // shape: unknown field, and no binary
        'alwaysAllow[0].cidr', 'rules[1].id', 'rules[2].binary.script', 'rules[7]', // meaning
      ]),
    );
    // A rule with a shape error is left out of the semantic checks, not judged twice.
    expect(paths.filter((x) => x.startsWith('rules[0]'))).toEqual(['rules[0].binary.path']);
  });

  it('keeps the original index of a rule after one before it failed the schema', () => {
    const p = exampleJson();
    p.rules[0] = { id: 'broken', binary: { path: 42 } };
    p.rules[3] = { id: 'ssh-client', binary: { path: '/usr/bin/git', script: '/opt/x.py' } };
    const r = validate(p);
    expect(r.ok ? [] : r.problems.map((x) => x.path)).toEqual(['rules[0].binary.path', 'rules[3].binary.script']);
  });

  it('a valid profile is still ok, with no problems', () => {
    expect(validate(exampleJson()).ok).toBe(true);
  });
});

describe('the editor key "$schema" and the schema id', () => {
  it('accepts "$schema" and leaves it out of the profile', () => {
    const r = validate({ $schema: PROFILE_SCHEMA_ID, ...exampleJson() });
    expect(r.ok).toBe(true);
    if (r.ok) expect('$schema' in r.profile).toBe(false);
  });

  it('still refuses a "$schema" that is not a string', () => {
    const r = validate({ $schema: 7, ...exampleJson() });
    expect(r.ok ? [] : r.problems).toEqual([{ path: '$schema', message: 'must be a string' }]);
  });

  it('the published schema has a stable absolute $id (a URN: no URL is owned) and validates the example by itself', () => {
    const published = JSON.parse(readFileSync(new URL('../../../schema/profile-v1.schema.json', import.meta.url), 'utf8')) as { $id: string };
    expect(published.$id).toBe(PROFILE_SCHEMA_ID);
    expect(published.$id).toBe('urn:tunnelgate:schema:profile-v1');
    expect(new URL(published.$id).protocol).toBe('urn:');
    const check = new Ajv.default({ strict: true }).compile(profileSchema);
    expect(check({ $schema: PROFILE_SCHEMA_ID, ...exampleJson() })).toBe(true);
    expect(check({ $schema: PROFILE_SCHEMA_FILE_URL, ...exampleJson() })).toBe(true);
    expect(check({ ...exampleJson(), mode: 'block' })).toBe(false);
  });

  it('no shipped text names the old placeholder host', () => {
    for (const f of ['README.md', 'packaging/man/tunnelgate-profile.5.md', 'schema/profile-v1.schema.json', 'helper/profile/schema.ts']) {
      expect(readFileSync(new URL(`../../../${f}`, import.meta.url), 'utf8'), f).not.toContain('tunnelgate.invalid');
    }
  });
});

describe('validationReport (profile validate --json)', () => {
  it('ok: the profile id, version, rule count and warnings', () => {
    const r = validationReport('corp.json', validate(exampleJson()));
    expect(r).toEqual({ file: 'corp.json', ok: true, problems: [], warnings: [], profile: { id: 'corp-base', version: 7, rules: 6 } });
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('not ok: every problem as {path, message}', () => {
    const p = exampleJson();
    p.mode = 'x';
    p.version = 0;
    const r = validationReport('corp.json', validate(p));
    expect(r.ok).toBe(false);
    expect(r.problems.map((x) => x.path).sort()).toEqual(['mode', 'version']);
  });
});

describe('a schema-wrong value hides no other problem', () => {
  const paths = (p: unknown) => {
    const r = validate(p);
    return r.ok ? [] : r.problems.map((x) => `${x.path}: ${x.message}`);
  };

  it('a wrong-typed field of a rule: the rest of that rule is still judged (destinations, script, deny-only fields)', () => {
    const p = exampleJson();
    p.rules[1] = {
      id: 'web',
      mode: 'block', // shape
      binary: { path: '/usr/bin/git', script: '/opt/x.py' }, // meaning: not an interpreter
      destinations: [{ cidr: '198.18.0.1/24' }, { cidr: 'nope' }], // meaning: host bits; shape: not a CIDR
    };
    p.rules[2] = { id: 'no-git', action: 'deny', binary: { path: 42 }, children: 'confine' }; // shape; meaning: children on a deny
    const got = paths(p);
    expect(got).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^rules\[1\]\.mode: /),
        expect.stringMatching(/^rules\[1\]\.destinations\[1\]\.cidr: must be an IPv4 or IPv6 CIDR/),
        'rules[1].destinations[0].cidr: host bits are set; did you mean 198.18.0.0/24?',
        expect.stringMatching(/^rules\[1\]\.binary\.script: only applies when path is an interpreter/),
        expect.stringMatching(/^rules\[2\]\.binary\.path: /),
        'rules[2].children: only applies to allow rules',
      ]),
    );
    expect(got).toEqual([...new Set(got)]);
  });

  it('an unknown format string: said first, and the other problems too', () => {
    const p = exampleJson();
    p.schema = 'tunnelgate/profile@2';
    p.version = 0;
    p.alwaysAllow = [{ cidr: '198.18.0.1/24' }];
    const got = paths(p);
    expect(got[0]).toBe('schema: unsupported profile format "tunnelgate/profile@2" (expected "tunnelgate/profile@1")');
    expect(got).toEqual(expect.arrayContaining([expect.stringMatching(/^version: /), expect.stringMatching(/^alwaysAllow\[0\]\.cidr: host bits are set/)]));
    expect(got.filter((x) => x.startsWith('schema:'))).toHaveLength(1);
  });
});

describe('soundFields never takes a key of the file for a field', () => {
  it('__proto__, constructor and toString in a rule that failed the schema: problems, no crash', () => {
    const text = JSON.stringify(exampleJson(), null, 2).replace('"id": "ssh"', '"__proto__": {"action": "deny"}, "constructor": 1, "toString": "x", "mode": 5, "id": "ssh"');
    const r = validateProfile(text, 'corp.json', { now: NOW });
    expect(r.ok).toBe(false);
  });
});
