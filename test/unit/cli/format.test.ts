// The CLI's text output with a hostile program: its argv and path carry an ESC sequence
// (clear screen), an 8-bit CSI, a bidi override and an isolate. No such character may reach
// the terminal raw; each must be shown in its escaped form.
import { describe, expect, it } from 'vitest';
import type { ExplainResult } from '../../../common/api.js';
import type { AuditReport } from '../../../common/audit.js';
import type { StampedEvent } from '../../../common/events.js';
import type { PromptView } from '../../../common/prompts.js';
import {
  formatAudit, formatDecisions, formatEvent, formatExplain, formatList, formatProfileTest, formatPrompts, formatStatus,
} from '../../../helper/cli/format.js';
import { decisionView } from '../main/fixtures.js';

/** What a terminal or the bidi algorithm would act on; the line breaks of the output itself aside. */
// eslint-disable-next-line no-control-regex -- the point of the test
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const EXE = '/tmp/evil\u001b[2J\u202egpj.sh';
const EXE_SHOWN = '/tmp/evil\\u001b[2J\\u202egpj.sh';
const ARG = 'x\u009b31m\u2066y\nz';
const ARG_SHOWN = "'x\\u009b31m\\u2066y\\nz'";

function hostilePrompt(): PromptView {
  return {
    id: '0123456789abcdef',
    uid: 1000,
    user: 'alice\u001b[8m',
    exe: EXE,
    program: { name: 'evil\u202e' },
    pids: [4242],
    cmdline: [EXE, ARG],
    parents: [{ pid: 1, exe: '/usr/bin/bash\u0007' }],
    destinations: [{ addr: '198.18.0.2', port: 443, proto: 'tcp', iface: 'wg0', count: 2 }],
    count: 2,
    firstSeen: '2026-01-01T00:00:00.000Z',
    lastSeen: '2026-01-01T00:00:01.000Z',
    warnings: [`${EXE} changed`],
  };
}

function expectEscaped(text: string, ...shown: string[]): void {
  expect(text).not.toMatch(RAW);
  for (const s of shown) expect(text).toContain(s);
}

describe('CLI text output escapes program-chosen text', () => {
  it('prompts: path, name, user, argv, parents and warnings', () => {
    const text = formatPrompts([hostilePrompt()], Date.parse('2026-01-01T00:00:02Z'));
    expectEscaped(text, EXE_SHOWN, 'evil\\u202e', 'alice\\u001b[8m', ARG_SHOWN, '/usr/bin/bash\\u0007', `WARNING:  ${EXE_SHOWN} changed`);
    expect(text).toContain('tried:    198.18.0.2:443/tcp on wg0 ×2');
  });

  it('events: every field, plain words and quoted values alike', () => {
    const denied: StampedEvent = {
      seq: 7,
      time: '2026-01-01T00:00:00.000Z',
      type: 'attempt.denied',
      attempt: { time: '2026-01-01T00:00:00.000Z', uid: 1000, pid: 4242, exe: EXE, cmdline: [EXE, ARG], dst: { addr: '198.18.0.2', port: 443, proto: 'tcp' }, iface: 'wg0', mode: 'enforce' },
    };
    const denyLine = formatEvent(denied);
    expectEscaped(denyLine, `exe=${EXE_SHOWN}`, 'dst=198.18.0.2:443/tcp');
    const opened: StampedEvent = {
      seq: 8,
      time: '2026-01-01T00:00:00.000Z',
      type: 'prompt.opened',
      id: '0123456789abcdef',
      uid: 1000,
      exe: EXE,
      dst: '198.18.0.2:443/tcp',
      program: 'my evil\u202e',
      warnings: [`${EXE} changed`],
    };
    const line = formatEvent(opened);
    expectEscaped(line, `exe=${EXE_SHOWN}`, 'program="my evil\\u202e"', `warnings=["${EXE_SHOWN} changed"]`);
    expect(line.split('\n')).toHaveLength(1);
  });

  it('audit: the program of each record, and profile test replays', () => {
    const report: AuditReport = {
      days: 30,
      records: [{ mode: 'enforce', uid: 1000, exe: EXE, dst: { addr: '198.18.0.2', port: 443, proto: 'tcp' }, count: 3, firstSeen: 'a', lastSeen: 'b' }],
      coverage: 'note',
    };
    expectEscaped(formatAudit(report), `${EXE_SHOWN} -> 198.18.0.2:443/tcp`);
    const replay = formatProfileTest({
      draft: { id: 'corp', version: 2, file: '/etc/x\u001b.json' },
      days: 30,
      recordsReplayed: 1,
      newlyDropped: [{ record: report.records[0]!, before: 'admit', after: 'drop', reason: `no rule names ${EXE}` }],
      newlyAdmitted: [],
      coverage: 'note',
    });
    expectEscaped(replay, EXE_SHOWN, '/etc/x\\u001b.json');
  });

  it('explain: the subject, the reason and the notes', () => {
    const r: ExplainResult = {
      verdict: 'deny',
      enforced: true,
      reason: `no rule allows ${EXE}`,
      subject: { pid: 4242, exe: EXE, uid: 1000 },
      locked: false,
      prompt: 'would-ask',
      notes: [`parent ${EXE}`],
    };
    expectEscaped(formatExplain(r), `deny: no rule allows ${EXE_SHOWN}`, `program: ${EXE_SHOWN} (pid 4242)`, `note:    parent ${EXE_SHOWN}`);
  });

  it('decisions, list and status problems', () => {
    expectEscaped(formatDecisions([decisionView({ id: 'ab12', path: EXE, via: 'api' })]), EXE_SHOWN);
    const list = formatList({
      userPrompts: 'allow',
      rules: [{ key: 'user.1000:ab12', id: 'ab12', source: { kind: 'user', uid: 1000 }, action: 'allow', binary: { path: EXE }, kernel: false, mode: 'enforce', locked: false }],
    });
    expectEscaped(list, EXE_SHOWN);
    const status = formatStatus({
      state: 'degraded',
      mode: 'enforce',
      mechanism: 'net_cls',
      cgroupDir: '/sys/fs/cgroup/net_cls/tunnelgate',
      interfaces: [{ pattern: 'wg0', present: [] }],
      ruleCount: 1,
      admittedProcesses: 0,
      dropped: { packets: 0, bytes: 0 },
      sources: [{ file: '/etc/tunnelgate/profiles.d/x\u202e.json', state: 'rejected', problems: [] }],
      problems: [`cannot admit ${EXE}`],
      helper: { pid: 1, version: '0.1.0', startedAt: 'a' },
    });
    expectEscaped(status, `  - cannot admit ${EXE_SHOWN}`, 'x\\u202e.json');
  });

  it('status says which net_cls hierarchy is in use', () => {
    const s = formatStatus({
      state: 'enforcing', mode: 'enforce', mechanism: 'net_cls', cgroupDir: '/run/tunnelgate/net_cls/tunnelgate', interfaces: [], ruleCount: 0, admittedProcesses: 0,
      dropped: { packets: 0, bytes: 0 }, sources: [], problems: [], helper: { pid: 1, version: '0.1.0', startedAt: 'a' },
      netCls: { mount: '/run/tunnelgate/net_cls', own: true, reason: "the helper's own net_cls mount: the system's /sys/fs/cgroup/net_cls is read-only" },
    });
    expect(s).toContain("cgroups:    /run/tunnelgate/net_cls/tunnelgate (the helper's own net_cls mount: the system's /sys/fs/cgroup/net_cls is read-only)");
  });
});
