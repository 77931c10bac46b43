import { describe, expect, it } from 'vitest';
import { notifyPrompts, promptWindowAction, promptWindowPrompts, trayShown } from '../../../main/prompt-surface.js';
import { parseNameHasOwner } from '../../../main/tray-presence.js';
import { promptView } from './fixtures.js';

const live = promptView({ id: 'a'.repeat(16), pids: [5150] });
const exited = promptView({ id: 'b'.repeat(16), pids: [] });
const other = promptView({ id: 'c'.repeat(16), pids: [6000] });

describe('the prompt window', () => {
  it('shows only prompts of programs that still run', () => {
    expect(promptWindowPrompts([live, exited, other]).map((p) => p.id)).toEqual([live.id, other.id]);
  });

  it('opens for a prompt not seen before, and only then', () => {
    expect(promptWindowAction([live], new Set(), false)).toBe('open');
    expect(promptWindowAction([live], new Set([live.id]), false)).toBe('none'); // closed by the person: not again
    expect(promptWindowAction([live, other], new Set([live.id]), true)).toBe('open');
  });

  it('closes when nothing is left to answer: answered elsewhere, timed out, or the program exited', () => {
    expect(promptWindowAction([], new Set([live.id]), true)).toBe('close');
    expect(promptWindowAction([exited], new Set([live.id]), true)).toBe('close');
    expect(promptWindowAction([], new Set(), false)).toBe('none');
  });
});

describe('desktop notifications', () => {
  it('auto: only where no tray icon is shown; always; never', () => {
    expect(notifyPrompts('auto', true)).toBe(false);
    expect(notifyPrompts('auto', false)).toBe(true);
    expect(notifyPrompts('always', true)).toBe(true);
    expect(notifyPrompts('never', false)).toBe(false);
  });

  it('a tray is shown where the session bus has a StatusNotifier host, unless overridden', () => {
    expect(trayShown({}, true)).toBe(true);
    expect(trayShown({}, false)).toBe(false);
    expect(trayShown({}, undefined)).toBe(true);
    expect(trayShown({ TUNNELGATE_TRAY: 'hide' }, true)).toBe(false);
    expect(trayShown({ TUNNELGATE_TRAY: 'show' }, false)).toBe(true);
  });

  it("reads gdbus's NameHasOwner answer", () => {
    expect(parseNameHasOwner('(true,)\n')).toBe(true);
    expect(parseNameHasOwner('(false,)')).toBe(false);
    expect(parseNameHasOwner('Error: …')).toBeUndefined();
  });
});
