// Profile validation: JSON syntax, then the JSON Schema, then checks a schema cannot
// express. Every mistake becomes one Problem naming the field it is about.

import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { INTERPRETER_ENV, PROFILE_SCHEMA } from '../../common/profile.js';
import type { BinaryMatcher, Destination, Profile, ProfileRule } from '../../common/profile.js';
import { cidrContains, parseCidr } from './cidr.js';
import type { Cidr } from './cidr.js';
import { scanJson } from './json-scan.js';
import { formatProblems, joinIndex, joinKey } from './problem.js';
import type { Problem } from './problem.js';
import { profileSchema } from './schema.js';

export { formatProblems };
export type { Problem };

export type ValidationResult =
  | { ok: true; profile: Profile; warnings: string[] }
  | { ok: false; problems: Problem[] };

export interface ValidateOptions {
  /** The instant `expires` is compared with (warning only). Default: now. */
  now?: Date;
}

const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
const checkSchema = ajv.compile<Profile>(profileSchema);

/**
 * Validate the text of a profile file. Problems and warnings never repeat the file name
 * (callers prefix it; see formatProblems), so `_file` only documents the call site.
 * Warnings are `path: message` lines for things that are legal but probably unintended.
 */
export function validateProfile(text: string, _file: string, options: ValidateOptions = {}): ValidationResult {
  const syntax = scanJson(text);
  if (syntax.length > 0) return { ok: false, problems: syntax };
  const data: unknown = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);

  // Every problem in one run: the schema's, then the semantic checks on the parts that
  // passed the schema (a field with a shape error is left out of them, the rest of its rule
  // is still checked). An unknown format is said first, and the rest is still checked
  // against this format, so a file converted by hand gets every problem at once.
  const format: Problem[] =
    isObject(data) && typeof data.schema === 'string' && data.schema !== PROFILE_SCHEMA
      ? [{ path: 'schema', message: `unsupported profile format ${JSON.stringify(data.schema)} (expected "${PROFILE_SCHEMA}")` }]
      : [];
  const shapeOk = checkSchema(data);
  const shape = shapeOk ? [] : unique((checkSchema.errors ?? []).flatMap((e) => describeError(e, data) ?? []));
  const problems = [...format, ...(format.length ? shape.filter((p) => p.path !== 'schema') : shape)];
  const semantics = checkSemantics(shapeOk ? data : soundParts(data), options.now ?? new Date());
  problems.push(...semantics.problems);
  if (!shapeOk || problems.length > 0) return { ok: false, problems: unique(problems) };
  const lines = semantics.warnings.map((w) => (w.path === '' ? w.message : `${w.path}: ${w.message}`));
  // `$schema` only binds an editor to the published schema: not part of the profile.
  const { $schema: _editorSchema, ...profile } = data as Profile & { $schema?: string };
  return { ok: true, profile, warnings: lines };
}

/** What `profile validate --json` prints: one document, the same facts as the text form. */
export interface ValidationReport {
  file: string;
  ok: boolean;
  problems: Problem[];
  warnings: string[];
  profile?: { id: string; version: number; rules: number };
}

/** The --json form of a validation of FILE (pure; the CLI prints it). */
export function validationReport(file: string, v: ValidationResult): ValidationReport {
  return v.ok
    ? { file, ok: true, problems: [], warnings: v.warnings, profile: { id: v.profile.id, version: v.profile.version, rules: v.profile.rules.length } }
    : { file, ok: false, problems: v.problems, warnings: [] };
}

const TIMESTAMP = new RegExp(profileSchema.definitions.timestamp.pattern);
const checkRule = ajv.compile<ProfileRule>({ definitions: profileSchema.definitions, $ref: '#/definitions/rule' });
const checkDestination = ajv.compile<Destination>({ definitions: profileSchema.definitions, $ref: '#/definitions/destination' });

/**
 * The parts of a profile that failed the schema which the semantic checks can still judge:
 * rules and alwaysAllow destinations that pass their own schema keep their index; every
 * other one is a hole (undefined), so a path such as rules[3] still names the right rule.
 */
function soundParts(data: unknown): SemanticInput {
  const o = isObject(data) ? data : {};
  const rules = Array.isArray(o.rules) ? o.rules.map((r: unknown) => (checkRule(r) ? r : undefined)) : [];
  const partialRules = Array.isArray(o.rules) ? o.rules.map((r: unknown) => (checkRule(r) ? r : soundFields(r))) : [];
  const alwaysAllow = Array.isArray(o.alwaysAllow) ? o.alwaysAllow.map((d: unknown) => (checkDestination(d) ? d : undefined)) : undefined;
  const expires = typeof o.expires === 'string' && TIMESTAMP.test(o.expires) ? o.expires : undefined;
  const ruleIds = Array.isArray(o.rules) ? o.rules.map((r: unknown) => (isObject(r) ? r.id : undefined)) : [];
  return { rules, partialRules, ruleIds, ...(alwaysAllow ? { alwaysAllow } : {}), ...(expires !== undefined ? { expires } : {}) };
}

