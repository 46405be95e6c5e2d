import { randomUUID } from "node:crypto";
import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { errorCatalogue } from "../src/errors.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { bearer, call, newTenantKey } from "./support/http.js";

/**
 * Hostile input over every route of the OpenAPI document: wrong types, nulls, arrays for objects, huge
 * strings, deep nesting, control characters, bad and tampered cursors, bad dates and ranges, unknown
 * parameters, header abuse, wrong content types and charsets. Every case must answer a 4xx problem+json
 * whose code is in the catalogue, within a bound, and the server must answer /healthz afterwards.
 */

const adminToken = "sweep-admin-token-0123456789";

interface JsonSchema {
  type?: string | string[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  maxLength?: number;
  pattern?: string;
  format?: string;
  enum?: unknown[];
  items?: JsonSchema;
}

interface Operation {
  method: string;
  path: string;
  freeTextPath: boolean;
  query: { name: string; schema: JsonSchema }[];
  body: JsonSchema | undefined;
}

/** A valid body per route, the base that one hostile field at a time is put into. */
const validBodies: Record<string, unknown> = {
  "POST /api/v1/admin/tenants": { name: "sweep" },
  "POST /api/v1/sources": { provider: "sendgrid" },
  "POST /api/v1/events": { event_type: "a.b", source: "manual" },
  "POST /api/v1/events/batch": { events: [{ event_type: "a.b", source: "manual" }] },
  "POST /api/v1/subscriptions": { name: "s", event_types: ["a.*"], sink: { type: "nats", subject: "x" } },
  "POST /api/v1/replays": { subscription_id: randomUUID() },
  "POST /api/v1/messages": { channel: "email", provider: "sendgrid", to: "a@example.com" },
  "POST /api/v1/messages/batch": {
    messages: [{ channel: "email", provider: "sendgrid", to: "a@example.com" }],
  },
  "POST /api/v1/suppressions": { channel: "email", address: "a@example.com", reason: "manual" },
};

const deep = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { d: value };
  return value;
};

const typesOf = (schema: JsonSchema): string[] =>
  schema.anyOf ? schema.anyOf.flatMap(typesOf) : [schema.type ?? []].flat();

/**
 * Values the field's schema cannot take, even with the API's type coercion (which turns 5 into "5" and
 * wraps a scalar in an array): objects for scalars, scalars for objects and arrays, strings past their
 * length, control characters where a pattern or format applies, deep nesting where anything goes.
 */
function hostileValues(schema: JsonSchema): unknown[] {
  const types = typesOf(schema);
  if (types.length === 0) return [deep(100)];
  const values: unknown[] = [];
  if (
    types.some((t) => ["string", "integer", "number", "boolean"].includes(t)) &&
    !types.includes("object")
  ) {
    values.push({}, { nested: [1, { x: null }] });
  }
  if (types.includes("string")) {
    if (schema.maxLength !== undefined) values.push("x".repeat(schema.maxLength + 1));
    // PostgreSQL text cannot hold NUL: refused before or by the database, never a 500.
    values.push("nul\u0000byte");
    if (schema.pattern || schema.format || schema.enum)
      values.push("\u0000\u0007\u001b[31m", "🙂".repeat(50));
  }
  if (types.includes("integer") || types.includes("number")) values.push("abc", "1e999x");
  if (types.includes("boolean")) values.push("maybe");
  if (types.includes("object")) values.push("x", 5, [1, 2]);
  if (types.includes("array")) values.push({ not: "an array" });
  if (types.includes("array") && schema.items && typesOf(schema.items).includes("string")) {
    values.push([{ not: "a string" }]);
  }
  return values;
}

const queryValues: Record<string, string[]> = {
  limit: ["-1", "0", "abc", "1000000", "1.5", "%00"],
  cursor: [
    "garbage",
    "%ff%fe",
    Buffer.from(JSON.stringify(["2020-01-01T00:00:00.000+23:00", randomUUID()])).toString("base64url"),
    Buffer.from(JSON.stringify(["+200000-01-01T00:00:00.000Z", randomUUID()])).toString("base64url"),
    `${Buffer.from(JSON.stringify([new Date().toISOString(), randomUUID()])).toString("base64url")}.AAAAAAAAAAAAAAAAAAAAAA`,
    "x".repeat(600),
  ],
};
const dateLike = /^(since|until|start|end)$/;
const dateValues = ["2025-13-45", "yesterday", "99999-01-01T00:00:00Z", "2020-01-01T00:00:00+99:00", "%00"];

