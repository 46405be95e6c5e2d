import { sql } from "drizzle-orm";
import { pgArray } from "../db/arrays.js";
import { type Executor, query } from "../db/client.js";
import type { Page } from "../domain/cursor.js";
import type { QueueStatus } from "../domain/vocabularies.js";
import { HeraldError } from "../errors.js";

/**
 * A source's archived deliveries (`webhook_deliveries`), newest first, as an operator reads them. A delivery
 * whose body was refused after its signature checked out (SendGrid's: not an array of objects) is archived
 * with `rejected_reason` and never processed; a request refused for its signature is answered 401 and not
 * stored at all (ingest/receive.ts), so it is not listed here.
 */
export interface DeliveryView {
  /** The archive's id (a bigint, as text). */
  id: string;
  received_at: string;
  event_count: number;
  /** `rejected` when `rejected_reason` is set, else the queue's status of the row. */
  status: QueueStatus | "rejected";
  rejected_reason: string | null;
  remote_ip: string | null;
}

export interface DeliveryFilter {
  sourceId: string;
  /** true: only rejected deliveries; false: only accepted ones; unset: all. */
  rejected?: boolean | undefined;
}

/**
 * Where the next page starts: the last row's `received_at` to the microsecond (a JavaScript date would lose
 * the rest of a millisecond) and its id. The API seals it to its list; only its shape is checked here.
 */
const encodeCursor = (at: string, id: string) => Buffer.from(JSON.stringify([at, id])).toString("base64url");

function decodeCursor(cursor: string | undefined): [string, string] | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === "string" &&
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(value[0]) &&
      typeof value[1] === "string" &&
      /^\d{1,19}$/.test(value[1])
    )
      return [value[0], value[1]];
  } catch {
    // refused below
  }
  throw new HeraldError("validation_failed", "cursor is not one this API returned for this list", [
    { path: "/querystring/cursor", message: "invalid cursor" },
  ]);
}

const utc = (column: string, fraction: "MS" | "US") =>
  sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.${fraction}"Z"')`);

/** One page of a source's deliveries, newest first (index `webhook_deliveries_source_idx`). */
export async function listDeliveries(
  executor: Executor,
  tenantId: string,
  filter: DeliveryFilter,
  limit: number,
  cursor: string | undefined,
): Promise<Page<DeliveryView>> {
  const position = decodeCursor(cursor);
  const rows = await query<DeliveryView & { position: string }>(
    executor,
    sql`select id::text as id, ${utc("received_at", "MS")} as received_at, event_count,
        case when rejected_reason is not null then 'rejected' else status end as status,
        rejected_reason, remote_ip, ${utc("received_at", "US")} as position
      from webhook_deliveries
      where tenant_id = ${tenantId} and source_id = ${filter.sourceId}
        ${filter.rejected === true ? sql`and rejected_reason is not null` : sql``}
        ${filter.rejected === false ? sql`and rejected_reason is null` : sql``}
        ${position ? sql`and (received_at, id) < (${position[0]}::timestamptz, ${position[1]}::bigint)` : sql``}
      order by received_at desc, id desc
      limit ${limit + 1}`,
  );
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(({ position: _position, ...row }) => ({ ...row, event_count: Number(row.event_count) })),
    nextCursor: rows.length > limit && last ? encodeCursor(last.position, last.id) : null,
  };
}

/** When each of these sources last received a delivery (accepted or rejected); absent when never. */
export async function lastReceived(
  executor: Executor,
  tenantId: string,
  sourceIds: readonly string[],
): Promise<Map<string, string>> {
  if (sourceIds.length === 0) return new Map();
  // One index probe per source (`webhook_deliveries_source_idx`), not a scan of the archive.
  const rows = await query<{ source_id: string; at: string | null }>(
    executor,
    sql`select s.id::text as source_id, (select ${utc("d.received_at", "MS")} from webhook_deliveries d
        where d.tenant_id = ${tenantId} and d.source_id = s.id order by d.received_at desc limit 1) as at
      from unnest(${pgArray(sourceIds)}::uuid[]) as s(id)`,
  );
  return new Map(rows.flatMap((r) => (r.at === null ? [] : [[r.source_id, r.at] as const])));
}
