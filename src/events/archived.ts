import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { isoText } from "../db/timestamps.js";
import type { EventFilter } from "./filter.js";

/** A month of the log that retention archived and dropped (src/retention/): its events live on in the rollups. */
export interface ArchivedRange {
  /** The month's first instant (UTC, ISO 8601). */
  from: string;
  /** The next month's first instant. */
  to: string;
  /** Whether the answer counts the range's events (from the rollups) or leaves them out (filters they cannot answer). */
  counted: boolean;
}

/** The dropped months of `events` that `filter`'s time range overlaps (none when nothing was archived). */
export async function archivedRanges(
  executor: Executor,
  filter: EventFilter,
): Promise<Omit<ArchivedRange, "counted">[]> {
  const rows = await query<{ from: string; to: string }>(
    executor,
    sql`select ${sql.raw(isoText("month"))} as from, ${sql.raw(isoText("(month + interval '1 month')"))} as to
      from archives where table_name = 'events' and state = 'dropped'
        ${filter.end === undefined ? sql`` : sql`and month < ${filter.end.toISOString()}::timestamptz`}
        ${filter.start === undefined ? sql`` : sql`and month + interval '1 month' > ${filter.start.toISOString()}::timestamptz`}
      order by month`,
    { inline: true },
  );
  return rows.map((r) => ({ from: r.from, to: r.to }));
}
