import type { Executor } from "../db/client.js";
import type { EventFilter } from "./filter.js";
import { type EventOrder, type JsonPage, readEventsJson } from "./query.js";
import { type EventTotals, eventTotals } from "./totals.js";

/**
 * The first page of a filter's events as JSON text (`readEventsJson`), with the exact total and time range
 * of the events it pages through: the page is read in the snapshot they were counted in, which later pages
 * read in too (`ReadOptions.after`), so the pages hold exactly `total` events. Two statements, each planned
 * for its own values: one planning both costs more than the two apart.
 */
export async function firstPageJson(
  executor: Executor,
  filter: EventFilter,
  options: { order: EventOrder; limit: number },
): Promise<{ page: JsonPage; totals: EventTotals }> {
  const totals = await eventTotals(executor, filter);
  const page = await readEventsJson(executor, filter, { ...options, snapshot: totals.snapshot });
  return { page, totals };
}
