import { sql } from "drizzle-orm";
import { type Db, query } from "../../src/db/client.js";

/**
 * Deliveries counted in `delivery_rollups` (a delivered outbox row is deleted as it is counted there), where
 * `where` holds (SQL text over the rollups' columns).
 */
export async function delivered(db: Db, where = "true"): Promise<number> {
  const [row] = await query<{ n: number }>(
    db,
    sql.raw(`select coalesce(sum(delivered), 0)::int as n from delivery_rollups where ${where}`),
  );
  return row!.n;
}

/** The rollup rows of `tenantId`, in key order, with readable times and numbers on both drivers. */
export async function rollupsOf(db: Db, tenantId: string) {
  const rows = await query<Record<string, unknown>>(
    db,
    sql`select to_char(minute at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as minute, subscription_id,
      event_type, delivered, retried, latency_ms_max,
      to_char(last_delivered_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as last_delivered_at
    from delivery_rollups where tenant_id = ${tenantId} order by minute, subscription_id, event_type`,
  );
  return rows.map((r) => ({
    minute: r.minute as string,
    subscription_id: r.subscription_id as string,
    event_type: r.event_type as string,
    delivered: Number(r.delivered),
    retried: Number(r.retried),
    latency_ms_max: Number(r.latency_ms_max),
    last_delivered_at: r.last_delivered_at as string,
  }));
}
