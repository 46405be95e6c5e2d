import { type SQL, sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { isoTextSql } from "../db/timestamps.js";
import { type ArchivedRange, archivedRanges } from "./archived.js";
import { countPlan, type RollupGrain } from "./countPlan.js";
import { beyondRollups, type EventFilter, filterCondition } from "./filter.js";
import type { LogPosition } from "./read.js";
import {
  afterCheckpoint,
  checkpointCtes,
  eventCondition,
  fromRollups,
  type HintColumns,
  withHint,
} from "./totals.js";

/**
 * Stats: the matching events counted by one or two dimensions (type, source, UTC day or hour), from the same
 * rollups, checkpoint and tail as the totals (totals.ts), exact at any moment the same way.
 */

/** What `eventStats` groups by: one of these, or two (`type,day`). */
export type StatsDimension = "type" | "source" | "day" | "hour";

export interface StatsBucket {
  /** The bucket's value (a type, a source, or the UTC start of a day or hour); two joined by "," for pairs. */
  key: string;
  /** With two dimensions: the value of each. */
  keys?: Partial<Record<StatsDimension, string>>;
  count: number;
}

/** What rows of `e` are grouped by: the raw value, cheap to compare (formatted once per bucket, below). */
const dimensionSql = {
  type: sql`e.event_type`,
  source: sql`e.source`,
  day: sql`date_trunc('day', e.ts, 'UTC')`,
  hour: sql`date_trunc('hour', e.ts, 'UTC')`,
} as const;

/** A bucket's key as the API shows it (`column` holds the raw value). */
const keyText = (dimension: StatsDimension, column: SQL) =>
  dimension === "day" || dimension === "hour" ? isoTextSql(column) : sql`${column}::text`;

/**
 * The buckets of `rows` (alias `e`, `count` events each), keys formatted and ordered as text. Grouped on the
 * raw values first, so each key is formatted once per bucket rather than once per row.
 */
function bucketsSql(groupBy: StatsDimension[], rows: SQL, count: SQL): SQL {
  // Rows may take events away (`countedRows`): a bucket left at zero is no bucket.
  const columns = groupBy.map((_, i) => sql.raw(`k${i}`));
  const positions = sql.join(
    groupBy.map((_, i) => sql.raw(String(i + 1))),
    sql`, `,
  );
  return sql`select ${sql.join(
    groupBy.map((d, i) => sql`${keyText(d, sql`g.${columns[i]!}`)} as ${columns[i]!}`),
    sql`, `,
  )}, g.count
    from (
      select ${sql.join(
        groupBy.map((d, i) => sql`${dimensionSql[d]} as ${columns[i]!}`),
        sql`, `,
      )}, ${count}::float8 as count from ${rows} group by ${positions} having ${count} > 0
    ) g`;
}

/**
 * The matching events as (ts, event_type, source, n) rows, `n` events each (see `countPlan`): rollup rows
 * (at the start of their hour or day) and single events, which every dimension groups alike.
 */
function countedRows(filter: EventFilter, hint: LogPosition, grain: RollupGrain): SQL {
  const plan = countPlan(filter.start, filter.end, grain);
  const parts: SQL[] = plan.rollups.map((piece) =>
    fromRollups(sql`${sql.raw(`r.${piece.column}`)}, r.event_type, r.source, r.count`, filter, piece),
  );
  if (plan.tail)
    parts.push(
      sql`select e.ts, e.event_type, e.source, 1::bigint from events e
        where ${eventCondition(filter, plan.tail)} and ${afterCheckpoint(hint)}`,
    );
  // Events taken away (-1) lie in an hour whose rollup row is counted whole: every dimension groups them
  // with it, so no bucket goes below zero (one may reach zero, and is left out).
  for (const { span, sign } of plan.events)
    parts.push(
      sql`select e.ts, e.event_type, e.source, ${sql.raw(String(sign))}::bigint from events e where ${eventCondition(filter, span)}`,
    );
  // An empty range: no rows, typed as the others would be.
  if (parts.length === 0)
    parts.push(sql`select e.ts, e.event_type, e.source, 1::bigint from events e where false`);
  return sql.join(parts, sql` union all `);
}

/** The coarsest rollups whose rows fall in one bucket of every dimension of `groupBy`. */
const grainOf = (groupBy: StatsDimension[]): RollupGrain =>
  groupBy.includes("hour") ? "hour" : groupBy.includes("day") ? "day" : "month";

/** The exact count of the events matching `filter`, grouped by one or two dimensions, ordered by key. */
export async function eventStats(
  executor: Executor,
  filter: EventFilter,
  groupBy: StatsDimension[],
): Promise<{ buckets: StatsBucket[]; total: number; archived?: ArchivedRange[] }> {
  const order = sql.join(
    groupBy.map((_, i) => sql.raw(`buckets.k${i}`)),
    sql`, `,
  );
  type Row = { k0: string | null; k1?: string | null; count: number | null };
  // The archived months are asked beside the counts (a second connection outside a transaction).
  const [rows, archived] = await Promise.all([
    withHint(executor, filter, (hint) =>
      query<Row & Partial<HintColumns>>(
        executor,
        beyondRollups(filter)
          ? sql`select buckets.* from (${bucketsSql(groupBy, sql`events e where ${filterCondition("e", filter)}`, sql`count(*)`)}) buckets
            order by ${order}`
          : // The hint's row comes first and alone when there are no buckets (a left join on true).
            sql`with ${checkpointCtes(hint)},
            buckets as (
              ${bucketsSql(groupBy, sql`(${countedRows(filter, hint, grainOf(groupBy))}) e (ts, event_type, source, n)`, sql`sum(e.n)`)}
            )
            select buckets.*, hint.* from hint left join buckets on true order by ${order}`,
        { inline: true },
      ),
    ),
    archivedRanges(executor, filter),
  ]);
  const buckets = rows
    .filter((row) => row.k0 !== null && row.k0 !== undefined)
    .map((row): StatsBucket => {
      const values = groupBy.map((_, i) => String(i === 0 ? row.k0 : row.k1));
      return groupBy.length === 1
        ? { key: values[0]!, count: Number(row.count) }
        : {
            key: values.join(","),
            keys: Object.fromEntries(groupBy.map((d, i) => [d, values[i]!])),
            count: Number(row.count),
          };
    });
  const answer = { buckets, total: buckets.reduce((sum, b) => sum + b.count, 0) };
  if (archived.length === 0) return answer;
  // Counted from the rollups, dropped months are in the answer; by contact, session, message or correlation,
  // they are not (the log no longer holds them): said either way.
  return { ...answer, archived: archived.map((range) => ({ ...range, counted: !beyondRollups(filter) })) };
}
