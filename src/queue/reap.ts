import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { QueueDefinition } from "./definitions.js";
import { at } from "./row.js";

/**
 * Return rows whose lease expired (their worker died or stalled) to the queue at once; a row that has used
 * all its attempts this way becomes dead, so a message that crashes every worker cannot loop forever.
 */
export async function reapExpired(
  executor: Executor,
  queue: QueueDefinition,
  nowDate: Date,
): Promise<number> {
  const now = at(nowDate);
  const rows = await query(
    executor,
    sql`with expired as (
      select id from ${queue.table} where status = 'processing' and locked_until < ${now}
      for update skip locked
    ), reaped as (
      update ${queue.table} t set
        status = case when t.attempts >= t.max_attempts then 'dead' else 'pending' end,
        last_error = 'lease expired: worker ' || coalesce(t.locked_by, '?') || ' did not finish',
        next_attempt_at = ${now}, locked_by = null, locked_until = null, updated_at = ${now}
      from expired e where t.id = e.id
      returning t.*
    )${queue.onDead ? sql`, dead_letters as (${queue.onDead(sql`(select * from reaped where status = 'dead')`)})` : sql``}
    select id from reaped`,
    { prepare: true },
  );
  return rows.length;
}
