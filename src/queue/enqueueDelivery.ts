import { type SQL, sql } from "drizzle-orm";

/** A received webhook delivery as archived: queued for processing, or already settled when `rejected`. */
export interface ArchivedDelivery {
  tenantId: string;
  sourceId: string;
  provider: string;
  headers: Record<string, string>;
  /** The raw body, as an SQL expression of type bytea. */
  body: SQL;
  remoteIp: string | null;
  eventCount: number;
  /** Why the body was refused (the row is then stored completed, never processed), or null. */
  rejected: string | null;
  maxAttempts: number;
}

/**
 * Enqueue one webhook delivery for the processors, only while its source is live (a deleted source's URL
 * must answer 404 at once, from every process). Returns the new row's `id`, or no row. Pure: the caller runs
 * it and wakes the processors once it has committed (`QueueWakeups`).
 */
export const enqueueDelivery = (d: ArchivedDelivery) =>
  sql`insert into webhook_deliveries (tenant_id, source_id, provider, headers, body, remote_ip, event_count,
        rejected_reason, status, max_attempts)
      select ${d.tenantId}, ${d.sourceId}, ${d.provider}, ${JSON.stringify(d.headers)}::jsonb, ${d.body},
        ${d.remoteIp}, ${d.eventCount}, ${d.rejected},
        ${d.rejected === null ? "pending" : "completed"}, ${d.maxAttempts}
      where exists (select 1 from webhook_sources s where s.id = ${d.sourceId} and s.deleted_at is null)
      returning id`;
