// Desktop notifications for prompts: one per prompt, when it first appears, closed when
// the prompt is answered or closes. Clicking one opens the window on the prompts.
//
// Plain module: no Electron. The notifier is a small interface (main/desktop-notifier.ts
// is Electron's); tests hand in a fake.

import type { PromptView } from '../common/prompts.js';
import { clipText, formatDestination, oneLine } from '../common/format.js';

export interface DesktopNote {
  title: string;
  body: string;
  onClick: () => void;
}
export interface NoteHandle {
  close(): void;
}
export interface DesktopNotifier {
  /** False where the desktop has no notification service. */
  isSupported(): boolean;
  show(note: DesktopNote): NoteHandle;
}

export interface PromptAlertsOptions {
  /** True while a notification would only repeat what the person is looking at (the window has focus). */
  quiet?: () => boolean;
  /** False while the person does not want notifications here (main/prompt-surface.ts notifyPrompts). */
  enabled?: () => boolean;
  /** Prompt ids remembered as already announced. */
  remember?: number;
}

export class PromptAlerts {
  private readonly open = new Map<string, NoteHandle>();
  /** Announced once, never again: not after an outage, nor when the window had focus. */
  private readonly announced = new Set<string>();
  private readonly quiet: () => boolean;
  private readonly enabled: () => boolean;
  private readonly remember: number;

  constructor(
    private readonly notifier: DesktopNotifier,
    private readonly onClick: () => void,
    opts: PromptAlertsOptions = {},
  ) {
    this.quiet = opts.quiet ?? (() => false);
    this.enabled = opts.enabled ?? (() => true);
    this.remember = opts.remember ?? 1024;
  }

  /** Every pending prompt, as main/helper-connection.ts reports them. */
  update(prompts: readonly PromptView[]): void {
    const pending = new Set(prompts.map((p) => p.id));
    for (const [id, handle] of this.open) {
      if (pending.has(id)) continue;
      this.open.delete(id);
      safely(() => handle.close());
    }
    const fresh = prompts.filter((p) => !this.announced.has(p.id));
    if (!fresh.length) return;
    for (const p of fresh) this.announce(p.id);
    if (!this.enabled() || this.quiet() || !safely(() => this.notifier.isSupported())) return;
    for (const p of fresh) {
      const handle = safely(() => this.notifier.show({ ...promptNote(p), onClick: this.onClick }));
      if (handle) this.open.set(p.id, handle);
    }
  }

  /** Closes every notification still shown. */
  clear(): void {
    for (const h of this.open.values()) safely(() => h.close());
    this.open.clear();
  }

  private announce(id: string): void {
    this.announced.add(id);
    if (this.announced.size > this.remember) {
      const oldest = this.announced.values().next().value;
      if (oldest !== undefined) this.announced.delete(oldest);
    }
  }
}

/**
 * Title and body of a prompt's notification. Only a pointer to the window, which shows
 * everything exactly: fields are clipped, and characters a notification server could read
 * as markup (`<`, `>`, `&`: Linux servers may render the body as markup) or that change
 * text direction are replaced.
 */
export function promptNote(p: PromptView): { title: string; body: string } {
  const lines: string[] = [];
  if (p.warnings.length) lines.push('Warning: this program is not the one seen before at its path.');
  lines.push(noteText(p.exe));
  const [first] = p.destinations;
  if (first) {
    const more = p.destinations.length > 1 ? ` and ${p.destinations.length - 1} more` : '';
    lines.push(`wants ${noteText(formatDestination(first))}${more}`);
  }
  lines.push('Open tunnelgate to answer. No answer counts as deny.');
  return { title: `${noteText(p.program.name, 60)} asks for the tunnel`, body: lines.join('\n') };
}

export function noteText(s: string, max = 120): string {
  return clipText(oneLine(s).replaceAll('<', '‹').replaceAll('>', '›').replaceAll('&', '＆'), max);
}

function safely<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    console.error('tunnelgate: desktop notification failed:', e);
    return undefined;
  }
}
