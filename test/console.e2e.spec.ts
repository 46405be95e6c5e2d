import { readFileSync } from "node:fs";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ConsoleHarness,
  expectAccessible,
  hasChromium,
  startConsole,
  type WatchedPage,
} from "./support/console.js";
import { hasPostgres } from "./support/databases.js";

/**
 * The operator console in a real browser against a real `herald serve` on PostgreSQL: what it shows is what
 * the public API answers, every screen it has is reachable by its name, and no screen logs an error, fails a
 * request or has a serious accessibility violation.
 */

const minute = 60_000;
const now = Date.now();
const at = (msAgo: number) => new Date(now - msAgo).toISOString();

/** 60 message events in the last 32 minutes, 20 contact events hours ago, 10 order events days ago. */
function seedEvents() {
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < 60; i++)
    events.push({
      event_type: i % 2 === 0 ? "message.sent" : "message.delivered",
      source: "system",
      timestamp: at(2 * minute + i * 30_000),
      contact_id: `contact-${i % 3}`,
      session_id: `session-${i % 4}`,
      correlation_id: `flow-${i % 5}`,
      payload: { n: i, to: `person${i % 3}@example.com` },
    });
  for (let i = 0; i < 20; i++)
    events.push({
      event_type: "contact.created",
      source: "manual",
      timestamp: at(3 * 60 * minute + i * minute),
      contact_id: `contact-${i % 3}`,
    });
  for (let i = 0; i < 10; i++)
    events.push({
      event_type: "order.placed",
      source: "workflow",
      timestamp: at(2 * 86_400_000 + i * minute),
    });
  return events;
}

const figureText = (value: unknown) => (value === null || value === undefined ? "—" : String(value));

