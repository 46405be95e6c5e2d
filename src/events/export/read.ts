import { sql } from "drizzle-orm";
import { type Executor, query } from "../../db/client.js";
import { epochMs } from "../../db/timestamps.js";
import type { EventSource } from "../../domain/vocabularies.js";
import { type EventFilter, filterCondition } from "../filter.js";
import type { ReadPosition } from "../query.js";

/**
 * An event as an export reads it: the export columns, times as epoch milliseconds, payload and metadata as
 * the database's JSON text (never parsed and written again: exact, numbers included, and the costliest part
 * of a row left to no one).
 */
export interface ExportRecord {
  id: string;
  event_type: string;
  source: EventSource;
  ts_ms: number;
  created_ms: number;
  contact_id: string | null;
  session_id: string | null;
  message_id: string | null;
  event_key: string | null;
  correlation_id: string | null;
  causation_id: string | null;
  schema_version: number;
  sequence_number: string | null;
  payload: string;
  metadata: string;
  /** The event's time in epoch microseconds: where the next batch starts. */
  ts_us: string;
}

/**
 * One batch of an export: the events of `filter` visible in `snapshot`, after `after`, by (time, id),
 * `limit` at most. The same rule as `readEvents` (the snapshot bound, the keyset), as plain rows: `readEvents`
 * builds its page as one JSON value, which costs the database about 10 µs per event (row to JSON, jsonb out),
 * several times what an export can afford per row.
 */
export async function readExportBatch(
  executor: Executor,
  filter: EventFilter,
  snapshot: string,
  after: ReadPosition | undefined,
  limit: number,
): Promise<ExportRecord[]> {
  const conditions = [
    filterCondition("e", filter),
    sql`pg_visible_in_snapshot(e.transaction_id, ${snapshot}::pg_snapshot)`,
  ];
  if (after !== undefined) {
    const at = sql`('epoch'::timestamptz + ${after.ts}::bigint * interval '1 microsecond')`;
    conditions.push(sql`e.ts >= ${at} and (e.ts, e.id) > (${at}, ${after.id}::uuid)`);
  }
  return query<ExportRecord>(
    executor,
    sql`select e.id, e.event_type, e.source, ${sql.raw(epochMs("e.ts"))} as ts_ms,
        ${sql.raw(epochMs("e.created_at"))} as created_ms, e.contact_id, e.session_id, e.message_id,
        e.event_key, e.correlation_id, e.causation_id, e.schema_version, e.sequence_number::text as sequence_number,
        e.payload::text as payload, e.metadata::text as metadata,
        (extract(epoch from e.ts) * 1000000)::bigint::text as ts_us
      from events e
      where ${sql.join(conditions, sql` and `)}
      order by e.ts, e.id
      limit ${limit}`,
  );
}
