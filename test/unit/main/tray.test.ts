import { inflateSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { BADGE_COLOUR, ICON_COLOURS, crc32, iconPng } from '../../../main/tray-icons.js';
import type { IconKind } from '../../../main/tray-icons.js';
import { MAX_LABEL, trayModel } from '../../../main/tray-model.js';
import type { MenuEntry } from '../../../main/tray-model.js';
import type { PromptView } from '../../../common/api.js';
import type { ConnectionState } from '../../../main/helper-connection.js';
import { hostilePrompt, promptView, statusReport } from './fixtures.js';

const actions = () => ({ openWindow: vi.fn(), openPrompts: vi.fn(), refresh: vi.fn(), quit: vi.fn() });
const connected = (over: Parameters<typeof statusReport>[0] = {}, prompts: PromptView[] = []): ConnectionState => ({
  kind: 'connected',
  status: statusReport(over),
  rules: { rules: [], userPrompts: 'allow' },
  prompts,
});
const labels = (menu: MenuEntry[]) => menu.map((m) => (m.type === 'separator' ? '---' : m.label));

describe('trayModel', () => {
  it('shows each gate state with its icon', () => {
    for (const state of ['enforcing', 'audit', 'degraded', 'down'] as const) {
      const m = trayModel(connected({ state }), actions());
      expect(m.icon).toBe(state);
      expect(m.badge).toBe(false);
    }
  });

  it('enforcing: headline, counts, and the actions', () => {
    const a = actions();
    const m = trayModel(connected({ ruleCount: 1, admittedProcesses: 2 }), a);
    expect(m.tooltip).toBe('tunnelgate: Gate enforcing — 1 rule, 2 admitted processes');
    expect(labels(m.menu)).toEqual(['Gate enforcing', '1 rule, 2 admitted processes', '---', 'Open tunnelgate', 'Refresh now', '---', 'Quit tunnelgate']);
    expect(m.menu.filter((e) => e.type === 'normal' && e.enabled).map((e) => (e.type === 'normal' ? e.label : ''))).toEqual([
      'Open tunnelgate',
      'Refresh now',
      'Quit tunnelgate',
    ]);
    for (const e of m.menu) if (e.type === 'normal') e.click?.();
    expect(a.openWindow).toHaveBeenCalledOnce();
    expect(a.refresh).toHaveBeenCalledOnce();
    expect(a.quit).toHaveBeenCalledOnce();
    m.click();
    expect(a.openWindow).toHaveBeenCalledTimes(2);
    expect(a.openPrompts).not.toHaveBeenCalled();
  });

  it('prompts waiting: a badge, the count first in tooltip and menu, and a click opens them', () => {
    const a = actions();
    const prompts = [
      promptView({ id: 'aaaaaaaaaaaaaaaa', program: { name: 'Firefox ESR', icon: 'firefox-esr' }, exe: '/usr/lib/firefox-esr/firefox-esr' }),
      promptView({ id: 'bbbbbbbbbbbbbbbb' }),
    ];
    const m = trayModel(connected({}, prompts), a);
    expect(m.icon).toBe('enforcing');
    expect(m.badge).toBe(true);
    expect(m.tooltip).toBe('tunnelgate: 2 programs ask for the tunnel — Gate enforcing');
    expect(labels(m.menu)).toEqual([
      '2 programs ask for the tunnel: answer…',
      '• Firefox ESR (firefox-esr) → 198.18.0.10:443/tcp',
      '• curl → 198.18.0.10:443/tcp',
      '---',
      'Gate enforcing',
      '2 rules, 1 admitted process',
      '---',
      'Open tunnelgate',
      'Refresh now',
      '---',
      'Quit tunnelgate',
    ]);
    const entry = m.menu[0];
    expect(entry).toMatchObject({ type: 'normal', enabled: true });
    if (entry?.type === 'normal') entry.click?.();
    expect(a.openPrompts).toHaveBeenCalledOnce();
    m.click();
    expect(a.openPrompts).toHaveBeenCalledTimes(2);
    expect(a.openWindow).not.toHaveBeenCalled();
  });

  it('one prompt is "1 program asks"; more than three are summed up', () => {
    expect(trayModel(connected({}, [promptView()]), actions()).tooltip).toBe('tunnelgate: 1 program asks for the tunnel — Gate enforcing');
    const five = ['a', 'b', 'c', 'd', 'e'].map((c) => promptView({ id: c.repeat(16), program: { name: `prog-${c}` }, exe: `/usr/bin/prog-${c}` }));
    const l = labels(trayModel(connected({}, five), actions()).menu);
    expect(l.slice(0, 6)).toEqual([
      '5 programs ask for the tunnel: answer…',
      '• prog-a → 198.18.0.10:443/tcp',
      '• prog-b → 198.18.0.10:443/tcp',
      '• prog-c → 198.18.0.10:443/tcp',
      '• … and 2 more',
      '---',
    ]);
  });

  it("a hostile program's name makes no mnemonic, no second line, no reversed text", () => {
    const p = hostilePrompt({ program: { name: 'A&B\nC\u202eD' } });
    const l = labels(trayModel(connected({}, [p]), actions()).menu);
    expect(l[1]).toBe('• A&&B C D (<img src=x onerror="window.__pwned=1">) → 198.18.0.10:443/tcp');
  });

  it('no prompts while the helper is unavailable: no badge', () => {
    const m = trayModel({ kind: 'unavailable', errorKind: 'unavailable', message: 'gone', failures: 1, retryInMs: 1000 }, actions());
    expect(m.badge).toBe(false);
  });

  it('degraded: lists the first problems', () => {
    const problems = ['one', 'two', 'three', 'four', 'five'];
    const m = trayModel(connected({ state: 'degraded', problems }), actions());
    expect(labels(m.menu).slice(0, 7)).toEqual(['Gate degraded', '2 rules, 1 admitted process', '5 problems:', '• one', '• two', '• three', '• … and 2 more']);
  });

  it('helper unavailable: grey icon, the reason, when it retries', () => {
    const m = trayModel(
      { kind: 'unavailable', errorKind: 'unavailable', message: 'the helper is not running (no /run/tunnelgate/api.sock)', failures: 2, retryInMs: 2000 },
      actions(),
    );
    expect(m.icon).toBe('unknown');
    expect(labels(m.menu).slice(0, 3)).toEqual(['Helper unavailable', 'the helper is not running (no /run/tunnelgate/api.sock)', 'Retrying in 2 s']);
    expect(trayModel({ kind: 'starting' }, actions()).icon).toBe('unknown');
  });

  it('helper text cannot make mnemonics or huge menus', () => {
    const m = trayModel(connected({ state: 'down', problems: ['a & b', 'x'.repeat(300)] }), actions());
    const l = labels(m.menu);
    expect(l).toContain('• a && b');
    expect(Math.max(...l.map((s) => s.length))).toBeLessThanOrEqual(MAX_LABEL);
  });
});

/** Decodes what encodePng writes: 8-bit RGBA, filter 0. */
function decodePng(png: Buffer): { width: number; height: number; px: Buffer } {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.subarray(off + 4, off + 8).toString('latin1');
    const data = png.subarray(off + 8, off + 8 + len);
    expect(png.readUInt32BE(off + 8 + len), `${type} crc`).toBe(crc32(png.subarray(off + 4, off + 8 + len)));
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([...data.subarray(8)]).toEqual([8, 6, 0, 0, 0]);
    }
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const px = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (width * 4 + 1)]).toBe(0);
    raw.copy(px, y * width * 4, y * (width * 4 + 1) + 1, (y + 1) * (width * 4 + 1));
  }
  return { width, height, px };
}