describe.skipIf(!hasPostgres() || !hasChromium())("operator console (Chromium)", () => {
  let harness: ConsoleHarness;
  const pages: WatchedPage[] = [];

  beforeAll(async () => {
    harness = await startConsole();
    await harness.api("/api/v1/events/batch", { method: "POST", body: { events: seedEvents() } });
  }, 120_000);

  afterAll(async () => {
    await harness?.close();
  });

  /** A fresh page signed in with the tenant's key (or the admin token), on the Overview. */
  async function signedIn(key = harness.apiKey): Promise<WatchedPage> {
    const watched = await harness.newPage();
    pages.push(watched);
    const { page } = watched;
    await page.goto(`${harness.url}/console`);
    await page.getByLabel("API key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    return watched;
  }

  const figure = (page: Page, name: string) => page.locator(`[data-figure="${name}"]`).first();

  it("serves the built console with a strict CSP, at every screen's URL", async () => {
    for (const path of ["/console", "/console/events?type=message.*", "/console/events/not-an-id"]) {
      const response = await fetch(`${harness.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/html/);
      expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("cache-control")).toBe("no-cache");
      const html = await response.text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
      const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(asset).toBeDefined();
      const script = await fetch(`${harness.url}${asset}`);
      expect(script.status).toBe(200);
      expect(script.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    }
  });

  it("signs in with an API key and shows the Overview's figures exactly as the API answers them", async () => {
    const watched = await signedIn();
    const { page } = watched;
    await expect.poll(() => page.getByRole("heading", { name: "Overview", level: 1 }).count()).toBe(1);
    for (const name of [
      "Overview",
      "Events",
      "Messages",
      "Subscriptions",
      "Dead letters",
      "Sources",
      "Conversations",
      "Suppressions",
      "Scheduled actions",
    ])
      expect(await page.getByRole("navigation").getByRole("link", { name, exact: true }).count(), name).toBe(
        1,
      );
    // The key stays in this tab's sessionStorage only, never in localStorage or the URL.
    expect(await page.evaluate<number>("Object.keys(localStorage).length")).toBe(0);
    expect(await page.evaluate<string[]>("Object.values(sessionStorage)")).toEqual([harness.apiKey]);
    expect(page.url()).not.toContain(harness.apiKey);

    for (const [range, seconds, expected] of [
      ["hour", 3600, 60],
      ["week", 7 * 86_400, 90],
    ] as const) {
      if (range !== "hour") await page.getByLabel("Range", { exact: true }).selectOption(range);
      await expect.poll(() => page.url()).toContain(range === "hour" ? "/console" : `range=${range}`);
      const start = new Date(Math.floor(Date.now() / 1000 - seconds) * 1000).toISOString();
      const stats = await harness.api<{ total: number }>(`/api/v1/events/stats?group_by=hour&start=${start}`);
      expect(stats.total).toBe(expected);
      await expect.poll(() => figure(page, "events.total").textContent()).toBe(String(stats.total));
      const bus = await harness.api<Record<string, unknown> & { latency_ms: Record<string, unknown> }>(
        `/api/v1/bus/stats?window_seconds=${seconds}`,
      );
      for (const key of ["p50", "p95", "p99", "max"])
        expect(await figure(page, `bus.latency_ms.${key}`).textContent(), key).toBe(
          figureText(bus.latency_ms[key]),
        );
      for (const key of ["dead_letters", "success_rate", "retry_rate", "failure_rate", "throughput_per_s"])
        expect(await figure(page, `bus.${key}`).textContent(), key).toBe(figureText(bus[key]));
      const outbox = bus.outbox as Record<string, number>;
      for (const key of ["pending", "processing", "completed", "failed"])
        expect(await figure(page, `bus.outbox.${key}`).textContent(), key).toBe(String(outbox[key]));
      // The bus over the range, as the series route gives it: nothing delivered here (no subscription).
      const series = await harness.api<{ points: unknown[] }>(
        `/api/v1/bus/series?window_seconds=${seconds}&bucket=${range === "hour" ? "minute" : "hour"}`,
      );
      expect(series.points).toEqual([]);
      await expect.poll(() => page.getByText("Nothing was delivered in this range.").count()).toBe(1);
    }
    await expect.poll(() => page.locator(".chart canvas").count()).toBeGreaterThan(0);
    await expectAccessible(watched, "Overview");
    // A reload keeps the screen and the session.
    await page.reload();
    await expect.poll(() => figure(page, "events.total").textContent()).toBe("90");
    expect(watched.problems()).toEqual([]);
  });

  it("filters events by type prefix and time range with the exact total, pages, opens an event and follows its contact", async () => {
    const watched = await signedIn();
    const { page } = watched;
    await page.getByRole("navigation").getByRole("link", { name: "Events", exact: true }).click();
    await expect.poll(() => page.getByRole("heading", { name: "Events", level: 1 }).count()).toBe(1);
    await expect.poll(() => figure(page, "events.total").textContent()).toBe("90");
    await expectAccessible(watched, "Events");

    const start = at(20 * minute);
    const end = at(-minute);
    await page.getByLabel("Event type").fill("message.*");
    await page.getByLabel("From").fill(start);
    await page.getByLabel("To").fill(end);
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(() => page.url()).toContain("type=message.*");
    expect(new URL(page.url()).searchParams.get("start")).toBe(start);
    const listed = await harness.api<{ total: number }>(
      `/api/v1/events?type=message.*&start=${start}&end=${end}&limit=1`,
    );
    expect(listed.total).toBeGreaterThan(30);
    expect(listed.total).toBeLessThan(60);
    await expect.poll(() => figure(page, "events.total").textContent()).toBe(String(listed.total));

    // The same filter from a shared URL; then the whole prefix, over two pages.
    await page.goto(`${harness.url}/console/events?type=message.*`);
    await expect.poll(() => figure(page, "events.total").textContent()).toBe("60");
    await expect.poll(() => page.locator("table.events tbody tr").count()).toBe(50);
    const firstPage = await page.locator("table.events tbody tr").first().textContent();
    await page.getByRole("button", { name: "Next" }).click();
    await expect.poll(() => page.locator("table.events tbody tr").count()).toBe(10);
    expect(await page.getByRole("button", { name: "Next" }).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Previous" }).click();
    await expect.poll(() => page.locator("table.events tbody tr").count()).toBe(50);
    expect(await page.locator("table.events tbody tr").first().textContent()).toBe(firstPage);

    // Stats by source of the current filter.
    await page.getByLabel("Group by").selectOption("source");
    await expect.poll(() => page.locator(".stats tbody tr").count()).toBe(1);
    expect(await page.locator(".stats tbody tr").first().textContent()).toBe("system60");

    // Export of the current filter, fetched with the key and saved.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Export NDJSON" }).click(),
    ]);
    expect(download.suggestedFilename()).toBe("events.ndjson");
    const lines = readFileSync((await download.path())!, "utf8")
      .trim()
      .split("\n");
    expect(lines).toHaveLength(60);
    expect(
      lines.every((line) => (JSON.parse(line) as { event_type: string }).event_type.startsWith("message.")),
    ).toBe(true);

    // An event's detail: its JSON and its correlation chain.
    const newest = await harness.api<{
      events: { id: string; contact_id: string; correlation_id: string }[];
    }>("/api/v1/events?type=message.*&limit=1");
    const event = newest.events[0]!;
    await page.getByRole("link", { name: `Event ${event.id}` }).click();
    await expect.poll(() => page.getByRole("heading", { name: "Event", level: 1 }).count()).toBe(1);
    expect(page.url()).toBe(`${harness.url}/console/events/${event.id}`);
    const json = JSON.parse((await page.locator("pre.json").textContent())!) as { id: string };
    expect(json).toEqual(await harness.api(`/api/v1/events/${event.id}`));
    await expect.poll(() => page.getByRole("heading", { name: "Correlation chain" }).count()).toBe(1);
    await expect.poll(() => page.locator("table.events tbody tr").count()).toBe(12);
    await expectAccessible(watched, "Event detail");

    // The contact's timeline.
    await page.locator(".facts").getByRole("link", { name: event.contact_id }).click();
    await expect
      .poll(() => page.getByRole("heading", { name: `Contact ${event.contact_id}`, level: 1 }).count())
      .toBe(1);
    const count = await harness.api<{ count: number }>(`/api/v1/events/count?contact_id=${event.contact_id}`);
    await expect.poll(() => figure(page, "timeline.count").textContent()).toBe(String(count.count));
    await expect.poll(() => page.locator("table.events tbody tr").count()).toBe(count.count);
    await expectAccessible(watched, "Contact timeline");
    expect(watched.problems()).toEqual([]);
  });

  it("shows every other screen by its name, with its own URL, accessible", async () => {
    const watched = await signedIn();
    const { page } = watched;
    await expect.poll(() => page.getByRole("heading", { name: "Overview", level: 1 }).count()).toBe(1);
    for (const name of [
      "Messages",
      "Subscriptions",
      "Dead letters",
      "Sources",
      "Conversations",
      "Suppressions",
      "Scheduled actions",
    ]) {
      await page.getByRole("navigation").getByRole("link", { name, exact: true }).click();
      await expect
        .poll(() => page.getByRole("heading", { name, level: 1 }).count(), { message: name })
        .toBe(1);
      expect(page.url()).toMatch(/\/console\/[a-z-]+$/);
      await expectAccessible(watched, name);
    }
    expect(watched.problems()).toEqual([]);
  });

  it("signs in with the admin token to see tenants and issue a key, and signs out", async () => {
    const watched = await signedIn(harness.adminToken);
    const { page } = watched;
    await expect.poll(() => page.getByRole("heading", { name: "Tenants", level: 1 }).count()).toBe(1);
    await expect.poll(() => page.getByRole("rowheader", { name: harness.tenantName }).count()).toBe(1);
    await expectAccessible(watched, "Tenants");
    await page.getByRole("button", { name: `Issue API key for ${harness.tenantName}` }).click();
    await expect.poll(() => page.locator("output.notice").textContent()).toMatch(/\(shown once\): hk_/);

    await page.getByRole("button", { name: "Sign out" }).click();
    await expect.poll(() => page.getByLabel("API key").count()).toBe(1);
    expect(await page.evaluate<number>("sessionStorage.length + localStorage.length")).toBe(0);
    await expectAccessible(watched, "Sign-in");
    expect(watched.problems()).toEqual([]);
  });

  it("refuses a wrong key readably, and signs out of a tenant session", async () => {
    const watched = await harness.newPage();
    const { page } = watched;
    await page.goto(`${harness.url}/console/events`);
    await page.getByLabel("API key").fill("hk_not-a-real-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("This key was refused");
    // The refused sign-in is the one error answer of this page.
    expect(watched.problems().sort()).toEqual([
      expect.stringMatching(/^answer 401: GET .*\/api\/v1\/sources\?limit=1$/),
      expect.stringMatching(/^console error: Failed to load resource.*401/),
    ]);

    await page.getByLabel("API key").fill(harness.apiKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    // Signed in on the screen whose URL was opened.
    await expect.poll(() => page.getByRole("heading", { name: "Events", level: 1 }).count()).toBe(1);
    // The keyboard starts at "Skip to content", which leads to the screen.
    await page.keyboard.press("Tab");
    expect(await page.evaluate<string>("document.activeElement.textContent")).toBe("Skip to content");
    // A filter the API refuses: its problem, readably.
    await page.getByLabel("Event type").fill("Not A Type");
    await page.getByRole("button", { name: "Search" }).click();
    await expect
      .poll(() => page.getByRole("alert").textContent())
      .toContain("Validation failed (400, validation_failed)");
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect.poll(() => page.getByLabel("API key").count()).toBe(1);
    expect(await page.evaluate<number>("sessionStorage.length")).toBe(0);
  });

  it("shows provider webhook events per provider on the Overview, as the API counts them", async () => {
    // Last: their message.* events join the log, which the tests above count.
    const source = await harness.api<{ url: string }>("/api/v1/sources", {
      method: "POST",
      body: { provider: "sendgrid" },
    });
    const sent = Math.floor((now - 10 * minute) / 1000);
    const delivery = ["delivered", "open", "delivered", "bounce"].map((event, i) => ({
      email: `person${i}@example.com`,
      timestamp: sent + i,
      event,
      sg_event_id: `console-test-${i}`,
      sg_message_id: `console-msg-${i}.filter`,
      ...(event === "bounce" ? { type: "bounce", reason: "550 no such user" } : {}),
    }));
    const answer = await fetch(`${harness.url}${source.url}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(delivery),
    });
    expect(answer.status).toBe(200);
    const start = at(3600_000);
    await expect
      .poll(
        async () =>
          (await harness.api<{ total: number }>(`/api/v1/message-events/stats?start=${start}`)).total,
        {
          timeout: 20_000,
        },
      )
      .toBe(4);
    const stats = await harness.api<{ buckets: { provider: string; hour: string; count: number }[] }>(
      `/api/v1/message-events/stats?start=${start}`,
    );
    expect(stats.buckets.map((b) => [b.provider, b.count])).toEqual([["sendgrid", 4]]);

    const watched = await signedIn();
    const { page } = watched;
    await expect.poll(() => figure(page, "webhooks.total").textContent()).toBe("4");
    const bucket = stats.buckets[0]!;
    expect(await figure(page, `webhooks.sendgrid.${bucket.hour}`).textContent()).toBe("4");
    await expectAccessible(watched, "Overview with provider events");
    expect(watched.problems()).toEqual([]);
  });

  afterAll(() => {
    // Every page's record, so a failure above names what the browser saw.
    for (const watched of pages) if (watched.problems().length > 0) console.log(watched.problems());
  });
});
