import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase, query } from "../src/db/client.js";
import { createServerDatabase, hasPostgres } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { cleanEnv, type Spawned, spawnProcess } from "./support/process.js";
import { eventually } from "./support/wait.js";

const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const adminToken = "inbound-e2e-admin-token-0123456789";

/**
 * Two `herald serve` processes on one PostgreSQL database (each with its own inbound worker), answering
 * inbound messages posted to both at once: one conversation per pair, each message once; everything is
 * still there after both are stopped and one is started again. Needs `npm run build`.
 */
describe.skipIf(!hasPostgres())("inbound messages on two server processes", () => {
  let server: { url: string; drop(): Promise<void> };
  let database: Database;
  beforeAll(async () => {
    server = await createServerDatabase();
    database = await openDatabase({ url: server.url });
  });
  afterAll(async () => {
    await database?.close();
    await server?.drop();
  });

  const start = async (): Promise<{ process: Spawned; url: string }> => {
    const spawned = spawnProcess(process.execPath, [cli, "serve"], {
      env: cleanEnv({
        DATABASE_URL: server.url,
        PORT: "0",
        LOG_LEVEL: "fatal",
        HERALD_ADMIN_TOKEN: adminToken,
        HERALD_POLL_INTERVAL_MS: "200",
      }),
    });
    const [, url] = await spawned.waitFor(/Herald listening on (http:\/\/\S+)/, 60_000);
    return { process: spawned, url: url! };
  };

  const post = async (base: string, path: string, token: string, body: object) => {
    const response = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  const sms = (id: string, from: string, body: string) => ({
    channel: "sms",
    provider: "twilio",
    provider_message_id: id,
    from,
    to: "+14155550100",
    body,
  });

  const drained = async () =>
    (await count(database.db, "inbound_events", "status in ('pending', 'processing')")) === 0;

  it("threads messages posted to both at once into one conversation per pair, and keeps them across a restart", async () => {
    const [a, b] = await Promise.all([start(), start()]);
    const created = await post(a.url, "/api/v1/admin/tenants", adminToken, { name: "inbound-e2e" });
    expect(created.status).toBe(201);
    const key = created.body.api_key as string;
    const tenantId = (created.body.tenant as { id: string }).id;

    // 20 different messages of one pair and 20 copies of another's one message, alternating between them.
    const answers = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) =>
        post(i % 2 ? a.url : b.url, "/api/v1/inbound", key, sms(`SMe2e${i}`, "+14155550142", `hi ${i}`)),
      ),
      ...Array.from({ length: 20 }, (_, i) =>
        post(i % 2 ? a.url : b.url, "/api/v1/inbound", key, sms("SMe2ecopy", "+14155550143", "once")),
      ),
    ]);
    expect(answers.map((x) => x.status)).toEqual(Array(40).fill(202));
    expect(answers.slice(20).filter((x) => x.body.duplicate === false)).toHaveLength(1);
    await eventually(drained, 30_000, "inbound events threaded");

    const conversations = () =>
      query<{ participant_address: string; message_count: number; messages: number }>(
        database.db,
        sql`select c.participant_address, c.message_count,
          (select count(*)::int from inbound_messages m where m.conversation_id = c.id) as messages
        from conversations c where c.tenant_id = ${tenantId} order by 1`,
      );
    expect(await conversations()).toEqual([
      { participant_address: "+14155550142", message_count: 20, messages: 20 },
      { participant_address: "+14155550143", message_count: 1, messages: 1 },
    ]);
    expect(await count(database.db, "inbound_messages", `tenant_id = '${tenantId}'`)).toBe(21);

    a.process.child.kill("SIGTERM");
    b.process.child.kill("SIGTERM");
    expect(await a.process.exited).toBe(0);
    expect(await b.process.exited).toBe(0);

    const again = await start();
    const later = await post(
      again.url,
      "/api/v1/inbound",
      key,
      sms("SMe2e-later", "+1 415 555 0142", "back"),
    );
    expect(later.status).toBe(202);
    const repeat = await post(again.url, "/api/v1/inbound", key, sms("SMe2e3", "+14155550142", "hi 3"));
    expect(repeat.body.duplicate).toBe(true);
    await eventually(drained, 30_000, "inbound events threaded after the restart");
    expect(await conversations()).toEqual([
      { participant_address: "+14155550142", message_count: 21, messages: 21 },
      { participant_address: "+14155550143", message_count: 1, messages: 1 },
    ]);
    const [latest] = await query<{ thread_reason: string }>(
      database.db,
      sql`select thread_reason from inbound_messages where provider_message_id = 'SMe2e-later'`,
    );
    expect(latest?.thread_reason).toBe("address_pair");
    again.process.child.kill("SIGTERM");
    await again.process.exited;
  }, 120_000);
});