function operationsOf(app: HeraldApp["app"]): Operation[] {
  const doc = app.swagger() as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: { in: string; name: string; schema: JsonSchema }[];
          requestBody?: { content: Record<string, { schema: JsonSchema }> };
        }
      >
    >;
  };
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      // A path parameter that is free text (a contact's or a session's own id), not a UUID.
      freeTextPath: (op.parameters ?? []).some((p) => p.in === "path" && p.schema.format !== "uuid"),
      query: (op.parameters ?? [])
        .filter((p) => p.in === "query")
        .map((p) => ({ name: p.name, schema: p.schema })),
      body: op.requestBody?.content["application/json"]?.schema,
    })),
  );
}

describe("hostile-input sweep over every route", () => {
  let t: TestDatabase;
  let h: HeraldApp;
  let key: string;
  let sourceId: string;

  beforeAll(async () => {
    t = await createTestDatabase(hasPostgres() ? "postgres" : "pglite");
    h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 256 * 1024 } });
    key = await newTenantKey(h.app, adminToken, "sweeper");
    const source = await call(h.app, {
      method: "POST",
      url: "/api/v1/sources",
      headers: bearer(key),
      payload: { provider: "sendgrid" },
    });
    sourceId = source.body.id;
  });
  afterAll(async () => {
    await h?.app.close();
    await t?.drop();
  });

  it("answers every case with a 4xx problem from the catalogue, and stays up", async () => {
    const operations = operationsOf(h.app);
    expect(operations.length).toBeGreaterThanOrEqual(30);
    const cases: { name: string; request: InjectOptions }[] = [];
    const add = (name: string, request: InjectOptions) => cases.push({ name, request });

    for (const op of operations) {
      const id = `${op.method} ${op.path}`;
      const admin = op.path.startsWith("/api/v1/admin");
      const webhook = op.path.startsWith("/api/v1/webhooks");
      const auth = admin ? bearer(adminToken) : webhook ? {} : bearer(key);
      const url = op.path.replace(/\{(\w+)\}/g, () => randomUUID());
      const base = validBodies[`${op.method} ${op.path}`] ?? {};
      const json = { ...auth, "content-type": "application/json" };
      const send = (payload: unknown, headers: Record<string, string> = json, at = url) =>
        ({ method: op.method, url: at, headers, payload: payload as string }) as InjectOptions;

      // Path parameters that are not ids (of a free-text one, only those no id can be: too long, a NUL).
      for (const bad of [
        ...(op.freeTextPath ? [] : ["not-a-uuid", "'%20or%201=1--", "..%2F..%2Fetc%2Fpasswd", "%E2%80%AE"]),
        "%00",
        "x".repeat(300),
      ]) {
        if (op.path.includes("{"))
          add(
            `${id} path ${bad.slice(0, 20)}`,
            send(base, json, op.path.replace(/\{\w+\}/, bad).replace(/\{\w+\}/g, randomUUID())),
          );
      }
      // Header abuse.
      if (!webhook) {
        for (const authorization of [
          "",
          "Bearer",
          "Bearer ",
          "Basic dXNlcjpwYXNz",
          `Bearer hk_${"A".repeat(43)}`,
          `Bearer ${"x".repeat(8000)}`,
          "bearer\ttoken",
        ]) {
          add(
            `${id} authorization ${authorization.slice(0, 16)}`,
            send(base, { "content-type": "application/json", authorization }),
          );
        }
      }
      if (!webhook)
        add(
          `${id} unknown parameter`,
          send(op.method === "GET" ? undefined : base, json, `${url}?colour=red`),
        );
      if (op.method === "GET") {
        add(`${id} parameter twice with an array`, send(undefined, auth, `${url}?zz[]=1&zz[]=2`));
        add(`${id} bad percent-encoding`, send(undefined, auth, `${url}?limit=%zz`));
        for (const q of op.query) {
          const values =
            queryValues[q.name] ??
            (dateLike.test(q.name)
              ? dateValues
              : q.schema.format === "uuid"
                ? ["not-a-uuid", "%00", "x".repeat(2000)]
                : []);
          const enumLike =
            typesOf(q.schema).includes("string") && (q.schema.enum || q.schema.pattern || q.schema.anyOf);
          const all = [
            ...values,
            ...(enumLike ? ["%01%02", "x".repeat(5000), "DROP%20TABLE"] : []),
            ...(typesOf(q.schema).some((t) => t === "integer" || t === "number") && !values.length
              ? ["abc", "-99999999999999999999"]
              : []),
          ];
          for (const value of all)
            add(`${id} ?${q.name}=${value.slice(0, 20)}`, send(undefined, auth, `${url}?${q.name}=${value}`));
        }
        const range = op.query.map((q) => q.name);
        if (range.includes("since") && range.includes("until")) {
          add(
            `${id} reversed range`,
            send(undefined, auth, `${url}?since=2025-10-10T00:00:00Z&until=2025-10-01T00:00:00Z`),
          );
        }
        continue;
      }
      if (webhook) {
        const at = url.replace(/[0-9a-f-]{36}$/, sourceId);
        for (const body of [
          '{"not":"an array"}',
          '"text"',
          "42",
          "{",
          nestedArrays(5000),
          '[{"event":"delivered"},',
          "\u0000",
        ]) {
          add(`${id} webhook body ${body.slice(0, 16)}`, {
            method: "POST",
            url: at,
            headers: { "content-type": "application/json" },
            payload: body,
          });
        }
        continue;
      }
      if (op.method !== "POST" && op.method !== "PUT" && op.method !== "PATCH") continue;
      // Whole bodies of the wrong shape, encoding or type.
      const wholeBodies = op.body
        ? [
            "[]",
            '"text"',
            "123",
            "null",
            "{",
            nestedArrays(5000),
            '{"__proto__":{"admin":true}}',
            '{"constructor":{"prototype":{"x":1}}}',
          ]
        : ["{", nestedArrays(5000)];
      for (const body of wholeBodies) add(`${id} body ${body.slice(0, 16)}`, send(body));
      add(`${id} text/plain`, send(JSON.stringify(base), { ...auth, "content-type": "text/plain" }));
      add(`${id} form`, send("a=1&b=2", { ...auth, "content-type": "application/x-www-form-urlencoded" }));
      add(
        `${id} utf-16`,
        send(JSON.stringify(base), { ...auth, "content-type": "application/json; charset=utf-16" }),
      );
      add(
        `${id} invalid utf-8`,
        send(
          Buffer.concat([
            Buffer.from('{"x":"'),
            Buffer.from([0xc3, 0x28, 0xff]),
            Buffer.from('"}'),
          ]) as unknown as string,
        ),
      );
      add(`${id} huge`, send(JSON.stringify({ ...(base as object), pad: "x".repeat(300 * 1024) })));
      if (!op.body?.properties) continue;
      add(`${id} unknown field`, send({ ...(base as object), colour: "red" }));
      for (const required of op.body.required ?? []) {
        const { [required]: _, ...rest } = base as Record<string, unknown>;
        add(`${id} without ${required}`, send(rest));
      }
      for (const [field, schema] of Object.entries(op.body.properties)) {
        for (const value of hostileValues(schema)) {
          add(
            `${id} ${field}=${JSON.stringify(value).slice(0, 20)}`,
            send({ ...(base as object), [field]: value }),
          );
        }
      }
    }

    const failures: string[] = [];
    for (const { name, request } of cases) {
      const answer = await Promise.race([
        call(h.app, request),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`${name}: no answer in 10 s`)), 10_000),
        ),
      ]);
      const ok =
        answer.status >= 400 &&
        answer.status < 500 &&
        String(answer.headers["content-type"]).startsWith("application/problem+json") &&
        Object.keys(errorCatalogue).includes(answer.body?.code) &&
        errorCatalogue[answer.body.code as keyof typeof errorCatalogue].status === answer.status;
      if (!ok) failures.push(`${name} → ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
    }
    console.log(
      `hostile sweep: ${cases.length} cases over ${operations.length} routes, ${failures.length} failed`,
    );
    expect(failures).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect((await call(h.app, { method: "GET", url: "/healthz" })).status).toBe(200);
  });
});

function nestedArrays(levels: number): string {
  return `[${"[".repeat(levels)}${"]".repeat(levels)}]`;
}
