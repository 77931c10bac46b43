// Application error codes carried in the helper's JSON-RPC errors. The helper throws them
// (CallerError below), the CLI maps them to exit codes (helper/cli/), the tray app
// to what it shows (main/helper-connection.ts).

/** JSON-RPC's own codes, and ours outside its reserved range. */
export const ErrorCode = {
  InvalidParams: -32602,
  MethodNotFound: -32601,
  Internal: -32603,
  /** The program may not use the tunnel (CLI exit 126). */
  NotAllowed: 1001,
  /** The caller may not do this. */
  Forbidden: 1003,
  NotFound: 1004,
  /** The request no longer applies (a prompt already answered, closed meanwhile). */
  Conflict: 1009,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * A refusal meant for the caller: its message is shown to the user as it is, with one of
 * the codes above. The helper's core throws it; the API edge (helper/api/server.ts) turns
 * it into a JSON-RPC error, so the wire format stops at the edge.
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
