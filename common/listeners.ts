// One way to hold listeners: a Set, and a subscribe that returns the unsubscribe function.

/** Add `cb` to `set`; returns the function that removes it again. */
export function subscribe<T extends (...args: never[]) => unknown>(set: Set<T>, cb: T): () => void {
  set.add(cb);
  return () => void set.delete(cb);
}
