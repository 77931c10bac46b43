// Users' decisions, persisted in the state dir as STATE/decisions.json:
//
//   allows   user allow rules (tunnelgate allow, prompt answers): in the policy as user.<uid>:<id>
//   denies   deny-always answers: that binary is not asked about again
//   seen     the sha256 last seen per binary path, to warn when a binary changed
//
// Every change is written whole and atomically (temp file, fsync, rename, fsync of the
// directory: writeFileAtomic) before it is confirmed to anyone, and changes are written one
// at a time in order, so a crash at any moment leaves the old or the new file and nothing
// confirmed is lost. A file that cannot be read back is reported loudly and set aside as
// decisions.json.corrupt-<time>, never silently dropped or overwritten; the helper then starts
// with no user decisions, which closes rather than opens the gate.
import { randomBytes } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import type { Destination } from '../../common/profile.js';
import type { RuleLifetime } from '../../common/prompts.js';
import { ErrorCode } from '../../common/errors.js';
import { describeWriteError, writeFileAtomic } from '../kernel/files.js';
import { CallerError } from '../../common/errors.js';
import { safeJsonIndented } from '../../common/format.js';

export const DECISIONS_FILE = 'decisions.json';
const FORMAT = 1;
/** Binaries remembered for the changed-hash warning; the oldest are forgotten first. */
export const MAX_SEEN = 2048;

export interface StoredProcess {
  pid: number;
  /** /proc/PID/stat starttime: with the pid, names the process uniquely. */
  startTime: string;
}

/** A rule's lifetime as stored: the API's (common/prompts.ts), but an allow-once names its processes by pid and start time. */
export type StoredLifetime = Exclude<RuleLifetime, { kind: 'process' }> | { kind: 'process'; processes: StoredProcess[] };

export interface StoredAllow {
  id: string;
  uid: number;
  path: string;
  sha256?: string;
  destinations?: Destination[];
  lifetime: StoredLifetime;
  createdAt: string;
  createdBy: number;
  via: 'prompt' | 'api';
}

export interface StoredDeny {
  id: string;
  uid: number;
  path: string;
  destinations?: Destination[];
  createdAt: string;
  createdBy: number;
  via: 'prompt' | 'api';
}

export interface SeenBinary {
  sha256: string;
  since: string;
}

export interface DecisionsDoc {
  format: typeof FORMAT;
  allows: StoredAllow[];
  denies: StoredDeny[];
  seen: Record<string, SeenBinary>;
}

export const emptyDoc = (): DecisionsDoc => ({ format: FORMAT, allows: [], denies: [], seen: {} });

/** 16 hex digits: decision ids, also the id part of rule keys (a valid profile-style id). */
export const newId = (): string => randomBytes(8).toString('hex');

const id = { type: 'string', pattern: '^[0-9a-f]{16}$' };
const uid = { type: 'integer', minimum: 0, maximum: 4294967294 };
const absPath = { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' };
const instant = { type: 'string', minLength: 20, maxLength: 40 };
const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$' };
const destinations = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      cidr: { type: 'string', pattern: '^[0-9A-Fa-f:.]+/[0-9]{1,3}$' },
      ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 } },
      proto: { enum: ['tcp', 'udp'] },
    },
    required: ['cidr'],
    additionalProperties: false,
  },
};
const lifetime = {
  anyOf: [
    { type: 'object', properties: { kind: { const: 'always' } }, required: ['kind'], additionalProperties: false },
    { type: 'object', properties: { kind: { const: 'session' } }, required: ['kind'], additionalProperties: false },
    { type: 'object', properties: { kind: { const: 'until' }, expires: instant }, required: ['kind', 'expires'], additionalProperties: false },
    {
      type: 'object',
      properties: {
        kind: { const: 'process' },
        processes: {
          type: 'array',
          items: {
            type: 'object',
            properties: { pid: { type: 'integer', minimum: 1 }, startTime: { type: 'string', pattern: '^[0-9]+$' } },
            required: ['pid', 'startTime'],
            additionalProperties: false,
          },
        },
      },
      required: ['kind', 'processes'],
      additionalProperties: false,
    },
  ],
};
const common = { id, uid, path: absPath, destinations, createdAt: instant, createdBy: uid, via: { enum: ['prompt', 'api'] } };
const docSchema = {
  type: 'object',
  properties: {
    format: { const: FORMAT },
    allows: {
      type: 'array',
      items: {
        type: 'object',
        properties: { ...common, sha256, lifetime },
        required: ['id', 'uid', 'path', 'lifetime', 'createdAt', 'createdBy', 'via'],
        additionalProperties: false,
      },
    },
    denies: {
      type: 'array',
      items: { type: 'object', properties: common, required: ['id', 'uid', 'path', 'createdAt', 'createdBy', 'via'], additionalProperties: false },
    },
    seen: {
      type: 'object',
      additionalProperties: { type: 'object', properties: { sha256, since: instant }, required: ['sha256', 'since'], additionalProperties: false },
    },
  },
  required: ['format', 'allows', 'denies', 'seen'],
  additionalProperties: false,
};
const validateDoc = new Ajv({ allErrors: false, strict: true }).compile(docSchema);

