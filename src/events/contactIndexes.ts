import { type SQL, sql } from "drizzle-orm";
import type { EventFilter } from "./filter.js";

/**
 * A contact's events live in two partial indexes (migration 0038), each event in exactly one:
 * `events_contact_timeline_idx` holds every column of the events whose variable-length columns fit in a btree
 * entry, so a timeline reads them without touching the heap (a contact's events are spread over the month's
 * heap, one page each); `events_contact_uncovered_idx` holds the keys of the others (large bodies, and
 * `message.*` events whose payload is made from their message event). A read of a contact's events asks each
 * with the index's own predicate, written here as the migration has it: the planner uses a partial index only
 * for a condition that implies its predicate, and the bound is a literal, not a parameter, so a prepared
 * statement's generic plan uses it too.
 */
const entryBytes = (alias: string) =>
  `herald_event_entry_bytes(${[
    "payload",
    "metadata",
    "event_type",
    "contact_id",
    "session_id",
    "event_key",
    "correlation_id",
    "causation_id",
  ]
    .map((column) => `${alias}.${column}`)
    .join(", ")})`;

const coveredBytes = 2000;

/** The two halves of a contact's events (alias `alias`): in the covering index, and the rest. */
export const contactIndexHalves = (alias: string): [SQL, SQL] => [
  sql.raw(`${alias}.payload is not null and ${entryBytes(alias)} <= ${coveredBytes}`),
  sql.raw(`(${alias}.payload is null or ${entryBytes(alias)} > ${coveredBytes})`),
];

/**
 * The events (alias `e`) of `filter` that meet `condition` (which includes the filter's), as a FROM item with
 * its WHERE: `select … from ${fromEvents(…)} order by …`. A contact's events are the union of both halves,
 * each read with `eachHalf` (its ORDER BY and LIMIT, which the statement then repeats) when given, so that
 * each half's index is walked only as far as the statement needs.
 */
export function fromEvents(filter: EventFilter, condition: SQL, eachHalf: SQL = sql``): SQL {
  if (filter.contactId === undefined) return sql`events e where ${condition}`;
  const halves = contactIndexHalves("e").map(
    (half) => sql`(select e.* from events e where ${condition} and ${half} ${eachHalf})`,
  );
  return sql`(${sql.join(halves, sql` union all `)}) e`;
}
