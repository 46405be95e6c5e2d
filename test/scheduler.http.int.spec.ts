import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { createSchedulerWorker } from "../src/scheduler/processor.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call, expectProblem, newTenantKey } from "./support/http.js";
import { eventually } from "./support/wait.js";

const adminToken = "scheduler-admin-token-0123456789";

/**
 * `/api/v1/scheduled-actions` as API.md describes it: 201 then 200 `duplicate` for a key, the view, list with
 * filters and cursors, cancel (204, 409 for a one-off that ran), tenants isolated, bad input 400 naming the
 * path.
 */
describe.each(backends())("scheduled-actions API on %s", (backend) => {
  let t: TestDatabase;
  let h: HeraldApp;
  let key: string;
  let otherKey: string;

  beforeAll(async () => {
    t = await createTestDatabase(backend);
    h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1024 * 1024 } });
    key = await newTenantKey(h.app, adminToken, "a");
    otherKey = await newTenantKey(h.app, adminToken, "b");
  });
  afterAll(async () => {
    await h?.app.close();
    await t?.drop();
  });

  const post = (payload: Record<string, unknown>, k = key) =>
    call(h.app, { method: "POST", url: "/api/v1/scheduled-actions", headers: bearer(k), payload });
  const get = (url: string, k = key) => call(h.app, { method: "GET", url, headers: bearer(k) });
  const del = (id: string, k = key) =>
    call(h.app, { method: "DELETE", url: `/api/v1/scheduled-actions/${id}`, headers: bearer(k) });
  const event = { event_type: "reminder.due", source: "workflow", payload: { step: 2 } };
  const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

  it("creates an action (201), and the same key again answers 200 with the stored one", async () => {
    const body = { action: "emit_event", run_at: inAnHour(), payload: event, key: "follow-up-1" };
    const first = await post(body);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      action: "emit_event",
      state: "scheduled",
      run_at: body.run_at,
      next_run_at: body.run_at,
      every: null,
      cron: null,
      missed: "skip",
      payload: event,
      key: "follow-up-1",
      attempts: 0,
      max_attempts: 5,
    });
    expect(first.body.duplicate).toBeUndefined();
    const again = await post({
      ...body,
      run_at: inAnHour(),
      payload: { ...event, event_type: "other.type" },
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, duplicate: true });
    // Keys are per tenant.
    expect((await post(body, otherKey)).status).toBe(201);
    expect((await get(`/api/v1/scheduled-actions/${first.body.id}`)).body).toEqual(first.body);
  });

  it("stores one action for a key posted many times at once", async () => {
    const body = { action: "emit_event", every: "PT1H", payload: event, key: "nightly" };
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(body)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(await count(t.database.db, "scheduled_actions", "dedupe_key = 'nightly'")).toBe(1);
  });

  it("answers another tenant's action 404 on read and cancel", async () => {
    const mine = await post({ action: "emit_event", every: "PT5M", payload: event });
    expectProblem(await get(`/api/v1/scheduled-actions/${mine.body.id}`, otherKey), 404, "not_found");
    expectProblem(await del(mine.body.id, otherKey), 404, "not_found");
    const theirs = await get("/api/v1/scheduled-actions?limit=1000", otherKey);
    expect(theirs.body.scheduled_actions.map((a: { id: string }) => a.id)).not.toContain(mine.body.id);
    expect((await get(`/api/v1/scheduled-actions/${mine.body.id}`)).status).toBe(200);
  });

  it("lists newest first by cursor, filtered by action and state", async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++)
      created.push((await post({ action: "emit_event", cron: `${i} 3 * * *`, payload: event })).body.id);
    const cancelled = created[1]!;
    expect((await del(cancelled)).status).toBe(204);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await get(
        `/api/v1/scheduled-actions?limit=2&action=emit_event${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.scheduled_actions.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.scheduled_actions.map((a: { id: string }) => a.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen.slice(0, 5)).toEqual([...created].reverse());
    const onlyCancelled = await get("/api/v1/scheduled-actions?state=cancelled");
    expect(onlyCancelled.body.scheduled_actions.map((a: { id: string }) => a.id)).toEqual([cancelled]);
    expect((await get("/api/v1/scheduled-actions?action=nothing_like_it")).body).toEqual({
      scheduled_actions: [],
      next_cursor: null,
    });
    expectProblem(await get("/api/v1/scheduled-actions?state=sleeping"), 400, "validation_failed");
    expectProblem(await get("/api/v1/scheduled-actions?colour=red"), 400, "validation_failed");
  });

  it("cancels (204, again 204); a one-off that already ran is 409 conflict", async () => {
    const waiting = await post({ action: "emit_event", run_at: inAnHour(), payload: event });
    expect((await del(waiting.body.id)).status).toBe(204);
    expect((await del(waiting.body.id)).status).toBe(204);
    expect((await get(`/api/v1/scheduled-actions/${waiting.body.id}`)).body).toMatchObject({
      state: "cancelled",
      next_run_at: null,
      cancelled_at: expect.any(String),
    });

    const now = await post({
      action: "emit_event",
      run_at: new Date().toISOString(),
      payload: { ...event, event_key: "delayed-1" },
    });
    const worker = createSchedulerWorker({
      db: t.database.db,
      listen: t.database.listen,
      pollIntervalMs: 20,
    });
    await worker.start();
    await eventually(
      async () => (await get(`/api/v1/scheduled-actions/${now.body.id}`)).body.state === "completed",
      10_000,
      "the one-off ran",
    );
    await worker.stop();
    expect(await count(t.database.db, "events", "event_key = 'delayed-1'")).toBe(1);
    const conflict = await del(now.body.id);
    expectProblem(conflict, 409, "conflict");
    expectProblem(await del("0190a000-0000-7000-8000-000000000000"), 404, "not_found");
  });

  const soon = () => new Date(Date.now() + 60_000).toISOString();
  it.each([
    ["bad cron", { action: "emit_event", cron: "99 * * * *", payload: event }, "/body/cron"],
    ["six cron fields", { action: "emit_event", cron: "0 0 3 * * *", payload: event }, "/body/cron"],
    [
      "bad time zone",
      { action: "emit_event", cron: "0 3 * * *", time_zone: "Europe/Atlantis", payload: event },
      "/body/time_zone",
    ],
    [
      "time zone without cron",
      { action: "emit_event", every: 60, time_zone: "UTC", payload: event },
      "/body/time_zone",
    ],
    [
      "run_at in the far past",
      { action: "emit_event", run_at: "2020-01-01T00:00:00Z", payload: event },
      "/body/run_at",
    ],
    ["run_at not a time", { action: "emit_event", run_at: "tomorrow", payload: event }, "/body/run_at"],
    ["run_at and every", { action: "emit_event", run_at: soon(), every: "PT5M", payload: event }, "/body"],
    ["every and cron", { action: "emit_event", every: "PT5M", cron: "0 3 * * *", payload: event }, "/body"],
    ["none of them", { action: "emit_event", payload: event }, "/body"],
    ["every in months", { action: "emit_event", every: "P1M", payload: event }, "/body/every"],
    ["every of zero", { action: "emit_event", every: 0, payload: event }, "/body/every"],
    ["unknown action", { action: "send_fax", run_at: soon() }, "/body/action"],
    ["bad missed", { action: "emit_event", every: "PT5M", missed: "later", payload: event }, "/body/missed"],
    [
      "emit_event without an event",
      { action: "emit_event", run_at: soon(), payload: { hello: 1 } },
      "/body/payload",
    ],
    [
      "emit_event with a bad event type",
      { action: "emit_event", run_at: soon(), payload: { ...event, event_type: "Not A Type" } },
      "/body/payload/event_type",
    ],
    [
      "emit_event with a time far ahead",
      { action: "emit_event", run_at: soon(), payload: { ...event, timestamp: "2099-01-01T00:00:00Z" } },
      "/body/payload/timestamp",
    ],
    ["unknown field", { action: "emit_event", run_at: soon(), payload: event, colour: "red" }, "/body"],
  ])("refuses %s with 400 naming the path", async (_, body, path) => {
    const before = await count(t.database.db, "scheduled_actions");
    const response = await post(body);
    expectProblem(response, 400, "validation_failed");
    expect(response.body.errors.map((e: { path: string }) => e.path)).toContainEqual(
      path === "/body" ? expect.stringMatching(/^\/body/) : expect.stringMatching(new RegExp(`^${path}`)),
    );
    expect(await count(t.database.db, "scheduled_actions")).toBe(before);
  });
});
