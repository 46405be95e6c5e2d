import { and, desc, eq, isNull } from "drizzle-orm";
import type { Executor } from "../db/client.js";
import { createdBefore, pageOf } from "../db/keyset.js";
import { type WebhookSource, webhookSources } from "../db/schema/index.js";
import type { Page } from "../domain/cursor.js";
import type { Provider } from "../domain/vocabularies.js";
import { HeraldError } from "../errors.js";
import { sourceProvider } from "../providers/registry.js";

export interface NewSourceInput {
  provider: Provider;
  name?: string | undefined;
  verification?: Record<string, string> | undefined;
}

/**
 * Refuse verification settings the provider could not use (`validation_failed`, each field named under
 * `/body/verification/`): its module decides (providers/registry.ts).
 */
export function checkVerification(provider: Provider, verification: Record<string, string>): void {
  const refusal = sourceProvider(provider).validateVerification(verification);
  if (refusal) {
    throw new HeraldError(
      "validation_failed",
      refusal.detail,
      refusal.errors.map((e) => ({ path: `/body/verification/${e.field}`, message: e.message })),
    );
  }
}

export const sourceUrl = (source: Pick<WebhookSource, "provider" | "id">) =>
  `/api/v1/webhooks/${source.provider}/${source.id}`;

export async function createSource(executor: Executor, tenantId: string, input: NewSourceInput) {
  const [row] = await executor
    .insert(webhookSources)
    .values({
      tenantId,
      provider: input.provider,
      name: input.name ?? input.provider,
      verification: input.verification ?? null,
    })
    .returning();
  return row!;
}

const live = (tenantId: string) =>
  and(eq(webhookSources.tenantId, tenantId), isNull(webhookSources.deletedAt));

export async function getSource(executor: Executor, tenantId: string, id: string) {
  const [row] = await executor
    .select()
    .from(webhookSources)
    .where(and(live(tenantId), eq(webhookSources.id, id)));
  return row;
}

export async function listSources(
  executor: Executor,
  tenantId: string,
  limit: number,
  cursor: string | undefined,
): Promise<Page<WebhookSource>> {
  const rows = await executor
    .select()
    .from(webhookSources)
    .where(and(live(tenantId), createdBefore(webhookSources.createdAt, webhookSources.id, cursor)))
    .orderBy(desc(webhookSources.createdAt), desc(webhookSources.id))
    .limit(limit + 1);
  return pageOf(rows, limit);
}

/** Retire a source: its URL answers 404 from now on; archived deliveries stay. */
export async function deleteSource(executor: Executor, tenantId: string, id: string): Promise<boolean> {
  const rows = await executor
    .update(webhookSources)
    .set({ deletedAt: new Date() })
    .where(and(live(tenantId), eq(webhookSources.id, id)))
    .returning({ id: webhookSources.id });
  return rows.length > 0;
}

/**
 * The live source a provider's request names, whatever its tenant (webhook routes are authenticated by the
 * provider's signature, not an API key). Cross-tenant: use the system connection.
 */
export async function findSourceForWebhook(executor: Executor, provider: string, id: string) {
  const [row] = await executor
    .select()
    .from(webhookSources)
    .where(
      and(
        eq(webhookSources.id, id),
        eq(webhookSources.provider, provider as never),
        isNull(webhookSources.deletedAt),
      ),
    );
  return row;
}
