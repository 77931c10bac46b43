import { describe, expect, it } from 'vitest';
import type { DeniedAttempt } from '../../../common/attempts.js';
import type { Policy } from '../../../common/policy.js';
import { isRefusal } from '../../../helper/evidence/refusals.js';
import { decide } from '../../../helper/policy/decide.js';
import type { Verdict } from '../../../helper/policy/decide.js';
import { policyOf, profile } from '../policy/fixtures.js';

const attempt = (over: Partial<DeniedAttempt> = {}): DeniedAttempt => ({
  time: '2026-11-20T10:00:00.000Z', uid: 1000, pid: 4242, exe: '/usr/bin/rsync',
  dst: { addr: '198.18.0.2', port: 873, proto: 'tcp' }, iface: 'wg0', mode: 'enforce', ...over,
});

const allowsRsync = policyOf([profile({ rules: [{ id: 'rsync', binary: { path: '/usr/bin/rsync' }, destinations: [{ cidr: '198.18.0.0/24', ports: [873], proto: 'tcp' }] }] })]);
/** The gate's verdict for a live process running `exe`; undefined: the process is gone. */
const live = (exe: string | undefined) => async (p: Policy): Promise<Verdict | undefined> => (exe ? decide(p, { exe, exeDeleted: false, uid: 1000 }) : undefined);

describe('refusals (what the evidence store records)', () => {
  it('a drop of a live process that the policy allows to this destination is not a refusal', async () => {
    expect(await isRefusal(attempt(), { policy: () => allowsRsync, verdictFor: live('/usr/bin/rsync') })).toBe(false);
  });

  it('the live process\'s verdict decides, not the binary the attempt names', async () => {
    // The attempt says rsync, but the process (same pid) is now something no rule allows.
    expect(await isRefusal(attempt(), { policy: () => allowsRsync, verdictFor: live('/tmp/evil') })).toBe(true);
  });

  it('allowed, but not to this destination: a refusal', async () => {
    const other = attempt({ dst: { addr: '198.18.0.2', port: 22, proto: 'tcp' } });
    expect(await isRefusal(other, { policy: () => allowsRsync, verdictFor: live('/usr/bin/rsync') })).toBe(true);
  });

  it('a process that has exited: the policy\'s decision on its binary and user', async () => {
    const gone = { policy: () => allowsRsync, verdictFor: live(undefined) };
    expect(await isRefusal(attempt(), gone)).toBe(false);
    expect(await isRefusal(attempt({ exe: '/usr/bin/curl' }), gone)).toBe(true);
    expect(await isRefusal(attempt({ pid: undefined }), gone)).toBe(false);
  });

  it('no policy, or no program named: recorded', async () => {
    expect(await isRefusal(attempt(), { policy: () => undefined, verdictFor: live('/usr/bin/rsync') })).toBe(true);
    expect(await isRefusal(attempt({ exe: undefined, pid: undefined }), { policy: () => allowsRsync, verdictFor: live(undefined) })).toBe(true);
  });

  it('audit mode: a program no rule allows is recorded, an allowed one is not', async () => {
    const audit = policyOf([profile({ mode: 'audit', rules: [{ id: 'rsync', binary: { path: '/usr/bin/rsync' } }] })]);
    const d = { policy: () => audit, verdictFor: live(undefined) };
    expect(await isRefusal(attempt({ mode: 'audit' }), d)).toBe(false);
    expect(await isRefusal(attempt({ mode: 'audit', exe: '/usr/bin/curl' }), d)).toBe(true);
  });
});
