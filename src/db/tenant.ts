import { sql } from "drizzle-orm";
import { type Db, query, type Tx } from "./client.js";

/**
 * Run `work` in a transaction whose tenant context is `tenantId`: row-level security then shows and
 * accepts only that tenant's rows (for roles subject to RLS). Every tenant request goes through here.
 */
export function withTenant<T>(db: Db, tenantId: string, work: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    // Sent with the work's first statement (postgres.js pipelines a transaction's statements), which runs
    // after it: one round trip fewer per tenant request. Prepared: its text never changes.
    const scoped = query(tx, sql`select set_config('app.tenant_id', ${tenantId}, true)`, { prepare: true });
    const [, result] = await Promise.all([scoped, work(tx)]);
    return result;
  });
}
