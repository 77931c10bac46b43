// The helper's own settings: ETC/helper.json (optional; every field has a default).
//
//   {
//     "promptTimeoutSeconds": 30,       no answer within this long after an app showed the prompt: deny
//     "promptPendingMaxSeconds": 3600,  with no app of the user to show it, a prompt waits this long
//                                       for `tunnelgate answer` (then: deny)
//     "adminGroup": "tunnelgate-admin", members may do what root may (name in /etc/group, or a gid)
//     "auditLog": { "maxBytes": 10485760, "keep": 5 },
//     "execHoldDeadlineMs": 2000        an exec of an allowed binary waits at most this long for
//                                       its admission, then goes on (admitted just after its exec)
//   }
//
// Read at start-up. A file that does not validate is reported in `status` and ignored as a
// whole: the defaults are the safe choice (no admin group: only root is an admin).
import { readTrusted } from './kernel/files.js';
import path from 'node:path';
import { Ajv } from 'ajv';

export const SETTINGS_FILE = 'helper.json';

export interface HelperSettings {
  promptTimeoutSeconds: number;
  promptPendingMaxSeconds: number;
  adminGroup?: string | number;
  auditLog: { maxBytes: number; keep: number };
  /**
   * Milliseconds an exec of an allowed binary is held for its admission at most
   * (helper/kernel/fanotify.ts); past it the exec goes on and the watcher admits it just
   * after. Only execs of binaries a rule names ever wait. 2,000 by default: at 250 ms an
   * exec went on unadmitted on a machine at load 17 (its first SYN was dropped).
   */
  execHoldDeadlineMs: number;
}

export const DEFAULT_SETTINGS: HelperSettings = {
  promptTimeoutSeconds: 30,
  promptPendingMaxSeconds: 3600,
  auditLog: { maxBytes: 10 * 1024 * 1024, keep: 5 },
  execHoldDeadlineMs: 2_000,
};

const schema = {
  type: 'object',
  properties: {
    promptTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600 },
    promptPendingMaxSeconds: { type: 'integer', minimum: 1, maximum: 7 * 86400 },
    adminGroup: {
      anyOf: [
        { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,31}$' },
        { type: 'integer', minimum: 1, maximum: 4294967294 },
      ],
    },
    auditLog: {
      type: 'object',
      properties: {
        maxBytes: { type: 'integer', minimum: 4096, maximum: 1024 * 1024 * 1024 },
        keep: { type: 'integer', minimum: 1, maximum: 100 },
      },
      required: [],
      additionalProperties: false,
    },
    execHoldDeadlineMs: { type: 'integer', minimum: 50, maximum: 10_000 },
  },
  required: [],
  additionalProperties: false,
} as const;

const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);

/** Parse helper.json text; problems are `helper.json: path: message` lines. */
export function parseSettings(text: string, file = SETTINGS_FILE): { settings: HelperSettings; problems: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { settings: DEFAULT_SETTINGS, problems: [`${file}: not JSON (${(e as Error).message}); the defaults are used`] };
  }
  if (!validate(doc)) {
    const problems = (validate.errors ?? []).map((e) => `${file}: ${e.instancePath.slice(1).replace(/\//g, '.') || '(top)'}: ${e.message ?? 'is invalid'}`);
    problems.push(`${file}: ignored; the defaults are used`);
    return { settings: DEFAULT_SETTINGS, problems };
  }
  const d = doc as Partial<HelperSettings> & { auditLog?: Partial<HelperSettings['auditLog']> };
  return {
    settings: {
      promptTimeoutSeconds: d.promptTimeoutSeconds ?? DEFAULT_SETTINGS.promptTimeoutSeconds,
      promptPendingMaxSeconds: d.promptPendingMaxSeconds ?? DEFAULT_SETTINGS.promptPendingMaxSeconds,
      ...(d.adminGroup !== undefined ? { adminGroup: d.adminGroup } : {}),
      auditLog: { ...DEFAULT_SETTINGS.auditLog, ...d.auditLog },
      execHoldDeadlineMs: d.execHoldDeadlineMs ?? DEFAULT_SETTINGS.execHoldDeadlineMs,
    },
    problems: [],
  };
}

export async function loadSettings(etcDir: string): Promise<{ settings: HelperSettings; problems: string[] }> {
  const file = path.join(etcDir, SETTINGS_FILE);
  let text: string;
  try {
    // Owner root and writable by no one else, up to / (helper/kernel/files.ts).
    const bytes = await readTrusted(file, 1 << 20);
    if (bytes === undefined) return { settings: DEFAULT_SETTINGS, problems: [] };
    text = bytes.toString('utf8');
  } catch (e) {
    return { settings: DEFAULT_SETTINGS, problems: [`${file}: cannot read (${(e as Error).message}); the defaults are used`] };
  }
  return parseSettings(text, file);
}
