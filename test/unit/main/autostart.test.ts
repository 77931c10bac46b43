// The XDG autostart entry the .deb installs (packaging/tray/): a valid [Desktop Entry] that
// starts the tray app at login, and the packaging config that puts it in /etc/xdg/autostart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ENTRY = path.join(ROOT, 'packaging/tray/tunnelgate-tray.desktop');

function desktopEntry(text: string): Map<string, string> {
  const lines = text.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  expect(lines[0]).toBe('[Desktop Entry]');
  const kv = new Map<string, string>();
  for (const l of lines.slice(1)) {
    expect(l, 'one group, key=value lines only').toMatch(/^[A-Za-z0-9-]+=\S.*$/);
    const key = l.slice(0, l.indexOf('='));
    expect(kv.has(key), `duplicate key ${key}`).toBe(false);
    kv.set(key, l.slice(l.indexOf('=') + 1));
  }
  return kv;
}

describe('the tray autostart entry', () => {
  it('is an application entry that starts the packaged tray app', () => {
    const kv = desktopEntry(readFileSync(ENTRY, 'utf8'));
    expect(kv.get('Type')).toBe('Application');
    expect(kv.get('Name')).toBe('tunnelgate');
    expect(kv.get('Exec')).toBe('/usr/bin/tunnelgate-tray');
    expect(kv.get('Terminal')).toBe('false');
    expect(kv.get('X-GNOME-Autostart-enabled')).toBe('true');
    // Not a second menu entry.
    expect(kv.get('NoDisplay')).toBe('true');
    // Nothing that would keep it from starting.
    expect(kv.has('Hidden')).toBe(false);
    expect(kv.has('OnlyShowIn') || kv.has('NotShowIn')).toBe(false);
  });

  it('the .deb installs it in /etc/xdg/autostart, and Exec matches the executable electron-builder links', () => {
    const yml = readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8');
    expect(yml).toContain('- packaging/tray/tunnelgate-tray.desktop=/etc/xdg/autostart/tunnelgate-tray.desktop');
    expect(yml).toMatch(/^ {2}executableName: tunnelgate-tray$/m);
  });
});