const checkBinary = ajv.compile<BinaryMatcher>({ definitions: profileSchema.definitions, $ref: '#/definitions/binary' });
const RULE_FIELDS = profileSchema.definitions.rule.properties;
/** One check per field a rule may have (a Map: a key such as `__proto__` or `toString` in a file finds nothing). */
const fieldChecks = new Map<string, (v: unknown) => boolean>(
  Object.entries(RULE_FIELDS).map(([k, schema]) => [k, ajv.compile({ definitions: profileSchema.definitions, ...schema })]),
);

/**
 * A rule that failed the schema, with only the fields that pass their own schema (a
 * destination list keeps its sound destinations, holes for the others): what the per-rule
 * semantic checks can still judge. Undefined when it is not even an object.
 */
function soundFields(r: unknown): ProfileRule | undefined {
  if (!isObject(r)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (k === 'destinations' && Array.isArray(v)) out[k] = v.map((d: unknown) => (checkDestination(d) ? d : undefined));
    else if (k === 'binary') {
      if (checkBinary(v)) out[k] = v;
    } else if (fieldChecks.get(k)?.(v)) out[k] = v;
  }
  return out as unknown as ProfileRule;
}

// ---- schema errors → messages ------------------------------------------------------------

const LEAF_MESSAGES: Record<string, string> = {
  id: "must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit",
  version: 'must be a positive integer',
  'interfaces[]': "must be an interface name (1-15 letters, digits, '_', '.', '-'), optionally ending in '*'",
  path: "must be an absolute path without '.' or '..' components, optionally ending in '*'",
  script: "must be an absolute path without '.' or '..' components",
  package: 'must be a Debian/RPM package name (letters, digits, and . _ + -)',
  flatpak: 'must be a Flatpak application id such as org.example.App',
  snap: 'must be a snap name (lower-case letters, digits and single hyphens)',
  appimage: "must be the absolute path of the .AppImage file, without '.' or '..' components",
  sha256: 'must be 64 lower-case hex characters',
  cidr: 'must be an IPv4 or IPv6 CIDR such as 198.18.0.0/24 or fd00:7467::/64',
  'ports[]': 'must be a port number from 1 to 65535',
  expires: 'must be an RFC 3339 UTC timestamp such as 2027-06-30T00:00:00Z',
};

const EMPTY_MESSAGES: Record<string, string> = {
  interfaces: 'must list at least one interface',
  destinations: 'must list at least one destination (leave it out for the whole tunnel)',
  ports: 'must list at least one port (leave it out for every port)',
};

const FORBIDDEN_MESSAGES: Record<string, string> = {
  package: 'cannot be combined with path: name either a path or a package',
  sha256: 'only applies to a path (a package is checked against the package database)',
  script: 'only applies to a path naming an interpreter',
  binary: 'a kernel rule has no binary',
  children: 'a kernel rule has no processes',
  allowEnv: 'a kernel rule has no processes',
};

const MATCHERS = ['path', 'package', 'flatpak', 'snap', 'appimage'] as const;

/** `binary.X` is forbidden: say what it collides with. */
function forbiddenMessage(field: string, parent: unknown): string {
  const given = isObject(parent) ? MATCHERS.filter((k) => k in parent && k !== field) : [];
  if (field === 'package' && given[0] === 'path') return FORBIDDEN_MESSAGES.package as string;
  if (field === 'sha256' && isObject(parent) && 'package' in parent) return FORBIDDEN_MESSAGES.sha256 as string;
  if (field === 'sha256') return 'only applies to a path';
  if ((MATCHERS as readonly string[]).includes(field) && given[0] !== undefined) {
    return `cannot be combined with ${given[0]}: name the program one way (path, package, flatpak, snap or appimage)`;
  }
  return FORBIDDEN_MESSAGES[field] ?? 'not allowed here';
}

const TYPE_MESSAGES: Record<string, string> = {
  object: 'must be an object',
  array: 'must be an array',
  string: 'must be a string',
  integer: 'must be an integer',
  boolean: 'must be true or false',
};