describe('tray icons', () => {
  const at = (d: { width: number; px: Buffer }, x: number, y: number) => [...d.px.subarray((y * d.width + x) * 4, (y * d.width + x) * 4 + 4)];

  it('crc32 is the PNG one', () => {
    expect(crc32(Buffer.from('IEND', 'latin1'))).toBe(0xae426082);
  });

  it.each(['enforcing', 'audit', 'degraded', 'down', 'unknown'] as IconKind[])('%s: a valid 22×22 PNG in its colour, transparent corners', (kind) => {
    const d = decodePng(iconPng(kind, 22));
    expect([d.width, d.height]).toEqual([22, 22]);
    expect(at(d, 0, 0)[3]).toBe(0);
    // Left edge of the disc, on the middle row: the state's colour, opaque.
    expect(at(d, 3, 11)).toEqual([...ICON_COLOURS[kind], 255]);
  });

  it('shapes differ, not only colours: disc, ring, bar, cross', () => {
    const centre = (k: IconKind) => at(decodePng(iconPng(k, 22)), 11, 11);
    expect(centre('enforcing')).toEqual([...ICON_COLOURS.enforcing, 255]);
    expect(centre('audit')[3]).toBe(0); // a ring
    expect(centre('degraded')).toEqual([255, 255, 255, 255]); // white bar
    expect(centre('down')).toEqual([255, 255, 255, 255]); // white cross
    expect(at(decodePng(iconPng('degraded', 22)), 11, 6)).toEqual([...ICON_COLOURS.degraded, 255]); // the bar is horizontal
  });

  it.each(['enforcing', 'audit', 'degraded', 'down', 'unknown'] as IconKind[])('%s with prompts: a purple badge top right, cut out of the shape', (kind) => {
    const plain = decodePng(iconPng(kind, 22));
    const badged = decodePng(iconPng(kind, 22, true));
    // Near the badge's centre (22 - 4.84, 4.84): the badge colour.
    expect(at(badged, 17, 4)).toEqual([...BADGE_COLOUR, 255]);
    expect(at(plain, 17, 4)).not.toEqual([...BADGE_COLOUR, 255]);
    // The rest of the icon is the state's, as without a badge.
    expect(at(badged, 3, 11)).toEqual([...ICON_COLOURS[kind], 255]);
    expect(at(badged, 11, 18)).toEqual(at(plain, 11, 18));
  });
});
