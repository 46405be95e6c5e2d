import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { Foreground } from "../src/api/foreground.js";
import { createProcessor } from "../src/ingest/processor.js";
import { createSource } from "../src/tenancy/sources.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { sampleBatch } from "./support/sendgrid.js";
import { eventually } from "./support/wait.js";

/** Webhook acceptance before processing: the door counts its requests, the processor gives way to them. */
for (const backend of backends()) {
  describe(`processor yielding to the webhook door on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    let base: string;
    let hookUrl: string;
    const foreground = new Foreground();

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({
        database: t.database,
        config: { adminToken: undefined, bodyLimitBytes: 5 * 1024 * 1024 },
        foreground,
      });
      await h.app.listen({ port: 0, host: "127.0.0.1" });
      base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
      // Unsigned: this is about scheduling, not signatures.
      const source = await createSource(t.database.db, await makeTenant(t.database.db), {
        provider: "sendgrid",
      });
      hookUrl = `${base}/api/v1/webhooks/sendgrid/${source.id}`;
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    /** A POST whose body is sent in two parts; resolves the status once answered. */
    function postInParts(body: Buffer) {
      const request = http.request(hookUrl, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": body.length },
      });
      const answered = new Promise<number>((resolve, reject) => {
        request.on("response", (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        });
        request.on("error", reject);
      });
      request.write(body.subarray(0, 10));
      return { request, answered, finish: () => request.end(body.subarray(10)) };
    }

    const pending = () => count(t.database.db, "webhook_deliveries", "status <> 'completed'");

    /** A processor of this process, giving way to its door for `maxYieldMs`. */
    async function startProcessor(maxYieldMs: number) {
      const processor = createProcessor({
        db: t.database.db,
        listen: t.database.listen,
        pollIntervalMs: 50,
        yieldTo: foreground,
        maxYieldMs,
      });
      await processor.start();
      return processor;
    }

    it("counts a request from its first bytes until it is answered, or cut off", async () => {
      expect(foreground.busy).toBe(false);
      const body = Buffer.from(JSON.stringify(sampleBatch()));
      const slow = postInParts(body);
      await eventually(async () => foreground.busy, 5000, "request counted before its body arrived");
      slow.finish();
      expect(await slow.answered).toBe(200);
      await eventually(async () => !foreground.busy, 5000, "answered request no longer counted");

      const cut = postInParts(body);
      cut.answered.catch(() => undefined); // it never gets an answer
      await eventually(async () => foreground.busy, 5000, "second request counted");
      cut.request.destroy();
      await eventually(async () => !foreground.busy, 5000, "aborted request no longer counted");
    });

    it("starts no processing while a request is in flight, and resumes when the door is idle", async () => {
      await eventually(async () => (await pending()) > 0, 5000, "a delivery waiting");
      const waiting = await pending();
      const leave = foreground.enter();
      // The processor gives way by asking to be called when the door is idle: wait for that, not for time.
      const heldBack = vi.spyOn(foreground, "whenIdle");
      const processor = await startProcessor(60_000);
      try {
        await eventually(() => heldBack.mock.calls.length > 0, 5000, "the processor holding back");
        heldBack.mockRestore();
        expect(await pending()).toBe(waiting);
        expect(await count(t.database.db, "message_events")).toBe(0);
        leave();
        await eventually(async () => (await pending()) === 0, 15_000, "processed once the door is idle");
        expect(await count(t.database.db, "message_events")).toBeGreaterThan(0);
      } finally {
        await processor.stop();
      }
    });

    it("holds back only the start of a busy spell, so a door that is never idle cannot stop processing", async () => {
      const answer = await fetch(hookUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(sampleBatch().map((e, i) => ({ ...e, sg_event_id: `never-idle-${i}` }))),
      });
      expect(answer.status).toBe(200);
      const leave = foreground.enter();
      const processor = await startProcessor(100);
      try {
        expect(foreground.busy).toBe(true);
        await eventually(async () => (await pending()) === 0, 15_000, "processed while the door stayed busy");
      } finally {
        leave();
        await processor.stop();
      }
    });
  });
}
