import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { StoredMessageEvent } from "./storeEvents.js";

/**
 * A bounce, spam report or unsubscribe of a message sent by a contact campaign stops that campaign, with a
 * `campaign_transitions` row naming the cause (the event's key: one transition per cause, ever).
 */
export async function stopCampaigns(
  executor: Executor,
  events: Pick<
    StoredMessageEvent,
    "tenantId" | "campaignId" | "type" | "provider" | "dedupeKey" | "messageId"
  >[],
): Promise<void> {
  const causes = events.flatMap((e) =>
    e.campaignId &&
    (e.type === "bounce" ||
      e.type === "spamreport" ||
      e.type === "unsubscribe" ||
      e.type === "group_unsubscribe")
      ? [
          {
            tenant_id: e.tenantId,
            campaign_id: e.campaignId,
            cause_key: `${e.provider}:${e.dedupeKey}`,
            reason: `${e.type} of message ${e.messageId}`,
          },
        ]
      : [],
  );
  if (causes.length === 0) return;
  await query(
    executor,
    sql`with cause as (
      select distinct on (campaign_id) * from jsonb_to_recordset(${JSON.stringify(causes)}::jsonb) as x(tenant_id uuid, campaign_id uuid, cause_key text, reason text)
      order by campaign_id, cause_key
    ), stopped as (
      update contact_campaigns c set status = 'stopped', stopped_at = now(), stop_reason = k.reason, updated_at = now()
      from cause k join contact_campaigns previous on previous.id = k.campaign_id
      where c.id = k.campaign_id and c.tenant_id = k.tenant_id and c.status not in ('stopped', 'completed')
      returning c.id, c.tenant_id, previous.status as before, k.cause_key, k.reason
    )
    insert into campaign_transitions (tenant_id, campaign_id, from_status, to_status, reason, cause_key)
    select tenant_id, id, before, 'stopped', reason, cause_key from stopped
    on conflict do nothing`,
    { prepare: true },
  );
}
