// common/format.ts: the one sanitiser of program-chosen text and the shared formatters.
import { describe, expect, it } from 'vitest';
import {
  clipText, describeDestination, describeLifetime, describeRuleId, formatCommandLine, formatDestination, formatRemaining, formatRuleDestination,
  formatRuleScope, hasUnsafe, normalRuleKey, oneLine, safeJson, userRuleKey, visible, visibleLines,
} from '../../../common/format.js';

/** Anything a terminal or the bidi algorithm would act on. */
// eslint-disable-next-line no-control-regex -- the point of the test
const RAW = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('visible(): the sanitiser', () => {
  it('writes terminal escape sequences out: ESC, CSI, BEL, DEL', () => {
    expect(visible('/tmp/x\u001b[2J\u001b]0;pwned\u0007')).toBe('/tmp/x\\u001b[2J\\u001b]0;pwned\\u0007');
    expect(visible('a\u007fb')).toBe('a\\u007fb');
    expect(visible('a\nb\tc\rd')).toBe('a\\nb\\tc\\rd');
  });

  it('writes C1 controls (the 8-bit CSI U+009B among them) and bidi overrides and isolates out', () => {
    expect(visible('x\u009b2Jy\u0085z')).toBe('x\\u009b2Jy\\u0085z');
    expect(visible('gpj.\u202eexe')).toBe('gpj.\\u202eexe');
    for (const c of ['\u202a', '\u202b', '\u202c', '\u202d', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c', '\u2028', '\u2029']) {
      const out = visible(`a${c}b`);
      expect(out).toBe(`a\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}b`);
      expect(out).not.toMatch(RAW);
    }
  });

  it('leaves ordinary text, other Unicode included, as it is', () => {
    expect(visible('/usr/bin/curl')).toBe('/usr/bin/curl');
    expect(visible('café ünïcode ✓ אבג')).toBe('café ünïcode ✓ אבג');
    expect(hasUnsafe('café')).toBe(false);
    expect(hasUnsafe('a\u202eb')).toBe(true);
  });

  it('visibleLines() keeps the line breaks between lines and escapes the rest', () => {
    expect(visibleLines('one \u001b[31m\ntwo\u202e')).toBe('one \\u001b[31m\ntwo\\u202e');
  });

  it('oneLine() turns unsafe characters into single spaces, for labels', () => {
    expect(oneLine('a\u202eb\nc\u0007d')).toBe('a b c d');
    expect(clipText('abcdef', 4)).toBe('abc…');
  });

  it('safeJson() is the same JSON value with DEL, C1 and bidi escaped too', () => {
    const v = { exe: '/tmp/\u001b[2J\u009b\u202eevil\u007f', n: 1 };
    const text = safeJson(v);
    expect(text).not.toMatch(RAW);
    expect(text).toContain('\\u202e');
    expect(JSON.parse(text)).toEqual(v);
  });

  it('formatCommandLine() quotes only where a shell would need it, each argument visible', () => {
    expect(formatCommandLine(['curl', '-sS', 'https://198.18.0.10/a?b=1'])).toBe("curl -sS 'https://198.18.0.10/a?b=1'");
    expect(formatCommandLine(['x', '\u001b[2J', 'a\u2066b'])).toBe("x '\\u001b[2J' 'a\\u2066b'");
  });
});

describe('formatters', () => {
  it('a destination as a packet went, and a rule destination as --dst takes it', () => {
    expect(formatDestination({ addr: '198.18.0.2', port: 443, proto: 'tcp' })).toBe('198.18.0.2:443/tcp');
    expect(formatDestination({ addr: 'fd00::2', port: 53, proto: 'udp' })).toBe('[fd00::2]:53/udp');
    expect(formatDestination({ addr: '198.18.0.2', proto: 'icmp' })).toBe('198.18.0.2/icmp');
    expect(formatDestination({ addr: '198.18.0.2', port: 22 })).toBe('198.18.0.2:22');
    expect(formatRuleDestination({ cidr: '198.18.0.0/24', ports: [22, 443], proto: 'tcp' })).toBe('198.18.0.0/24:22,443/tcp');
    expect(formatRuleScope({})).toBe('whole tunnel');
    expect(formatRuleScope({ destinations: [{ cidr: '10.0.0.0/8' }, { cidr: 'fd00::/64', ports: [53] }] })).toBe('10.0.0.0/8 fd00::/64:53');
    expect(describeDestination({ cidr: '198.18.0.0/24', ports: [22, 443], proto: 'tcp' })).toBe('198.18.0.0/24 tcp ports 22, 443');
  });

  it('lifetimes, time left and rule ids', () => {
    expect(describeLifetime({ kind: 'always' })).toBe('always');
    expect(describeLifetime({ kind: 'until', expires: '2026-01-01T00:00:00Z' })).toBe('until 2026-01-01T00:00:00Z');
    expect(describeLifetime({ kind: 'process', pids: [12, 13] })).toBe('while pid 12, 13 runs');
    expect(describeLifetime({ kind: 'session' })).toBe('until logout');
    expect(formatRemaining(26_100)).toBe('27 s');
    expect(formatRemaining(65_000)).toBe('1 min 05 s');
    expect(formatRemaining(-5)).toBe('0 s');
    expect(userRuleKey(1000, 'ab12')).toBe('user.1000:ab12');
    expect(describeRuleId({ kind: 'profile', profileId: 'corp' }, 'ssh')).toBe('corp:ssh');
    expect(describeRuleId({ kind: 'user', uid: 1000 }, 'ab12')).toBe('user.1000:ab12');
    expect(normalRuleKey('user 1000:ab12')).toBe('user.1000:ab12');
    expect(normalRuleKey('user.1000:ab12')).toBe('user.1000:ab12');
    expect(normalRuleKey('corp:ssh')).toBe('corp:ssh');
  });
});
