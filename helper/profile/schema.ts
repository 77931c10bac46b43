// JSON Schema (draft-07) for profile format v1. Published as schema/profile-v1.schema.json;
// a unit test keeps that file identical to this object. Checks a schema cannot express
// precisely (CIDR host bits, calendar dates, rule overlaps) live in validate.ts.

import { ID_PATTERN, IFACE_PATTERN, PROFILE_SCHEMA, REFUSED_ENV } from '../../common/profile.js';

const IPV4_CIDR = String.raw`(?:\d{1,3}\.){3}\d{1,3}/\d{1,2}`;
const IPV6_CIDR = String.raw`[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/\d{1,3}`;

/**
 * The schema's name (`$id`): a URN, because the project owns no URL to publish it at, and an
 * `$id` must not pretend to a location (it was a placeholder under `.invalid`). Stable for
 * format v1: `tunnelgate/profile@1` in a profile's `schema` key, this schema's `$id`. Editors
 * bind a profile to the file, not to this name: `"$schema":
 * "file:///usr/share/tunnelgate/profile-v1.schema.json"` (installed by the package; works
 * offline) or a copy of schema/profile-v1.schema.json. A profile whose `$schema` is this
 * URN is accepted too; the helper ignores the key.
 */
export const PROFILE_SCHEMA_ID = 'urn:tunnelgate:schema:profile-v1';

/** Where the package installs the schema; what a profile's `$schema` should name for editors. */
export const PROFILE_SCHEMA_FILE_URL = 'file:///usr/share/tunnelgate/profile-v1.schema.json';

export const profileSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: PROFILE_SCHEMA_ID,
  title: 'tunnelgate profile v1',
  type: 'object',
  additionalProperties: false,
  required: ['schema', 'id', 'version', 'mode', 'interfaces', 'userPrompts', 'rules'],
  properties: {
    // Binds an editor to this schema; the helper ignores it.
    $schema: { type: 'string' },
    schema: { const: PROFILE_SCHEMA },
    id: { $ref: '#/definitions/id' },
    version: { $ref: '#/definitions/version' },
    mode: { $ref: '#/definitions/mode' },
    interfaces: {
      description:
        'Names, or trailing-* patterns, of the tunnel interfaces this profile gates. Its rules, alwaysAllow and mode apply on these interfaces only (and on one once gated under them, by its index, under any later name); several profiles gate the union, each opening only its own. Deny rules apply on every gated interface.',
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { $ref: '#/definitions/iface' },
    },
    userPrompts: { enum: ['allow', 'deny'] },
    alwaysAllow: { type: 'array', items: { $ref: '#/definitions/destination' } },
    rules: { type: 'array', items: { $ref: '#/definitions/rule' } },
    expires: { $ref: '#/definitions/timestamp' },
  },
  definitions: {
    id: { type: 'string', pattern: ID_PATTERN },
    version: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    mode: { enum: ['enforce', 'audit'] },
    iface: { type: 'string', pattern: IFACE_PATTERN },
    binaryPath: { type: 'string', pattern: String.raw`^(?!.*/\.\.?(?:/|\*?$))(?:(?:/[^/*\x00-\x1f]+)+(?:/?\*)?|/\*)$` },
    scriptPath: { type: 'string', pattern: String.raw`^(?!.*/\.\.?(?:/|$))(?:/[^/*\x00-\x1f]+)+$` },
    package: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.+-]*$' },
    flatpak: { type: 'string', maxLength: 255, pattern: String.raw`^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)+$` },
    snap: { type: 'string', maxLength: 40, pattern: '^(?=.*[a-z])[a-z0-9](?:-?[a-z0-9])*$' },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    cidr: { type: 'string', pattern: `^(?:${IPV4_CIDR}|${IPV6_CIDR})$` },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    timestamp: {
      type: 'string',
      pattern: String.raw`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$`,
    },
    destination: {
      type: 'object',
      additionalProperties: false,
      required: ['cidr'],
      properties: {
        cidr: { $ref: '#/definitions/cidr' },
        ports: { type: 'array', minItems: 1, uniqueItems: true, items: { $ref: '#/definitions/port' } },
        proto: { enum: ['tcp', 'udp'] },
      },
    },
    // Exactly one of path, package, flatpak, snap, appimage; sha256 and script only with path.
    binary: {
      type: 'object',
      additionalProperties: false,
      properties: {
        path: { $ref: '#/definitions/binaryPath' },
        sha256: { $ref: '#/definitions/sha256' },
        script: { $ref: '#/definitions/scriptPath' },
        package: { $ref: '#/definitions/package' },
        flatpak: { $ref: '#/definitions/flatpak' },
        snap: { $ref: '#/definitions/snap' },
        appimage: { $ref: '#/definitions/scriptPath' },
      },
      if: { properties: { path: true }, required: ['path'] },
      then: { properties: { package: false, flatpak: false, snap: false, appimage: false } },
      else: {
        properties: { sha256: false, script: false },
        if: { properties: { package: true }, required: ['package'] },
        then: { properties: { flatpak: false, snap: false, appimage: false } },
        else: {
          if: { properties: { flatpak: true }, required: ['flatpak'] },
          then: { properties: { snap: false, appimage: false } },
          else: {
            if: { properties: { snap: true }, required: ['snap'] },
            then: { properties: { appimage: false } },
            else: { properties: { appimage: true }, required: ['appimage'] },
          },
        },
      },
    },
    rule: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      properties: {
        id: { $ref: '#/definitions/id' },
        action: { enum: ['allow', 'deny'] },
        binary: { $ref: '#/definitions/binary' },
        kernel: { type: 'boolean' },
        destinations: { type: 'array', minItems: 1, items: { $ref: '#/definitions/destination' } },
        mode: { $ref: '#/definitions/mode' },
        children: {
          description:
            "What happens to the allowed program's descendants (processes forked after its allowed exec; one forked before it never is). inherit (default): a descendant keeps this rule whatever it runs, while its parent is in the rule. confine: a descendant keeps the tunnel only if a rule allows its own program, decided at each of its execs. Either way the program's own exec of a binary no rule allows ends its access at that exec, and a traced process never keeps it.",
          enum: ['inherit', 'confine'],
        },
        allowEnv: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...REFUSED_ENV] } },
      },
      if: { properties: { kernel: { const: true } }, required: ['kernel'] },
      then: { properties: { binary: false, children: false, allowEnv: false } },
      else: { properties: { binary: true }, required: ['binary'] },
    },
  },
};
