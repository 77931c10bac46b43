// The tray icons, drawn here rather than shipped as assets: one small PNG per gate
// state, told apart by shape as well as colour (a filled disc when enforcing, a ring
// when only auditing, a bar when degraded, a cross when down, a grey ring when the
// helper cannot be reached). Prompts waiting for an answer add a badge: a purple dot
// at the top right, cut out of the state's shape so it reads at 16 px too.
//
// Plain module: pure pixels and a minimal PNG encoder (node:zlib for deflate).

import { deflateSync } from 'node:zlib';

export type IconKind = 'enforcing' | 'audit' | 'degraded' | 'down' | 'unknown';

type Rgb = readonly [number, number, number];

export const ICON_COLOURS: Readonly<Record<IconKind, Rgb>> = {
  enforcing: [0x2e, 0x9e, 0x48],
  audit: [0x2f, 0x74, 0xc0],
  degraded: [0xd9, 0x8c, 0x00],
  down: [0xc8, 0x2a, 0x2a],
  unknown: [0x8a, 0x8a, 0x8a],
};

/** The prompt badge: a colour no gate state uses. */
export const BADGE_COLOUR: Rgb = [0x7b, 0x2f, 0xbe];

const HOLLOW: ReadonlySet<IconKind> = new Set(['audit', 'unknown']);

/** RGBA pixels, row by row, of a size×size icon; `badge` marks prompts waiting. */
export function iconPixels(kind: IconKind, size: number, badge = false): Uint8Array {
  const colour = ICON_COLOURS[kind];
  const px = new Uint8Array(size * size * 4);
  const c = size / 2;
  const outer = size / 2 - 1;
  const inner = HOLLOW.has(kind) ? outer - Math.max(2, size / 7) : -1;
  const stroke = Math.max(1.5, size / 9);
  const br = Math.max(3, size * 0.22); // badge radius
  const bx = size - br; // badge centre, touching the top right corner
  const by = br;
  const gap = Math.max(1, size / 16);
  const SS = 4; // 4×4 samples per pixel for smooth edges
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let disc = 0;
      let mark = 0;
      let dot = 0;
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const fx = x + (sx + 0.5) / SS;
          const fy = y + (sy + 0.5) / SS;
          if (badge) {
            const db = Math.hypot(fx - bx, fy - by);
            if (db <= br) {
              dot++;
              continue;
            }
            if (db <= br + gap) continue; // the cut around the badge
          }
          const dx = fx - c;
          const dy = fy - c;
          const d = Math.hypot(dx, dy);
          if (d > outer || d < inner) continue;
          if (isMark(kind, dx, dy, outer, stroke)) mark++;
          else disc++;
        }
      }
      const covered = disc + mark + dot;
      const i = (y * size + x) * 4;
      for (let ch = 0; ch < 3; ch++) {
        const v = covered === 0 ? 0 : ((colour[ch] ?? 0) * disc + 255 * mark + (BADGE_COLOUR[ch] ?? 0) * dot) / covered;
        px[i + ch] = Math.round(v);
      }
      px[i + 3] = Math.round((255 * covered) / (SS * SS));
    }
  }
  return px;
}

/** The white mark inside the disc: a bar (degraded) or a cross (down). */
function isMark(kind: IconKind, dx: number, dy: number, outer: number, stroke: number): boolean {
  const reach = outer * 0.55;
  if (kind === 'degraded') return Math.abs(dy) <= stroke / 2 && Math.abs(dx) <= reach;
  if (kind === 'down') {
    if (Math.abs(dx) > reach || Math.abs(dy) > reach) return false;
    return Math.abs(dx - dy) <= stroke * 0.7 || Math.abs(dx + dy) <= stroke * 0.7;
  }
  return false;
}

export function iconPng(kind: IconKind, size = 22, badge = false): Buffer {
  return encodePng(size, size, iconPixels(kind, size, badge));
}

/** 8-bit RGBA, no interlace, filter 0 on every row. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  if (rgba.length !== width * height * 4) throw new Error('encodePng: pixel buffer does not match the size');
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0;
    Buffer.from(rgba.buffer, rgba.byteOffset + y * width * 4, width * 4).copy(raw, y * (width * 4 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type RGBA, deflate, filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length, 0);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body), 0);
  return Buffer.concat([len, body, crc]);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of buf) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
