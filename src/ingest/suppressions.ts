import { and, desc, eq } from "drizzle-orm";
import type { Executor } from "../db/client.js";
import { createdBefore, pageOf } from "../db/keyset.js";
import { type Channel, communicationSuppressions, type SuppressionReason } from "../db/schema/index.js";
import { normalizeAddress } from "./messages.js";

export interface SuppressionFilter {
  channel?: Channel | undefined;
  address?: string | undefined;
  reason?: SuppressionReason | undefined;
}

const byFilter = (tenantId: string, f: SuppressionFilter) =>
  and(
    eq(communicationSuppressions.tenantId, tenantId),
    f.channel ? eq(communicationSuppressions.channel, f.channel) : undefined,
    f.address && f.channel
      ? eq(communicationSuppressions.address, normalizeAddress(f.channel, f.address))
      : undefined,
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

/** Whether an address may not be sent to, and why. */
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
    reasons: rows.map((r) => (r.groupId === null ? r.reason : `${r.reason}:${r.groupId}`)),
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
