import { type SQL, sql } from "drizzle-orm";
import type { EventSource } from "../domain/vocabularies.js";

/**
 * Which of a tenant's events a read is about: the filters of `GET /api/v1/events`, written once for the list,
 * the totals, the stats, the export and the library. Every field narrows; none set means all of them.
 */
export interface EventFilter {
  tenantId: string;
  /** An exact type (`message.delivered`), a prefix pattern (`message.*`), or `*` (any). */
  type?: string | undefined;
  source?: EventSource | undefined;
  contactId?: string | undefined;
  sessionId?: string | undefined;
  messageId?: string | undefined;
  correlationId?: string | undefined;
  /** Inclusive. */
  start?: Date | undefined;
  /** Exclusive. */
  end?: Date | undefined;
}

/** A type filter as the query needs it: an exact type, or the prefix a `….*` pattern stands for. */
export type TypeMatch = { exact: string } | { prefix: string } | undefined;

export function typeMatch(type: string | undefined): TypeMatch {
  if (type === undefined || type === "*") return undefined;
  return type.endsWith(".*") ? { prefix: type.slice(0, -1) } : { exact: type };
}

/**
 * The event types under a prefix (`message.`) as a range of text, which the `(tenant_id, event_type, …)` index
 * serves: types are made of `[a-z0-9_.]`, so every one under the prefix sorts before the prefix with its last
 * character (`.`) raised to the next one (`/`).
 */
export const prefixEnd = (prefix: string) => `${prefix.slice(0, -1)}/`;

/** The SQL condition on `event_type` (of `alias`), or none. */
export function typeCondition(alias: string, match: TypeMatch): SQL | undefined {
  if (match === undefined) return undefined;
  const column = sql.raw(`${alias}.event_type`);
  return "exact" in match
    ? sql`${column} = ${match.exact}`
    : sql`${column} >= ${match.prefix} and ${column} < ${prefixEnd(match.prefix)}`;
}

/** Whether an event type passes a filter's type (the same rule as `typeCondition`, for the library). */
export function typeMatches(match: TypeMatch, eventType: string): boolean {
  if (match === undefined) return true;
  return "exact" in match ? eventType === match.exact : eventType.startsWith(match.prefix);
}

/**
 * The filter as one SQL condition on the events of `alias` (tenant first: every read is one tenant's).
 * `timeless` leaves the time range out (for callers that bound the time themselves, such as rollups).
 */
export function filterCondition(alias: string, filter: EventFilter, { timeless = false } = {}): SQL {
  const column = (name: string) => sql.raw(`${alias}.${name}`);
  const conditions: SQL[] = [sql`${column("tenant_id")} = ${filter.tenantId}::uuid`];
  const type = typeCondition(alias, typeMatch(filter.type));
  if (type) conditions.push(type);
  if (filter.source !== undefined) conditions.push(sql`${column("source")} = ${filter.source}`);
  if (filter.contactId !== undefined) conditions.push(sql`${column("contact_id")} = ${filter.contactId}`);
  if (filter.sessionId !== undefined) conditions.push(sql`${column("session_id")} = ${filter.sessionId}`);
  if (filter.messageId !== undefined)
    conditions.push(sql`${column("message_id")} = ${filter.messageId}::uuid`);
  if (filter.correlationId !== undefined)
    conditions.push(sql`${column("correlation_id")} = ${filter.correlationId}`);
  if (!timeless && filter.start !== undefined)
    conditions.push(sql`${column("ts")} >= ${filter.start.toISOString()}::timestamptz`);
  if (!timeless && filter.end !== undefined)
    conditions.push(sql`${column("ts")} < ${filter.end.toISOString()}::timestamptz`);
  return sql.join(conditions, sql` and `);
}

/**
 * Whether the filter names anything the rollups do not count by (they count per tenant, hour, type and
 * source): such a filter is counted through its own index instead.
 */
export const beyondRollups = (filter: EventFilter) => namesAnId(filter);

/**
 * Whether the filter names a contact, session, message or correlation id: its rows are found through that
 * id's own index, the one good plan whatever the values (a few rows per id), so its statements can be
 * prepared and planned once per connection. Other filters' best plans depend on the values (the tenant's
 * size, the time range): planned each time (`query`'s `inline`).
 */
export const namesAnId = (filter: EventFilter) =>
  filter.contactId !== undefined ||
  filter.sessionId !== undefined ||
  filter.messageId !== undefined ||
  filter.correlationId !== undefined;
