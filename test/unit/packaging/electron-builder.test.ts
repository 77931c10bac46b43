// electron-builder cannot run here (it downloads Electron), so its config is checked by
// reading: against app-builder-lib's published JSON Schema (scheme.json, the one
// electron-builder itself validates with), and for what issue 11 asks of the tray package.
import { Ajv } from 'ajv';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../../..');
const require = createRequire(import.meta.url);
const schema = JSON.parse(readFileSync(require.resolve('app-builder-lib/scheme.json'), 'utf8')) as object;
const config = yaml.load(readFileSync(path.join(REPO, 'electron-builder.yml'), 'utf8')) as {
  directories: { buildResources: string };
  linux: { executableName: string; icon: string; target: string[] };
  deb: { depends: string[]; fpm: string[] };
};

// scheme.json uses draft-07 plus a few annotation keywords electron-builder's own
// validator ignores; strict mode off for exactly that, formats not checked.
const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);

describe('electron-builder.yml', () => {
  it("is valid against app-builder-lib's scheme.json", () => {
    const ok = validate(config);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema check can fail: a misspelt key is refused', () => {
    expect(validate({ ...config, linux: { ...config.linux, iconn: 'x' } })).toBe(false);
  });

  it('has an icon set with the sizes in the file names', () => {
    const dir = path.join(REPO, config.linux.icon);
    for (const size of [32, 64, 128, 256, 512]) {
      const png = readFileSync(path.join(dir, `${size}x${size}.png`));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([size, size]);
    }
  });

  it('the .deb depends on the helper package', () => {
    expect(config.deb.depends).toContain('tunnelgate');
  });

  it('the .deb installs an XDG autostart entry that starts the tray executable', () => {
    const mapping = config.deb.fpm.find((a) => a.endsWith('=/etc/xdg/autostart/tunnelgate-tray.desktop'));
    expect(mapping).toBeDefined();
    const source = path.join(REPO, String(mapping).split('=')[0] ?? '');
    expect(existsSync(source)).toBe(true);
    const entry = readFileSync(source, 'utf8');
    expect(entry).toMatch(/^\[Desktop Entry\]$/m);
    expect(entry).toMatch(/^Type=Application$/m);
    expect(entry).toMatch(new RegExp(`^Exec=(/usr/bin/)?${config.linux.executableName}$`, 'm'));
  });
});