/** Why a decisions file cannot be used, or undefined when it can. */
export function checkDoc(doc: unknown): string | undefined {
  if (validateDoc(doc)) {
    const ids = new Set<string>();
    const d = doc as unknown as DecisionsDoc;
    for (const r of [...d.allows, ...d.denies]) {
      if (ids.has(r.id)) return `decision id ${r.id} appears twice`;
      ids.add(r.id);
    }
    return undefined;
  }
  const e = validateDoc.errors?.[0];
  return `${e?.instancePath || '(top)'} ${e?.message ?? 'does not match the format'}`;
}

/** The decisions file could not be written (`detail`: which directory, which errno); nothing was changed. */
export class DecisionsNotSaved extends CallerError {
  constructor(readonly detail: string) {
    super(ErrorCode.Internal, `cannot save your rule: ${detail}; nothing was changed`);
  }
}

export interface OpenResult {
  store: DecisionsStore;
  /** Loud problems for `status` (a corrupt file set aside, a state dir that cannot be read). */
  problems: string[];
  corrupt?: { file: string; movedTo?: string; reason: string };
}

export class DecisionsStore {
  private doc: DecisionsDoc;
  private queue: Promise<unknown> = Promise.resolve();
  /** Set when saving would destroy a file we could not set aside. */
  private frozen: string | undefined;

  private constructor(
    readonly file: string,
    doc: DecisionsDoc,
  ) {
    this.doc = doc;
  }

  static async open(stateDir: string, now: () => Date = () => new Date()): Promise<OpenResult> {
    const file = path.join(stateDir, DECISIONS_FILE);
    // Temp files of a write that a crash interrupted are removed by the helper at start, for
    // every state file (startup.ts prepareDirs, kernel/files.ts removeInterruptedWrites).

    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { store: new DecisionsStore(file, emptyDoc()), problems: [] };
      const store = new DecisionsStore(file, emptyDoc());
      const reason = `cannot read ${file} (${(e as Error).message}): no user decision is in force, and none can be saved until it is readable`;
      store.frozen = reason;
      return { store, problems: [reason] };
    }
    let reason: string | undefined;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
      reason = checkDoc(doc);
    } catch (e) {
      reason = `not JSON (${(e as Error).message})`;
    }
    if (reason === undefined) return { store: new DecisionsStore(file, doc as DecisionsDoc), problems: [] };

    const movedTo = `${file}.corrupt-${now().toISOString().replace(/[:.]/g, '-')}`;
    const store = new DecisionsStore(file, emptyDoc());
    try {
      await rename(file, movedTo);
      return {
        store,
        problems: [`${file} is corrupt (${reason}): set aside as ${movedTo}; no user decision from it is in force`],
        corrupt: { file, movedTo, reason },
      };
    } catch (e) {
      store.frozen = `${file} is corrupt (${reason}) and could not be set aside (${(e as Error).message})`;
      return { store, problems: [`${store.frozen}: no user decision is in force, and none can be saved until it is moved away`], corrupt: { file, reason } };
    }
  }

  /** The decisions as last saved. Read-only: change them with update(). */
  get current(): Readonly<DecisionsDoc> {
    return this.doc;
  }

  /**
   * Change the decisions: `fn` edits a copy, which is saved durably before it replaces the
   * current state and before this resolves. Changes are applied one at a time, in order.
   * If saving fails nothing changes and the error is thrown.
   */
  update<T>(fn: (draft: DecisionsDoc) => T): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.frozen) throw new Error(`decisions are not saved: ${this.frozen}`);
      const draft = structuredClone(this.doc);
      const result = fn(draft);
      trimSeen(draft);
      try {
        await writeFileAtomic(this.file, `${safeJsonIndented(draft)}\n`);
      } catch (e) {
        throw new DecisionsNotSaved(describeWriteError(e, path.dirname(this.file)));
      }
      this.doc = draft;
      return result;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}

function trimSeen(doc: DecisionsDoc): void {
  const entries = Object.entries(doc.seen);
  if (entries.length <= MAX_SEEN) return;
  entries.sort(([, a], [, b]) => a.since.localeCompare(b.since));
  for (const [p] of entries.slice(0, entries.length - MAX_SEEN)) delete doc.seen[p];
}
