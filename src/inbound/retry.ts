import { sql } from "drizzle-orm";
import { pgArray } from "../db/arrays.js";
import { type Db, query } from "../db/client.js";
import { inboundEventsQueue } from "../queue/definitions.js";
import { notifyQueue } from "../queue/enqueue.js";
import { retryDeadInbound } from "../queue/enqueueInbound.js";

/**
 * Give dead inbound events (by their `inbound_events` id, or all of the tenant's) fresh attempts, due now,
 * and wake the workers: after a fix, the messages that failed every attempt are threaded like new ones.
 * Returns the ids revived.
 */
export async function retryInbound(db: Db, tenantId: string, ids?: number[]): Promise<number[]> {
  return db.transaction(async (tx) => {
    const rows = await query<{ id: string | number }>(
      tx,
      retryDeadInbound(tenantId, ids && sql`${pgArray(ids)}::bigint[]`),
    );
    if (rows.length > 0) await notifyQueue(tx, inboundEventsQueue);
    return rows.map((r) => Number(r.id));
  });
}
