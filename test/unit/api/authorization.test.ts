import { describe, expect, it } from 'vitest';
import { adminCheck, gidOfGroup, parseStatusCreds, resolveAdminGroup } from '../../../helper/api/authorization.js';
import { DEFAULT_SETTINGS, parseSettings } from '../../../helper/settings.js';

const status = (uid: number, gid: number, groups: string) => `Name:\tbash\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${gid}\t${gid}\t${gid}\t${gid}\nGroups:\t${groups}\n`;
const io = (files: Record<string, string>) => ({
  readFile: (f: string) => {
    const t = files[f];
    if (t === undefined) throw new Error(`ENOENT ${f}`);
    return t;
  },
});

describe('admin group', () => {
  it('root is always an admin; without a group nobody else is', () => {
    expect(adminCheck(undefined, io({}))({ pid: 5, uid: 0, gid: 0 })).toBe(true);
    expect(adminCheck(undefined, io({}))({ pid: 5, uid: 1000, gid: 1000 })).toBe(false);
  });

  it("a member by the connecting process's groups (primary or supplementary), as the kernel records them", () => {
    const check = adminCheck(4500, io({ '/proc/5/status': status(1000, 1000, '24 4500'), '/proc/6/status': status(1001, 4500, ''), '/proc/7/status': status(1002, 1002, '24 27') }));
    expect(check({ pid: 5, uid: 1000, gid: 1000 })).toBe(true);
    expect(check({ pid: 6, uid: 1001, gid: 4500 })).toBe(true);
    expect(check({ pid: 7, uid: 1002, gid: 1002 })).toBe(false);
  });

  it('fails closed: a process gone, or one whose credentials are not the peer credentials', () => {
    const check = adminCheck(4500, io({ '/proc/5/status': status(2000, 2000, '4500') }));
    expect(check({ pid: 5, uid: 1000, gid: 1000 })).toBe(false);
    expect(check({ pid: 9, uid: 1000, gid: 1000 })).toBe(false);
  });

  it('parses /proc/PID/status and /etc/group', () => {
    expect(parseStatusCreds(status(1000, 100, '4 24 4500'))).toEqual({ euid: 1000, egid: 100, groups: [4, 24, 4500] });
    expect(parseStatusCreds('Name:\tx\n')).toBeUndefined();
    expect(gidOfGroup('root:x:0:\ntunnelgate-admin:x:4500:alice,bob\n', 'tunnelgate-admin')).toBe(4500);
    expect(gidOfGroup('root:x:0:\n', 'nope')).toBeUndefined();
    expect(resolveAdminGroup('tunnelgate-admin', io({ '/etc/group': 'tunnelgate-admin:x:4500:\n' }))).toEqual({ gid: 4500 });
    expect(resolveAdminGroup('missing', io({ '/etc/group': '' })).problem).toMatch(/does not exist in \/etc\/group; only root is an admin/);
    expect(resolveAdminGroup(4501)).toEqual({ gid: 4501 });
  });
});

describe('helper.json', () => {
  it('defaults, and fields given', () => {
    expect(parseSettings('{}')).toEqual({ settings: DEFAULT_SETTINGS, problems: [] });
    expect(parseSettings('{"promptTimeoutSeconds": 5, "adminGroup": "wheel", "auditLog": {"keep": 2}}').settings).toEqual({
      ...DEFAULT_SETTINGS,
      promptTimeoutSeconds: 5,
      adminGroup: 'wheel',
      auditLog: { ...DEFAULT_SETTINGS.auditLog, keep: 2 },
    });
  });

  it("the exec hold's deadline: 2 s by default, 50 ms to 10 s", () => {
    expect(DEFAULT_SETTINGS.execHoldDeadlineMs).toBe(2_000);
    expect(parseSettings('{"execHoldDeadlineMs": 500}').settings.execHoldDeadlineMs).toBe(500);
    expect(parseSettings('{"execHoldDeadlineMs": 10}', 'helper.json').problems).toContain('helper.json: execHoldDeadlineMs: must be >= 50');
    expect(parseSettings('{"execHoldDeadlineMs": 60000}', 'helper.json').settings).toEqual(DEFAULT_SETTINGS);
  });

  it('a file that does not validate is ignored as a whole, with every problem named', () => {
    const r = parseSettings('{"promptTimeoutSeconds": 0, "adminGroup": "a b", "colour": "red"}', 'helper.json');
    expect(r.settings).toEqual(DEFAULT_SETTINGS);
    expect(r.problems).toContain('helper.json: promptTimeoutSeconds: must be >= 1');
    expect(r.problems).toContain('helper.json: (top): must NOT have additional properties');
    expect(r.problems.at(-1)).toBe('helper.json: ignored; the defaults are used');
    expect(parseSettings('{').problems[0]).toMatch(/^helper.json: not JSON/);
  });
});
