import type { ErrorCodeValue } from '../../common/errors.js';

/**
 * A refusal meant for the caller: its message is shown to the user as it is, with one of
 * common/errors.ts's codes. The core throws it; the API edge (helper/api/server.ts) turns it
 * into a JSON-RPC error, so the wire format stops at the edge.
 */
export class CallerError extends Error {
  constructor(
    readonly code: ErrorCodeValue,
    message: string,
  ) {
    super(message);
    this.name = 'CallerError';
  }

  /** The JSON-RPC error object: `{code, message}`. */
  toObject(): { code: number; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** `new CallerError(code, message)`, as an expression for `throw ApiError(…)`. */
export function ApiError(code: ErrorCodeValue, message: string): CallerError {
  return new CallerError(code, message);
}
