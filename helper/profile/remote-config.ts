// ETC/remote.json: where this machine pulls a profile from (optional). Example:
//   { "url": "https://profiles.corp.example/tunnelgate/corp.json",
//     "intervalSeconds": 300, "ca": "/etc/tunnelgate/remote-ca.pem" }
// The signature is fetched from the same URL with `.sig` appended to its path. Unknown
// fields are errors, as in profiles: a typo must not silently change where policy comes from.
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { scanJson } from './json-scan.js';
import { joinKey } from './problem.js';

export const REMOTE_CONFIG_FILE = 'remote.json';
export const DEFAULT_INTERVAL_SECONDS = 300;

export interface RemoteConfig {
  url: string;
  intervalSeconds: number;
  /** PEM file of the CA(s) that may sign the server's certificate; default: the system's. */
  ca?: string;
}

export const remoteConfigSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'tunnelgate remote profile pull',
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', pattern: '^https://[^\\s]+$', maxLength: 2048 },
    intervalSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
    ca: { type: 'string', pattern: '^/[^\\x00]*$', maxLength: 4096 },
  },
};

const ajv = new Ajv({ allErrors: true, strict: true });
const check = ajv.compile<{ url: string; intervalSeconds?: number; ca?: string }>(remoteConfigSchema);

const MESSAGES: Record<string, string> = {
  url: 'must be an https:// URL',
  intervalSeconds: 'must be a whole number of seconds from 1 to 86400',
  ca: 'must be an absolute path to a PEM file',
};

export type RemoteConfigResult = { ok: true; config: RemoteConfig } | { ok: false; problems: string[] };

/** Problems come as `path: message` (or a bare message for the whole document). */
export function parseRemoteConfig(text: string): RemoteConfigResult {
  const syntax = scanJson(text);
  if (syntax.length) return { ok: false, problems: syntax.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)) };
  const data: unknown = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  if (!check(data)) {
    const problems = [...new Set((check.errors ?? []).map(describe))];
    return { ok: false, problems };
  }
  let url: URL;
  try {
    url = new URL(data.url);
  } catch {
    return { ok: false, problems: ['url: is not a valid URL'] };
  }
  if (url.username || url.password) return { ok: false, problems: ['url: must not carry credentials (they would show in status)'] };
  if (url.hash) return { ok: false, problems: ['url: must not have a #fragment'] };
  return {
    ok: true,
    config: {
      url: url.href,
      intervalSeconds: data.intervalSeconds ?? DEFAULT_INTERVAL_SECONDS,
      ...(data.ca !== undefined ? { ca: data.ca } : {}),
    },
  };
}

function describe(e: ErrorObject): string {
  const field = e.instancePath.split('/').slice(1).join('.');
  if (e.keyword === 'additionalProperties') {
    return `${joinKey(field, String(e.params.additionalProperty))}: unknown field (known: url, intervalSeconds, ca)`;
  }
  if (e.keyword === 'required') return `${joinKey(field, String(e.params.missingProperty))}: missing required field`;
  if (field === '') return 'must be a JSON object';
  return `${field}: ${MESSAGES[field] ?? e.message ?? 'is invalid'}`;
}

/** The signature's URL: `.sig` appended to the path, the query kept. */
export function signatureUrl(url: string): string {
  const u = new URL(url);
  u.pathname += '.sig';
  return u.href;
}
