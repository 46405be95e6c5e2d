import { and, eq, or, sql } from "drizzle-orm";
import type { Executor } from "../db/client.js";
import { createdBefore, pageOf } from "../db/keyset.js";
import { type OutboundMessage, outboundMessages } from "../db/schema/index.js";
import { normalizeAddress } from "../domain/address.js";
import type { Page } from "../domain/cursor.js";
import { type Channel, channels, type MessageStatus } from "../domain/vocabularies.js";

export interface MessageFilter {
  status?: MessageStatus | undefined;
  contactId?: string | undefined;
  /** The recipient, compared as stored (normalized for its channel, or for each channel without one). */
  to?: string | undefined;
  channel?: Channel | undefined;
  campaignId?: string | undefined;
}

export async function getMessage(executor: Executor, tenantId: string, id: string) {
  const [row] = await executor
    .select()
    .from(outboundMessages)
    .where(and(eq(outboundMessages.tenantId, tenantId), eq(outboundMessages.id, id)));
  return row;
}

/**
 * Messages to `address`: per channel, `(channel, to_address)` equal to the address as that channel stores it,
 * so outbound_messages_recipient_idx (tenant, channel, to_address, …) finds them; they are few, then sorted.
 */
const recipientIs = (address: string, channel: Channel | undefined) =>
  or(
    ...(channel ? [channel] : channels).map((c) =>
      and(eq(outboundMessages.channel, c), eq(outboundMessages.toAddress, normalizeAddress(c, address))),
    ),
  );

export async function listMessages(
  executor: Executor,
  tenantId: string,
  filter: MessageFilter,
  limit: number,
  cursor: string | undefined,
): Promise<Page<OutboundMessage>> {
  const rows = await executor
    .select()
    .from(outboundMessages)
    .where(
      and(
        eq(outboundMessages.tenantId, tenantId),
        filter.status ? eq(outboundMessages.status, filter.status) : undefined,
        filter.contactId ? eq(outboundMessages.contactId, filter.contactId) : undefined,
        filter.channel ? eq(outboundMessages.channel, filter.channel) : undefined,
        filter.to !== undefined ? recipientIs(filter.to, filter.channel) : undefined,
        // Its own index (campaign, then the list's order): a sparse campaign is not a walk of the tenant.
        filter.campaignId ? eq(outboundMessages.campaignId, filter.campaignId) : undefined,
        createdBefore(outboundMessages.createdAt, outboundMessages.id, cursor),
      ),
    )
    // The list index is (tenant, created_at desc nulls last, id desc nulls last): the same order walks it.
    .orderBy(sql`${outboundMessages.createdAt} desc nulls last, ${outboundMessages.id} desc nulls last`)
    .limit(limit + 1);
  return pageOf(rows, limit);
}
