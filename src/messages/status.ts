import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { statusOfEvent } from "../domain/messageStatus.js";
import type { StoredMessageEvent } from "./storeEvents.js";

/**
 * Move each message's status forward (newly stored events, or events a registration linked to its new
 * messages: one statement for the batch) to the strongest status among its new events (see
 * domain/messageStatus.ts; `herald_status_rank` is the same table in SQL). Never moves one back.
 */
export async function advanceStatuses(
  executor: Executor,
  events: Pick<StoredMessageEvent, "messageId" | "type" | "eventAt">[],
): Promise<number> {
  const proposals = events.flatMap((e) => {
    const status = statusOfEvent[e.type];
    return e.messageId && status ? [{ message_id: e.messageId, status, at: e.eventAt.toISOString() }] : [];
  });
  if (proposals.length === 0) return 0;
  const rows = await query(
    executor,
    sql`with proposal as (
      select * from jsonb_to_recordset(${JSON.stringify(proposals)}::jsonb) as x(message_id uuid, status text, at timestamptz)
    ), best as (
      select distinct on (message_id) message_id, status, at from proposal
      order by message_id, herald_status_rank(status) desc, at desc, status collate "C" desc
    )
    update outbound_messages m set status = b.status, status_at = b.at, updated_at = now()
    from best b
    where m.id = b.message_id
      and (herald_status_rank(b.status), b.at, b.status collate "C") > (herald_status_rank(m.status), m.status_at, m.status collate "C")
    returning m.id`,
    { prepare: true },
  );
  return rows.length;
}
