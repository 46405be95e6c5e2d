import { connect } from "node:net";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import { errorCatalogue } from "../src/errors.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { bearer, call, expectProblem, newTenantKey } from "./support/http.js";

const adminToken = "hardening-admin-token-0123456789";
const bodyLimitBytes = 256 * 1024;

interface RawAnswer {
  status: number;
  headers: string;
  body: string;
  /** The connection was reset before an answer arrived. */
  reset: boolean;
}

/**
 * Send bytes on a real socket, all of them before reading anything (as naive clients do), and parse the
 * answer. Node's own parser and Fastify's router see these requests, which `inject()` would bypass.
 */
function rawRequest(port: number, request: Buffer | string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let reset = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no answer within 15 s"));
    }, 15_000);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", () => {
      reset = true;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("utf8");
      const [head = "", body = ""] = text.split("\r\n\r\n", 2);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, headers: head.toLowerCase(), body, reset: reset && status === 0 });
    });
    socket.write(request);
  });
}

function expectRawProblem(answer: RawAnswer, status: number, code: string) {
  expect({ status: answer.status, reset: answer.reset }).toEqual({ status, reset: false });
  expect(answer.headers).toContain("content-type: application/problem+json");
  const body = JSON.parse(answer.body);
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String) });
  expect(Object.keys(errorCatalogue)).toContain(body.code);
  return body;
}

const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

