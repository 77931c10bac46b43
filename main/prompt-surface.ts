// Where a prompt reaches the person (issue 12 part 3), as pure decisions:
// - the prompt window (400×600, the size of a tray pop-up) is open exactly while a prompt
//   of a program that still runs is pending: it closes when the prompt is answered
//   (here or elsewhere: the CLI, another session), when the helper closes it (timeout,
//   IT locked it, a rule allows it now), and when the program's processes have all
//   exited (the helper then keeps the prompt, with no pids, for an allow-always answer
//   in the main window, but nobody needs to be interrupted for it any more);
// - a desktop notification goes out where no tray icon can be shown (stock GNOME without
//   the AppIndicator extension has no StatusNotifier host: nothing would show a badge)
//   unless the person turned notifications off, or always if they asked for that.
//
// Plain module: no Electron.

import type { PromptView } from '../common/api.js';
import type { NotificationPreference } from '../common/ipc.js';

/** A prompt worth interrupting for: its program still runs. */
export function interrupting(p: PromptView): boolean {
  return p.pids.length > 0;
}

/** The prompts the prompt window shows, oldest first (as they come). */
export function promptWindowPrompts(prompts: readonly PromptView[]): PromptView[] {
  return prompts.filter(interrupting);
}

export type WindowAction = 'open' | 'close' | 'none';

/**
 * What to do with the prompt window after a change of the pending prompts. `open` only for
 * a prompt not seen before (a person who closed the window is not pestered again for the
 * same prompt); `close` once nothing is left to answer.
 */
export function promptWindowAction(prompts: readonly PromptView[], seen: ReadonlySet<string>, windowOpen: boolean): WindowAction {
  const live = promptWindowPrompts(prompts);
  if (!live.length) return windowOpen ? 'close' : 'none';
  if (live.some((p) => !seen.has(p.id))) return 'open';
  return 'none';
}

/** Whether new prompts also go out as desktop notifications. */
export function notifyPrompts(pref: NotificationPreference, trayShown: boolean): boolean {
  if (pref === 'never') return false;
  if (pref === 'always') return true;
  return !trayShown;
}

/**
 * Is a tray icon shown on this desktop? Linux desktops show Electron's Tray through the
 * StatusNotifierItem protocol, which needs a host: the `org.kde.StatusNotifierWatcher` name
 * on the session bus (KDE, XFCE, Cinnamon, GNOME with the AppIndicator extension).
 * `TUNNELGATE_TRAY=show|hide` overrides what the bus says.
 */
export function trayShown(env: { TUNNELGATE_TRAY?: string | undefined }, watcherOnBus: boolean | undefined): boolean {
  if (env.TUNNELGATE_TRAY === 'hide') return false;
  if (env.TUNNELGATE_TRAY === 'show') return true;
  // Could not ask the bus: assume a tray, as Electron does (the window still opens).
  return watcherOnBus ?? true;
}
