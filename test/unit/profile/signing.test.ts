import { mkdtempSync, statSync, writeFileSync, chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeSignature, encodeSignature, generateKeyPair, keygen, loadTrustedKeys, sign, verify,
} from '../../../helper/profile/signing.js';

const file = Buffer.from('{"schema":"tunnelgate/profile@1"}\n');
const tmp = (): string => mkdtempSync(join(tmpdir(), 'tunnelgate-signing-'));
const flip = (b: Buffer, i: number): Buffer => {
  const c = Buffer.from(b);
  c[i] = (c[i] ?? 0) ^ 0x01;
  return c;
};

describe('sign / verify', () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const trusted = [{ name: 'a', pem: a.publicKeyPem }];

  it('round-trips, with the raw signature or the .sig file contents', () => {
    const sig = sign(file, a.privateKeyPem);
    expect(sig).toHaveLength(64);
    expect(verify(file, sig, trusted)).toEqual({ ok: true, key: 'a' });
    expect(verify(file, Buffer.from(encodeSignature(sig)), trusted)).toEqual({ ok: true, key: 'a' });
  });

  it('names the key that matched among several', () => {
    const sig = sign(file, b.privateKeyPem);
    expect(verify(file, sig, [...trusted, { name: 'b', pem: b.publicKeyPem }])).toEqual({ ok: true, key: 'b' });
  });

  it('fails when one byte of the file or the signature changes', () => {
    const sig = sign(file, a.privateKeyPem);
    for (const i of [0, 10, file.length - 1]) expect(verify(flip(file, i), sig, trusted).ok).toBe(false);
    for (const i of [0, 31, 63]) expect(verify(file, flip(sig, i), trusted).ok).toBe(false);
  });

  it('fails with the wrong key, a broken key, or no key', () => {
    const sig = sign(file, b.privateKeyPem);
    expect(verify(file, sig, trusted)).toEqual({ ok: false, reason: 'signature does not match any trusted key (tried a)' });
    expect(verify(file, sig, [{ name: 'junk', pem: 'junk' }]).ok).toBe(false);
    expect(verify(file, sig, [])).toEqual({ ok: false, reason: 'no trusted keys to check the signature with' });
  });

  it('rejects a signature of the wrong length', () => {
    expect(verify(file, Buffer.alloc(63), trusted).ok).toBe(false);
  });

  it('refuses a non-ed25519 private key', () => {
    expect(() => sign(file, 'not a key')).toThrow();
  });
});

describe('signature encoding', () => {
  const sig = Buffer.alloc(64, 7);

  it('is base64 with a trailing newline, and decoding tolerates whitespace', () => {
    const text = encodeSignature(sig);
    expect(text).toMatch(/^[A-Za-z0-9+/]{86}==\n$/);
    expect(decodeSignature(`  \n${text}\r\n\n`)).toEqual(sig);
  });

  it('rejects anything that is not exactly 64 bytes of base64', () => {
    expect(() => encodeSignature(Buffer.alloc(65))).toThrow();
    expect(() => decodeSignature(Buffer.alloc(63).toString('base64'))).toThrow(/64 bytes/);
    expect(() => decodeSignature(Buffer.alloc(65).toString('base64'))).toThrow(/64 bytes/);
    expect(() => decodeSignature(`${sig.toString('base64').slice(0, 40)} ${sig.toString('base64').slice(40)}`)).toThrow();
    expect(() => decodeSignature('')).toThrow();
  });
});

describe('keygen', () => {
  it('writes a usable key pair with the right modes', async () => {
    const dir = join(tmp(), 'keys');
    const { publicKeyPath, privateKeyPath } = await keygen(dir);
    expect(publicKeyPath).toBe(join(dir, 'tunnelgate-profile.pub'));
    expect(statSync(publicKeyPath).mode & 0o777).toBe(0o644);
    expect(statSync(privateKeyPath).mode & 0o777).toBe(0o600);
    const sig = sign(file, readFileSync(privateKeyPath, 'utf8'));
    const { keys, problems } = await loadTrustedKeys(dir);
    expect(problems).toEqual([]);
    expect(verify(file, sig, keys)).toEqual({ ok: true, key: 'tunnelgate-profile' });
  });

  it('refuses to overwrite an existing key file', async () => {
    const dir = tmp();
    await keygen(dir, 'corp');
    const before = readFileSync(join(dir, 'corp.key'), 'utf8');
    await expect(keygen(dir, 'corp')).rejects.toThrow(/already exists/);
    expect(readFileSync(join(dir, 'corp.key'), 'utf8')).toBe(before);
    writeFileSync(join(dir, 'other.pub'), 'x');
    await expect(keygen(dir, 'other')).rejects.toThrow(/other\.pub already exists/);
    expect(() => statSync(join(dir, 'other.key'))).toThrow();
  });

  it('refuses a key name that is a path', async () => {
    await expect(keygen(tmp(), '../evil')).rejects.toThrow(/invalid key name/);
  });
});

describe('loadTrustedKeys', () => {
  it('returns no keys and no problems for a missing directory', async () => {
    expect(await loadTrustedKeys(join(tmp(), 'absent'))).toEqual({ keys: [], problems: [] });
  });

  it('reports keys it cannot trust instead of skipping them silently', async () => {
    const dir = tmp();
    const good = generateKeyPair();
    writeFileSync(join(dir, 'good.pub'), good.publicKeyPem, { mode: 0o644 });
    writeFileSync(join(dir, 'garbage.pub'), 'hello', { mode: 0o644 });
    writeFileSync(join(dir, 'private.pub'), good.privateKeyPem, { mode: 0o644 });
    writeFileSync(join(dir, 'open.pub'), generateKeyPair().publicKeyPem);
    chmodSync(join(dir, 'open.pub'), 0o666);
    mkdirSync(join(dir, 'dir.pub'));
    writeFileSync(join(dir, 'README'), 'not a key');
    const { keys, problems } = await loadTrustedKeys(dir);
    expect(keys.map((k) => k.name)).toEqual(['good']);
    expect(problems).toEqual([
      `${join(dir, 'dir.pub')}: not a regular file`,
      `${join(dir, 'garbage.pub')}: not a PEM public key`,
      `${join(dir, 'open.pub')} is writable by others: not trusted (chmod o-w)`,
      `${join(dir, 'private.pub')}: holds a private key; it must not be in trusted-keys`,
    ]);
  });

  it('reports an unreadable directory', async () => {
    const notDir = join(tmp(), 'file');
    writeFileSync(notDir, '');
    const { keys, problems } = await loadTrustedKeys(notDir);
    expect(keys).toEqual([]);
    expect(problems).toHaveLength(1);
  });
});
