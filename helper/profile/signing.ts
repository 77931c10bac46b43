// Detached ed25519 signatures for profile files. FILE.sig holds the 64-byte signature of
// FILE's exact bytes, base64-encoded, with a trailing newline.

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, lstat, mkdir, unlink, writeFile } from 'node:fs/promises';
import { listTrusted, readTrusted, UntrustedError } from '../kernel/files.js';
import { join } from 'node:path';

export const SIGNATURE_BYTES = 64;
export const DEFAULT_KEY_NAME = 'tunnelgate-profile';

export interface KeyPair {
  publicKeyPem: string;
  privateKeyPem: string;
}

export interface TrustedKey {
  /** The file name without `.pub`. */
  name: string;
  pem: string;
}

export type VerifyResult = { ok: true; key: string } | { ok: false; reason: string };

export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

/** Write `<name>.pub` (0644) and `<name>.key` (0600) into outDir; never overwrites. */
export async function keygen(
  outDir: string,
  name = DEFAULT_KEY_NAME,
): Promise<{ publicKeyPath: string; privateKeyPath: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`invalid key name "${name}"`);
  const publicKeyPath = join(outDir, `${name}.pub`);
  const privateKeyPath = join(outDir, `${name}.key`);
  await mkdir(outDir, { recursive: true });
  for (const path of [publicKeyPath, privateKeyPath]) {
    if (await exists(path)) throw new Error(`${path} already exists; refusing to overwrite it`);
  }
  const { publicKeyPem, privateKeyPem } = generateKeyPair();
  // 'wx' fails if the file appeared meanwhile; chmod makes the mode independent of the umask.
  await writeFile(privateKeyPath, privateKeyPem, { flag: 'wx', mode: 0o600 });
  await chmod(privateKeyPath, 0o600);
  try {
    await writeFile(publicKeyPath, publicKeyPem, { flag: 'wx', mode: 0o644 });
    await chmod(publicKeyPath, 0o644);
  } catch (e) {
    await unlink(privateKeyPath);
    throw e;
  }
  return { publicKeyPath, privateKeyPath };
}

/** The raw 64-byte ed25519 signature of fileBytes. */
export function sign(fileBytes: Buffer, privateKeyPem: string): Buffer {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an ed25519 private key (${key.asymmetricKeyType})`);
  return cryptoSign(null, fileBytes, key);
}

/** The contents of a .sig file. */
export function encodeSignature(signature: Buffer): string {
  if (signature.length !== SIGNATURE_BYTES) throw new Error(`a signature is ${SIGNATURE_BYTES} bytes, not ${signature.length}`);
  return `${signature.toString('base64')}\n`;
}

/** Parse a .sig file: base64 of exactly 64 bytes, surrounding whitespace allowed. */
export function decodeSignature(text: string | Buffer): Buffer {
  const b64 = text.toString().trim();
  if (!/^[A-Za-z0-9+/]{86}==$/.test(b64)) {
    throw new Error(`not a signature: expected ${SIGNATURE_BYTES} bytes in base64 (88 characters)`);
  }
  return Buffer.from(b64, 'base64');
}

/**
 * Check fileBytes against each trusted key. `sig` is the raw 64-byte signature or the
 * contents of a .sig file (base64), which cannot be confused: the latter is 88+ bytes.
 */
export function verify(fileBytes: Buffer, sig: Buffer, publicKeys: readonly TrustedKey[]): VerifyResult {
  let raw: Buffer;
  try {
    raw = sig.length === SIGNATURE_BYTES ? sig : decodeSignature(sig);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  if (publicKeys.length === 0) return { ok: false, reason: 'no trusted keys to check the signature with' };
  for (const { name, pem } of publicKeys) {
    const key = parsePublicKey(pem);
    if (typeof key !== 'string' && cryptoVerify(null, fileBytes, key, raw)) return { ok: true, key: name };
  }
  const names = publicKeys.map((k) => k.name).join(', ');
  return { ok: false, reason: `signature does not match any trusted key (tried ${names})` };
}

/**
 * Read `*.pub` from dir. A file that is not an ed25519 public key, or that others may
 * write, is a problem and not trusted. A missing dir means no keys.
 */
export async function loadTrustedKeys(dir: string): Promise<{ keys: TrustedKey[]; problems: string[] }> {
  const keys: TrustedKey[] = [];
  const problems: string[] = [];
  let names: string[];
  try {
    const all = await listTrusted(dir);
    if (all === undefined) return { keys, problems };
    names = all.filter((n) => n.endsWith('.pub')).sort();
  } catch (e) {
    return { keys, problems: [`${dir}: cannot read trusted keys: ${(e as Error).message}`] };
  }
  for (const file of names) {
    const path = join(dir, file);
    try {
      // Owner root and writable by no one else, up to / (a key dropped by a user is refused).
      const text = (await readTrusted(path, 64 * 1024))?.toString('utf8');
      if (text === undefined) continue;
      if (text.includes('PRIVATE KEY')) throw new Error('holds a private key; it must not be in trusted-keys');
      const key = parsePublicKey(text);
      if (typeof key === 'string') throw new Error(key);
      keys.push({ name: file.slice(0, -'.pub'.length), pem: key.export({ type: 'spki', format: 'pem' }).toString() });
    } catch (e) {
      problems.push(e instanceof UntrustedError ? e.message : `${path}: ${(e as Error).message}`);
    }
  }
  return { keys, problems };
}

/** The key, or why it is not an ed25519 public key. */
function parsePublicKey(pem: string): KeyObject | string {
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'ed25519' ? key : `not an ed25519 key (${key.asymmetricKeyType ?? 'unknown type'})`;
  } catch {
    return 'not a PEM public key';
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
