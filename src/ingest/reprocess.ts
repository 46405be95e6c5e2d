import { sql } from "drizzle-orm";
import { type Db, query } from "../db/client.js";
import { toQueueRow } from "../queue/row.js";
import { processDeliveries } from "./process.js";

export interface ReprocessFilter {
  sourceId: string;
  since?: Date | undefined;
  until?: Date | undefined;
  /** Only deliveries in this queue status (e.g. `dead` after a fix). */
  status?: "pending" | "processing" | "completed" | "dead" | undefined;
}

/**
 * Run processing again over archived deliveries, oldest first, a page per transaction. Storing is keyed by
 * each event's dedupe key, so a run stores only what is missing and applies only its effects: any number of
 * runs end in the same state. Rejected deliveries are skipped. `onProgress` gets (done, total).
 */
export async function reprocess(
  db: Db,
  filter: ReprocessFilter,
  onProgress: (done: number, total: number, stored: number) => void = () => {},
  pageSize = 50,
): Promise<{ deliveries: number; stored: number }> {
  const where = sql`source_id = ${filter.sourceId} and rejected_reason is null
    ${filter.since ? sql`and received_at >= ${filter.since.toISOString()}::timestamptz` : sql``}
    ${filter.until ? sql`and received_at < ${filter.until.toISOString()}::timestamptz` : sql``}
    ${filter.status ? sql`and status = ${filter.status}` : sql``}`;
  const [{ total } = { total: 0 }] = await query<{ total: number }>(
    db,
    sql`select count(*)::int as total from webhook_deliveries where ${where}`,
  );
  let done = 0;
  let stored = 0;
  let after = 0;
  for (;;) {
    const page = await query(
      db,
      sql`select * from webhook_deliveries where ${where} and id > ${after} order by id limit ${pageSize}`,
    );
    if (page.length === 0) break;
    const rows = page.map(toQueueRow);
    const outcome = await db.transaction(async (tx) => {
      const result = await processDeliveries(tx, rows);
      // Whatever their queue state was, these deliveries are now processed.
      await tx.execute(sql`update webhook_deliveries set status = 'completed', processed_at = now(), locked_by = null,
        locked_until = null, last_error = null, updated_at = now()
        where id in (select (jsonb_array_elements_text(${JSON.stringify(rows.map((r) => r.id))}::jsonb))::bigint) and status <> 'processing'`);
      return result;
    });
    done += rows.length;
    stored += outcome.stored.length;
    after = rows.at(-1)!.id;
    onProgress(done, Number(total), stored);
  }
  return { deliveries: done, stored };
}
