import type { Executor } from "../db/client.js";
import type { EventFilter } from "./filter.js";
import { type ReadOptions, type ReadPage, readEvents } from "./query.js";
import { countEvents } from "./totals.js";

/**
 * The event log's reads for a program using Herald as a library, each one tenant's: pages of a contact's, a
 * session's, a type's or a time range's events (oldest first unless `order` says otherwise; pass `next` back as
 * `after` for the next page), and counts. Under a role subject to row-level security, run them inside
 * `withTenant`. Any other filter: `readEvents`, `streamEvents` and `fold`.
 */

type PageOptions = Partial<Omit<ReadOptions, "snapshot">>;

const page = (executor: Executor, filter: EventFilter, options: PageOptions = {}): Promise<ReadPage> =>
  readEvents(executor, filter, { order: "asc", limit: 100, ...options });

export const findEventsByContact = (
  executor: Executor,
  tenantId: string,
  contactId: string,
  options?: PageOptions,
) => page(executor, { tenantId, contactId }, options);

export const findEventsBySession = (
  executor: Executor,
  tenantId: string,
  sessionId: string,
  options?: PageOptions,
) => page(executor, { tenantId, sessionId }, options);

/** `type`: exact (`order.placed`) or a prefix pattern (`message.*`). */
export const findEventsByType = (executor: Executor, tenantId: string, type: string, options?: PageOptions) =>
  page(executor, { tenantId, type }, options);

/** From `start` (inclusive) to `end` (exclusive). */
export const findEventsInRange = (
  executor: Executor,
  tenantId: string,
  range: { start?: Date; end?: Date },
  options?: PageOptions,
) => page(executor, { tenantId, ...range }, options);

export const countEventsByContact = (executor: Executor, tenantId: string, contactId: string) =>
  countEvents(executor, { tenantId, contactId });

export const countEventsBySession = (executor: Executor, tenantId: string, sessionId: string) =>
  countEvents(executor, { tenantId, sessionId });
