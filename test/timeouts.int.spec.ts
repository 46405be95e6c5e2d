import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Database, type OpenOptions, openDatabase, query } from "../src/db/client.js";
import { classifyDbError, errorCode } from "../src/db/errors.js";
import { createServerDatabase, hasPostgres } from "./support/databases.js";
import { TcpRelay } from "./support/proxy.js";
import { eventually, sleep } from "./support/wait.js";

/** How long a promise took to settle, and its error if it failed. */
async function timed(work: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { ms: performance.now() - started, error };
}

/**
 * The database layer's bounds on PostgreSQL (see `OpenOptions`), each against a relay the test cuts or
 * silences: deadlines on queries and transactions, the server's time-outs, the silent-connection check, and
 * a transaction whose connection drops (which crashed the process in postgres.js).
 */
describe.skipIf(!hasPostgres())("database time-outs on PostgreSQL", () => {
  let server: Awaited<ReturnType<typeof createServerDatabase>>;
  let direct: Database;
  let relay: TcpRelay;
  const opened: Database[] = [];

  beforeAll(async () => {
    server = await createServerDatabase();
    direct = await openDatabase({ url: server.url });
    await direct.db.execute(sql`create table probe (k text primary key)`);
  });
  afterEach(async () => {
    await relay?.cut();
    await Promise.all(opened.splice(0).map((d) => d.close().catch(() => {})));
  });
  afterAll(async () => {
    await direct?.close();
    await server?.drop();
  });

  /** A handle through a fresh relay. */
  async function viaRelay(options: OpenOptions): Promise<Database> {
    const target = new URL(server.url);
    relay = new TcpRelay(target.hostname, Number(target.port || 5432));
    const url = new URL(server.url);
    url.host = `127.0.0.1:${await relay.open()}`;
    const database = await openDatabase({ ...options, url: url.toString() });
    opened.push(database);
    await database.warm();
    return database;
  }
  const stored = async (k: string) =>
    (await query(direct.db, sql`select 1 from probe where k = ${k}`)).length > 0;
  /** Sessions of other connections whose current (or last) statement contains `text`, seen by the server. */
  const running = async (text: string) =>
    (
      await query<{ n: number }>(
        direct.db,
        sql`select count(*)::int as n from pg_stat_activity
          where pid <> pg_backend_pid() and state <> 'idle' and query like ${`%${text}%`}`,
      )
    )[0]!.n;

  it("fails a transaction whose connection drops as unavailable, and the process lives on", async () => {
    const database = await viaRelay({ poolSize: 1 });
    const transaction = database.db.transaction(async (tx) => {
      await tx.execute(sql`insert into probe values ('dropped')`);
      await tx.execute(sql`select pg_sleep(2)`);
    });
    await eventually(async () => (await running("pg_sleep(2)")) > 0, 5000, "the transaction inside pg_sleep");
    await relay.cut();
    const { error } = await timed(transaction);
    expect(classifyDbError(error)).toBe("unavailable");
    // postgres.js wrote its ROLLBACK on the closed socket from a timer, which threw out of every caller's reach.
    // What is tested is that nothing throws: an absence, so a bounded window (200 ms) is the point.
    await sleep(200);
    await relay.restore();
    await eventually(async () => (await query(database.db, sql`select 1 as one`)).length === 1);
    expect(await stored("dropped")).toBe(false);
  });

  it("answers a query sent right after its connection failed, and the pool works on", async () => {
    const database = await viaRelay({ poolSize: 1 });
    const failing = database.db.execute(sql`select pg_sleep(1)`);
    void eventually(async () => (await running("pg_sleep(1)")) > 0, 5000).then(() => relay.reset());
    // Sent while postgres.js had failed the connection's queries but not yet forgotten the connection: it
    // went to the dead connection, was never answered, and stuck the pool of one for good.
    const retried = await failing.then(
      () => undefined,
      () => query<{ who: string }>(database.db, sql`select 'retry' as who`),
    );
    expect(retried).toEqual([{ who: "retry" }]);
    for (const who of ["next", "and next"]) {
      expect(await query<{ who: string }>(database.db, sql`select ${who}::text as who`)).toEqual([{ who }]);
    }
  }, 10_000);

  it("answers a query and a transaction on a silenced connection within the deadline", async () => {
    const database = await viaRelay({ poolSize: 2, deadlineMs: 500, reconnectMaxDelayMs: 1000 });
    relay.blackhole();
    const results = await Promise.all([
      timed(database.db.execute(sql`insert into probe values ('silenced query')`)),
      timed(database.db.transaction((tx) => tx.execute(sql`insert into probe values ('silenced tx')`))),
    ]);
    for (const { ms, error } of results) {
      expect(errorCode(error)).toBe("HERALD_DB_TIMEOUT");
      expect(classifyDbError(error)).toBe("unavailable");
      expect(ms).toBeGreaterThanOrEqual(450);
      expect(ms).toBeLessThan(1000);
    }
    await relay.restore();
    await eventually(async () => (await query(database.db, sql`select 1 as one`)).length === 1);
    expect(await stored("silenced query")).toBe(false);
    expect(await stored("silenced tx")).toBe(false);
  });

  it("rolls back a transaction that outlives its deadline at its next statement", async () => {
    const database = await viaRelay({ poolSize: 1, deadlineMs: 300 });
    const late = await timed(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`insert into probe values ('late first')`);
        await tx.execute(sql`select pg_sleep(0.6)`);
        await tx.execute(sql`insert into probe values ('late second')`);
      }),
    );
    expect(errorCode(late.error)).toBe("HERALD_DB_TIMEOUT");
    expect(late.ms).toBeLessThan(600);
    // The server's sleep ends; the transaction refuses its next statement and rolls back.
    await eventually(async () => (await running("pg_sleep(0.6)")) === 0, 5000, "the late transaction over");
    expect(await query(database.db, sql`select 1 as one`)).toHaveLength(1);
    expect(await stored("late first")).toBe(false);
    expect(await stored("late second")).toBe(false);
  });

  it("fails new work at once while the driver holds too much given up on, and recovers", async () => {
    // A pool of one holds two late queries at most (see `guardedClient`'s maxOverdue).
    const database = await viaRelay({ poolSize: 1, deadlineMs: 300, reconnectMaxDelayMs: 1000 });
    relay.blackhole();
    const late = await Promise.all([1, 2].map(() => timed(database.db.execute(sql`select 1`))));
    for (const { ms, error } of late) {
      expect(errorCode(error)).toBe("HERALD_DB_TIMEOUT");
      expect(ms).toBeGreaterThanOrEqual(250);
    }
    const fast = await timed(database.db.execute(sql`select 1`));
    expect(errorCode(fast.error)).toBe("HERALD_DB_TIMEOUT");
    expect(fast.ms).toBeLessThan(50);
    await relay.restore();
    await eventually(async () => (await query(database.db, sql`select 1 as one`)).length === 1);
  });

  it("closes a connection whose server has gone silent, and carries on over a new one", async () => {
    // No deadline: what ends the wait is the silence check, at statement time-out + connect time-out.
    const database = await viaRelay({ poolSize: 1, statementTimeoutMs: 300, connectTimeoutMs: 1000 });
    relay.blackhole({ newConnections: true });
    const { ms, error } = await timed(database.db.execute(sql`select 1`));
    expect(errorCode(error)).toBe("ETIMEDOUT");
    expect(classifyDbError(error)).toBe("unavailable");
    expect(ms).toBeGreaterThanOrEqual(1250);
    expect(ms).toBeLessThan(2500);
    expect(await query(database.db, sql`select 1 as one`)).toHaveLength(1);
  });

  it("bounds statements and lock waits on the server, both classified unavailable", async () => {
    const database = await viaRelay({ statementTimeoutMs: 300, lockTimeoutMs: 200 });
    const slow = await timed(database.db.execute(sql`select pg_sleep(5)`));
    expect(errorCode(slow.error)).toBe("57014");
    expect(classifyDbError(slow.error)).toBe("unavailable");
    expect(slow.ms).toBeLessThan(1000);
    await direct.db.execute(sql`insert into probe values ('locked')`);
    await direct.db.transaction(async (tx) => {
      await tx.execute(sql`select 1 from probe where k = 'locked' for update`);
      const waited = await timed(database.db.execute(sql`update probe set k = 'moved' where k = 'locked'`));
      expect(errorCode(waited.error)).toBe("55P03");
      expect(classifyDbError(waited.error)).toBe("unavailable");
    });
  });
});
