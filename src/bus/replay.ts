import { sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { type Executor, query } from "../db/client.js";
import { notifyQueue } from "../queue/enqueue.js";
import { enqueueReplay } from "../queue/enqueueReplay.js";
import { outboxQueue } from "./outboxQueue.js";

export interface ReplayFilter {
  tenantId: string;
  subscriptionId: string;
  /** Inclusive. */
  start?: Date | undefined;
  /** Exclusive. */
  end?: Date | undefined;
  /** Patterns (`message.*`); the subscription's own patterns always apply too. */
  eventTypes?: string[] | undefined;
  correlationId?: string | undefined;
  /** Groups the rows of one replay run done in several windows. */
  replayId?: string | undefined;
}

/**
 * Queue every stored event that matches the filter (and the subscription) for delivery again, in log order,
 * as new outbox rows tagged with the replay id. Returns how many were queued.
 */
export async function replayEvents(
  executor: Executor,
  filter: ReplayFilter,
): Promise<{ replayId: string; events: number }> {
  const replayId = filter.replayId ?? uuidv7();
  const rows = await query<{ n: number }>(
    executor,
    enqueueReplay(
      replayId,
      filter.tenantId,
      filter.subscriptionId,
      sql`${filter.start ? sql`and e.ts >= ${filter.start.toISOString()}::timestamptz` : sql``}
        ${filter.end ? sql`and e.ts < ${filter.end.toISOString()}::timestamptz` : sql``}
        ${filter.eventTypes?.length ? sql`and herald_event_type_matches(${`{${filter.eventTypes.map((t) => JSON.stringify(t)).join(",")}}`}::text[], e.event_type)` : sql``}
        ${filter.correlationId ? sql`and e.correlation_id = ${filter.correlationId}` : sql``}`,
    ),
  );
  const events = Number(rows[0]?.n ?? 0);
  if (events > 0) await notifyQueue(executor, outboxQueue);
  return { replayId, events };
}
