import { createRequire } from 'node:module';

/** A native piece of build/ (native/build.sh), or why it is not there. */
export type NativeModule<T> = { module: T; problem: null } | { module: null; problem: string };

const loaded = new Map<string, NativeModule<unknown>>();

/**
 * build/<name>.node, loaded once. npm ci builds it where a C compiler and Node's headers are
 * installed; elsewhere the caller falls back and reports `problem`.
 */
export function nativeModule<T>(name: string, what: string): NativeModule<T> {
  let entry = loaded.get(name);
  if (entry === undefined) {
    try {
      // From src/transport/ and from dist/transport/ alike, build/ is two levels up.
      entry = { module: createRequire(import.meta.url)(`../../build/${name}.node`), problem: null };
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      entry = { module: null, problem: `${what} not built (${reason}; npm ci builds it with a C compiler)` };
    }
    loaded.set(name, entry);
  }
  return entry as NativeModule<T>;
}
