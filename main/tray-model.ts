// What the tray shows for a connection state: icon, tooltip and menu, as data.
// main/tray-controller.ts hands it to Electron; tests read it directly.
//
// Plain module: no Electron. MenuEntry is a structural subset of Electron's
// MenuItemConstructorOptions.

import type { ConnectionState } from './helper-connection.js';
import type { IconKind } from './tray-icons.js';

export interface TrayActions {
  openWindow(): void;
  refresh(): void;
  quit(): void;
}

export type MenuEntry =
  | { type: 'separator' }
  | { type: 'normal'; label: string; enabled: boolean; click?: () => void };

export interface TrayModel {
  icon: IconKind;
  tooltip: string;
  menu: MenuEntry[];
}

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
  return {
    icon,
    tooltip: clip(`tunnelgate: ${headline}${details[0] ? ` — ${details[0]}` : ''}`),
    menu: [
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

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Electron reads `&` in a menu label as a mnemonic marker; `&&` is a literal one. */
function menuLabel(s: string): string {
  return clip(s).replaceAll('&', '&&');
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > MAX_LABEL ? `${one.slice(0, MAX_LABEL - 1)}…` : one;
}
