import { describe, expect, it, vi } from 'vitest';
import { PromptAlerts, noteText, promptNote } from '../../../main/prompt-alerts.js';
import type { DesktopNote, DesktopNotifier } from '../../../main/prompt-alerts.js';
import { hostilePrompt, promptView } from './fixtures.js';

/** The Electron Notification seam, as main/prompt-alerts.ts sees it. */
class FakeNotifier implements DesktopNotifier {
  supported = true;
  shown: Array<DesktopNote & { closed: boolean }> = [];
  isSupported(): boolean {
    return this.supported;
  }
  show(note: DesktopNote) {
    const n = { ...note, closed: false };
    this.shown.push(n);
    return { close: () => void (n.closed = true) };
  }
}

const A = promptView({ id: 'aaaaaaaaaaaaaaaa' });
const B = promptView({ id: 'bbbbbbbbbbbbbbbb', program: { name: 'Firefox ESR', icon: 'firefox-esr' }, exe: '/usr/lib/firefox-esr/firefox-esr' });

describe('PromptAlerts', () => {
  it('one notification per new prompt; closed when the prompt goes; a click opens the prompts', () => {
    const notifier = new FakeNotifier();
    const open = vi.fn();
    const alerts = new PromptAlerts(notifier, open);
    alerts.update([A]);
    alerts.update([A, B]);
    alerts.update([A, { ...B, count: 9 }]); // an update is not a new prompt
    expect(notifier.shown.map((n) => n.title)).toEqual(['curl asks for the tunnel', 'Firefox ESR asks for the tunnel']);
    alerts.update([B]);
    expect(notifier.shown.map((n) => n.closed)).toEqual([true, false]);
    notifier.shown[1]?.onClick();
    expect(open).toHaveBeenCalledOnce();
    alerts.clear();
    expect(notifier.shown.map((n) => n.closed)).toEqual([true, true]);
  });

  it('prompts back after an outage are not announced again', () => {
    const notifier = new FakeNotifier();
    const alerts = new PromptAlerts(notifier, () => undefined);
    alerts.update([A]);
    alerts.update([]); // helper unavailable
    alerts.update([A]); // and back
    expect(notifier.shown).toHaveLength(1);
  });

  it('nothing while the window has focus, nor where notifications are not supported; those prompts count as announced', () => {
    const notifier = new FakeNotifier();
    let focused = true;
    const alerts = new PromptAlerts(notifier, () => undefined, { quiet: () => focused });
    alerts.update([A]);
    focused = false;
    notifier.supported = false;
    alerts.update([A, B]);
    notifier.supported = true;
    alerts.update([A, B]);
    expect(notifier.shown).toEqual([]);
  });

  it('a notifier that throws does not break the app', () => {
    const notifier = new FakeNotifier();
    notifier.show = () => {
      throw new Error('no notification daemon');
    };
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const alerts = new PromptAlerts(notifier, () => undefined);
      expect(() => alerts.update([A])).not.toThrow();
      expect(spy).toHaveBeenCalledOnce();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('promptNote', () => {
  it('names the program, its path and what it tried; says what no answer means', () => {
    expect(promptNote(B)).toEqual({
      title: 'Firefox ESR asks for the tunnel',
      body: '/usr/lib/firefox-esr/firefox-esr\nwants 198.18.0.10:443/tcp\nOpen tunnelgate to answer. No answer counts as deny.',
    });
  });

  it('a hostile prompt: no markup, no control or direction characters, the warning first, clipped', () => {
    const n = promptNote(hostilePrompt({ exe: `/tmp/${'x'.repeat(300)}` }));
    expect(n.title).toBe('‹b›Totally Safe‹/b› ＆ "Trusted" asks for the tunnel');
    const lines = n.body.split('\n');
    expect(lines[0]).toBe('Warning: this program is not the one seen before at its path.');
    expect(lines[1]).toHaveLength(120);
    expect(lines[2]).toBe('wants 198.18.0.10:443/tcp and 1 more');
    expect(n.body).not.toMatch(/[<>&\u202e]/);
    expect(noteText('a\u202eb\nc\u0007d')).toBe('a b c d');
  });
});
