/**
 * Nesting depth of parsed JSON. `JSON.parse` copes with any depth, but every recursive step after it
 * (`JSON.stringify`, schema validation, the driver's serialisation) overflows the stack somewhere past a few
 * thousand levels, so bodies are refused past a bound before anything else reads them.
 */

/** @defaultValue for `HERALD_JSON_MAX_DEPTH` */
export const defaultMaxJsonDepth = 64;

/**
 * The path (object keys and array indexes) of the first container nested deeper than `maxDepth`, or
 * undefined when none is. The top-level value is depth 1. Iterative, so it cannot overflow itself.
 */
export function tooDeepAt(value: unknown, maxDepth: number): (string | number)[] | undefined {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop()!;
    if (current === null || typeof current !== "object") continue;
    if (path.length >= maxDepth) return path;
    if (Array.isArray(current)) {
      current.forEach((item, index) => {
        stack.push({ value: item, path: [...path, index] });
      });
    } else {
      for (const [key, item] of Object.entries(current)) stack.push({ value: item, path: [...path, key] });
    }
  }
  return undefined;
}

/** A JSON pointer (RFC 6901) of path segments under `root`. */
export const jsonPointer = (root: string, path: (string | number)[]) =>
  [root, ...path.map((s) => String(s).replaceAll("~", "~0").replaceAll("/", "~1"))].join("/");
