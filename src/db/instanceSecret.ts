import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { type Executor, query } from "./client.js";

/**
 * The installation's secret named `name` (32 random bytes), made by whichever process asks first: every
 * process on the database then shares it, across restarts.
 */
export async function instanceSecret(executor: Executor, name: string): Promise<Buffer> {
  const read = () =>
    query<{ secret: string }>(executor, sql`select secret from instance_secrets where name = ${name}`);
  let [row] = await read();
  if (!row) {
    const fresh = randomBytes(32).toString("base64url");
    await query(
      executor,
      sql`insert into instance_secrets (name, secret) values (${name}, ${fresh}) on conflict (name) do nothing`,
    );
    [row] = await read();
  }
  if (!row) throw new Error(`instance secret ${name} could not be stored`);
  return Buffer.from(row.secret, "base64url");
}
