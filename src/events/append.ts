import { sql } from "drizzle-orm";
import { enqueueOutboxFor } from "../queue/enqueueOutbox.js";

/**
 * The log append, as CTEs over a CTE named `fresh` that holds the new events (the `events` columns below,
 * plus `ord` for their order): `inserted` stores them, then the claim engine's `queued` and `woke`
 * (`queue/enqueueOutbox.ts`) add one outbox row per matching subscription and wake the claims. Written once
 * for every writer: `writeEvents`, and the ingest store, which appends its `message.*` events straight from
 * the rows it stored.
 *
 * `local`: deliveries to this process's handlers are queued already claimed, for the writer to hand over
 * once the statement has committed (see `queue/enqueueOutbox.ts` and `queue/handOver.ts`).
 *
 * The outbox's rows are queue/'s, not the bus's: the bus depends on the log, never the reverse.
 */
const append = (local: boolean) =>
  sql`inserted as (
      insert into events (id, tenant_id, event_type, source, contact_id, session_id, message_id, payload, metadata,
        event_key, correlation_id, causation_id, schema_version, sequence_number, ts)
      select id, tenant_id, event_type, source, contact_id, session_id, message_id, payload, metadata,
        event_key, correlation_id, causation_id, schema_version, sequence_number, ts
      from fresh order by ord
      returning id, tenant_id, event_type, ts, contact_id, message_id, created_at, position, transaction_id
    ), ${enqueueOutboxFor(local)}`;

export const appendFresh = append(false);
export const appendFreshLocal = append(true);
