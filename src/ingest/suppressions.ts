import { and, desc, eq, or } from "drizzle-orm";
import type { Executor } from "../db/client.js";
import { createdBefore, pageOf } from "../db/keyset.js";
import { communicationSuppressions } from "../db/schema/index.js";
import type { Channel, SuppressionReason } from "../domain/vocabularies.js";
import { normalizeAddress } from "./messages.js";

export interface SuppressionFilter {
  channel?: Channel | undefined;
  address?: string | undefined;
  reason?: SuppressionReason | undefined;
}

/** The address as stored for its channel; without one, as an email or as a phone number. */
const addressIs = (address: string, channel: Channel | undefined) =>
  channel
    ? eq(communicationSuppressions.address, normalizeAddress(channel, address))
    : or(
        ...(["email", "sms"] as const).map((c) =>
          and(
            eq(communicationSuppressions.channel, c),
            eq(communicationSuppressions.address, normalizeAddress(c, address)),
          ),
        ),
      );

const byFilter = (tenantId: string, f: SuppressionFilter) =>
  and(
    eq(communicationSuppressions.tenantId, tenantId),
    f.channel ? eq(communicationSuppressions.channel, f.channel) : undefined,
    f.address ? addressIs(f.address, f.channel) : undefined,
    f.reason ? eq(communicationSuppressions.reason, f.reason) : undefined,
  );

export async function listSuppressions(
  executor: Executor,
  tenantId: string,
  filter: SuppressionFilter,
  limit: number,
  cursor: string | undefined,
) {
  const rows = await executor
    .select()
    .from(communicationSuppressions)
    .where(
      and(
        byFilter(tenantId, filter),
        createdBefore(communicationSuppressions.createdAt, communicationSuppressions.id, cursor),
      ),
    )
    .orderBy(desc(communicationSuppressions.createdAt), desc(communicationSuppressions.id))
    .limit(limit + 1);
  return pageOf(rows, limit);
}

/**
 * Whether an address may not be sent to, and why: the reasons (API.md's values), and the groups it is
 * unsubscribed from when one of them is `group_unsubscribe`.
 */
export async function checkSuppression(
  executor: Executor,
  tenantId: string,
  channel: Channel,
  address: string,
) {
  const rows = await executor
    .select({ reason: communicationSuppressions.reason, groupId: communicationSuppressions.groupId })
    .from(communicationSuppressions)
    .where(byFilter(tenantId, { channel, address }));
  return {
    suppressed: rows.length > 0,
    reasons: [...new Set(rows.map((r) => r.reason))],
    group_ids: rows.flatMap((r) => (r.groupId === null ? [] : [r.groupId])).sort((a, b) => a - b),
  };
}

export async function addManualSuppression(
  executor: Executor,
  tenantId: string,
  channel: Channel,
  address: string,
) {
  const values = {
    tenantId,
    channel,
    address: normalizeAddress(channel, address),
    reason: "manual" as const,
  };
  const [row] = await executor
    .insert(communicationSuppressions)
    .values(values)
    .onConflictDoNothing()
    .returning();
  if (row) return row;
  const [existing] = await executor
    .select()
    .from(communicationSuppressions)
    .where(and(byFilter(tenantId, { channel, address }), eq(communicationSuppressions.reason, "manual")));
  return existing!;
}

export async function deleteSuppression(executor: Executor, tenantId: string, id: string): Promise<boolean> {
  const rows = await executor
    .delete(communicationSuppressions)
    .where(and(eq(communicationSuppressions.tenantId, tenantId), eq(communicationSuppressions.id, id)))
    .returning({ id: communicationSuppressions.id });
  return rows.length > 0;
}
