import { and, eq, sql } from "drizzle-orm";
import type { Executor } from "../db/client.js";
import { createdBefore, pageOf } from "../db/keyset.js";
import { type OutboundMessage, outboundMessages } from "../db/schema/index.js";
import type { Page } from "../domain/cursor.js";
import type { MessageStatus } from "../domain/vocabularies.js";

export async function getMessage(executor: Executor, tenantId: string, id: string) {
  const [row] = await executor
    .select()
    .from(outboundMessages)
    .where(and(eq(outboundMessages.tenantId, tenantId), eq(outboundMessages.id, id)));
  return row;
}

export async function listMessages(
  executor: Executor,
  tenantId: string,
  filter: { status?: MessageStatus | undefined; contactId?: string | undefined },
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
        createdBefore(outboundMessages.createdAt, outboundMessages.id, cursor),
      ),
    )
    // The list index is (tenant, created_at desc nulls last, id desc nulls last): the same order walks it.
    .orderBy(sql`${outboundMessages.createdAt} desc nulls last, ${outboundMessages.id} desc nulls last`)
    .limit(limit + 1);
  return pageOf(rows, limit);
}
