import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";

export interface IntegrityCheck {
  name: string;
  description: string;
  count: number;
  /** Up to 10 offending ids or keys. */
  samples: string[];
}

export interface IntegrityReport {
  ok: boolean;
  checks: IntegrityCheck[];
}

const checks: {
  name: string;
  description: string;
  statement: (tenant: string | undefined) => ReturnType<typeof sql>;
}[] = [
  {
    name: "duplicate_event_keys",
    description: "events sharing a tenant + event_key (the key table should make this impossible)",
    statement: (tenant) => sql`select tenant_id || '/' || event_key as sample from events
      where event_key is not null ${tenant ? sql`and tenant_id = ${tenant}` : sql``}
      group by tenant_id, event_key having count(*) > 1`,
  },
  {
    name: "events_missing_key_row",
    description: "keyed events without their event_keys row (a redelivery would be stored twice)",
    statement: (tenant) => sql`select e.id::text as sample from events e
      where e.event_key is not null ${tenant ? sql`and e.tenant_id = ${tenant}` : sql``}
      and not exists (select 1 from event_keys k where k.tenant_id = e.tenant_id and k.event_key = e.event_key and k.event_id = e.id)`,
  },
  {
    name: "duplicate_positions",
    description: "events sharing a log position (the position sequence was reset, e.g. by a restore)",
    statement: (tenant) => sql`select position::text as sample from events
      ${tenant ? sql`where tenant_id = ${tenant}` : sql``} group by position having count(*) > 1`,
  },
  {
    name: "positions_ahead_of_commit_order",
    description:
      "committed events stamped with a transaction id this server has not reached yet (data restored from another cluster): readers going by (transaction, position) hold them back until the server's counter passes them, then read them out of order",
    statement: (tenant) => sql`select id::text as sample from events
      where transaction_id >= pg_snapshot_xmax(pg_current_snapshot()) ${tenant ? sql`and tenant_id = ${tenant}` : sql``}`,
  },
  {
    name: "outbox_without_event",
    description: "outbox rows whose event does not exist",
    statement: (tenant) => sql`select o.id::text as sample from outbox o
      where ${tenant ? sql`o.tenant_id = ${tenant} and` : sql``}
      not exists (select 1 from events e where e.id = o.event_id and e.ts = o.event_ts)`,
  },
];

/** Run every check (for one tenant, or all of them from the CLI). */
export async function checkIntegrity(executor: Executor, tenantId?: string): Promise<IntegrityReport> {
  const results: IntegrityCheck[] = [];
  for (const check of checks) {
    const rows = await query<{ sample: string }>(executor, check.statement(tenantId));
    results.push({
      name: check.name,
      description: check.description,
      count: rows.length,
      samples: rows.slice(0, 10).map((r) => r.sample),
    });
  }
  return { ok: results.every((r) => r.count === 0), checks: results };
}
