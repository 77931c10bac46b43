// The tray icon and its menu, showing the gate state and prompts waiting for an answer
// (main/tray-model.ts decides what; this file only hands it to Electron).

import { Menu, Tray, nativeImage } from 'electron';
import type { NativeImage } from 'electron';
import type { ConnectionState } from './helper-connection.js';
import { iconPng } from './tray-icons.js';
import type { IconKind } from './tray-icons.js';
import { trayModel } from './tray-model.js';
import type { TrayActions } from './tray-model.js';

const ICON_SIZE = 22;

export class TrayController {
  private readonly tray: Tray;
  private readonly images = new Map<string, NativeImage>();
  private shown: string | undefined;
  private click: () => void;

  constructor(private readonly actions: TrayActions) {
    this.tray = new Tray(this.image('unknown', false));
    this.click = () => actions.openWindow();
    this.tray.on('click', () => this.click());
  }

  update(state: ConnectionState): void {
    const model = trayModel(state, this.actions);
    const key = `${model.icon}${model.badge ? '+badge' : ''}`;
    if (key !== this.shown) {
      this.tray.setImage(this.image(model.icon, model.badge));
      this.shown = key;
    }
    this.click = model.click;
    this.tray.setToolTip(model.tooltip);
    // Linux (StatusNotifier/AppIndicator) only picks up a menu when it is set again.
    this.tray.setContextMenu(Menu.buildFromTemplate(model.menu));
  }

  destroy(): void {
    this.tray.destroy();
  }

  private image(kind: IconKind, badge: boolean): NativeImage {
    const key = `${kind}${badge ? '+badge' : ''}`;
    let img = this.images.get(key);
    if (!img) {
      img = nativeImage.createFromBuffer(iconPng(kind, ICON_SIZE, badge));
      this.images.set(key, img);
    }
    return img;
  }
}
