import { sql } from "drizzle-orm";
import { type Db, query } from "../../src/db/client.js";

/** Insert a tenant directly; returns its id. */
export async function makeTenant(db: Db, name = `t-${Math.random().toString(36).slice(2)}`): Promise<string> {
  const [row] = await query<{ id: string }>(
    db,
    sql`insert into tenants (name) values (${name}) returning id`,
  );
  return row!.id;
}

export async function count(db: Db, table: string, where = "true"): Promise<number> {
  const [row] = await query<{ n: number }>(
    db,
    sql.raw(`select count(*)::int as n from ${table} where ${where}`),
  );
  return row!.n;
}
