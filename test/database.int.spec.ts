import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, query } from "../src/db/client.js";
import { classifyDbError } from "../src/db/errors.js";
import { withTenant } from "../src/db/tenant.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { eventually, sleep } from "./support/wait.js";

/** The database layer behaves alike on both backends: transactions, tenant context, NOTIFY, errors. */
for (const backend of backends()) {
  describe(`database layer on ${backend}`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await createTestDatabase(backend);
    });
    afterAll(() => t?.drop());

    it("delivers NOTIFY to a listener, only after commit", async () => {
      const received: string[] = [];
      const unlisten = await t.database.listen("herald_test", (payload) => received.push(payload));
      await t.database.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_notify('herald_test', 'inside')`);
        // What is tested is an absence before the commit, so a bounded window is the point: nothing may
        // arrive in 100 ms. (No probe can mark its end: on PGlite the transaction holds the one session.)
        await sleep(100);
        expect(received).toEqual([]);
      });
      await eventually(() => received.length > 0, 1000, "the NOTIFY after commit");
      expect(received).toEqual(["inside"]);
      await unlisten();
    });

    it("opens the pool's connections when warmed (none is opened on PGlite)", async () => {
      await t.database.warm();
      if (backend === "pglite") return;
      const database = await openDatabase({ url: t.url, poolSize: 3 });
      const open = () =>
        query<{ n: number }>(
          t.database.db,
          sql`select count(*)::int as n from pg_stat_activity
            where datname = current_database() and application_name = 'herald' and pid <> pg_backend_pid()`,
        );
      const before = (await open())[0]!.n;
      await database.warm();
      expect((await open())[0]!.n).toBe(before + 3);
      await database.close();
    });

    it("sets the tenant context for one transaction only", async () => {
      const id = "01a20000-0000-7000-8000-000000000001";
      const inside = await withTenant(t.database.db, id, (tx) =>
        query<{ tenant: string }>(tx, sql`select herald_current_tenant()::text as tenant`),
      );
      expect(inside[0]!.tenant).toBe(id);
      const after = await query<{ tenant: string | null }>(
        t.database.db,
        sql`select herald_current_tenant()::text as tenant`,
      );
      expect(after[0]!.tenant).toBeNull();
    });

    it("rolls back everything when the unit of work throws", async () => {
      await expect(
        t.database.db.transaction(async (tx) => {
          await tx.execute(sql`insert into tenants (name) values ('rolled-back')`);
          throw new Error("boom");
        }),
      ).rejects.toThrow("boom");
      const rows = await query(t.database.db, sql`select 1 from tenants where name = 'rolled-back'`);
      expect(rows).toHaveLength(0);
    });

    it("classifies errors by SQLSTATE", async () => {
      const failure = (statement: string) =>
        t.database.db.execute(sql.raw(statement)).then(
          () => undefined,
          (e: unknown) => classifyDbError(e),
        );
      await t.database.db.execute(sql`insert into tenants (name) values ('same')`);
      expect(await failure("insert into tenants (name) values ('same')")).toBe("unique_violation");
      expect(await failure("insert into tenants (name) values (null)")).toBe("not_null_violation");
      expect(
        await failure(
          "insert into api_keys (tenant_id, prefix, key_hash) values ('01a20000-0000-7000-8000-000000000009', 'p', 'h')",
        ),
      ).toBe("foreign_key_violation");
      expect(await failure("select 'not-a-uuid'::uuid")).toBe("invalid_input");
    });
  });
}
