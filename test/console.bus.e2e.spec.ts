import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ConsoleHarness,
  expectAccessible,
  hasChromium,
  startConsole,
  type WatchedPage,
} from "./support/console.js";
import { hasPostgres } from "./support/databases.js";
import { sendgridKeys } from "./support/sendgrid.js";

/**
 * The bus and inbound screens of the console in Chromium against a real `herald serve` on PostgreSQL: a
 * subscription created from the console to a receiver in this process, failed into a dead letter, retried
 * once the receiver is fixed and delivered; paused, resumed, replayed and deleted; the SSRF rule explained; a
 * rejected webhook delivery shown with its reason on the Sources screen.
 */

/** A webhook endpoint in this process that answers 500 while `failing`, else 204, and keeps what it got. */
function receiver() {
  const received: { type: string; data: { id: string; event_type: string } }[] = [];
  const state = { failing: true, received, url: "", server: undefined as Server | undefined };
  state.server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      if (state.failing) {
        response.writeHead(500).end("receiver is down");
        return;
      }
      received.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      response.writeHead(204).end();
    });
  });
  return state;
}

const poll = { timeout: 30_000, interval: 200 };

describe.skipIf(!hasPostgres() || !hasChromium())(
  "console: subscriptions, dead letters, sources (Chromium)",
  () => {
    let harness: ConsoleHarness;
    const endpoint = receiver();
    let subscriptionId = "";
    const startedAt = new Date(Date.now() - 1000).toISOString();

    beforeAll(async () => {
      await new Promise<void>((resolve) => endpoint.server!.listen(0, "127.0.0.1", resolve));
      endpoint.url = `http://127.0.0.1:${(endpoint.server!.address() as AddressInfo).port}/hook`;
      harness = await startConsole({
        env: {
          // The receiver is on loopback: allowed explicitly, as an operator would.
          HERALD_WEBHOOK_ALLOWED_NETWORKS: "127.0.0.1/32",
          HERALD_BACKOFF_BASE_MS: "50",
          HERALD_BACKOFF_MAX_MS: "200",
        },
      });
    }, 120_000);

    afterAll(async () => {
      await harness?.close();
      await new Promise((resolve) => endpoint.server!.close(resolve));
    });

    async function signedIn(): Promise<WatchedPage> {
      const watched = await harness.newPage();
      const { page } = watched;
      await page.goto(`${harness.url}/console`);
      await page.getByLabel("API key").fill(harness.apiKey);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect.poll(() => page.getByRole("heading", { name: "Overview", level: 1 }).count()).toBe(1);
      return watched;
    }

    const nav = (watched: WatchedPage, name: string) =>
      watched.page.getByRole("navigation").getByRole("link", { name, exact: true }).click();
    const heading = (watched: WatchedPage, name: string) =>
      expect.poll(() => watched.page.getByRole("heading", { name, level: 1 }).count(), poll).toBe(1);
    const figure = (watched: WatchedPage, name: string) =>
      watched.page.locator(`[data-figure="${name}"]`).first();
    const postEvent = (eventType: string) =>
      harness.api<{ id: string }>("/api/v1/events", {
        method: "POST",
        body: { event_type: eventType, source: "system" },
      });
    const deadLetters = () =>
      harness.api<{ dead_letters: { id: string; event_id: string }[] }>(
        `/api/v1/dead-letters?subscription_id=${subscriptionId}`,
      );
    const receivedIds = () => endpoint.received.map((r) => r.data.id);

    it("creates a subscription to a local receiver from the Subscriptions screen", async () => {
      const watched = await signedIn();
      const { page } = watched;
      await nav(watched, "Subscriptions");
      await heading(watched, "Subscriptions");
      await expect.poll(() => page.getByText("No subscriptions yet").count(), poll).toBe(1);
      await expectAccessible(watched, "Subscriptions (empty)");

      await page.getByLabel("Name").fill("Receiver");
      await page.getByLabel("Event types").fill("order.*");
      await page.getByLabel("Webhook URL").fill(endpoint.url);
      await page.getByLabel("Max attempts").fill("2");
      await page.getByRole("button", { name: "Create subscription" }).click();
      await expect.poll(() => page.getByText("Its signing secret, shown once").count(), poll).toBe(1);
      await expect.poll(() => page.locator("table.subscriptions tbody tr").count(), poll).toBe(1);

      const listed = await harness.api<{ subscriptions: Record<string, unknown>[] }>("/api/v1/subscriptions");
      expect(listed.subscriptions).toHaveLength(1);
      expect(listed.subscriptions[0]).toMatchObject({
        name: "Receiver",
        event_types: ["order.*"],
        sink: { type: "webhook", url: endpoint.url },
        max_attempts: 2,
        ordered: false,
        paused: false,
      });
      subscriptionId = listed.subscriptions[0]!.id as string;
      const row = page.locator("table.subscriptions tbody tr").first();
      await expect.poll(() => row.textContent(), poll).toContain("Active");
      expect(await row.textContent()).toContain(endpoint.url);
      await expectAccessible(watched, "Subscriptions");
      expect(watched.problems()).toEqual([]);
    }, 90_000);

    it("refuses a private URL and explains the SSRF rule", async () => {
      const watched = await signedIn();
      const { page } = watched;
      await page.goto(`${harness.url}/console/subscriptions`);
      await heading(watched, "Subscriptions");
      await page.getByLabel("Name").fill("Internal");
      await page.getByLabel("Event types").fill("order.*");
      await page.getByLabel("Webhook URL").fill("http://10.0.0.1/");
      await page.getByRole("button", { name: "Create subscription" }).click();
      const alert = page.getByRole("alert");
      await expect.poll(() => alert.count(), poll).toBe(1);
      expect(await alert.textContent()).toContain("denied network");
      const rule = page.getByTestId("ssrf-rule");
      expect(await rule.textContent()).toContain("only to public addresses");
      expect(await rule.textContent()).toContain("HERALD_WEBHOOK_ALLOWED_NETWORKS");
      await expectAccessible(watched, "Subscriptions (refused URL)");
      expect(
        (await harness.api<{ subscriptions: unknown[] }>("/api/v1/subscriptions")).subscriptions,
      ).toHaveLength(1);
      // The one refused request is the deliberate one (and Chromium's console line about it).
      expect(watched.problems()).toContain(`answer 400: POST ${harness.url}/api/v1/subscriptions`);
      expect(watched.problems().filter((line) => !line.includes("400"))).toEqual([]);
    }, 90_000);

    it("fails into a dead letter, is retried from the console once the receiver is fixed, and is delivered", async () => {
      endpoint.failing = true;
      const event = await postEvent("order.placed");
      await expect.poll(async () => (await deadLetters()).dead_letters.length, poll).toBe(1);

      const watched = await signedIn();
      const { page } = watched;
      await nav(watched, "Dead letters");
      await heading(watched, "Dead letters");
      await expect.poll(() => page.locator("table.dead-letters tbody tr").count(), poll).toBe(1);
      expect(await page.locator("table.dead-letters tbody tr").textContent()).toContain("order.placed");
      await expectAccessible(watched, "Dead letters");

      // Filtered by subscription and event type, in the URL.
      await expect.poll(() => page.getByLabel("Subscription").locator("option").count(), poll).toBe(2);
      await page.getByLabel("Subscription").selectOption({ label: "Receiver" });
      await page.getByLabel("Event type").fill("order.shipped");
      await page.getByRole("button", { name: "Filter" }).click();
      await expect.poll(() => page.url(), poll).toContain("event_type=order.shipped");
      expect(page.url()).toContain(`subscription_id=${subscriptionId}`);
      await expect.poll(() => page.getByText("No dead letters match this filter.").count(), poll).toBe(1);
      expect(await page.getByRole("button", { name: "Retry all matching" }).isDisabled()).toBe(true);
      await page.getByLabel("Event type").fill("order.placed");
      await page.getByRole("button", { name: "Filter" }).click();
      await expect.poll(() => figure(watched, "dead_letters.shown").textContent(), poll).toBe("1");

      // Its detail, with its attempts and last error, at its own URL.
      await page
        .locator("table.dead-letters tbody tr", { hasText: "order.placed" })
        .getByRole("link")
        .first()
        .click();
      await heading(watched, "Dead letter");
      await expect.poll(() => figure(watched, "dead_letter.attempts").textContent(), poll).toBe("2");
      expect(await figure(watched, "dead_letter.last_error").textContent()).toContain("500");
      // Each of its two attempts with its own error.
      expect(await page.locator("table.attempts tbody tr").count()).toBe(2);
      expect(await page.locator("table.attempts tbody tr").first().textContent()).toContain("500");
      expect(await page.getByRole("link", { name: event.id }).count()).toBe(1);
      await page.reload();
      await expect.poll(() => figure(watched, "dead_letter.attempts").textContent(), poll).toBe("2");
      await expectAccessible(watched, "Dead letter");

      endpoint.failing = false;
      await page.getByRole("button", { name: "Retry", exact: true }).click();
      await expect.poll(() => figure(watched, "dead_letter.state").textContent(), poll).toContain("Retried");
      await expect.poll(receivedIds, poll).toContain(event.id);
      expect((await deadLetters()).dead_letters).toEqual([]);
      // Read back by id (GET /dead-letters/{id}): retried, with its time, and no longer offered for a retry.
      await page.reload();
      await expect
        .poll(() => figure(watched, "dead_letter.state").textContent(), poll)
        .toContain("Retried at");
      expect(await figure(watched, "dead_letter.retried_at").textContent()).not.toBe("—");
      expect(await page.getByRole("button", { name: "Retry", exact: true }).count()).toBe(0);

      // The subscription's health shows it delivered.
      await page.getByRole("link", { name: "Receiver" }).click();
      await heading(watched, "Subscription Receiver");
      await expect.poll(() => figure(watched, "health.delivered").textContent(), poll).toBe("1");
      expect(await figure(watched, "health.last_delivered_at").textContent()).not.toBe("—");
      expect(await figure(watched, "health.last_error").textContent()).toContain("500");
      await expectAccessible(watched, "Subscription");
      expect(watched.problems()).toEqual([]);
    }, 90_000);

    it("retries all matching dead letters", async () => {
      endpoint.failing = true;
      const events = [await postEvent("order.placed"), await postEvent("order.placed")];
      await expect.poll(async () => (await deadLetters()).dead_letters.length, poll).toBe(2);
      endpoint.failing = false;

      const watched = await signedIn();
      const { page } = watched;
      await page.goto(`${harness.url}/console/dead-letters?event_type=order.placed`);
      await heading(watched, "Dead letters");
      await expect.poll(() => figure(watched, "dead_letters.shown").textContent(), poll).toBe("2");
      await page.getByRole("button", { name: "Retry all matching" }).click();
      await expect
        .poll(() => figure(watched, "dead_letters.retried").textContent(), poll)
        .toContain("Retried 2");
      await expect.poll(() => page.getByText("No dead letters match this filter.").count(), poll).toBe(1);
      for (const e of events) await expect.poll(receivedIds, poll).toContain(e.id);
      expect(watched.problems()).toEqual([]);
    }, 90_000);

    it("pauses and resumes the subscription, and replays a range", async () => {
      const watched = await signedIn();
      const { page } = watched;
      await page.goto(`${harness.url}/console/subscriptions/${subscriptionId}`);
      await heading(watched, "Subscription Receiver");
      const paused = async () =>
        (await harness.api<{ paused: boolean }>(`/api/v1/subscriptions/${subscriptionId}`)).paused;

      await page.getByRole("button", { name: "Pause" }).click();
      await expect.poll(paused, poll).toBe(true);
      await expect.poll(() => figure(watched, "subscription.state").textContent(), poll).toBe("Paused");
      await page.getByRole("button", { name: "Resume" }).click();
      await expect.poll(paused, poll).toBe(false);
      await expect.poll(() => figure(watched, "subscription.state").textContent(), poll).toBe("Active");

      // The three order events since the run started, sent again.
      const before = endpoint.received.length;
      await page.getByLabel("From").fill(startedAt);
      await page.getByRole("button", { name: "Replay", exact: true }).click();
      await expect
        .poll(() => figure(watched, "replay.events").textContent(), poll)
        .toContain("3 events queued");
      await expect.poll(() => endpoint.received.length, poll).toBe(before + 3);
      await expectAccessible(watched, "Subscription (replayed)");
      expect(watched.problems()).toEqual([]);
    }, 90_000);

    it("deletes a subscription after a confirmation", async () => {
      const created = await harness.api<{ id: string }>("/api/v1/subscriptions", {
        method: "POST",
        body: { name: "Throwaway", event_types: ["nothing.*"], sink: { type: "webhook", url: endpoint.url } },
      });
      const watched = await signedIn();
      const { page } = watched;
      await page.goto(`${harness.url}/console/subscriptions/${created.id}`);
      await heading(watched, "Subscription Throwaway");
      await page.getByRole("button", { name: "Delete" }).click();
      await page.getByRole("button", { name: "Cancel" }).click();
      expect(await page.getByRole("button", { name: "Confirm delete" }).count()).toBe(0);
      await page.getByRole("button", { name: "Delete" }).click();
      await expectAccessible(watched, "Subscription (confirm delete)");
      await page.getByRole("button", { name: "Confirm delete" }).click();
      await heading(watched, "Subscriptions");
      expect(new URL(page.url()).pathname).toBe("/console/subscriptions");
      const gone = await fetch(`${harness.url}/api/v1/subscriptions/${created.id}`, {
        headers: { authorization: `Bearer ${harness.apiKey}` },
      });
      expect(gone.status).toBe(404);
      await expect.poll(() => page.locator("table.subscriptions tbody tr").count(), poll).toBe(1);
      expect(watched.problems()).toEqual([]);
    }, 90_000);

    it("shows a source's webhook URL, its verification and a rejected delivery with its reason", async () => {
      const keys = sendgridKeys();
      const source = await harness.api<{ id: string; url: string }>("/api/v1/sources", {
        method: "POST",
        body: {
          provider: "sendgrid",
          name: "SendGrid production",
          verification: { public_key: keys.publicKeyBase64 },
        },
      });
      // Signed, so verified; then refused: an object where SendGrid sends an array of events.
      const body = JSON.stringify({ event: "delivered", email: "ada@example.com" });
      const refused = await fetch(`${harness.url}${source.url}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...keys.sign(body) },
        body,
      });
      expect(refused.status).toBe(400);

      const watched = await signedIn();
      const { page } = watched;
      await nav(watched, "Sources");
      await heading(watched, "Sources");
      const row = page.locator("table.sources tbody tr").first();
      await expect.poll(() => row.textContent(), poll).toContain("SendGrid production");
      const text = (await row.textContent())!;
      expect(text).toContain(`${harness.url}/api/v1/webhooks/sendgrid/${source.id}`);
      expect(text).toContain("Verified");
      expect(text).not.toContain("—"); // a last delivery is shown
      await expectAccessible(watched, "Sources");

      await page.getByRole("link", { name: "SendGrid production" }).click();
      await heading(watched, "Source SendGrid production");
      expect(new URL(page.url()).pathname).toBe(`/console/sources/${source.id}`);
      const rejected = page.locator("table.deliveries tbody tr");
      await expect.poll(() => rejected.count(), poll).toBe(1);
      expect(await rejected.textContent()).toContain("rejected");
      expect(await rejected.textContent()).toMatch(/array/i);
      expect(await figure(watched, "source.verified").textContent()).toContain("Verified");
      expect(await figure(watched, "source.last_received_at").textContent()).not.toBe("—");
      await expectAccessible(watched, "Source");

      await page.getByLabel("Show").selectOption("all");
      await expect.poll(() => page.url(), poll).toContain("show=all");
      await page.reload();
      await expect.poll(() => rejected.count(), poll).toBe(1);
      expect(await page.getByLabel("Show").inputValue()).toBe("all");
      expect(watched.problems()).toEqual([]);
    }, 90_000);
  },
);
