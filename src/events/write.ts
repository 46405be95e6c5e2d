import { sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { type ColumnType, pgArray, type Scalar, unnestPlaceholders } from "../db/arrays.js";
import { type Executor, query } from "../db/client.js";
import { ensurePartitions, forgetPartitionsOnError } from "../db/partitions.js";
import { CachedStatement } from "../db/statement.js";
import { epochMs } from "../db/timestamps.js";
import type { LocalDispatcher, LocalHandOver } from "../queue/handOver.js";
import { appendFresh, appendFreshLocal } from "./append.js";
import { storedEventColumns, toStoredEvent } from "./columns.js";
import type { NewEvent, StoredEvent, WriteResult } from "./types.js";

export interface WriteOptions {
  /**
   * This process's hand-over to its dispatchers (the one given to `createDispatcher`): a write through its
   * `db` itself (not a transaction) claims its handlers' deliveries in the same statement and hands them
   * over once committed. Without it, they are claimed the ordinary way.
   */
  handOver?: LocalHandOver | undefined;
}

/**
 * Append events to the log inside the caller's transaction, in one round trip: the key check, the events,
 * one outbox row per matching subscription and the workers' wake-up all commit or roll back with the
 * caller's own writes. The same tenant + event_key again returns the stored event, marked duplicate.
 */
export async function writeEvents(
  executor: Executor,
  events: NewEvent[],
  options: WriteOptions = {},
): Promise<WriteResult[]> {
  if (events.length === 0) return [];
  const now = new Date();
  const nowIso = now.toISOString();
  const input: Row[] = events.map((e, ord) => ({
    ord,
    id: uuidv7(),
    tenant_id: e.tenantId,
    event_type: e.eventType,
    source: e.source,
    contact_id: e.contactId ?? null,
    session_id: e.sessionId ?? null,
    message_id: e.messageId ?? null,
    payload: e.payload ?? {},
    metadata: e.metadata ?? {},
    event_key: e.eventKey ?? null,
    correlation_id: e.correlationId ?? null,
    causation_id: e.causationId ?? null,
    schema_version: e.schemaVersion ?? 1,
    sequence_number: e.sequenceNumber ?? null,
    ts: e.timestamp ? e.timestamp.toISOString() : nowIso,
    explicitTs: e.timestamp !== undefined,
  }));
  await ensurePartitions(executor, "events", [
    now,
    ...events.flatMap((e) => (e.timestamp ? [e.timestamp] : [])),
  ]);

  const keyed = input.some((i) => i.event_key !== null);
  const local = options.handOver?.dispatcherFor(executor, events.length);
  const values: Record<string, unknown> = { now: nowIso };
  for (const c of writtenColumns) values[c.name] = c.param(input);
  if (local) {
    values.localWorker = local.workerId;
    values.localHandlers = pgArray(local.handlerNames());
    values.localLeaseMs = local.leaseMs;
    values.localNow = local.now().toISOString();
  }
  const [stored] = await appendStatement(keyed, local !== undefined)
    .run<{ created_ms: number; transaction_id: string; positions: string | null; adopted: unknown }>(
      executor,
      values,
    )
    .catch((error: unknown) => {
      forgetPartitionsOnError(error);
      throw error;
    });

  // What the database generated comes back as one row: the batch shares its transaction and so its
  // created_at and transaction id, and each fresh event's position is listed by its place in the input
  // (from 0). The writer already holds the rest.
  // (With no fresh event, `positions` is null and the other two are too: nothing reads them.)
  const positions = positionsByOrd(stored!.positions);
  const createdAt = positions.size > 0 ? new Date(Number(stored!.created_ms)).toISOString() : "";
  const results: (WriteResult | undefined)[] = input.map((i) => {
    const position = positions.get(i.ord);
    if (position === undefined) return undefined;
    const event: StoredEvent = {
      id: i.id,
      tenant_id: i.tenant_id,
      event_type: i.event_type,
      source: i.source,
      timestamp: i.ts,
      created_at: createdAt,
      contact_id: i.contact_id,
      session_id: i.session_id,
      message_id: i.message_id,
      payload: i.payload,
      metadata: i.metadata,
      event_key: i.event_key,
      correlation_id: i.correlation_id,
      causation_id: i.causation_id,
      schema_version: i.schema_version,
      sequence_number: i.sequence_number,
      position,
      transaction_id: stored!.transaction_id,
    };
    return { event, duplicate: false };
  });
  if (local && stored!.adopted) handOver(local, stored!.adopted, results, values);
  const missing = input.filter((i) => results[i.ord] === undefined);
  if (missing.length > 0) {
    // Duplicates: the stored events, read by a second statement (it also sees keys stored by this batch or
    // by a transaction that committed while the first statement ran).
    const stored = await storedByKeys(
      executor,
      missing.map((m) => ({ tenantId: m.tenant_id, eventKey: m.event_key! })),
    );
    for (const m of missing) {
      const event = stored.get(`${m.tenant_id}\u0000${m.event_key}`);
      if (!event) throw new Error(`event ${m.ord} was neither stored nor found as a duplicate`);
      results[m.ord] = { event, duplicate: true };
    }
  }
  return results as WriteResult[];
}

/** A column `writeEvents` sends: its name and type in the statement, and its parameter for a batch. */
type WrittenColumn = ColumnType & { param: (input: Row[]) => string | null };

const scalar = (name: string, type: string, pick: (row: Row) => Scalar): WrittenColumn => ({
  name,
  type,
  param: (input) => pgArray(input.map(pick)),
});

const writtenColumns: WrittenColumn[] = [
  scalar("id", "uuid", (i) => i.id),
  scalar("tenant_id", "uuid", (i) => i.tenant_id),
  scalar("event_type", "text", (i) => i.event_type),
  scalar("source", "event_source", (i) => i.source),
  scalar("contact_id", "text", (i) => i.contact_id),
  scalar("session_id", "text", (i) => i.session_id),
  scalar("message_id", "uuid", (i) => i.message_id),
  scalar("event_key", "text", (i) => i.event_key),
  scalar("correlation_id", "text", (i) => i.correlation_id),
  scalar("causation_id", "text", (i) => i.causation_id),
  scalar("schema_version", "int", (i) => (i.schema_version === 1 ? null : i.schema_version)),
  scalar("sequence_number", "bigint", (i) => i.sequence_number),
  scalar("ts", "timestamptz", (i) => (i.explicitTs ? i.ts : null)),
  { name: "payload", type: "json", param: (input) => JSON.stringify(input.map((i) => i.payload)) },
  // Null when no event of the batch has metadata (the common case): the statement stores '{}'.
  {
    name: "metadata",
    type: "json",
    param: (input) =>
      input.every((i) => Object.keys(i.metadata).length === 0)
        ? null
        : JSON.stringify(input.map((i) => i.metadata)),
  },
];

/**
 * Deliveries the statement claimed for this process's dispatcher, which has committed: handed over with
 * their events as stored (payload and metadata read back from the JSON sent, never the caller's objects).
 * It must not throw: the write has committed. What cannot be handed over waits for its lease to run out.
 */
function handOver(
  local: LocalDispatcher,
  adopted: unknown,
  results: (WriteResult | undefined)[],
  values: Record<string, unknown>,
) {
  try {
    const rows = (typeof adopted === "string" ? JSON.parse(adopted) : adopted) as Record<string, unknown>[];
    const payloads = JSON.parse(values.payload as string) as Record<string, unknown>[];
    const metadata = values.metadata === null ? null : (JSON.parse(values.metadata as string) as object[]);
    const events = new Map<string, StoredEvent>();
    results.forEach((result, ord) => {
      if (result)
        events.set(result.event.id, {
          ...result.event,
          payload: payloads[ord] ?? {},
          metadata: (metadata?.[ord] ?? {}) as Record<string, unknown>,
        });
    });
    local.adopt(
      rows.map((row) => ({
        ...row,
        id: Number(row.id),
        attempts: Number(row.attempts),
        max_attempts: Number(row.max_attempts),
        replay_id: null,
        ordering_key: null,
        stored_event: events.get(row.event_id as string),
      })),
    );
  } catch {
    // Only a bug can land here; the rows are safe in the outbox and go back to the queue with their lease.
  }
}

/**
 * The writer's statements, each built once: with a key check when any event of the batch has a key, else
 * without; claiming for this process's dispatcher when the write is its own transaction, else not.
 */
const statements = new Map<string, CachedStatement>();
function appendStatement(withKeys: boolean, local: boolean): CachedStatement {
  const key = `${withKeys}:${local}`;
  let statement = statements.get(key);
  if (!statement) {
    statement = buildAppend(withKeys, local);
    statements.set(key, statement);
  }
  return statement;
}

const buildAppend = (withKeys: boolean, local: boolean) =>
  new CachedStatement(
    () => sql`with input as (
      select x.ord, x.id, x.tenant_id, x.event_type, x.source, x.contact_id, x.session_id, x.message_id,
        x.payload::jsonb as payload, coalesce(x.metadata::jsonb, '{}') as metadata, x.event_key, x.correlation_id,
        x.causation_id, coalesce(x.schema_version, 1) as schema_version, x.sequence_number,
        coalesce(x.ts, ${sql.placeholder("now")}::timestamptz) as ts
      from ${unnestPlaceholders("x", writtenColumns)}
    ), ${
      withKeys
        ? sql`keyed as (
      insert into event_keys (tenant_id, event_key, event_id, ts)
      select tenant_id, event_key, id, ts from input where event_key is not null
      on conflict do nothing
      returning event_id
    ), fresh as (select * from input i where i.event_key is null or i.id in (select event_id from keyed)),`
        : sql`fresh as (select * from input),`
    } ${local ? appendFreshLocal : appendFresh}
    select ${sql.raw(epochMs("min(e.created_at)"))} as created_ms,
      min(e.transaction_id::text) as transaction_id, string_agg((i.ord - 1) || ':' || e.position, ',') as positions,
      (select count(*) from woke) as woke
      ${local ? sql`, (select json_agg(q order by q.id) from queued q where q.status = 'processing') as adopted` : sql``}
    from inserted e join input i on i.id = e.id`,
  );

/** `ord:position,…` (as the statement lists the fresh events) as a map from `ord` to position. */
function positionsByOrd(list: string | null): Map<number, number> {
  const positions = new Map<number, number>();
  if (list === null) return positions;
  for (const pair of list.split(",")) {
    const colon = pair.indexOf(":");
    positions.set(Number(pair.slice(0, colon)), Number(pair.slice(colon + 1)));
  }
  return positions;
}

/** An event as the writer holds it: every field resolved, ready to send and to return once stored. */
type Row = Omit<StoredEvent, "timestamp" | "created_at" | "position" | "transaction_id"> & {
  ord: number;
  ts: string;
  /** The caller gave the time (else the statement uses the batch's own). */
  explicitTs: boolean;
};

/** Append one event; see `writeEvents`. */
export async function writeEvent(
  executor: Executor,
  event: NewEvent,
  options: WriteOptions = {},
): Promise<WriteResult> {
  const [result] = await writeEvents(executor, [event], options);
  return result!;
}

async function storedByKeys(executor: Executor, keys: { tenantId: string; eventKey: string }[]) {
  const rows = await query(
    executor,
    sql`select ${storedEventColumns("e")} from jsonb_to_recordset(${JSON.stringify(keys)}::jsonb) as x("tenantId" uuid, "eventKey" text)
      join event_keys k on k.tenant_id = x."tenantId" and k.event_key = x."eventKey"
      join events e on e.id = k.event_id and e.ts = k.ts`,
  );
  return new Map(rows.map((r) => [`${r.tenant_id}\u0000${r.event_key}`, toStoredEvent(r)]));
}
