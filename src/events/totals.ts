import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { type EventFilter, filterCondition } from "./filter.js";

/** The exact size and time span of a filter's events, and the snapshot they were counted in. */
export interface EventTotals {
  total: number;
  /** The time of the oldest and of the newest matching event (RFC 3339, ms); null when there are none. */
  timeRange: { start: string | null; end: string | null };
  /** Read the matching events in this snapshot (`readEvents`' `snapshot`) to page through exactly these. */
  snapshot: string;
}

/** The exact total and time range of the events matching `filter`, at one moment. */
export async function eventTotals(executor: Executor, filter: EventFilter): Promise<EventTotals> {
  const [row] = await query<{
    snapshot: string;
    total: number;
    first_ms: number | null;
    last_ms: number | null;
  }>(
    executor,
    sql`select pg_current_snapshot()::text as snapshot, count(*)::float8 as total,
      floor(extract(epoch from min(e.ts)) * 1000)::float8 as first_ms,
      floor(extract(epoch from max(e.ts)) * 1000)::float8 as last_ms
      from events e where ${filterCondition("e", filter)}`,
  );
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return {
    total: Number(row!.total),
    timeRange: { start: iso(row!.first_ms), end: iso(row!.last_ms) },
    snapshot: row!.snapshot,
  };
}

/** What `eventStats` groups by: one of these, or two (`type,day`). */
export type StatsDimension = "type" | "source" | "day" | "hour";

export interface StatsBucket {
  /** The bucket's value (a type, a source, or the UTC start of a day or hour); two joined by "," for pairs. */
  key: string;
  /** With two dimensions: the value of each. */
  keys?: Partial<Record<StatsDimension, string>>;
  count: number;
}

const dimensionSql = {
  type: sql`e.event_type`,
  source: sql`e.source::text`,
  day: sql`to_char(date_trunc('day', e.ts, 'UTC') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
  hour: sql`to_char(date_trunc('hour', e.ts, 'UTC') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
} as const;

/** The exact count of the events matching `filter`, grouped by one or two dimensions, ordered by key. */
export async function eventStats(
  executor: Executor,
  filter: EventFilter,
  groupBy: StatsDimension[],
): Promise<{ buckets: StatsBucket[]; total: number }> {
  const keys = groupBy.map((d, i) => sql`${dimensionSql[d]} as ${sql.raw(`k${i}`)}`);
  const rows = await query<{ k0: string; k1?: string; count: number }>(
    executor,
    sql`select ${sql.join(keys, sql`, `)}, count(*)::float8 as count from events e
      where ${filterCondition("e", filter)}
      group by ${sql.join(
        groupBy.map((_, i) => sql.raw(String(i + 1))),
        sql`, `,
      )}
      order by ${sql.join(
        groupBy.map((_, i) => sql.raw(String(i + 1))),
        sql`, `,
      )}`,
  );
  const buckets = rows.map((row): StatsBucket => {
    const values = groupBy.map((_, i) => String(i === 0 ? row.k0 : row.k1));
    return groupBy.length === 1
      ? { key: values[0]!, count: Number(row.count) }
      : {
          key: values.join(","),
          keys: Object.fromEntries(groupBy.map((d, i) => [d, values[i]!])),
          count: Number(row.count),
        };
  });
  return { buckets, total: buckets.reduce((sum, b) => sum + b.count, 0) };
}

/** The exact number of events matching `filter` (counts by contact or session go through their index). */
export async function countEvents(executor: Executor, filter: EventFilter): Promise<number> {
  const [row] = await query<{ count: number }>(
    executor,
    sql`select count(*)::float8 as count from events e where ${filterCondition("e", filter)}`,
  );
  return Number(row!.count);
}
