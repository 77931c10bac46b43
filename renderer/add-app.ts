// "Add an app…": a user rule for an installed application (names and icons from the
// helper's list of .desktop entries, Flatpak exports included) or, as the fallback, a
// program file chosen in main's file dialog; for the whole tunnel or some destinations;
// for a while or always. The helper decides: where IT locks user decisions, or an IT
// deny overrides the program, it refuses and the dialog shows its words.

import type { AllowResult } from '../common/api.js';
import type { Destination } from '../common/profile.js';
import type { AddAppRequest, AppList, InstalledApp, IpcResult } from '../common/ipc.js';
import { glyphLetter, visible } from './format.js';
import { el } from './dom.js';

export interface AddAppApi {
  getApps(): Promise<IpcResult<AppList>>;
  pickProgram(): Promise<IpcResult<string | null>>;
  addApp(request: AddAppRequest): Promise<IpcResult<AllowResult>>;
}

/** The durations offered; `0` always, `-1` until logout. */
export const DURATIONS: ReadonlyArray<{ value: number; label: string }> = [
  { value: 0, label: 'Always' },
  { value: 3600, label: 'For 1 hour' },
  { value: 8 * 3600, label: 'For 8 hours' },
  { value: 86400, label: 'For 1 day' },
  { value: -1, label: 'Until I log out' },
];

/**
 * One destination as a person types it: `CIDR [PORT[,PORT…]] [tcp|udp]`, e.g.
 * `198.18.0.0/24 443 tcp`. Undefined where it is not that shape; the helper checks the rest.
 */
export function parseDestination(text: string): Destination | undefined {
  const parts = text.trim().split(/\s+/).filter(Boolean);
  const cidr = parts.shift();
  if (!cidr || !/^[0-9A-Fa-f:.]+\/[0-9]{1,3}$/.test(cidr)) return undefined;
  const d: Destination = { cidr };
  for (const p of parts) {
    if (p === 'tcp' || p === 'udp') {
      if (d.proto) return undefined;
      d.proto = p;
    } else if (/^[0-9]+(,[0-9]+)*$/.test(p) && !d.ports) {
      const ports = p.split(',').map(Number);
      if (ports.some((n) => n < 1 || n > 65535)) return undefined;
      d.ports = ports;
    } else {
      return undefined;
    }
  }
  return d;
}

/** One line per destination; the first line that is not one is returned as the error. */
export function parseDestinations(text: string): { destinations: Destination[] } | { error: string } {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  if (!lines.length) return { error: 'Name at least one destination, e.g. 198.18.0.0/24 443 tcp.' };
  const destinations: Destination[] = [];
  for (const l of lines) {
    const d = parseDestination(l);
    if (!d) return { error: `Not a destination: “${visible(l)}” (write CIDR, then ports and tcp/udp if needed).` };
    destinations.push(d);
  }
  return { destinations };
}

function byId<T extends HTMLElement>(root: ParentNode, id: string): T {
  const e = root.querySelector<T>(`#${id}`);
  if (!e) throw new Error(`index.html has no #${id}`);
  return e;
}

/** The dialog in index.html (#add-app-dialog), driven by the "Add an app…" button. */
export class AddAppDialog {
  private readonly dialog: HTMLDialogElement;
  private readonly list: HTMLElement;
  private readonly listNote: HTMLElement;
  private readonly filter: HTMLInputElement;
  private readonly chosen: HTMLElement;
  private readonly destinations: HTMLTextAreaElement;
  private readonly duration: HTMLSelectElement;
  private readonly status: HTMLElement;
  private readonly submit: HTMLButtonElement;
  private apps: InstalledApp[] = [];
  /** A program file (`path`) or an installed app by its entry (`app`, resolved by the helper); `shown`: what the page names. */
  private selection: { path?: string; app?: string; label: string; shown: string } | undefined;

  constructor(
    private readonly api: AddAppApi,
    /** After the helper added the rule. */
    private readonly added: (r: AllowResult) => void,
  ) {
    this.dialog = byId<HTMLDialogElement>(document, 'add-app-dialog');
    this.list = byId(this.dialog, 'add-app-list');
    this.listNote = byId(this.dialog, 'add-app-list-note');
    this.filter = byId<HTMLInputElement>(this.dialog, 'add-app-filter');
    this.chosen = byId(this.dialog, 'add-app-chosen');
    this.destinations = byId<HTMLTextAreaElement>(this.dialog, 'add-app-destinations');
    this.duration = byId<HTMLSelectElement>(this.dialog, 'add-app-duration');
    this.status = byId(this.dialog, 'add-app-status');
    this.submit = byId<HTMLButtonElement>(this.dialog, 'add-app-submit');
    this.duration.replaceChildren(
      ...DURATIONS.map((d) => {
        const o = el('option', undefined, d.label);
        o.value = String(d.value);
        return o;
      }),
    );
    this.filter.addEventListener('input', () => this.renderList());
    byId(this.dialog, 'add-app-pick').addEventListener('click', () => void this.pick());
    byId(this.dialog, 'add-app-cancel').addEventListener('click', () => this.dialog.close());
    this.submit.addEventListener('click', () => void this.send());
    for (const r of this.dialog.querySelectorAll<HTMLInputElement>('input[name="add-app-scope"]')) {
      r.addEventListener('change', () => this.syncScope());
    }
  }

