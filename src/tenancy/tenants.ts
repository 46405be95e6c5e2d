import { asc, eq } from "drizzle-orm";
import type { Db, Executor } from "../db/client.js";
import { classifyDbError } from "../db/errors.js";
import { type Tenant, tenants } from "../db/schema/index.js";
import { HeraldError } from "../errors.js";
import { issueApiKey } from "./apiKeys.js";

export interface CreatedTenant {
  tenant: Tenant;
  apiKey: string;
}

/** Create a tenant and its first API key in one transaction. */
export async function createTenant(db: Db, name: string): Promise<CreatedTenant> {
  try {
    return await db.transaction(async (tx) => {
      const [tenant] = await tx.insert(tenants).values({ name }).returning();
      const { apiKey } = await issueApiKey(tx, tenant!.id, "initial");
      return { tenant: tenant!, apiKey };
    });
  } catch (error) {
    if (classifyDbError(error) === "unique_violation") {
      throw new HeraldError("conflict", `A tenant named "${name}" already exists`);
    }
    throw error;
  }
}

export function listTenants(executor: Executor): Promise<Tenant[]> {
  return executor.select().from(tenants).orderBy(asc(tenants.createdAt));
}

export async function getTenant(executor: Executor, id: string): Promise<Tenant | undefined> {
  const [tenant] = await executor.select().from(tenants).where(eq(tenants.id, id));
  return tenant;
}
