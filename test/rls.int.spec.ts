import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase, query } from "../src/db/client.js";
import { errorCode } from "../src/db/errors.js";
import { withTenant } from "../src/db/tenant.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";

/** Row-level security as an application role (not a superuser) sees it. Server only: PGlite is a superuser. */
describe.skipIf(!hasPostgres())("row-level security for a non-superuser role", () => {
  let t: TestDatabase;
  let asApp: Database;
  const role = `herald_app_${randomBytes(4).toString("hex")}`;
  let tenantA: string;
  let tenantB: string;

  beforeAll(async () => {
    t = await createTestDatabase("postgres");
    const owner = postgres(t.url!, { max: 1, onnotice: () => {} });
    await owner.unsafe(`create role ${role} login nosuperuser nobypassrls`);
    await owner.unsafe(`grant select, insert, update, delete on all tables in schema public to ${role}`);
    [{ id: tenantA }, { id: tenantB }] =
      (await owner`insert into tenants (name) values ('a'), ('b') returning id`) as unknown as {
        id: string;
      }[] as [{ id: string }, { id: string }];
    await owner`insert into outbound_messages (tenant_id, channel, provider, to_address)
      values (${tenantA}, 'email', 'sendgrid', 'a1@x.io'), (${tenantA}, 'email', 'sendgrid', 'a2@x.io'),
             (${tenantB}, 'email', 'sendgrid', 'b1@x.io')`;
    await owner`insert into events (tenant_id, event_type, source) values (${tenantA}, 'a', 'system'), (${tenantB}, 'b', 'system')`;
    await owner.end();
    const url = new URL(t.url!);
    url.username = role;
    asApp = await openDatabase({ url: url.toString() });
  });

  afterAll(async () => {
    await asApp?.close();
    await t?.drop();
    const admin = postgres(
      process.env.TEST_DATABASE_URL ??
        process.env.DATABASE_URL ??
        "postgres://postgres@127.0.0.1:5432/postgres",
      { max: 1, onnotice: () => {} },
    );
    await admin.unsafe(`drop role if exists ${role}`).catch(() => undefined);
    await admin.end();
  });

  it("sees no rows without a tenant context", async () => {
    const rows = await query(asApp.db, sql`select * from outbound_messages`);
    expect(rows).toHaveLength(0);
    expect(await query(asApp.db, sql`select * from events`)).toHaveLength(0);
    expect(await query(asApp.db, sql`select * from tenants`)).toHaveLength(0);
  });

  it("sees only tenant A's rows in A's context (partitioned tables included)", async () => {
    const { messages, events } = await withTenant(asApp.db, tenantA, async (tx) => ({
      messages: await query<{ to_address: string }>(
        tx,
        sql`select to_address from outbound_messages order by 1`,
      ),
      events: await query<{ event_type: string }>(tx, sql`select event_type from events`),
    }));
    expect(messages.map((m) => m.to_address)).toEqual(["a1@x.io", "a2@x.io"]);
    expect(events.map((e) => e.event_type)).toEqual(["a"]);
  });

  it("cannot insert a row of tenant B while in A's context", async () => {
    const error = await withTenant(asApp.db, tenantA, (tx) =>
      tx.execute(
        sql`insert into outbound_messages (tenant_id, channel, provider, to_address) values (${tenantB}, 'email', 'sendgrid', 'x@x.io')`,
      ),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(errorCode(error)).toBe("42501");
    const count = await withTenant(asApp.db, tenantB, (tx) =>
      query<{ n: number }>(tx, sql`select count(*)::int as n from outbound_messages`),
    );
    expect(count[0]!.n).toBe(1);
  });

  it("the context ends with its transaction", async () => {
    await withTenant(asApp.db, tenantA, (tx) => query(tx, sql`select 1`));
    expect(await query(asApp.db, sql`select * from outbound_messages`)).toHaveLength(0);
  });
});
