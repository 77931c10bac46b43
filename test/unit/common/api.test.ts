// common/api.ts is schema-first: the params types are inferred from the schemas the server
// compiles. These tests pin both halves: the types (checked by tsc) and what ajv accepts.
import { Ajv } from 'ajv';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { AnswerParams, ExplainDst, ExplainParams, MethodName, Params } from '../../../common/api.js';
import { API, ErrorCode } from '../../../common/api.js';
import type { Destination } from '../../../common/profile.js';
import type { PromptDecision, PromptScope } from '../../../common/prompts.js';

describe('API declared schema-first', () => {
  it('the inferred params types are the protocol types', () => {
    expectTypeOf<AnswerParams>().toEqualTypeOf<{
      id: string;
      decision: PromptDecision;
      scope?: PromptScope;
      destinations?: Destination[];
      seconds?: number;
      untilLogout?: boolean;
    }>();
    expectTypeOf<ExplainParams>().toEqualTypeOf<{ pid?: number; path?: string; dst?: ExplainDst; rule?: string; uid?: number }>();
    expectTypeOf<Params<'status'>>().toEqualTypeOf<Record<string, never>>();
    expectTypeOf<Params<'launch.begin'>>().toEqualTypeOf<{ pid: number; path: string }>();
    expectTypeOf<Params<'subscribe'>>().toEqualTypeOf<{ topics: Array<'events' | 'prompts' | 'status'> }>();
  });

  it('every schema compiles in strict mode and is a closed object', () => {
    const ajv = new Ajv({ allErrors: true, strict: true });
    for (const m of Object.keys(API) as MethodName[]) {
      expect(() => ajv.compile(API[m].params), m).not.toThrow();
      expect(API[m].params).toMatchObject({ type: 'object', additionalProperties: false });
    }
    expect(API['profile.test'].access).toBe('admin');
  });

  it('the schemas accept what the types allow and refuse the rest', () => {
    const ajv = new Ajv({ allErrors: true, strict: true });
    const answer = ajv.compile(API.answer.params);
    expect(answer({ id: '0123456789abcdef', decision: 'allow-for', seconds: 60, destinations: [{ cidr: '198.18.0.0/24', ports: [443], proto: 'tcp' }] })).toBe(true);
    expect(answer({ id: '0123456789abcdef', decision: 'maybe' })).toBe(false);
    expect(answer({ id: '0123456789abcdef', decision: 'deny', extra: 1 })).toBe(false);
    expect(answer({ decision: 'deny' })).toBe(false);
    expect(answer({ id: '0123456789abcdef', decision: 'deny', scope: null })).toBe(false);
    const status = ajv.compile(API.status.params);
    expect(status({})).toBe(true);
    expect(status({ x: 1 })).toBe(false);
    const allow = ajv.compile(API.allow.params);
    expect(allow({ path: '/usr/bin/curl', pin: false, uid: 1000 })).toBe(true);
    expect(allow({ path: 'relative' })).toBe(false);
    expect(allow({ path: '/a\u0000b' })).toBe(false);
  });

  it('error codes keep their values', () => {
    expect(ErrorCode).toMatchObject({ InvalidParams: -32602, NotAllowed: 1001, Forbidden: 1003, NotFound: 1004, Conflict: 1009 });
  });
});
