// What the tray shows for a connection state: icon, tooltip and menu, as data. Prompts
// waiting for an answer come first: a badge on the icon, their count in the tooltip, an
// entry that opens the window on them, and a click on the icon does the same.
// main/tray-controller.ts hands it to Electron; tests read it directly.
//
// Plain module: no Electron. MenuEntry is a structural subset of Electron's
// MenuItemConstructorOptions.

import type { PromptView } from '../common/prompts.js';
import type { ConnectionState } from './helper-connection.js';
import { clipText, formatDestination, oneLine } from '../common/format.js';
import type { IconKind } from './tray-icons.js';

export interface TrayActions {
  openWindow(): void;
  /** Opens the window on the pending prompts. */
  openPrompts(): void;
  refresh(): void;
  quit(): void;
}

export type MenuEntry =
  | { type: 'separator' }
  | { type: 'normal'; label: string; enabled: boolean; click?: () => void };

export interface TrayModel {
  icon: IconKind;
  /** Prompts are waiting: the icon carries a badge. */
  badge: boolean;
  tooltip: string;
  menu: MenuEntry[];
  /** What a click on the icon does. */
  click: () => void;
}

/** Programs named in the menu; the window shows them all. */
export const MENU_PROMPTS = 3;

const HEADLINES: Readonly<Record<IconKind, string>> = {
  enforcing: 'Gate enforcing',
  audit: 'Gate in audit mode (nothing blocked)',
  degraded: 'Gate degraded',
  down: 'Gate down',
  unknown: 'Helper unavailable',
};

/** Menu labels are plain text, but long helper messages would make a very wide menu. */
export const MAX_LABEL = 90;

export function trayModel(state: ConnectionState, actions: TrayActions): TrayModel {
  let icon: IconKind;
  let details: string[];
  switch (state.kind) {
    case 'starting':
      icon = 'unknown';
      details = ['Connecting to the helper…'];
      break;
    case 'unavailable':
      icon = 'unknown';
      details = [state.message, `Retrying in ${Math.ceil(state.retryInMs / 1000)} s`];
      break;
    case 'connected': {
      const s = state.status;
      icon = s.state;
      details = [`${count(s.ruleCount, 'rule', 'rules')}, ${count(s.admittedProcesses, 'admitted process', 'admitted processes')}`];
      if (s.problems.length) details.push(`${count(s.problems.length, 'problem', 'problems')}:`, ...s.problems.slice(0, 3).map((p) => `• ${p}`));
      if (s.problems.length > 3) details.push(`• … and ${s.problems.length - 3} more`);
      break;
    }
  }
  const headline = state.kind === 'starting' ? 'tunnelgate' : HEADLINES[icon];
  const info = (label: string): MenuEntry => ({ type: 'normal', label: menuLabel(label), enabled: false });
  const prompts = state.kind === 'connected' ? state.prompts : [];
  const waiting = prompts.length ? `${count(prompts.length, 'program asks', 'programs ask')} for the tunnel` : undefined;
  const promptEntries: MenuEntry[] = waiting
    ? [
        { type: 'normal', label: menuLabel(`${waiting}: answer…`), enabled: true, click: () => actions.openPrompts() },
        ...prompts.slice(0, MENU_PROMPTS).map((p) => info(`• ${promptLine(p)}`)),
        ...(prompts.length > MENU_PROMPTS ? [info(`• … and ${prompts.length - MENU_PROMPTS} more`)] : []),
        { type: 'separator' },
      ]
    : [];
  return {
    icon,
    badge: prompts.length > 0,
    tooltip: clip(waiting ? `tunnelgate: ${waiting} — ${headline}` : `tunnelgate: ${headline}${details[0] ? ` — ${details[0]}` : ''}`),
    click: waiting ? () => actions.openPrompts() : () => actions.openWindow(),
    menu: [
      ...promptEntries,
      info(headline),
      ...details.map(info),
      { type: 'separator' },
      { type: 'normal', label: 'Open tunnelgate', enabled: true, click: () => actions.openWindow() },
      { type: 'normal', label: 'Refresh now', enabled: true, click: () => actions.refresh() },
      { type: 'separator' },
      { type: 'normal', label: 'Quit tunnelgate', enabled: true, click: () => actions.quit() },
    ],
  };
}

/** `Firefox (firefox-esr → 198.18.0.10:443/tcp)`: the program and what it tried. */
function promptLine(p: PromptView): string {
  const file = p.exe.slice(p.exe.lastIndexOf('/') + 1);
  const d = p.destinations[0];
  const dst = d ? ` → ${formatDestination(d)}` : '';
  return `${p.program.name}${p.program.name === file ? '' : ` (${file})`}${dst}`;
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Electron reads `&` in a menu label as a mnemonic marker; `&&` is a literal one. */
function menuLabel(s: string): string {
  return clip(s).replaceAll('&', '&&');
}

function clip(s: string): string {
  return clipText(oneLine(s), MAX_LABEL);
}
