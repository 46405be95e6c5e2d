import { sql } from "drizzle-orm";
import { type Executor, query } from "./client.js";

/**
 * Transaction-scoped advisory locks on keys hashed to 32 bits within a namespace (PostgreSQL's two-int
 * form), for rules that rows alone cannot hold under READ COMMITTED. Two keys sharing a hash only wait for
 * each other.
 */

/** A 32-bit FNV-1a hash of `text`. */
export function lockKey(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash | 0;
}

/**
 * Take the keys' locks, in ascending order so that transactions taking several never deadlock; they are held
 * until the transaction ends.
 */
export async function lockKeys(
  executor: Executor,
  namespace: number,
  keys: (number | null)[],
  mode: "shared" | "exclusive",
): Promise<void> {
  const sorted = [...new Set(keys.filter((k): k is number => k !== null))].sort((a, b) => a - b);
  if (sorted.length === 0) return;
  const lock = mode === "shared" ? sql.raw("pg_advisory_xact_lock_shared") : sql.raw("pg_advisory_xact_lock");
  // Prepared: the text is one of two, whatever the keys.
  await query(
    executor,
    sql`select ${lock}(${namespace}, k) from unnest(${`{${sorted.join(",")}}`}::int[]) as k order by k`,
    { prepare: true },
  );
}
