// The tray app's UI preferences: theme override, desktop notifications, and the bounds of
// its two windows. Kept by electron-store (main/preference-store.ts) as one JSON file in
// the user's config dir; read back through `sanitizePreferences`, so a hand-edited or
// older file never gives the app a value it does not understand.
//
// Plain module: no Electron. The store is a small seam; tests hand in a Map.

import type { NotificationPreference, ThemePreference, UiPreferences } from '../common/ipc.js';

/** A window's position and size in screen pixels (Electron's Rectangle). */
export interface Bounds {
  x: number;
  y: number;
  width: number;
  height: number;
}

export type WindowName = 'main' | 'prompt';

/** Everything kept: what the page sees (UiPreferences) and what only main uses. */
export interface StoredPreferences extends UiPreferences {
  windows: Partial<Record<WindowName, Bounds>>;
}

export const DEFAULT_PREFERENCES: StoredPreferences = { theme: 'system', notifications: 'auto', windows: {} };

const THEMES: readonly ThemePreference[] = ['system', 'light', 'dark'];
const NOTIFICATIONS: readonly NotificationPreference[] = ['auto', 'always', 'never'];
/** Larger than any screen, smaller than anything absurd. */
const MAX_EXTENT = 32_768;

/** The part of electron-store (Conf) this module uses. */
export interface KeyValueStore {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
}

/** Bounds as saved, or undefined where any field is not a sane integer. */
export function sanitizeBounds(v: unknown): Bounds | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const b = v as Record<string, unknown>;
  const int = (x: unknown, min: number) => Number.isSafeInteger(x) && (x as number) >= min && (x as number) <= MAX_EXTENT;
  if (!int(b.x, -MAX_EXTENT) || !int(b.y, -MAX_EXTENT) || !int(b.width, 1) || !int(b.height, 1)) return undefined;
  return { x: b.x as number, y: b.y as number, width: b.width as number, height: b.height as number };
}

/** Whatever the file holds, as preferences: unknown or invalid values give the defaults. */
export function sanitizePreferences(raw: { theme?: unknown; notifications?: unknown; windows?: unknown }): StoredPreferences {
  const theme = THEMES.find((t) => t === raw.theme) ?? DEFAULT_PREFERENCES.theme;
  const notifications = NOTIFICATIONS.find((n) => n === raw.notifications) ?? DEFAULT_PREFERENCES.notifications;
  const windows: StoredPreferences['windows'] = {};
  if (typeof raw.windows === 'object' && raw.windows !== null) {
    for (const name of ['main', 'prompt'] as const) {
      const b = sanitizeBounds((raw.windows as Record<string, unknown>)[name]);
      if (b) windows[name] = b;
    }
  }
  return { theme, notifications, windows };
}

/** The preferences over a store, with change listeners. */
export class Preferences {
  private readonly listeners = new Set<(p: UiPreferences) => void>();

  constructor(private readonly store: KeyValueStore) {}

  /** What the page may see and change. */
  get ui(): UiPreferences {
    const p = this.read();
    return { theme: p.theme, notifications: p.notifications };
  }

  /** Applies valid changes (ipc-main.ts checked them) and tells listeners; returns the result. */
  update(changes: Partial<UiPreferences>): UiPreferences {
    const before = this.ui;
    if (changes.theme !== undefined) this.store.set('theme', changes.theme);
    if (changes.notifications !== undefined) this.store.set('notifications', changes.notifications);
    const after = this.ui;
    if (after.theme !== before.theme || after.notifications !== before.notifications) for (const l of [...this.listeners]) l(after);
    return after;
  }

  bounds(name: WindowName): Bounds | undefined {
    return this.read().windows[name];
  }

  saveBounds(name: WindowName, b: Bounds): void {
    const ok = sanitizeBounds(b);
    if (ok) this.store.set(`windows.${name}`, ok);
  }

  onChange(listener: (p: UiPreferences) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private read(): StoredPreferences {
    return sanitizePreferences({ theme: this.store.get('theme'), notifications: this.store.get('notifications'), windows: this.store.get('windows') });
  }
}
