// The helper's API, declared once. The helper's server, the CLI and the tray app's
// main process are all typed from this file; the wire format (JSON-RPC 2.0 over a
// unix socket, one JSON document per line) stops at common/node/client.ts and
// helper/daemon/api-server.ts.

import type { EffectiveRule, Policy, SourceStatus } from './policy.js';
import type { Mode } from './profile.js';

export const API_SOCKET_NAME = 'api.sock';
/** A request or reply line longer than this closes the connection. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

export type GateState = 'enforcing' | 'audit' | 'degraded' | 'down';
export type Mechanism = 'net_cls';

export interface InterfaceStatus {
  /** Name or trailing-`*` pattern from the policy. */
  pattern: string;
  /** Interfaces present now that it matches (in the helper's network namespace). */
  present: string[];
}

export interface StatusReport {
  state: GateState;
  mode: Mode;
  mechanism: Mechanism;
  /** Where the rule cgroups live, e.g. /sys/fs/cgroup/net_cls/tunnelgate. */
  cgroupDir: string;
  interfaces: InterfaceStatus[];
  /** Rules in the effective policy (allow and deny). */
  ruleCount: number;
  /** Processes admitted through `tunnelgate run` that are still alive. */
  admittedProcesses: number;
  /** Packets dropped by the gate since the table was last written. */
  dropped: { packets: number; bytes: number };
  sources: SourceStatus[];
  problems: string[];
  helper: { pid: number; version: string; startedAt: string; appliedAt?: string };
}

export interface ListResult {
  rules: EffectiveRule[];
  userPrompts: Policy['userPrompts'];
}

export interface LaunchBeginParams {
  /** The caller's child, stopped before exec, that will run the program. */
  pid: number;
  /** The absolute path the caller intends to exec: used to pick a rule, never trusted. */
  path: string;
}
export interface LaunchBeginResult {
  launchId: string;
  rule: string;
}
export interface LaunchConfirmParams {
  launchId: string;
}
export interface LaunchConfirmResult {
  rule: string;
  /** The kernel's view of what the process runs, as verified. */
  exe: string;
}

export interface Caller {
  pid: number;
  uid: number;
  gid: number;
}

/** Every method the helper serves: its parameters, its result, and who may call it. */
export interface ApiMethods {
  status: { params: Record<string, never>; result: StatusReport };
  list: { params: Record<string, never>; result: ListResult };
  'launch.begin': { params: LaunchBeginParams; result: LaunchBeginResult };
  'launch.confirm': { params: LaunchConfirmParams; result: LaunchConfirmResult };
}
export type MethodName = keyof ApiMethods;
export type Params<M extends MethodName> = ApiMethods[M]['params'];
export type Result<M extends MethodName> = ApiMethods[M]['result'];

/** `any`: every local user; `admin`: root only. Methods not listed here are refused. */
export type Access = 'any' | 'admin';

interface JsonSchemaObject {
  type: 'object';
  properties: Record<string, unknown>;
  required: string[];
  additionalProperties: false;
}

const noParams: JsonSchemaObject = { type: 'object', properties: {}, required: [], additionalProperties: false };

export const API: { [M in MethodName]: { access: Access; params: JsonSchemaObject } } = {
  status: { access: 'any', params: noParams },
  list: { access: 'any', params: noParams },
  'launch.begin': {
    access: 'any',
    params: {
      type: 'object',
      properties: {
        pid: { type: 'integer', minimum: 2, maximum: 4194304 },
        path: { type: 'string', minLength: 1, maxLength: 4096, pattern: '^/' },
      },
      required: ['pid', 'path'],
      additionalProperties: false,
    },
  },
  'launch.confirm': {
    access: 'any',
    params: {
      type: 'object',
      properties: { launchId: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
      required: ['launchId'],
      additionalProperties: false,
    },
  },
};

/** Application error codes carried in JSON-RPC errors (outside the reserved range). */
export const ErrorCode = {
  InvalidParams: -32602,
  MethodNotFound: -32601,
  Internal: -32603,
  /** The program may not use the tunnel (CLI exit 126). */
  NotAllowed: 1001,
  /** The caller may not do this. */
  Forbidden: 1003,
  NotFound: 1004,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];
