import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { type Database, openDatabase } from "../src/db/client.js";
import { createServerDatabase, hasPostgres } from "./support/databases.js";
import { call, expectProblem } from "./support/http.js";
import { TcpRelay } from "./support/proxy.js";
import { eventually } from "./support/wait.js";

const boundMs = 1000;

/** /readyz follows the database: 503 within its bound while it cannot be reached (closed port), 200 once back. */
describe.skipIf(!hasPostgres())("readiness when the database goes away", () => {
  let server: Awaited<ReturnType<typeof createServerDatabase>>;
  let relay: TcpRelay;
  let database: Database;
  let h: HeraldApp;

  beforeAll(async () => {
    server = await createServerDatabase();
    const target = new URL(server.url);
    relay = new TcpRelay(target.hostname, Number(target.port || 5432));
    const port = await relay.open();
    const viaRelay = new URL(server.url);
    viaRelay.host = `127.0.0.1:${port}`;
    // The API's bounds (see databaseTimeouts in src/runtime.ts), at one second.
    database = await openDatabase({
      url: viaRelay.toString(),
      connectTimeoutMs: boundMs,
      statementTimeoutMs: boundMs,
      lockTimeoutMs: boundMs,
      deadlineMs: boundMs,
    });
    h = await buildApp({
      database,
      config: { adminToken: undefined, bodyLimitBytes: 1 << 20, databaseTimeoutMs: boundMs },
    });
  });
  afterAll(async () => {
    await h?.app.close();
    await database?.close();
    await relay?.cut();
    await server?.drop();
  });

  it("is ready, then 503 while the port is closed, then ready again", async () => {
    expect((await call(h.app, { method: "GET", url: "/readyz" })).status).toBe(200);
    await relay.cut();
    const started = Date.now();
    const down = await call(h.app, { method: "GET", url: "/readyz" });
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ status: "unavailable" });
    expect(Date.now() - started).toBeLessThan(boundMs + 1000); // answers within its bound
    // Routes that need the database answer 503 unavailable, never a 200 or a hang.
    const routeStarted = Date.now();
    expectProblem(
      await call(h.app, {
        method: "GET",
        url: "/api/v1/sources",
        headers: { authorization: `Bearer hk_${"a".repeat(43)}` },
      }),
      503,
      "unavailable",
    );
    expect(Date.now() - routeStarted).toBeLessThan(boundMs + 1000);
    expect((await call(h.app, { method: "GET", url: "/healthz" })).status).toBe(200);
    await relay.open();
    await eventually(
      async () => (await call(h.app, { method: "GET", url: "/readyz" })).status === 200,
      5000,
      "/readyz 200 once the database is back",
    );
  });
});
