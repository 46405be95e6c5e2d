import { type SQL, sql } from "drizzle-orm";
import { afterAll, beforeAll, expect } from "vitest";
import { buildApp, type HeraldApp } from "../../src/api/app.js";
import { query } from "../../src/db/client.js";
import { createProcessor } from "../../src/ingest/processor.js";
import { type Backend, createTestDatabase, type TestDatabase } from "./databases.js";
import { count } from "./fixtures.js";
import { bearer, call } from "./http.js";
import { sendgridKeys } from "./sendgrid.js";
import { eventually } from "./wait.js";

export const adminToken = "ingest-admin-token-0123456789";

/** Run a webhook processor on `database` until no delivery is pending or in flight. */
export async function processAllDeliveries(database: TestDatabase["database"]) {
  const worker = createProcessor({ db: database.db, listen: database.listen, pollIntervalMs: 50 });
  await worker.start();
  await eventually(
    async () => (await count(database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
    15_000,
    "deliveries processed",
  );
  await worker.stop();
}

/**
 * A Herald app on a fresh database of `backend` for the ingestion and messages specs (created before the
 * describe's tests, dropped after), with the helpers they share: tenants with a SendGrid source, signed
 * posts, the processor run to completion, the messages and suppressions API.
 */
export function ingestHarness(backend: Backend) {
  let t: TestDatabase;
  let h: HeraldApp;
  const keys = sendgridKeys();

  beforeAll(async () => {
    t = await createTestDatabase(backend);
    h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 5 * 1024 * 1024 } });
  });
  afterAll(async () => {
    await h?.app.close();
    await t?.drop();
  });

  async function tenantWithSource(name: string, signed = true) {
    const created = await call(h.app, {
      method: "POST",
      url: "/api/v1/admin/tenants",
      headers: bearer(adminToken),
      payload: { name },
    });
    const key = created.body.api_key as string;
    const source = await call(h.app, {
      method: "POST",
      url: "/api/v1/sources",
      headers: bearer(key),
      payload: {
        provider: "sendgrid",
        ...(signed ? { verification: { public_key: keys.publicKeyBase64 } } : {}),
      },
    });
    return { key, tenantId: created.body.tenant.id as string, url: source.body.url as string };
  }

  const post = (url: string, body: string | Buffer, headers: Record<string, string> = keys.sign(body)) =>
    call(h.app, {
      method: "POST",
      url,
      payload: body,
      headers: { "content-type": "application/json", ...headers },
    });

  /** The archived body of the one delivery matching `where`, as bytes. */
  async function archivedBody(where: SQL): Promise<Buffer> {
    const rows = await query<{ body: Buffer | Uint8Array }>(
      t.database.db,
      sql`select body from webhook_deliveries where ${where}`,
    );
    expect(rows).toHaveLength(1);
    return Buffer.from(rows[0]!.body);
  }

  /** Run the processor until every delivery is processed. */
  const processAll = () => processAllDeliveries(t.database);

  /** Each stored event of a tenant with the message it is linked to, by provider event id. */
  const linkedEvents = (tenantId: string) =>
    query<{ provider_event_id: string; outbound_message_id: string | null }>(
      t.database.db,
      sql`select provider_event_id, outbound_message_id from message_events
        where tenant_id = ${tenantId} order by provider_event_id`,
    );

  const register = (key: string, payload: object) =>
    call(h.app, { method: "POST", url: "/api/v1/messages", headers: bearer(key), payload });
  const registerBatch = (key: string, messages: object[]) =>
    call(h.app, {
      method: "POST",
      url: "/api/v1/messages/batch",
      headers: bearer(key),
      payload: { messages },
    });
  const suppress = (key: string, payload: object) =>
    call(h.app, { method: "POST", url: "/api/v1/suppressions", headers: bearer(key), payload });

  return {
    get t() {
      return t;
    },
    get h() {
      return h;
    },
    keys,
    tenantWithSource,
    post,
    archivedBody,
    processAll,
    linkedEvents,
    register,
    registerBatch,
    suppress,
  };
}
