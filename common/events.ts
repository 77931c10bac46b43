// What the helper reports as it works: `tunnelgate events`, the audit log and the tray app.
import type { Mode } from './profile.js';

export type GateEvent =
  | { type: 'helper.started'; pid: number; version: string }
  | { type: 'helper.stopping'; signal: string }
  | { type: 'policy.applied'; rules: number; mode: Mode; problems: string[] }
  | { type: 'policy.failed'; reason: string }
  | { type: 'gate.adopted'; kept: number; released: number }
  | { type: 'launch.admitted'; uid: number; pid: number; path: string; rule: string }
  | { type: 'launch.refused'; uid: number; pid?: number; path: string; reason: string }
  | { type: 'api.refused'; uid: number; pid: number; method: string; reason: string }
  | { type: 'profile.loaded'; file: string; profileId: string; version: number; previousVersion?: number; signedBy?: string; note?: string }
  | { type: 'profile.rejected'; file: string; profileId?: string; version?: number; problems: string[] }
  | { type: 'profile.removed'; file: string; profileId: string; version: number }
  | { type: 'profile.pulled'; url: string; result: 'updated' | 'not-modified' | 'failed'; detail?: string };

export type StampedEvent = GateEvent & { seq: number; time: string };
