import { type Static, Type } from "@sinclair/typebox";
import { eventSources } from "../domain/vocabularies.js";
import type { EventFilter } from "../events/filter.js";
import { timeRange } from "./ranges.js";
import { DateOrTime, EventTypePattern, literals, Text, Uuid } from "./schemas.js";

/** The query parameters that filter the event log (list, count, stats, export), written once. */
export const EventFilterQuery = Type.Object({
  type: Type.Optional(EventTypePattern),
  source: Type.Optional(literals(eventSources)),
  contact_id: Type.Optional(Text(200)),
  session_id: Type.Optional(Text(200)),
  message_id: Type.Optional(Uuid),
  correlation_id: Type.Optional(Text(200)),
  start: Type.Optional(DateOrTime),
  end: Type.Optional(DateOrTime),
});
export type EventFilterQuery = Static<typeof EventFilterQuery>;

/** The filter a request's parameters name (a reversed range is refused with 400 at `end`). */
export function eventFilterOf(tenantId: string, q: EventFilterQuery): EventFilter {
  const { from, to } = timeRange(q.start, q.end, { in: "querystring", from: "start", to: "end" });
  return {
    tenantId,
    type: q.type,
    source: q.source,
    contactId: q.contact_id,
    sessionId: q.session_id,
    messageId: q.message_id,
    correlationId: q.correlation_id,
    start: from,
    end: to,
  };
}
