// Application error codes carried in the helper's JSON-RPC errors. The helper throws them
// (helper/daemon/errors.ts), the CLI maps them to exit codes (helper/cli/), the tray app
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
