import { sql } from "drizzle-orm";
import { type Db, query } from "../db/client.js";
import { describeError } from "../db/errors.js";
import { isUuid } from "../domain/uuid.js";
import { HeraldError } from "../errors.js";
import { providerFor } from "../providers/registry.js";
import { toQueueRow } from "../queue/row.js";
import { settleDelivery } from "../queue/settleDelivery.js";
import { processDeliveries } from "./process.js";

export interface ReprocessFilter {
  sourceId: string;
  since?: Date | undefined;
  until?: Date | undefined;
  /** Only deliveries in this queue status (e.g. `dead` after a fix). */
  status?: "pending" | "processing" | "completed" | "dead" | undefined;
}

export interface ReprocessResult {
  deliveries: number;
  stored: number;
  /** Deliveries whose processing failed again (each rolled back alone; the run went on). */
  failed: { id: number; error: string }[];
}

/** Ids read per round trip; bodies are read one delivery at a time. */
const idPage = 200;

/**
 * Run processing again over archived deliveries, oldest first, one delivery per transaction (a delivery may
 * be megabytes of events: only one is held at a time, and one that fails again is reported without stopping
 * the run). The range is fixed when the run starts — deliveries arriving meanwhile are the processor's — so
 * the run ends, and its total is the count at the start (a delivery whose status changes meanwhile may make
 * it off by that one). Storing is keyed by each event's dedupe key, so a run stores only what is missing and
 * applies only its effects: any number of runs end in the same state. Rejected deliveries are skipped.
 * `onProgress` gets (done, total, stored).
 */
export async function reprocess(
  db: Db,
  filter: ReprocessFilter,
  onProgress: (done: number, total: number, stored: number) => void = () => {},
): Promise<ReprocessResult> {
  if (!isUuid(filter.sourceId)) {
    throw new HeraldError("validation_failed", `--source ${filter.sourceId} is not a source id (a UUID)`);
  }
  // Deleted sources too: their archive is still there to reprocess.
  const [source] = await query<{ provider: string }>(
    db,
    sql`select provider from webhook_sources where id = ${filter.sourceId}`,
  );
  if (!source) throw new HeraldError("not_found", `No webhook source ${filter.sourceId}`);
  // Its deliveries are read by its provider's module (the processor finds it in the registry too).
  if (!providerFor(source.provider)) {
    throw new HeraldError(
      "validation_failed",
      `Source ${filter.sourceId} is a ${source.provider} source, whose webhooks this Herald does not take`,
    );
  }
  const where = sql`source_id = ${filter.sourceId} and rejected_reason is null
    ${filter.since ? sql`and received_at >= ${filter.since.toISOString()}::timestamptz` : sql``}
    ${filter.until ? sql`and received_at < ${filter.until.toISOString()}::timestamptz` : sql``}
    ${filter.status ? sql`and status = ${filter.status}` : sql``}`;
  const [range] = await query<{ total: number; last: string | null }>(
    db,
    sql`select count(*)::int as total, max(id) as last from webhook_deliveries where ${where}`,
  );
  const total = Number(range?.total ?? 0);
  const last = Number(range?.last ?? 0);
  const result: ReprocessResult = { deliveries: 0, stored: 0, failed: [] };
  for (let after = 0; after < last; ) {
    const ids = await query<{ id: string }>(
      db,
      sql`select id from webhook_deliveries where ${where} and id > ${after} and id <= ${last}
        order by id limit ${idPage}`,
    );
    if (ids.length === 0) break;
    for (const { id } of ids) {
      try {
        result.stored += await reprocessOne(db, Number(id));
      } catch (error) {
        result.failed.push({ id: Number(id), error: describeError(error) });
      }
      result.deliveries += 1;
      onProgress(result.deliveries, total, result.stored);
    }
    after = Number(ids.at(-1)!.id);
  }
  return result;
}

/** Process one archived delivery again in its own transaction; the number of events it stored. */
function reprocessOne(db: Db, id: number): Promise<number> {
  return db.transaction(async (tx) => {
    const [row] = await query(tx, sql`select * from webhook_deliveries where id = ${id}`);
    if (!row) return 0;
    const outcome = await processDeliveries(tx, [toQueueRow(row)]);
    // Whatever its queue state was, it is now processed (one a worker holds is left to that worker).
    await settleDelivery(tx, id);
    return outcome.stored.length;
  });
}
