// The tray icon and its menu, showing the gate state (main/tray-model.ts decides what;
// this file only hands it to Electron).

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
  private readonly images = new Map<IconKind, NativeImage>();
  private shown: IconKind | undefined;

  constructor(private readonly actions: TrayActions) {
    this.tray = new Tray(this.image('unknown'));
    this.tray.on('click', () => actions.openWindow());
  }

  update(state: ConnectionState): void {
    const model = trayModel(state, this.actions);
    if (model.icon !== this.shown) {
      this.tray.setImage(this.image(model.icon));
      this.shown = model.icon;
    }
    this.tray.setToolTip(model.tooltip);
    // Linux (StatusNotifier/AppIndicator) only picks up a menu when it is set again.
    this.tray.setContextMenu(Menu.buildFromTemplate(model.menu));
  }

  destroy(): void {
    this.tray.destroy();
  }

  private image(kind: IconKind): NativeImage {
    let img = this.images.get(kind);
    if (!img) {
      img = nativeImage.createFromBuffer(iconPng(kind, ICON_SIZE));
      this.images.set(kind, img);
    }
    return img;
  }
}
