import { describe, expect, it } from 'vitest';
import { DEFAULT_PREFERENCES, Preferences, sanitizeBounds, sanitizePreferences } from '../../../main/preferences.js';
import type { KeyValueStore } from '../../../main/preferences.js';

/** electron-store as this module sees it: dotted keys set nested values (Conf does the same). */
class MapStore implements KeyValueStore {
  data: Record<string, unknown> = {};
  get(key: string): unknown {
    return this.data[key];
  }
  set(key: string, value: unknown): void {
    const [head, tail] = key.split('.', 2) as [string, string | undefined];
    if (tail === undefined) this.data[head] = value;
    else this.data[head] = { ...(this.data[head] as object | undefined), [tail]: value };
  }
}

describe('sanitizePreferences', () => {
  it('keeps valid values and replaces anything else with the defaults', () => {
    expect(sanitizePreferences({})).toEqual(DEFAULT_PREFERENCES);
    expect(sanitizePreferences({ theme: 'dark', notifications: 'never' })).toEqual({ theme: 'dark', notifications: 'never', windows: {} });
    expect(sanitizePreferences({ theme: 'purple', notifications: 1, windows: 'x' })).toEqual(DEFAULT_PREFERENCES);
    expect(
      sanitizePreferences({ windows: { main: { x: 10, y: -20, width: 1024, height: 720 }, prompt: { x: 0, y: 0, width: 0, height: 600 }, other: {} } }),
    ).toEqual({ ...DEFAULT_PREFERENCES, windows: { main: { x: 10, y: -20, width: 1024, height: 720 } } });
  });

  it('bounds must be sane integers', () => {
    expect(sanitizeBounds({ x: 1.5, y: 0, width: 400, height: 600 })).toBeUndefined();
    expect(sanitizeBounds({ x: 0, y: 0, width: 400, height: 1e9 })).toBeUndefined();
    expect(sanitizeBounds(null)).toBeUndefined();
    expect(sanitizeBounds({ x: 0, y: 0, width: 400, height: 600, extra: 1 })).toEqual({ x: 0, y: 0, width: 400, height: 600 });
  });
});

describe('Preferences', () => {
  it('updates, reads back and tells listeners once per real change', () => {
    const store = new MapStore();
    const p = new Preferences(store);
    const seen: unknown[] = [];
    p.onChange((x) => seen.push(x));
    expect(p.ui).toEqual({ theme: 'system', notifications: 'auto' });
    expect(p.update({ theme: 'dark' })).toEqual({ theme: 'dark', notifications: 'auto' });
    p.update({ theme: 'dark' });
    p.update({ notifications: 'never' });
    expect(seen).toEqual([
      { theme: 'dark', notifications: 'auto' },
      { theme: 'dark', notifications: 'never' },
    ]);
    expect(store.data).toMatchObject({ theme: 'dark', notifications: 'never' });
  });

  it('window bounds per window, invalid ones not saved', () => {
    const store = new MapStore();
    const p = new Preferences(store);
    p.saveBounds('prompt', { x: 100, y: 50, width: 400, height: 600 });
    p.saveBounds('main', { x: 0, y: 0, width: -5, height: 600 });
    expect(p.bounds('prompt')).toEqual({ x: 100, y: 50, width: 400, height: 600 });
    expect(p.bounds('main')).toBeUndefined();
    // A hand-edited file with a broken value: ignored, not trusted.
    store.data.windows = { main: { x: 'a' } };
    expect(p.bounds('main')).toBeUndefined();
  });
});
