import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { latencyBucketCount, latencyBucketOf, latencyPercentiles } from "../src/bus/latencyBuckets.js";
import { outboxQueue } from "../src/bus/outboxQueue.js";
import { query } from "../src/db/client.js";
import { claimBatch } from "../src/queue/claim.js";
import { completeBatch } from "../src/queue/complete.js";
import { failBatch } from "../src/queue/fail.js";
import { releaseBatch } from "../src/queue/release.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { bearer, call, expectProblem } from "./support/http.js";

const adminToken = "bus-admin-token-0123456789";

for (const backend of backends()) {
  describe(`events and bus API on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    let keyA: string;
    let keyB: string;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1 << 20 } });
      const tenant = (name: string) =>
        call(h.app, {
          method: "POST",
          url: "/api/v1/admin/tenants",
          headers: bearer(adminToken),
          payload: { name },
        });
      keyA = (await tenant("a")).body.api_key;
      keyB = (await tenant("b")).body.api_key;
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    const post = (key: string, url: string, payload: unknown) =>
      call(h.app, { method: "POST", url, headers: bearer(key), payload: payload as object });
    const get = (key: string, url: string) => call(h.app, { method: "GET", url, headers: bearer(key) });

    it("creates events idempotently and reads them back, per tenant", async () => {
      const body = {
        event_type: "contact.created",
        source: "manual",
        payload: { a: 1 },
        event_key: "e-1",
        timestamp: "2026-11-01T10:00:00.000Z",
      };
      const created = await post(keyA, "/api/v1/events", body);
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        event_type: "contact.created",
        source: "manual",
        timestamp: "2026-11-01T10:00:00.000Z",
        payload: { a: 1 },
      });
      expect(created.body.created_at).toMatch(/Z$/);
      const again = await post(keyA, "/api/v1/events", body);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ id: created.body.id, duplicate: true });
      expect((await get(keyA, `/api/v1/events/${created.body.id}`)).body.id).toBe(created.body.id);
      expectProblem(await get(keyB, `/api/v1/events/${created.body.id}`), 404, "not_found");
      // Tenant B's same key is a different event.
      expect((await post(keyB, "/api/v1/events", body)).status).toBe(201);
    });

    it("accepts bare POSTs whose fields are all optional, and names the fields a bare POST lacks", async () => {
      const bare = (url: string, headers: Record<string, string> = {}) =>
        call(h.app, { method: "POST", url, headers: { ...bearer(keyA), ...headers } });
      expect((await bare("/api/v1/dead-letters/retry")).status).toBe(202);
      expect((await bare("/api/v1/dead-letters/retry", { "content-type": "application/json" })).status).toBe(
        202,
      );
      const created = await post(keyA, "/api/v1/subscriptions", {
        name: "bare",
        event_types: ["bare.*"],
        sink: { type: "webhook", url: "https://example.com/hook" },
      });
      const paused = await bare(`/api/v1/subscriptions/${created.body.id}/pause`, {
        "content-type": "application/json",
      });
      expect(paused.status).toBe(200);
      expect(paused.body.paused).toBe(true);
      await call(h.app, {
        method: "DELETE",
        url: `/api/v1/subscriptions/${created.body.id}`,
        headers: bearer(keyA),
      });
      expectProblem(
        await bare("/api/v1/events", { "content-type": "application/json" }),
        400,
        "validation_failed",
      );
      expectProblem(await bare("/api/v1/events"), 400, "validation_failed");
    });

    it("validates events and names the failing index of a batch", async () => {
      expectProblem(
        await post(keyA, "/api/v1/events", { event_type: "Bad Type", source: "manual" }),
        400,
        "validation_failed",
      );
      expectProblem(
        await post(keyA, "/api/v1/events", { event_type: "a.b", source: "moon" }),
        400,
        "validation_failed",
      );
      // Event times outside 2000 … tomorrow would create partitions at will: refused, naming the field.
      const far = await post(keyA, "/api/v1/events", {
        event_type: "a.b",
        source: "manual",
        timestamp: "2999-01-01T00:00:00Z",
      });
      expectProblem(far, 400, "validation_failed");
      expect(far.body.errors).toEqual([{ path: "/body/timestamp", message: "out of range" }]);
      const old = await post(keyA, "/api/v1/events/batch", {
        events: [
          { event_type: "a.b", source: "manual" },
          { event_type: "a.b", source: "manual", timestamp: "1970-01-01T00:00:00Z" },
        ],
      });
      expectProblem(old, 400, "validation_failed");
      expect(old.body.errors).toEqual([{ path: "/body/events/1/timestamp", message: "out of range" }]);
      // Valid JSON that PostgreSQL cannot store (jsonb has no NUL character): a 400, not a 500.
      expectProblem(
        await post(keyA, "/api/v1/events", {
          event_type: "a.b",
          source: "manual",
          payload: { x: "a\u0000b" },
        }),
        400,
        "validation_failed",
      );
      const batch = await post(keyA, "/api/v1/events/batch", {
        events: [
          { event_type: "a.b", source: "system" },
          { event_type: "a.b", source: "system", timestamp: "yesterday" },
        ],
      });
      expectProblem(batch, 400, "validation_failed");
      expect(batch.body.errors[0].path).toContain("/events/1");
      const ok = await post(keyA, "/api/v1/events/batch", {
        events: [
          { event_type: "a.b", source: "system", event_key: "k" },
          { event_type: "a.b", source: "system", event_key: "k" },
        ],
      });
      expect(ok.status).toBe(201);
      expect(ok.body.results.map((r: { duplicate: boolean }) => r.duplicate)).toEqual([false, true]);
    });

    it("manages subscriptions, hides them from other tenants, pauses and resumes", async () => {
      const created = await post(keyA, "/api/v1/subscriptions", {
        name: "hooks",
        event_types: ["message.*", "contact.created"],
        sink: { type: "webhook", url: "https://example.com/hook" },
        ordered: true,
        max_attempts: 7,
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name: "hooks", ordered: true, max_attempts: 7, paused: false });
      expect(created.body.secret).toMatch(/^whsec_/);
      const id = created.body.id;
      expect((await get(keyA, `/api/v1/subscriptions/${id}`)).body).not.toHaveProperty("secret");
      expectProblem(await get(keyB, `/api/v1/subscriptions/${id}`), 404, "not_found");
      expectProblem(await post(keyB, `/api/v1/subscriptions/${id}/pause`, {}), 404, "not_found");
      expect((await post(keyA, `/api/v1/subscriptions/${id}/pause`, {})).body.paused).toBe(true);
      expect((await post(keyA, `/api/v1/subscriptions/${id}/resume`, {})).body.paused).toBe(false);
      expectProblem(
        await post(keyA, "/api/v1/subscriptions", {
          name: "x",
          event_types: ["message.*"],
          sink: { type: "webhook", url: "ftp://x" },
        }),
        400,
        "validation_failed",
      );
      expectProblem(
        await post(keyA, "/api/v1/subscriptions", {
          name: "hooks",
          event_types: ["a"],
          sink: { type: "nats", subject: "a.b" },
        }),
        409,
        "conflict",
      );
      expect((await get(keyA, "/api/v1/subscriptions")).body.subscriptions).toHaveLength(1);
      expect((await get(keyB, "/api/v1/subscriptions")).body.subscriptions).toHaveLength(0);
    });

    it("lists and retries dead letters, replays, and reports bus stats and integrity", async () => {
      const sub = await post(keyA, "/api/v1/subscriptions", {
        name: "dl",
        event_types: ["dl.*"],
        sink: { type: "nats", subject: "x.y" },
        max_attempts: 1,
      });
      await post(keyA, "/api/v1/events", { event_type: "dl.one", source: "system" });
      const db = t.database.db;
      await db.execute(
        sql`update outbox set next_attempt_at = now() - interval '1 second' where subscription_id = ${sub.body.id}`,
      );
      const [row] = await claimBatch(db, outboxQueue, {
        workerId: "test",
        limit: 1,
        leaseMs: 1000,
        now: new Date(),
      });
      await failBatch(
        db,
        outboxQueue,
        "test",
        [{ id: row!.id, attempts: row!.attempts, error: "sink down", delayMs: 0 }],
        new Date(),
      );

      const list = await get(keyA, `/api/v1/dead-letters?subscription_id=${sub.body.id}`);
      expect(list.body.dead_letters).toEqual([
        expect.objectContaining({
          subscription_id: sub.body.id,
          event_type: "dl.one",
          attempts: 1,
          last_error: "sink down",
        }),
      ]);
      expect((await get(keyB, "/api/v1/dead-letters")).body.dead_letters).toEqual([]);
      const letterId = list.body.dead_letters[0].id;
      expect((await get(keyA, "/api/v1/dead-letters?event_type=dl.one")).body.dead_letters).toHaveLength(1);
      expect((await get(keyA, "/api/v1/dead-letters?event_type=dl.other")).body.dead_letters).toEqual([]);
      expect((await get(keyA, `/api/v1/dead-letters/${letterId}`)).body).toEqual({
        ...list.body.dead_letters[0],
        retried_at: null,
        attempt_errors: [{ attempt: 1, error: "sink down", at: expect.stringMatching(/^\d{4}-.*Z$/) }],
      });
      expectProblem(await get(keyB, `/api/v1/dead-letters/${letterId}`), 404, "not_found");
      expectProblem(await post(keyB, `/api/v1/dead-letters/${letterId}/retry`, {}), 404, "not_found");
      const retried = await post(keyA, `/api/v1/dead-letters/${letterId}/retry`, {});
      expect(retried.status).toBe(202);
      expect((await get(keyA, `/api/v1/dead-letters/${letterId}`)).body.retried_at).toEqual(
        expect.any(String),
      );
      expect((await post(keyA, "/api/v1/dead-letters/retry", { subscription_id: sub.body.id })).body).toEqual(
        { retried: 0 },
      );

      const replay = await post(keyA, "/api/v1/replays", {
        subscription_id: sub.body.id,
        start: "2020-01-01",
        end: "2099-12-31",
      });
      expect(replay.status).toBe(202);
      expect(replay.body.events).toBe(1);
      expectProblem(await post(keyB, "/api/v1/replays", { subscription_id: sub.body.id }), 404, "not_found");
      expectProblem(
        await post(keyA, "/api/v1/replays", {
          subscription_id: sub.body.id,
          start: "2026-02-01",
          end: "2026-01-01",
        }),
        400,
        "validation_failed",
      );

      const stats = await get(keyA, "/api/v1/bus/stats");
      expect(stats.status).toBe(200);
      expect(stats.body.outbox).toMatchObject({
        pending: expect.any(Number),
        processing: expect.any(Number),
        completed: expect.any(Number),
        failed: expect.any(Number),
      });
      expect(stats.body.outbox.pending).toBeGreaterThanOrEqual(2);
      expect(stats.body).toHaveProperty("latency_ms.p99");
      // Due deliveries waiting: the lag is the oldest one's wait; a tenant with none waiting has no lag.
      expect(stats.body.lag_ms).toBeGreaterThanOrEqual(0);
      expect((await get(keyB, "/api/v1/bus/stats")).body.lag_ms).toBeNull();
      const integrity = await get(keyA, "/api/v1/bus/integrity");
      expect(integrity.body.ok).toBe(true);
      expect(integrity.body.checks.map((c: { name: string }) => c.name)).toContain("outbox_without_event");
    });

    it("reports bus stats and a subscription's health from the delivery rollups and the dead rows", async () => {
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "stats" },
      });
      const key: string = created.body.api_key;
      const tenantId: string = created.body.tenant.id;
      const subscribe = async (name: string, types: string[]) =>
        (
          await post(key, "/api/v1/subscriptions", {
            name,
            event_types: types,
            sink: { type: "nats", subject: "s.t" },
            max_attempts: 1,
          })
        ).body.id as string;
      const sub = await subscribe("stats", ["st.*"]);
      const other = await subscribe("other", ["other.*"]);
      const fresh = (await get(key, `/api/v1/subscriptions/${sub}`)).body;
      expect(fresh.health).toEqual({
        window_seconds: 3600,
        delivered: 0,
        failed: 0,
        success_rate: null,
        latency_ms: { p50: null, p95: null },
        last_delivered_at: null,
        last_error: null,
      });
      // Delivered after these many ms (each row's creation moved back by it); the last st.b row fails.
      const plan = [
        { type: "st.a", ms: 10 },
        { type: "st.a", ms: 10 },
        { type: "st.a", ms: 10 },
        { type: "st.a", ms: 5000 },
        { type: "st.b", ms: 100 },
        { type: "st.b", ms: null },
        { type: "other.x", ms: 20 },
      ];
      for (const [i, p] of plan.entries())
        await post(key, "/api/v1/events", { event_type: p.type, source: "system", payload: { i } });
      const db = t.database.db;
      const now = new Date();
      await db.execute(
        sql`update outbox set next_attempt_at = now() - interval '1 second' where tenant_id = ${tenantId}`,
      );
      const claimed = await claimBatch(db, outboxQueue, { workerId: "s", limit: 100, leaseMs: 60_000, now });
      // Other tenants' rows (of the tests before) go back untouched.
      await releaseBatch(
        db,
        outboxQueue,
        "s",
        claimed.filter((r) => r.tenant_id !== tenantId),
        now,
      );
      const rows = claimed.filter((r) => r.tenant_id === tenantId);
      expect(rows).toHaveLength(plan.length);
      const planOf = (row: (typeof rows)[number]) => {
        const event = (typeof row.event === "string" ? JSON.parse(row.event) : row.event) as {
          payload: { i: number };
        };
        return plan[event.payload.i]!;
      };
      for (const row of rows) {
        const ms = planOf(row).ms ?? 0;
        await db.execute(
          sql`update outbox set created_at = ${now.toISOString()}::timestamptz - ${ms} * interval '1 millisecond' where id = ${row.id}`,
        );
      }
      const failing = rows.filter((r) => planOf(r).ms === null);
      await failBatch(
        db,
        outboxQueue,
        "s",
        failing.map((r) => ({ id: r.id, attempts: r.attempts, error: "sink down", delayMs: 0 })),
        now,
      );
      const delivering = rows.filter((r) => planOf(r).ms !== null);
      expect(await completeBatch(db, outboxQueue, "s", delivering, now)).toHaveLength(delivering.length);

      const histogramOf = (latencies: number[]) => {
        const buckets = new Array<number>(latencyBucketCount).fill(0);
        for (const ms of latencies) buckets[latencyBucketOf(ms)]! += 1;
        return buckets;
      };
      const mine = [10, 10, 10, 5000, 100];
      const all = latencyPercentiles(histogramOf([...mine, 20]), 5000);
      const stats = await get(key, "/api/v1/bus/stats?slow_ms=1000");
      expect(stats.status).toBe(200);
      const [{ n: rolledUp }] = (await query<{ n: number }>(
        db,
        sql`select sum(delivered)::int as n from delivery_rollups where tenant_id = ${tenantId}`,
      )) as [{ n: number }];
      expect(rolledUp).toBe(6);
      expect(stats.body).toEqual({
        outbox: { pending: 0, processing: 0, completed: 6, failed: 1 },
        dead_letters: 1,
        lag_ms: null,
        latency_ms: { p50: all.p50, p95: all.p95, p99: all.p99, max: 5000 },
        throughput_per_s: 6 / 3600,
        success_rate: 6 / 7,
        retry_rate: 0,
        failure_rate: 1 / 7,
        slow_events: 1,
        window_seconds: 3600,
        slow_threshold_ms: 1000,
        by_type: {
          "st.a": {
            delivered: 4,
            failed: 0,
            p95_ms: latencyPercentiles(histogramOf([10, 10, 10, 5000]), 5000).p95,
          },
          "st.b": { delivered: 1, failed: 1, p95_ms: latencyPercentiles(histogramOf([100]), 100).p95 },
          "other.x": { delivered: 1, failed: 0, p95_ms: latencyPercentiles(histogramOf([20]), 20).p95 },
        },
      });
      // The median of 10 ms latencies is 10 ms within one bucket (its geometric midpoint, ~9 ms).
      expect(all.p50! / 10).toBeGreaterThan(0.74);
      expect(all.p50! / 10).toBeLessThan(1.26);
      // One subscription's figures.
      const filtered = await get(key, `/api/v1/bus/stats?subscription_id=${sub}`);
      expect(filtered.body.outbox).toEqual({ pending: 0, processing: 0, completed: 5, failed: 1 });
      expect(filtered.body.latency_ms).toEqual({ ...latencyPercentiles(histogramOf(mine), 5000), max: 5000 });
      expect(Object.keys(filtered.body.by_type).sort()).toEqual(["st.a", "st.b"]);
      // Another tenant sees none of it.
      expect((await get(keyB, "/api/v1/bus/stats")).body.by_type).not.toHaveProperty("st.a");

      const health = (await get(key, `/api/v1/subscriptions/${sub}`)).body;
      expect(health).toMatchObject({ id: sub, name: "stats", paused: false });
      const percentiles = latencyPercentiles(histogramOf(mine), 5000);
      expect(health.health).toEqual({
        window_seconds: 3600,
        delivered: 5,
        failed: 1,
        success_rate: 5 / 6,
        latency_ms: { p50: percentiles.p50, p95: percentiles.p95 },
        last_delivered_at: now.toISOString(),
        last_error: { message: "sink down", at: now.toISOString() },
      });
      expect((await get(key, `/api/v1/subscriptions/${other}`)).body.health).toMatchObject({
        delivered: 1,
        failed: 0,
        success_rate: 1,
        last_error: null,
      });

      // The same figures as a time series: every delivery and failure in some bucket, the latencies of a
      // bucket from its own histogram.
      for (const bucket of ["minute", "hour", "day"]) {
        const series = await get(key, `/api/v1/bus/series?bucket=${bucket}&window_seconds=3600`);
        expect(series.status).toBe(200);
        const points = series.body.points as { at: string; delivered: number; failed: number }[];
        expect(
          points.reduce((n, p) => n + p.delivered, 0),
          bucket,
        ).toBe(stats.body.outbox.completed);
        expect(
          points.reduce((n, p) => n + p.failed, 0),
          bucket,
        ).toBe(1);
        expect(points.map((p) => p.at)).toEqual([...points.map((p) => p.at)].sort());
      }
      const mineOverTime = await get(key, `/api/v1/bus/series?subscription_id=${sub}`);
      expect(
        mineOverTime.body.points.reduce((n: number, p: { delivered: number }) => n + p.delivered, 0),
      ).toBe(5);
      expect((await get(keyB, "/api/v1/bus/series")).body.points).toEqual([]);
      expectProblem(await get(key, "/api/v1/bus/series?bucket=week"), 400, "validation_failed");
    });
  });
}
