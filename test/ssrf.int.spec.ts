import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { buildApp } from "../src/api/app.js";
import type { Delivery } from "../src/bus/delivery.js";
import { createDispatcher } from "../src/bus/dispatcher.js";
import { type DestinationPolicy, destinationPolicy } from "../src/bus/sinks/destination.js";
import { HandlerRegistry } from "../src/bus/sinks/handlers.js";
import { sendWebhook } from "../src/bus/sinks/webhook.js";
import { createSubscription } from "../src/bus/subscriptions.js";
import { type Db, query } from "../src/db/client.js";
import { writeEvents } from "../src/events/write.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { makeTenant } from "./support/fixtures.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { eventually } from "./support/wait.js";

const fast = { pollIntervalMs: 50, backoff: { baseMs: 5, maxMs: 20 }, leaseMs: 5000 };
const loopback = ["127.0.0.0/8", "::1/128"];

/** A local HTTP server recording the path of every request; `answer` decides the response. */
async function receiver(
  host: string,
  answer: (path: string) => [number, Record<string, string>?] = () => [204],
) {
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      paths.push(req.url ?? "");
      const [status, headers] = answer(req.url ?? "");
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    paths,
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/**
 * SSRF: a tenant names the webhook URL, so Herald must not POST to loopback, private or metadata addresses
 * whatever the notation, nor through a name or a redirect, unless the operator allowed the network.
 */
describe.skipIf(!hasPostgres())("webhook sinks aimed at internal networks", () => {
  let t: TestDatabase;
  let db: Db;
  // Listening on `::` (dual stack), so 127.0.0.1, ::1 and ::ffff:127.0.0.1 all reach it.
  let inside: Awaited<ReturnType<typeof receiver>>;
  let forms: string[];

  beforeAll(async () => {
    t = await createTestDatabase("postgres");
    db = t.database.db;
    inside = await receiver("::");
    const p = inside.port;
    forms = [
      `http://127.0.0.1:${p}/dotted`,
      `http://127.1:${p}/short`,
      `http://2130706433:${p}/decimal`,
      `http://0x7f000001:${p}/hex`,
      `http://[::1]:${p}/ipv6`,
      `http://[::ffff:127.0.0.1]:${p}/mapped`,
      `http://localhost:${p}/name`,
    ];
  });
  afterAll(async () => {
    inside?.close();
    await t?.drop();
  });

  /** One subscription per URL in a new tenant, one event, and a dispatcher with `destinations` running. */
  async function deliverTo(urls: string[], destinations: DestinationPolicy | undefined) {
    const tenant = await makeTenant(db);
    for (const [i, url] of urls.entries()) {
      await createSubscription(db, tenant, {
        name: `s-${i}`,
        eventTypes: ["ssrf.probe"],
        sink: { type: "webhook", url },
        maxAttempts: 2,
      });
    }
    const worker = createDispatcher({
      db,
      listen: t.database.listen,
      handlers: new HandlerRegistry(),
      ...(destinations ? { destinations } : {}),
      ...fast,
    });
    const failures: string[] = [];
    worker.on("job:failed", (_row, error) => failures.push(error));
    await worker.start();
    await writeEvents(db, [
      { tenantId: tenant, eventType: "ssrf.probe", source: "system", payload: { a: 1 } },
    ]);
    return { tenant, worker, failures };
  }

  const deadLetters = (tenant: string) =>
    query<{ url: string; attempts: number; last_error: string }>(
      db,
      sql`select s.sink->>'url' as url, d.attempts, d.last_error from dead_letters d
        join subscriptions s on s.id = d.subscription_id where d.tenant_id = ${tenant} order by s.name`,
    );

  it("by default delivers nothing to loopback in any notation, and dead-letters the attempts", async () => {
    const { tenant, worker, failures } = await deliverTo(forms, undefined);
    try {
      await eventually(
        async () => (await deadLetters(tenant)).length === forms.length,
        15_000,
        "dead letters",
      );
    } finally {
      await worker.stop();
    }
    expect(inside.paths).toEqual([]);
    const dead = await deadLetters(tenant);
    expect(dead.map((d) => d.url).sort()).toEqual([...forms].sort());
    for (const d of dead) {
      // Retried like any failure, then given up: never retried forever.
      expect(d.attempts).toBe(2);
      expect(d.last_error).toMatch(
        /^WebhookError: POST \S+ failed: DeniedDestinationError: destination (127\.0\.0\.1|::1|::ffff:7f00:1)( \(localhost\))? is in a denied network \(loopback\); allow it with HERALD_WEBHOOK_ALLOWED_NETWORKS$/,
      );
    }
    expect(dead.find((d) => d.url.includes("localhost"))!.last_error).toContain("(localhost)");
    expect(failures).toHaveLength(forms.length); // each first attempt failed and was retried
    const statuses = await query(db, sql`select distinct status from outbox where tenant_id = ${tenant}`);
    expect(statuses).toEqual([{ status: "dead" }]);
  });

  it("delivers to every notation once the network is allowed, and never follows a redirect", async () => {
    // A sink that looks fine but answers 302 towards another local receiver.
    const target = await receiver("127.0.0.1");
    const bouncer = await receiver("127.0.0.1", () => [
      302,
      { location: `http://127.0.0.1:${target.port}/moved` },
    ]);
    const bounce = `http://127.0.0.1:${bouncer.port}/bounce`;
    const { tenant, worker } = await deliverTo([...forms, bounce], destinationPolicy(loopback));
    try {
      await eventually(() => inside.paths.length === forms.length, 15_000, "a delivery per notation");
      await eventually(
        async () => (await deadLetters(tenant)).length === 1,
        15_000,
        "the redirect's dead letter",
      );
    } finally {
      await worker.stop();
      target.close();
      bouncer.close();
    }
    expect([...inside.paths].sort()).toEqual(forms.map((url) => new URL(url).pathname).sort());
    expect(bouncer.paths).toEqual(["/bounce", "/bounce"]); // tried twice, as max_attempts says
    expect(target.paths).toEqual([]);
    const [dead] = await deadLetters(tenant);
    expect(dead).toMatchObject({ url: bounce, attempts: 2 });
    expect(dead!.last_error).toBe(`WebhookError: POST ${bounce} answered 302 (redirects are not followed)`);
  });

  it("allows only the listed networks: 127.0.0.0/8 does not open ::1", async () => {
    const before = inside.paths.length;
    const v6 = forms.find((url) => url.includes("[::1]"))!;
    const v4 = forms.find((url) => url.includes("/dotted"))!;
    const { tenant, worker } = await deliverTo([v6, v4], destinationPolicy(["127.0.0.0/8"]));
    try {
      await eventually(async () => (await deadLetters(tenant)).length === 1, 15_000, "the IPv6 dead letter");
      await eventually(() => inside.paths.length === before + 1, 15_000, "the IPv4 delivery");
    } finally {
      await worker.stop();
    }
    expect(inside.paths.slice(before)).toEqual(["/dotted"]);
    const [dead] = await deadLetters(tenant);
    expect(dead).toMatchObject({ url: v6 });
    expect(dead!.last_error).toContain("destination ::1 is in a denied network (loopback)");
  });

  describe("POST /api/v1/subscriptions", () => {
    const adminToken = "ssrf-admin-token-0123456789";
    async function appWith(webhookAllowedNetworks?: string[]) {
      const h = await buildApp({
        database: t.database,
        config: {
          adminToken,
          bodyLimitBytes: 1 << 20,
          ...(webhookAllowedNetworks ? { webhookAllowedNetworks } : {}),
        },
      });
      const tenant = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: `api-${Math.random().toString(36).slice(2)}` },
      });
      let n = 0;
      const create = (url: string) =>
        call(h.app, {
          method: "POST",
          url: "/api/v1/subscriptions",
          headers: bearer(tenant.body.api_key),
          payload: { name: `hook-${n++}`, event_types: ["message.*"], sink: { type: "webhook", url } },
        });
      return { app: h.app, create };
    }

    const denied = [
      "http://127.0.0.1/",
      "http://127.1/",
      "http://2130706433/",
      "http://0x7f000001/",
      "http://[::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://169.254.169.254/latest/meta-data/",
      "http://10.0.0.1/",
      "http://192.168.1.1:8080/",
      "http://100.64.0.1/",
      "http://[fe80::1]/",
      "http://[fc00::1]/",
      "http://0.0.0.0/",
    ];

    it("answers 400 validation_failed at /body/sink/url for a literal denied address or another scheme", async () => {
      const { app, create } = await appWith();
      try {
        for (const url of denied) {
          const response = await create(url);
          expectProblem(response, 400, "validation_failed");
          expect(response.body.errors).toEqual([
            { path: "/body/sink/url", message: expect.stringMatching(/is in a denied network \(\w+\)/) },
          ]);
        }
        const ftp = await create("ftp://example.com/hook");
        expectProblem(ftp, 400, "validation_failed");
        expect(ftp.body.errors[0].path).toBe("/body/sink/url");
        // A name is judged when it is dialled; a public address is fine.
        expect((await create("http://localhost:9/hook")).status).toBe(201);
        expect((await create("https://8.8.8.8/hook")).status).toBe(201);
      } finally {
        await app.close();
      }
    });

    it("answers 201 when the address's network is allowed, and still 400 for the others", async () => {
      const { app, create } = await appWith([...loopback, "10.0.0.0/8"]);
      try {
        for (const url of [
          "http://127.0.0.1/",
          "http://127.1/",
          "http://[::1]/",
          "http://[::ffff:127.0.0.1]/",
        ]) {
          expect((await create(url)).status).toBe(201);
        }
        expect((await create("http://10.0.0.1/")).status).toBe(201);
        expectProblem(await create("http://169.254.169.254/"), 400, "validation_failed");
        expectProblem(await create("http://192.168.1.1/"), 400, "validation_failed");
      } finally {
        await app.close();
      }
    });
  });
});

