import { describe, expect, it } from 'vitest';
import { parseDstSpec, parseDuration, parsePid, PID_MAX_LIMIT, toDestinations, toExplainDst, UsageError } from '../../../helper/cli/args.js';

const resolve = async (h: string) => (h === 'intranet.corp' ? ['198.18.0.2', 'fd00:7467::2'] : []);

describe('durations', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['1h', 3600],
    ['1h30m', 5400],
    ['2d', 172800],
  ])('%s', (t, s) => expect(parseDuration(t)).toEqual({ seconds: s }));
  it('until logout', () => expect(parseDuration('until-logout')).toEqual({ untilLogout: true }));
  it.each(['', '1', 'h', '1y', '0s', '-5m', '1h 30m'])('refuses %j', (t) => expect(() => parseDuration(t)).toThrow(UsageError));
});

describe('destination specs', () => {
  it.each([
    ['198.18.0.2', { host: '198.18.0.2' }],
    ['198.18.0.0/24', { host: '198.18.0.0', prefix: 24 }],
    ['198.18.0.2:443', { host: '198.18.0.2', ports: [443] }],
    ['198.18.0.0/24:22,443/tcp', { host: '198.18.0.0', prefix: 24, ports: [22, 443], proto: 'tcp' }],
    ['198.18.0.2/udp', { host: '198.18.0.2', proto: 'udp' }],
    ['[fd00:7467::2]:443/tcp', { host: 'fd00:7467::2', ports: [443], proto: 'tcp' }],
    ['[fd00:7467::]/64', { host: 'fd00:7467::', prefix: 64 }],
    ['fd00:7467::2', { host: 'fd00:7467::2' }],
    ['fd00:7467::/64', { host: 'fd00:7467::', prefix: 64 }],
    ['intranet.corp:80', { host: 'intranet.corp', ports: [80] }],
  ])('%s', (spec, want) => expect(parseDstSpec(spec)).toEqual(want));

  it.each(['', 'a:b', '198.18.0.2:70000', 'intranet.corp/24', '[fd00::1', '198.18.0.2:443/icmp'])('refuses %j', (s) => expect(() => parseDstSpec(s)).toThrow(UsageError));

  it('becomes rule destinations: canonical CIDRs, one per address of a name', async () => {
    expect(await toDestinations(parseDstSpec('intranet.corp:443/tcp'), resolve)).toEqual([
      { cidr: '198.18.0.2/32', ports: [443], proto: 'tcp' },
      { cidr: 'fd00:7467::2/128', ports: [443], proto: 'tcp' },
    ]);
    await expect(toDestinations(parseDstSpec('198.18.0.1/24'), resolve)).rejects.toThrow(/host bits are set; did you mean 198.18.0.0\/24/);
    await expect(toDestinations(parseDstSpec('nowhere.corp'), resolve)).rejects.toThrow(/resolves to no address/);
  });

  it('explain takes HOST[:PORT][/PROTO], tcp by default', async () => {
    expect(await toExplainDst('intranet.corp:80', resolve)).toEqual({ addr: '198.18.0.2', port: 80, proto: 'tcp' });
    expect(await toExplainDst('[fd00:7467::2]:53/udp', resolve)).toEqual({ addr: 'fd00:7467::2', port: 53, proto: 'udp' });
    await expect(toExplainDst('198.18.0.0/24', resolve)).rejects.toThrow(UsageError);
  });
});

describe('explain PID (parsePid)', () => {
  it.each([
    ['1', 1], // init: a real process
    ['2', 2],
    ['4321', 4321],
    ['007', 7],
    [String(PID_MAX_LIMIT), PID_MAX_LIMIT],
  ])('%s is pid %i', (text, pid) => expect(parsePid(text)).toBe(pid));

  it.each(['0', '-1', '-42', '+1', '+42', String(PID_MAX_LIMIT + 1), '99999999999999999999', '1'.repeat(400)])('%s names no process: a usage error', (text) => {
    expect(() => parsePid(text)).toThrow(UsageError);
    expect(() => parsePid(text)).toThrow(/from 1 to 4194304, without a sign/);
  });

  it.each(['/usr/bin/curl', 'curl', './1', '1.5', '0x10', '1e3', ' 1', 'corp:ssh', ''])('%j is not a PID (a path or a rule)', (text) => {
    expect(parsePid(text)).toBeUndefined();
  });
});
