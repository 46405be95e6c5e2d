import { type SQL, sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { publicEventJson, storedEventColumns, toStoredEvent } from "./columns.js";
import { type EventFilter, filterCondition, namesAnId } from "./filter.js";
import type { StoredEvent } from "./types.js";

/** Newest first (`desc`, the API's default) or oldest first. */
export type EventOrder = "asc" | "desc";

/**
 * Where a read of the log stands, between pages or batches of an export: the snapshot the first read saw
 * (PostgreSQL's `pg_snapshot` text), and the (time, id) of the last event returned (`ts` in epoch
 * microseconds, exact where a JavaScript date is not).
 */
export interface ReadPosition {
  snapshot: string;
  ts: string;
  id: string;
}

export interface ReadOptions {
  order?: EventOrder;
  limit: number;
  /** Continue after this position (from an earlier `readEvents`); absent, start at the first event. */
  after?: ReadPosition | undefined;
  /** The snapshot to read in when starting (a total computed first, then the rows of the same moment). */
  snapshot?: string | undefined;
}

export interface ReadPage {
  events: StoredEvent[];
  /** The snapshot read in: pass it on with the position of the last event. */
  snapshot: string;
  /** Where the next page starts, or undefined when this one reached the end. */
  next: ReadPosition | undefined;
}

/**
 * One page of a tenant's events matching `filter`, ordered by (time, id).
 *
 * **Never skips, never repeats.** The first page records the snapshot it was read in; every later page reads
 * only events whose transaction is visible in that snapshot — committed before the first page — and pages
 * by (time, id) through that fixed set. A writer that commits late with an older time is neither missed by
 * a page already passed (it is not part of the set) nor shown twice; events committed after the first page
 * appear in a new read. The log is append-only, so the set cannot shrink either.
 */
export async function readEvents(
  executor: Executor,
  filter: EventFilter,
  options: ReadOptions,
): Promise<ReadPage> {
  const { limit } = options;
  const page = pageSql(filter, options);
  const [row] = await query<{ snapshot: string; rows: Record<string, unknown>[] | string | null }>(
    executor,
    sql`select ${page.snapshot} as snapshot,
      (select json_agg(x) from (${page.rows(sql`${storedEventColumns("e")}, ${tsMicros("e")} as ts_us`)}) x) as rows`,
    sentAs(filter),
  );
  const rows =
    typeof row?.rows === "string" ? (JSON.parse(row.rows) as Record<string, unknown>[]) : (row?.rows ?? []);
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return {
    // The keyset's exact time is the cursor's, not the event's.
    events: shown.map(({ ts_us: _keyset, ...event }) => toStoredEvent(event)),
    snapshot: row!.snapshot,
    next:
      rows.length > limit && last !== undefined
        ? { snapshot: row!.snapshot, ts: String(last.ts_us), id: String(last.id) }
        : undefined,
  };
}

/** How a read of `filter` is sent: prepared when it names an id (`namesAnId`), else planned for its values. */
export const sentAs = (filter: EventFilter) => (namesAnId(filter) ? { prepare: true } : { inline: true });

/** An event's time (alias `alias`) in epoch microseconds as text: a keyset's exact time. */
const tsMicros = (alias: string) => sql.raw(`(extract(epoch from ${alias}.ts) * 1000000)::bigint::text`);

/**
 * A page of `filter`'s events as SQL: `rows(columns)` selects `columns` of the `limit + 1` events of the page
 * (`e`; the one more says whether a next page exists) in order; `snapshot` is the snapshot it reads in, as
 * text (the current one on a first page).
 */
function pageSql(filter: EventFilter, options: ReadOptions) {
  const { limit, after } = options;
  const order = options.order ?? "desc";
  const direction = sql.raw(order);
  // The time indexes are `ts desc nulls last`; the planner only walks them (either way) for the same nulls
  // order, though `ts` is never null: said otherwise, it sorts every matching row.
  const nulls = sql.raw(order === "desc" ? "nulls last" : "nulls first");
  const past = sql.raw(order === "desc" ? "<" : ">");
  const snapshot = after?.snapshot ?? options.snapshot;
  const conditions = [filterCondition("e", filter)];
  if (snapshot !== undefined)
    conditions.push(sql`pg_visible_in_snapshot(e.transaction_id, ${snapshot}::pg_snapshot)`);
  if (after !== undefined) {
    const at = sql`('epoch'::timestamptz + ${after.ts}::bigint * interval '1 microsecond')`;
    // The bound on the time alone is what an index on (tenant, time) can seek to; the pair decides ties.
    conditions.push(sql`e.ts ${past}= ${at} and (e.ts, e.id) ${past} (${at}, ${after.id}::uuid)`);
  }
  const orderBy = (alias: string) =>
    sql`${sql.raw(alias)}.ts ${direction} ${nulls}, ${sql.raw(alias)}.id ${direction}`;
  return {
    snapshot: snapshot === undefined ? sql`pg_current_snapshot()::text` : sql`${snapshot}::text`,
    rows: (columns: SQL) => sql`select ${columns} from events e where ${sql.join(conditions, sql` and `)}
      order by ${orderBy("e")} limit ${limit + 1}`,
    orderBy,
  };
}

/** A page as JSON text: the API writes it into its answer as it is (`RawJson`). */
export interface JsonPage {
  /** The events shown, as a JSON array of `publicEvent`s. */
  json: string;
  snapshot: string;
  next: ReadPosition | undefined;
}

/**
 * `readEvents`, the page as JSON text (for the API: no object per event in between). The page's rows are
 * numbered in order, each with its public JSON (`publicEventJson`); the answer is the first `limit` of them
 * as one JSON array, and the keyset of the last when there is one more.
 */
export async function readEventsJson(
  executor: Executor,
  filter: EventFilter,
  options: ReadOptions,
): Promise<JsonPage> {
  const { limit } = options;
  const page = pageSql(filter, options);
  const [row] = await query<{
    snapshot: string;
    events: string;
    next_ts: string | null;
    next_id: string | null;
  }>(
    executor,
    sql`with page as materialized (
        select x.id, x.ts_us, x.doc, row_number() over (order by ${page.orderBy("x")}) as n
        from (${page.rows(sql`e.id, e.ts, ${tsMicros("e")} as ts_us, ${publicEventJson("e")} as doc`)}) x
      ), last as (
        select p.ts_us, p.id::text as id from page p
        where p.n = ${limit} and exists (select 1 from page q where q.n > ${limit})
      )
      select ${page.snapshot} as snapshot,
        coalesce((select json_agg(p.doc order by p.n) from page p where p.n <= ${limit})::text, '[]') as events,
        (select ts_us from last) as next_ts, (select id from last) as next_id`,
    sentAs(filter),
  );
  const { snapshot, events, next_ts, next_id } = row!;
  return {
    json: events,
    snapshot,
    next: next_ts === null || next_id === null ? undefined : { snapshot, ts: next_ts, id: next_id },
  };
}

/**
 * Every event matching `filter`, in order, as an async iterable read `batch` at a time in one snapshot (see
 * `readEvents`): bounded memory whatever the range, each event once.
 */
export async function* streamEvents(
  executor: Executor,
  filter: EventFilter,
  { order = "asc", batch = 1000 }: { order?: EventOrder; batch?: number } = {},
): AsyncGenerator<StoredEvent> {
  let after: ReadPosition | undefined;
  do {
    const page = await readEvents(executor, filter, { order, limit: batch, after });
    yield* page.events;
    after = page.next;
  } while (after !== undefined);
}

/** Rebuild a state from events in order: `reducer` applied to each, starting from `initial`. */
export async function fold<S>(
  events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>,
  reducer: (state: S, event: StoredEvent) => S | Promise<S>,
  initial: S,
): Promise<S> {
  let state = initial;
  for await (const event of events) state = await reducer(state, event);
  return state;
}
