import { type SQL, sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { countPlan, hourly, type RollupPiece, type Span, splitByHour } from "./countPlan.js";
import { beyondRollups, type EventFilter, filterCondition } from "./filter.js";
import { sentAs } from "./query.js";
import { type LogPosition, logStart } from "./read.js";

/**
 * Totals, time ranges and stats without scanning the log. A filter on tenant, type, source and time is
 * answered from the rollups (rollups.ts), exactly:
 *
 * - the whole UTC hours inside [start, end): the rollups' counts (per month for its whole months, per day
 *   for the whole days around them, per hour around those), which hold every event up to the projection's checkpoint and none after it, plus the
 *   events of those hours after the checkpoint (the few the projection has not read yet, found through the
 *   (transaction_id, position) index);
 * - the partial hours at either end: counted from the log through the tenant's index, at most half an hour
 *   each (an end covering more is counted as its whole hour less the rest: `countPlan`).
 *
 * Each answer is one statement that reads the checkpoint too, so rollups, checkpoint and newer events are
 * all seen in the statement's one snapshot: the sum is the number of matching events that snapshot shows.
 * Filters the rollups do not count by (contact, session, message, correlation id) count through their own
 * index instead.
 */

/** The exact size and time span of a filter's events, and the snapshot they were counted in. */
export interface EventTotals {
  total: number;
  /** The time of the oldest and of the newest matching event (RFC 3339, ms); null when there are none. */
  timeRange: { start: string | null; end: string | null };
  /** Read the matching events in this snapshot (`readEvents`' `snapshot`) to page through exactly these. */
  snapshot: string;
}

/**
 * A position at or before the checkpoint, given to the planner as a literal. The statement's own bound (the
 * checkpoint it reads) is unknown when it is planned, so the planner would guess a third of the log is past
 * it and scan the tenant's events; with the literal it finds the few newer events through the
 * (transaction_id, position) index. Correctness does not rest on it: every statement bounds by the checkpoint
 * it reads as well, and one that finds the hint past the checkpoint (moved back by a rebuild, or a hint from
 * another database) runs again with the checkpoint it found. The checkpoint only moves forward otherwise,
 * so the last one seen stays a good hint.
 */
let tailHint: { position: LogPosition; learnedAtMs: number } | undefined;

/**
 * How long a learned hint is used before it is read afresh (one small statement): the checkpoint moves
 * every few hundred milliseconds while events come in, and an old hint leaves more events past it.
 */
const hintFreshMs = 1000;

export interface HintColumns {
  checkpoint_tx: string;
  checkpoint_position: number;
  hint_ahead: boolean;
}

async function withTailHint<T extends Partial<HintColumns>>(
  executor: Executor,
  run: (hint: LogPosition) => Promise<T[]>,
): Promise<T[]> {
  let hint: LogPosition;
  if (tailHint && Date.now() - tailHint.learnedAtMs < hintFreshMs) hint = tailHint.position;
  else {
    const [row] = await query<{ tx: string; position: number }>(
      executor,
      sql`select transaction_id::text as tx, position from event_rollup_checkpoint`,
      { prepare: true },
    );
    hint = row ? { transactionId: row.tx, position: Number(row.position) } : logStart;
  }
  for (let attempt = 0; ; attempt += 1) {
    const rows = await run(hint);
    const found = rows[0];
    if (!found?.hint_ahead) {
      if (found?.checkpoint_tx !== undefined)
        tailHint = {
          position: { transactionId: found.checkpoint_tx, position: Number(found.checkpoint_position) },
          learnedAtMs: Date.now(),
        };
      return rows;
    }
    // The start of the log is before every checkpoint: the third attempt cannot find the hint ahead.
    hint =
      attempt === 0
        ? { transactionId: found.checkpoint_tx!, position: Number(found.checkpoint_position) }
        : logStart;
  }
}

/** The checkpoint, read once per statement, and how the hint compares with it. */
export const checkpointCtes = (hint: LogPosition) => sql`checkpoint as (
    select transaction_id, position from event_rollup_checkpoint
  ),
  hint as (
    select transaction_id::text as checkpoint_tx, position as checkpoint_position,
      (transaction_id, position) < (${hint.transactionId}::xid8, ${hint.position}::bigint) as hint_ahead
    from checkpoint
  )`;

/** Events of `e` the projection has not counted yet (after the checkpoint). */
export const afterCheckpoint = (hint: LogPosition) =>
  sql`(e.transaction_id, e.position) > (${hint.transactionId}::xid8, ${hint.position}::bigint)
    and (e.transaction_id, e.position) > ((select transaction_id from checkpoint), (select position from checkpoint))`;

/**
 * The times of the events matching `filter` (its whole range) that the projection has not counted yet, read
 * once per statement (needs `checkpointCtes`): a total's tail and both bounds of its time range take theirs
 * from it, so the partitioned log is planned once for the three rather than three times (planning a
 * statement over the log costs more than running it: 23 ms against 6 at 1M events, with five mentions).
 */
const tailCte = (filter: EventFilter, hint: LogPosition) => {
  // What the total's tail (whole rollup pieces: hours or days, beyond the range's own ends) and the bounds'
  // whole hours ask of it, at once.
  const tail = countPlan(filter.start, filter.end).tail;
  const { whole } = splitByHour(filter.start, filter.end);
  const spans = [tail, whole].filter((span): span is Span => span !== undefined);
  const start = spans.some((span) => !span.start)
    ? undefined
    : spans.reduce<Date | undefined>((at, span) => (at && at <= span.start! ? at : span.start), undefined);
  const end = spans.some((span) => !span.end)
    ? undefined
    : spans.reduce<Date | undefined>((at, span) => (at && at >= span.end! ? at : span.end), undefined);
  return sql`tail as materialized (
    select e.ts from events e where ${eventCondition(filter, { start, end })} and ${afterCheckpoint(hint)}
  )`;
};

/** The rows of `tail t` within `span`. */
const tailIn = (span: Span) => {
  const conditions = [sql`true`];
  if (span.start) conditions.push(sql`t.ts >= ${span.start.toISOString()}::timestamptz`);
  if (span.end) conditions.push(sql`t.ts < ${span.end.toISOString()}::timestamptz`);
  return sql.join(conditions, sql` and `);
};

/** The filter without its time range: what both the rollups and the log have columns for. */
const untimed = (filter: EventFilter): EventFilter => ({
  tenantId: filter.tenantId,
  type: filter.type,
  source: filter.source,
});

const rollupCondition = (filter: EventFilter, { column, span }: RollupPiece) => {
  const time = sql.raw(`r.${column}`);
  const conditions = [filterCondition("r", untimed(filter))];
  if (span.start) conditions.push(sql`${time} >= ${span.start.toISOString()}::timestamptz`);
  if (span.end) conditions.push(sql`${time} < ${span.end.toISOString()}::timestamptz`);
  return sql.join(conditions, sql` and `);
};

/** The rollup rows of `piece` matching `filter`, as `select <columns> from <table> r where …`. */
export const fromRollups = (columns: SQL, filter: EventFilter, piece: RollupPiece) =>
  sql`select ${columns} from ${sql.raw(piece.table)} r where ${rollupCondition(filter, piece)}`;

export const eventCondition = (filter: EventFilter, span: Span) =>
  filterCondition("e", { ...untimed(filter), start: span.start, end: span.end });

/** The exact number of matching events, as one SQL expression (needs `checkpointCtes` and `tailCte`). */
function totalSql(filter: EventFilter): SQL {
  const plan = countPlan(filter.start, filter.end);
  const parts: SQL[] = [
    sql`0`,
    ...plan.rollups.map((piece) => sql`+ (${fromRollups(sql`coalesce(sum(r.count), 0)`, filter, piece)})`),
  ];
  if (plan.tail) parts.push(sql`+ (select count(*) from tail t where ${tailIn(plan.tail)})`);
  for (const { span, sign } of plan.events)
    parts.push(
      sql`${sign === 1 ? sql`+` : sql`-`} (select count(*) from events e where ${eventCondition(filter, span)})`,
    );
  return sql`(${sql.join(parts, sql` `)})`;
}

/**
 * The time of the oldest (`first`) or newest matching event, as one SQL expression. Without a scan: the
 * first (last) hour the rollups have events in, found through the index, and the first (last) event time its
 * rows hold, and the events after the checkpoint (`tailCte`), which may be older or newer than it; the partial
 * hours at the ends are searched in the log, and one that has an event answers alone (COALESCE evaluates the
 * rest only when it has none). The log is named only for the ends: each mention of the partitioned log costs
 * planning time (over every partition and index) more than its rows cost to read.
 */
function boundSql(filter: EventFilter, end: "first" | "last"): SQL {
  const { lead, whole, trail } = splitByHour(filter.start, filter.end);
  const [pick, pickAll, near, far] =
    end === "first" ? [sql`min`, sql`least`, lead, trail] : [sql`max`, sql`greatest`, trail, lead];
  const candidates: SQL[] = [];
  if (near) candidates.push(sql`(select ${pick}(e.ts) from events e where ${eventCondition(filter, near)})`);
  if (whole) {
    const hour = sql`(${fromRollups(sql`${pick}(r.hour)`, filter, hourly(whole))})`;
    // Hours of months dropped before migration 0037 have no bounds: their own start or end stands in.
    const bound =
      end === "first"
        ? sql`coalesce(r.first_at, r.hour)`
        : sql`coalesce(r.last_at, r.hour + interval '1 hour' - interval '1 microsecond')`;
    candidates.push(
      sql`${pickAll}(
        (${fromRollups(sql`${pick}(${bound})`, filter, hourly(whole))} and r.hour = ${hour}),
        (select ${pick}(t.ts) from tail t where ${tailIn(whole)})
      )`,
    );
  }
  if (far) candidates.push(sql`(select ${pick}(e.ts) from events e where ${eventCondition(filter, far)})`);
  return candidates.length === 0 ? sql`null::timestamptz` : sql`coalesce(${sql.join(candidates, sql`, `)})`;
}

/** The exact total and time range of the events matching `filter`, at one moment. */
export async function eventTotals(executor: Executor, filter: EventFilter): Promise<EventTotals> {
  const [row] = await withHint(executor, filter, (hint) =>
    query<TotalsRow & Partial<HintColumns>>(executor, totalsSelect(filter, hint), { inline: true }),
  );
  return totalsOf(row!);
}

/**
 * `eventTotals`' statement: one row of the snapshot it counted in, `total`, `first_ms` and `last_ms` (and,
 * answered from the rollups, the hint's columns: run it through `withHint`).
 */
function totalsSelect(filter: EventFilter, hint: LogPosition): SQL {
  return beyondRollups(filter)
    ? sql`select pg_current_snapshot()::text as snapshot, count(*)::float8 as total,
          ${epochMs(sql`min(e.ts)`)} as first_ms, ${epochMs(sql`max(e.ts)`)} as last_ms
          from events e where ${filterCondition("e", filter)}`
    : sql`with ${checkpointCtes(hint)}, ${tailCte(filter, hint)}
          select pg_current_snapshot()::text as snapshot, hint.*,
            ${totalSql(filter)}::float8 as total,
            ${epochMs(boundSql(filter, "first"))} as first_ms,
            ${epochMs(boundSql(filter, "last"))} as last_ms
          from hint`;
}

/** The totals of a `totalsSelect` row. */
function totalsOf(row: TotalsRow): EventTotals {
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return {
    total: Number(row.total),
    timeRange: { start: iso(row.first_ms), end: iso(row.last_ms) },
    snapshot: row.snapshot,
  };
}

/**
 * Run a statement built for `filter` with a tail hint (`run(hint)`): through `withTailHint` when the filter is
 * answered from the rollups, once otherwise (the statement then has no use for it).
 */
export function withHint<T extends Partial<HintColumns>>(
  executor: Executor,
  filter: EventFilter,
  run: (hint: LogPosition) => Promise<T[]>,
): Promise<T[]> {
  return beyondRollups(filter) ? run(logStart) : withTailHint(executor, run);
}

interface TotalsRow {
  snapshot: string;
  total: number;
  first_ms: number | null;
  last_ms: number | null;
}

const epochMs = (time: SQL) => sql`floor(extract(epoch from ${time}) * 1000)::float8`;

/** The exact number of events matching `filter` (counts by contact or session go through their index). */
export async function countEvents(executor: Executor, filter: EventFilter): Promise<number> {
  const [row] = await withHint(executor, filter, (hint) =>
    query<{ count: number } & Partial<HintColumns>>(
      executor,
      beyondRollups(filter)
        ? sql`select count(*)::float8 as count from events e where ${filterCondition("e", filter)}`
        : sql`with ${checkpointCtes(hint)}, ${tailCte(filter, hint)}
            select hint.*, ${totalSql(filter)}::float8 as count from hint`,
      sentAs(filter),
    ),
  );
  return Number(row!.count);
}