function describeError(e: ErrorObject, root: unknown): Problem | undefined {
  const { path, field } = locate(e.instancePath, root);
  const params: Record<string, unknown> = e.params;
  switch (e.keyword) {
    case 'if':
      return undefined; // the failing then/else branch reports the actual mistake
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return { path: joinKey(path, key), message: unknownField(key, e.parentSchema) };
    }
    case 'required': {
      const missing = String(params.missingProperty);
      if (missing === 'appimage') return { path, message: 'must name the program: path, package, flatpak, snap or appimage' };
      if (missing === 'binary') return { path, message: 'must have either a binary or kernel: true' };
      return { path: joinKey(path, missing), message: 'missing required field' };
    }
    case 'false schema':
      return { path, message: forbiddenMessage(field, parentOf(e.instancePath, root)) };
    case 'enum':
      return { path, message: `must be ${orList(params.allowedValues)}` };
    case 'const':
      return { path, message: `must be ${JSON.stringify(params.allowedValue)}` };
    case 'minItems':
      return { path, message: EMPTY_MESSAGES[field] ?? 'must not be empty' };
    case 'uniqueItems': {
      const dup = Array.isArray(e.data) ? (e.data as unknown[])[Number(params.i)] : undefined;
      return { path, message: `lists ${JSON.stringify(dup)} more than once` };
    }
  }
  const leaf = LEAF_MESSAGES[field];
  if (leaf !== undefined) return { path, message: leaf };
  if (e.keyword === 'type') {
    if (path === '') return { path, message: 'a profile must be a JSON object' };
    return { path, message: TYPE_MESSAGES[String(params.type)] ?? `must be of type ${String(params.type)}` };
  }
  return { path, message: e.message ?? 'is invalid' };
}

/** Turn ajv's JSON pointer into `rules[2].binary`, and name the field for message lookup. */
function locate(pointer: string, root: unknown): { path: string; field: string } {
  let path = '';
  let field = '';
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      path = joinIndex(path, Number(seg));
      field = `${field}[]`;
      node = node[Number(seg)] as unknown;
    } else {
      path = joinKey(path, seg);
      field = seg;
      node = isObject(node) ? node[seg] : undefined;
    }
  }
  return { path, field };
}

