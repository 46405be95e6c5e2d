import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { after } from "../db/keyset.js";
import { epochMs } from "../db/timestamps.js";
import { type Page, pageFrom } from "../domain/cursor.js";
import { RawJson } from "../domain/rawJson.js";
import { providerFor } from "../providers/registry.js";

export interface MessageEventView {
  id: string;
  message_id: string | null;
  provider: string;
  provider_event_id: string | null;
  provider_message_id: string | null;
  /** Herald's canonical type, the same for every provider. */
  type: string;
  /** The provider's own name of the event's type (SendGrid's `event`, Postmark's `RecordType`…). */
  provider_type: string | null;
  event_at: string;
  recipient: string | null;
  url: string | null;
  ip: string | null;
  user_agent: string | null;
  reason: string | null;
  bounce_classification: string | null;
  machine_open: boolean | null;
  /** The provider's raw event: a `RawJson` of its exact bytes where they were kept, else parsed JSON. */
  payload: unknown;
}

/**
 * An event's columns, its payload as text where it was stored as JSON and, where it is a slice of its
 * archived delivery, that slice's bytes (only those are read from the body).
 */
const columns =
  sql.raw(`id, outbound_message_id as message_id, provider, provider_event_id, provider_message_id,
  type, ${epochMs("event_at")} as event_ms, recipient, url, ip, user_agent, reason, bounce_classification,
  machine_open, payload::text as payload_json,
  (select substring(d.body from message_events.raw_offset + 1 for message_events.raw_length)
    from webhook_deliveries d
    where message_events.payload is null and d.id = message_events.delivery_id) as payload_bytes`);

const asBuffer = (value: unknown) => (Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array));

/**
 * The provider's event: its bytes as it sent them where they are a slice of the delivery (served byte for
 * byte by `jsonWithRaw`), else the JSON stored (rows of a provider whose body is not the array of its events,
 * or stored before migration 0030), parsed.
 */
function payloadOf(r: Record<string, unknown>): { payload: unknown; parsed: unknown } {
  if (r.payload_bytes !== null && r.payload_bytes !== undefined) {
    const raw = new RawJson(asBuffer(r.payload_bytes).toString("utf8"));
    return { payload: raw, parsed: raw.toJSON() };
  }
  const parsed = typeof r.payload_json === "string" ? JSON.parse(r.payload_json) : (r.payload_json ?? null);
  return { payload: parsed, parsed };
}

const view = (r: Record<string, unknown>): MessageEventView => {
  const { event_ms, payload_json: _json, payload_bytes: _bytes, ...rest } = r;
  const { payload, parsed } = payloadOf(r);
  const module = providerFor(String(r.provider));
  return {
    ...(rest as unknown as MessageEventView),
    provider_type:
      module && parsed !== null && typeof parsed === "object"
        ? module.rawType(parsed as Record<string, unknown>)
        : null,
    event_at: new Date(Number(event_ms)).toISOString(),
    payload,
  };
};

export interface MessageEventFilter {
  type?: string | undefined;
  messageId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
}

/** A tenant's provider events, newest first. */
export async function listMessageEvents(
  executor: Executor,
  tenantId: string,
  filter: MessageEventFilter,
  limit: number,
  cursor: string | undefined,
): Promise<Page<MessageEventView>> {
  const position = after("message_events", "event_at", "id", cursor);
  const rows = await query(
    executor,
    sql`select ${columns} from message_events where tenant_id = ${tenantId}
      ${filter.type ? sql`and type = ${filter.type}` : sql``}
      ${filter.messageId ? sql`and outbound_message_id = ${filter.messageId}` : sql``}
      ${filter.since ? sql`and event_at >= ${filter.since.toISOString()}::timestamptz` : sql``}
      ${filter.until ? sql`and event_at < ${filter.until.toISOString()}::timestamptz` : sql``}
      ${position ? sql`and ${position}` : sql``}
      order by event_at desc nulls last, id desc limit ${limit + 1}`,
  );
  return pageFrom(rows.map(view), limit, (row) => ({ at: row.event_at, id: row.id }));
}

/** One message's events, oldest first. */
export async function eventsOfMessage(
  executor: Executor,
  tenantId: string,
  messageId: string,
): Promise<MessageEventView[]> {
  const rows = await query(
    executor,
    sql`select ${columns} from message_events
      where tenant_id = ${tenantId} and outbound_message_id = ${messageId}
      order by event_at, id`,
  );
  return rows.map(view);
}