/** The sender itself, without a database: its bounds and its one connection per destination. */
describe("sendWebhook", () => {
  const delivery: Delivery = {
    outboxId: 1,
    attempt: 1,
    replayId: null,
    subscription: { id: "s", name: "s", sink: { type: "webhook", url: "" }, secret: "whsec_c2VjcmV0" },
    event: {
      id: "00000000-0000-4000-8000-000000000001",
      tenant_id: "t",
      event_type: "ssrf.probe",
      source: "system",
      timestamp: "2026-11-01T00:00:00.000Z",
      created_at: "2026-11-01T00:00:00.000Z",
      contact_id: null,
      session_id: null,
      message_id: null,
      payload: {},
      metadata: {},
      event_key: null,
      correlation_id: null,
      causation_id: null,
      schema_version: 1,
      sequence_number: null,
      position: 1,
      transaction_id: "1",
    },
  };
  const local = destinationPolicy(loopback);

  async function server(handle: (req: IncomingMessage, res: ServerResponse) => void) {
    let connections = 0;
    const s = createServer(handle);
    s.on("connection", () => connections++);
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => {
      s.closeAllConnections();
      s.close();
    });
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/`, connections: () => connections };
  }

  it("refuses a denied literal without connecting, and a denied name after resolving it", async () => {
    const sink = await server((_req, res) => res.end());
    await expect(sendWebhook(sink.url, delivery)).rejects.toThrow(
      /^POST \S+ failed: DeniedDestinationError: destination 127\.0\.0\.1 is in a denied network \(loopback\)/,
    );
    await expect(sendWebhook(sink.url.replace("127.0.0.1", "localhost"), delivery)).rejects.toThrow(
      /destination (127\.0\.0\.1|::1) \(localhost\) is in a denied network \(loopback\)/,
    );
    expect(sink.connections()).toBe(0);
  });

  it("gives up on a sink that does not answer in time, or answers too slowly", async () => {
    const silent = await server(() => {});
    const started = Date.now();
    await expect(sendWebhook(silent.url, delivery, { timeoutMs: 200, destinations: local })).rejects.toThrow(
      /failed: Error: no answer within 200 ms/,
    );
    const trickle = await server((_req, res) => {
      res.writeHead(200);
      const tick = setInterval(() => res.write("."), 50);
      res.on("close", () => clearInterval(tick));
    });
    await expect(sendWebhook(trickle.url, delivery, { timeoutMs: 300, destinations: local })).rejects.toThrow(
      /no answer within 300 ms/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("reads a bounded part of a huge answer, and reuses its connection for the next delivery", async () => {
    const huge = await server((req, res) => {
      req.resume();
      res.writeHead(500).end("x".repeat(8 * 1024 * 1024));
    });
    await expect(sendWebhook(huge.url, delivery, { destinations: local })).rejects.toThrow(
      /answered 500: x{200}$/,
    );
    const ok = await server((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(204).end());
    });
    await sendWebhook(ok.url, delivery, { destinations: local });
    await sendWebhook(ok.url, delivery, { destinations: local });
    expect(ok.connections()).toBe(1);
  });
});