function parentOf(pointer: string, root: unknown): unknown {
  let node = root;
  for (const raw of pointer.split('/').slice(1, -1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = Array.isArray(node) ? (node[Number(seg)] as unknown) : isObject(node) ? node[seg] : undefined;
  }
  return node;
}

function unknownField(key: string, parentSchema: unknown): string {
  const props = isObject(parentSchema) && isObject(parentSchema.properties) ? parentSchema.properties : {};
  const close = Object.keys(props).find(
    (k) => k.toLowerCase() === key.toLowerCase() || editDistance(k.toLowerCase(), key.toLowerCase()) <= 2,
  );
  return close === undefined ? 'unknown field' : `unknown field (did you mean "${close}"?)`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, (prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function orList(values: unknown): string {
  const items = (Array.isArray(values) ? values : []).map((v) => JSON.stringify(v));
  return items.length <= 1 ? (items[0] ?? 'valid') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

// ---- checks after the schema passed ------------------------------------------------------

const INTERPRETER =
  /^(?:python[\d.]*|pypy[\d.]*|perl[\d.]*|ruby[\d.]*|node|nodejs|deno|bun|(?:ba|da|z|k|mk|c|tc)?sh|fish|pwsh|php[\d.]*|lua[\d.]*|luajit|tclsh[\d.]*|wish[\d.]*|Rscript|julia|guile[\d.]*|g?awk|mawk)$/;

/** What the semantic checks read: a valid profile, or the sound parts of an invalid one (holes: undefined). */
interface SemanticInput {
  /** Rules that passed the schema whole (holes: undefined); the checks across rules use only these. */
  rules: readonly (ProfileRule | undefined)[];
  /** The per-rule checks: also the sound fields of rules that failed the schema (default: rules). */
  partialRules?: readonly (ProfileRule | undefined)[];
  /** The id of every rule, also of those that failed the schema (duplicates are still duplicates). */
  ruleIds?: readonly unknown[];
  alwaysAllow?: readonly (Destination | undefined)[];
  expires?: string;
}

function checkSemantics(profile: SemanticInput, now: Date): { problems: Problem[]; warnings: Problem[] } {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const cidrs = new Map<Destination, Cidr>();
  const checkDestinations = (path: string, dests: readonly (Destination | undefined)[] | undefined): void => {
    dests?.forEach((d, i) => {
      if (d === undefined) return;
      const parsed = parseCidr(d.cidr);
      if (parsed.ok) cidrs.set(d, parsed.cidr);
      else problems.push({ path: joinKey(joinIndex(path, i), 'cidr'), message: parsed.message });
    });
  };

  checkDestinations('alwaysAllow', profile.alwaysAllow);

  const firstById = new Map<string, number>();
  (profile.ruleIds ?? profile.rules.map((r) => r?.id)).forEach((id, i) => {
    if (typeof id !== 'string') return;
    const first = firstById.get(id);
    if (first !== undefined) problems.push({ path: `rules[${i}].id`, message: `duplicate rule id "${id}" (also rules[${first}])` });
    else firstById.set(id, i);
  });
  (profile.partialRules ?? profile.rules).forEach((rule, i) => {
    if (rule === undefined) return;
    const at = `rules[${i}]`;
    checkDestinations(`${at}.destinations`, rule.destinations as readonly (Destination | undefined)[] | undefined);
    const bin = rule.binary;
    if (bin?.script !== undefined && bin.path !== undefined && !isInterpreter(bin.path)) {
      problems.push({
        path: `${at}.binary.script`,
        message: `only applies when path is an interpreter (python, perl, ruby, node, bash, ...); ${bin.path} is not one`,
      });
    }
    if (bin?.sha256 !== undefined && bin.path?.endsWith('*')) {
      warnings.push({ path: `${at}.binary.sha256`, message: `one digest pins every binary matching ${bin.path}` });
    }
    if (bin?.sha256 !== undefined && rule.action === 'deny') {
      warnings.push({ path: `${at}.binary.sha256`, message: 'a deny rule pinned to a digest misses every other build' });
    }
    if (rule.action === 'deny') {
      if (rule.children !== undefined) problems.push({ path: `${at}.children`, message: 'only applies to allow rules' });
      if (rule.allowEnv !== undefined) problems.push({ path: `${at}.allowEnv`, message: 'only applies to allow rules' });
    }
    rule.allowEnv?.forEach((name, k) => {
      if (bin?.script === undefined && (INTERPRETER_ENV as readonly string[]).includes(name)) {
        warnings.push({ path: `${at}.allowEnv[${k}]`, message: `${name} is refused only for script rules; listing it here has no effect` });
      }
    });
    if (bin?.path === '/*' && rule.action !== 'deny' && rule.destinations === undefined) {
      warnings.push({ path: `${at}.binary.path`, message: 'allows every program through the whole tunnel' });
    }
  });

  profile.rules.forEach((allow, i) => {
    if (allow === undefined || (allow.action ?? 'allow') !== 'allow') return;
    profile.rules.forEach((deny, j) => {
      if (deny === undefined || deny.action !== 'deny' || deny.mode === 'audit' || !denyCovers(deny, allow, cidrs)) return;
      problems.push({
        path: `rules[${i}]`,
        message: `allow rule "${allow.id}" can never match: deny rule "${deny.id}" (rules[${j}]) covers it`,
      });
    });
  });

  if (profile.expires !== undefined) {
    const expires = parseUtcTimestamp(profile.expires);
    if (expires === undefined) problems.push({ path: 'expires', message: 'is not a valid date and time' });
    else if (expires <= now.getTime()) {
      warnings.push({ path: 'expires', message: 'is in the past: this profile will not be in force' });
    }
  }
  return { problems, warnings };
}

function isInterpreter(path: string): boolean {
  const base = path.replace(/\*$/, '').split('/').pop() ?? '';
  return INTERPRETER.test(base);
}

function denyCovers(deny: ProfileRule, allow: ProfileRule, cidrs: Map<Destination, Cidr>): boolean {
  if ((deny.kernel === true) !== (allow.kernel === true)) return false;
  if (deny.kernel !== true && !binaryCovers(deny.binary ?? {}, allow.binary ?? {})) return false;
  if (deny.destinations === undefined) return true;
  if (allow.destinations === undefined) return false;
  return allow.destinations.every((a) => deny.destinations?.some((d) => destinationCovers(d, a, cidrs)));
}

function binaryCovers(deny: BinaryMatcher, allow: BinaryMatcher): boolean {
  if (deny.package !== undefined || allow.package !== undefined) return deny.package === allow.package;
  if (deny.sha256 !== undefined && deny.sha256 !== allow.sha256) return false;
  if (deny.script !== undefined && deny.script !== allow.script) return false;
  const d = deny.path ?? '';
  const a = allow.path ?? '';
  return d.endsWith('*') ? a.startsWith(d.slice(0, -1)) : d === a;
}

function destinationCovers(deny: Destination, allow: Destination, cidrs: Map<Destination, Cidr>): boolean {
  const d = cidrs.get(deny);
  const a = cidrs.get(allow);
  if (d === undefined || a === undefined || !cidrContains(d, a)) return false;
  if (deny.proto !== undefined && deny.proto !== allow.proto) return false;
  return deny.ports === undefined || (allow.ports?.every((p) => deny.ports?.includes(p)) ?? false);
}

/** Milliseconds since the epoch, or undefined for an impossible date (2027-02-30, 25:00). */
export function parseUtcTimestamp(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const t = new Date(ms);
  const same =
    t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d &&
    t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === s;
  return same ? ms + Math.floor(Number(m[7] ?? 0) * 1000) : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unique(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\0${p.message}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}
