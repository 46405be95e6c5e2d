import { sql } from "drizzle-orm";
import type { Db, Tx } from "./client.js";

/**
 * Run `work` in a transaction whose tenant context is `tenantId`: row-level security then shows and
 * accepts only that tenant's rows (for roles subject to RLS). Every tenant request goes through here.
 */
export function withTenant<T>(db: Db, tenantId: string, work: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('app.tenant_id', ${tenantId}, true)`);
    return work(tx);
  });
}
