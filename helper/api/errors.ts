import { JSONRPCErrorException } from 'json-rpc-2.0';
import type { ErrorCodeValue } from '../../common/api.js';

/**
 * An error meant for the caller: its message is shown to the user as it is.
 * (json-rpc-2.0 resets the prototype of its exception class, so this is a factory,
 * and callers test `instanceof JSONRPCErrorException`.)
 */
export function ApiError(code: ErrorCodeValue, message: string): JSONRPCErrorException {
  return new JSONRPCErrorException(message, code);
}
export { JSONRPCErrorException as ApiErrorClass };