describe("hardening: every bad request is a clean 4xx", () => {
  let t: TestDatabase;
  let h: HeraldApp;
  let port: number;
  let keyA: string;
  let keyB: string;

  beforeAll(async () => {
    t = await createTestDatabase(hasPostgres() ? "postgres" : "pglite");
    h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes, maxAttempts: 7 } });
    await h.app.listen({ port: 0, host: "127.0.0.1" });
    port = (h.app.server.address() as { port: number }).port;
    keyA = await newTenantKey(h.app, adminToken, "a");
    keyB = await newTenantKey(h.app, adminToken, "b");
  });
  afterAll(async () => {
    await h?.app.close();
    await t?.drop();
  });

  const post = (url: string, body: string, key = keyA, contentType = "application/json") =>
    rawRequest(
      port,
      Buffer.concat([
        Buffer.from(
          `POST ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: ${contentType}\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`,
        ),
        Buffer.from(body),
      ]),
    );

  describe("deeply nested JSON", () => {
    it("answers 400 naming the path for 4,500 levels in an event's payload or metadata, and stays up", async () => {
      for (const field of ["payload", "metadata"]) {
        const answer = await post(
          "/api/v1/events",
          `{"event_type":"a.b","source":"manual","${field}":{"x":${nested(4500)}}}`,
        );
        const body = expectRawProblem(answer, 400, "validation_failed");
        expect(body.errors[0].path).toMatch(new RegExp(`^/body/${field}/x/0/0/`));
      }
      const message = await post(
        "/api/v1/messages",
        `{"channel":"email","provider":"sendgrid","to":"a@example.com","metadata":{"m":${nested(4500)}}}`,
      );
      expect(expectRawProblem(message, 400, "validation_failed").errors[0].path).toMatch(
        /^\/body\/metadata\/m/,
      );
      const health = await call(h.app, { method: "GET", url: "/healthz" });
      expect(health.status).toBe(200);
      // Nesting up to the bound is accepted.
      const ok = await post(
        "/api/v1/events",
        `{"event_type":"a.b","source":"manual","payload":{"x":${nested(60)}}}`,
      );
      expect(ok.status).toBe(201);
    });
  });

  describe("framework-level errors", () => {
    const get = (url: string, extra = "") =>
      rawRequest(port, `GET ${url} HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`);

    it("414 for a URL too long, whether Node or Herald sees it first", async () => {
      expectRawProblem(await get(`/api/v1/sources?x=${"a".repeat(9000)}`), 414, "uri_too_long");
      expectRawProblem(await get(`/api/v1/sources?x=${"a".repeat(20_000)}`), 414, "uri_too_long");
    });

    it("400 for a malformed URL or request line", async () => {
      expectRawProblem(await get("/api/v1/sources/%E0%A4%A"), 400, "bad_request");
      expectRawProblem(await rawRequest(port, "GARBAGE\r\n\r\n"), 400, "bad_request");
      expectRawProblem(await rawRequest(port, "GET /healthz x HTTP/1.1\r\n\r\n"), 400, "bad_request");
    });

    it("431 for headers too large", async () => {
      expectRawProblem(await get("/healthz", `X-Big: ${"b".repeat(20_000)}\r\n`), 431, "headers_too_large");
    });

    it("413 as an answer (not a reset) to a client that writes a large body before reading", async () => {
      const body = Buffer.alloc(bodyLimitBytes * 16, 0x20);
      for (const framing of [`Content-Length: ${body.length}`, "Transfer-Encoding: chunked"]) {
        const chunked = framing.startsWith("Transfer");
        const payload = chunked
          ? Buffer.concat([
              Buffer.from(`${body.length.toString(16)}\r\n`),
              body,
              Buffer.from("\r\n0\r\n\r\n"),
            ])
          : body;
        const answer = await rawRequest(
          port,
          Buffer.concat([
            Buffer.from(
              `POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keyA}\r\n` +
                `Content-Type: application/json\r\n${framing}\r\nConnection: close\r\n\r\n`,
            ),
            payload,
          ]),
        );
        expectRawProblem(answer, 413, "payload_too_large");
      }
    });

    it("415 for a body declared in another charset; 400 invalid_json for invalid UTF-8", async () => {
      const event = '{"event_type":"a.b","source":"manual"}';
      expectRawProblem(
        await post("/api/v1/events", event, keyA, "application/json; charset=utf-16"),
        415,
        "unsupported_media_type",
      );
      expectRawProblem(
        await post("/api/v1/events", event, keyA, "application/json; charset=latin1"),
        415,
        "unsupported_media_type",
      );
      expect((await post("/api/v1/events", event, keyA, "application/json; charset=UTF-8")).status).toBe(201);
      const invalid = Buffer.concat([
        Buffer.from('{"event_type":"a.b","source":"manual","payload":{"x":"'),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from('"}}'),
      ]);
      const answer = await rawRequest(
        port,
        Buffer.concat([
          Buffer.from(
            `POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keyA}\r\n` +
              `Content-Type: application/json\r\nContent-Length: ${invalid.length}\r\nConnection: close\r\n\r\n`,
          ),
          invalid,
        ]),
      );
      expectRawProblem(answer, 400, "invalid_json");
    });

    it("404 for an unknown route, 405 with Allow for a known path and another method", async () => {
      expectRawProblem(await get("/api/v1/nothing-here"), 404, "not_found");
      const wrong = await rawRequest(
        port,
        `DELETE /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keyA}\r\nConnection: close\r\n\r\n`,
      );
      expectRawProblem(wrong, 405, "method_not_allowed");
      expect(wrong.headers).toMatch(/allow: [^\r]*\bpost\b/);
      expect(wrong.headers).toMatch(/allow: [^\r]*\bget\b/);
      const withId = await rawRequest(
        port,
        `PUT /api/v1/sources/00000000-0000-7000-8000-000000000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expectRawProblem(withId, 405, "method_not_allowed");
      expect(withId.headers).toMatch(/allow: delete, get, head/);
    });
  });

  it("gives a subscription created without max_attempts HERALD_MAX_ATTEMPTS", async () => {
    const created = await call(h.app, {
      method: "POST",
      url: "/api/v1/subscriptions",
      headers: bearer(keyB),
      payload: { name: "defaults", event_types: ["a.*"], sink: { type: "nats", subject: "d" } },
    });
    expect(created.status).toBe(201);
    expect(created.body.max_attempts).toBe(7);
  });

  it("gives each archived webhook delivery HERALD_MAX_ATTEMPTS", async () => {
    const source = await call(h.app, {
      method: "POST",
      url: "/api/v1/sources",
      headers: bearer(keyB),
      payload: { provider: "sendgrid" },
    });
    const delivered = await call(h.app, {
      method: "POST",
      url: `/api/v1/webhooks/sendgrid/${source.body.id}`,
      headers: { "content-type": "application/json" },
      payload: [{ event: "delivered", email: "a@example.com", timestamp: 1_700_000_000, sg_event_id: "e1" }],
    });
    expect(delivered.status).toBe(200);
    const [row] = await query<{ max_attempts: number }>(
      t.database.db,
      sql`select max_attempts from webhook_deliveries where id = ${delivered.body.delivery_id}`,
    );
    expect(row?.max_attempts).toBe(7);
  });

  describe("cursors", () => {
    /** Each list route, how to give it two rows, and a filter that changes its rows. */
    const lists = [
      { url: "/api/v1/sources", key: "sources", filtered: undefined },
      { url: "/api/v1/subscriptions", key: "subscriptions", filtered: undefined },
      { url: "/api/v1/messages", key: "messages", filtered: "/api/v1/messages?status=sent" },
      { url: "/api/v1/suppressions", key: "suppressions", filtered: "/api/v1/suppressions?channel=email" },
      { url: "/api/v1/message-events", key: "events", filtered: "/api/v1/message-events?type=delivered" },
      { url: "/api/v1/dead-letters", key: "dead_letters", filtered: undefined },
    ];
    const outOfRange = [
      "+200000-01-01T00:00:00.000Z",
      "2020-01-01T00:00:00+99:00",
      "0000-01-01T00:00:00.000Z",
    ].map((at) =>
      Buffer.from(JSON.stringify([at, "01900000-0000-7000-8000-000000000000"])).toString("base64url"),
    );
    const expectCursorRefused = async (url: string, key = keyA) => {
      const answer = await call(h.app, { method: "GET", url, headers: bearer(key) });
      expectProblem(answer, 400, "validation_failed");
      expect(answer.body.errors[0].path).toBe("/querystring/cursor");
    };

    beforeAll(async () => {
      const headers = bearer(keyA);
      for (let i = 0; i < 2; i++) {
        await call(h.app, {
          method: "POST",
          url: "/api/v1/sources",
          headers,
          payload: { provider: "sendgrid" },
        });
        await call(h.app, {
          method: "POST",
          url: "/api/v1/subscriptions",
          headers,
          payload: { name: `s${i}`, event_types: ["a.*"], sink: { type: "nats", subject: `s.${i}` } },
        });
        await call(h.app, {
          method: "POST",
          url: "/api/v1/messages",
          headers,
          payload: { channel: "email", provider: "sendgrid", to: `m${i}@example.com` },
        });
        await call(h.app, {
          method: "POST",
          url: "/api/v1/suppressions",
          headers,
          payload: { channel: "email", address: `s${i}@example.com`, reason: "manual" },
        });
      }
    });

    it("refuse a cursor that decodes to an out-of-range or malformed time on every list route", async () => {
      for (const { url } of lists) {
        for (const cursor of [...outOfRange, "garbage", "", "a.b.c"]) {
          await expectCursorRefused(`${url}?cursor=${encodeURIComponent(cursor)}`);
        }
      }
    });

    it("follow their own list, and are refused on another tenant, filter or route, or when edited", async () => {
      for (const { url, key, filtered } of lists.filter((l) =>
        ["sources", "subscriptions", "messages", "suppressions"].includes(l.key),
      )) {
        const first = await call(h.app, { method: "GET", url: `${url}?limit=1`, headers: bearer(keyA) });
        expect(first.status).toBe(200);
        const cursor = first.body.next_cursor as string;
        expect(cursor).toEqual(expect.any(String));
        const second = await call(h.app, {
          method: "GET",
          url: `${url}?limit=5&cursor=${cursor}`,
          headers: bearer(keyA),
        });
        expect(second.status).toBe(200);
        expect(second.body[key]).toHaveLength(1);
        expect(second.body[key][0].id).not.toBe(first.body[key][0].id);

        await expectCursorRefused(`${url}?cursor=${cursor}`, keyB);
        if (filtered) await expectCursorRefused(`${filtered}&cursor=${cursor}`);
        const otherRoute = lists.find((l) => l.url !== url)!.url;
        await expectCursorRefused(`${otherRoute}?cursor=${cursor}`);
        const flipped = `${cursor.slice(0, 5)}${cursor[5] === "A" ? "B" : "A"}${cursor.slice(6)}`;
        await expectCursorRefused(`${url}?cursor=${flipped}`);
        // The position alone, without its seal: the format of earlier versions, editable by hand.
        await expectCursorRefused(`${url}?cursor=${cursor.split(".")[0]}`);
      }
    });
  });
});