  async open(): Promise<void> {
    this.selection = undefined;
    this.filter.value = '';
    this.destinations.value = '';
    this.duration.value = '0';
    this.setStatus('', false);
    this.dialog.querySelector<HTMLInputElement>('input[name="add-app-scope"][value="tunnel"]')!.checked = true;
    this.syncScope();
    this.renderChosen();
    this.listNote.textContent = 'Loading the installed applications…';
    this.list.replaceChildren();
    this.dialog.showModal();
    this.filter.focus();
    const r = await this.api.getApps();
    if (!r.ok) {
      this.apps = [];
      this.listNote.textContent = `The installed applications cannot be listed: ${r.error.message}. Choose the program file instead.`;
    } else if (r.value.unsupported) {
      this.apps = [];
      this.listNote.textContent = 'This helper cannot list installed applications yet. Choose the program file instead.';
    } else {
      this.apps = r.value.apps;
      this.listNote.textContent = this.apps.length ? '' : 'No installed application found. Choose the program file instead.';
    }
    this.renderList();
  }

  private renderList(): void {
    const q = this.filter.value.trim().toLowerCase();
    const shown = this.apps.filter((a) => !q || a.name.toLowerCase().includes(q) || (a.exe ?? '').toLowerCase().includes(q));
    this.list.replaceChildren(
      ...shown.map((a) => {
        const b = el(
          'button',
          'app',
          el('span', 'app-glyph', glyphLetter(a.name)),
          el(
            'span',
            'app-text',
            el('span', 'app-name', visible(a.name)),
            el('span', 'app-detail', a.flatpak !== undefined ? `Flatpak ${visible(a.flatpak)}` : visible(a.exe ?? a.desktopEntry)),
          ),
        );
        b.type = 'button';
        b.firstElementChild?.setAttribute('aria-hidden', 'true');
        b.dataset['entry'] = a.desktopEntry;
        b.setAttribute('aria-pressed', String(this.selection?.label === a.desktopEntry));
        b.addEventListener('click', () => {
          this.selection = { app: a.desktopEntry, label: a.desktopEntry, shown: a.flatpak !== undefined ? `Flatpak ${a.flatpak}` : (a.exe ?? a.desktopEntry) };
          this.renderChosen(a.name);
          this.renderList();
        });
        return el('li', undefined, b);
      }),
    );
  }

  private renderChosen(name?: string): void {
    const s = this.selection;
    this.chosen.textContent = s ? `Chosen: ${name !== undefined ? `${visible(name)} — ` : ''}${visible(s.shown)}` : 'No program chosen yet.';
    this.submit.disabled = !s;
  }

  private async pick(): Promise<void> {
    const r = await this.api.pickProgram();
    if (!r.ok) return this.setStatus(`The file dialog failed: ${r.error.message}`, true);
    if (r.value === null) return;
    this.selection = { path: r.value, label: r.value, shown: r.value };
    this.renderChosen();
    this.renderList();
  }

  private syncScope(): void {
    const only = this.dialog.querySelector<HTMLInputElement>('input[name="add-app-scope"][value="destination"]')!.checked;
    this.destinations.disabled = !only;
  }

  private setStatus(text: string, error: boolean): void {
    this.status.textContent = text;
    this.status.className = error ? 'add-app-status prompt-error' : 'add-app-status';
  }

  private async send(): Promise<void> {
    const s = this.selection;
    if (!s) return;
    const req: AddAppRequest = s.path !== undefined ? { path: s.path } : { app: s.app ?? '' };
    if (!this.destinations.disabled) {
      const d = parseDestinations(this.destinations.value);
      if ('error' in d) return this.setStatus(d.error, true);
      req.destinations = d.destinations;
    }
    const seconds = Number(this.duration.value);
    if (seconds > 0) req.seconds = seconds;
    if (seconds < 0) req.untilLogout = true;
    this.submit.disabled = true;
    this.setStatus('Asking the helper…', false);
    const r = await this.api.addApp(req);
    this.submit.disabled = false;
    if (!r.ok) return this.setStatus(`Not added: ${r.error.message}`, true);
    this.dialog.close();
    this.added(r.value);
  }
}
