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
import { sendgridKeys } from "./support/sendgrid.js";

/**
 * The console's Messages, Conversations, Suppressions and Scheduled actions screens in a real browser against
 * a real `herald serve` (its workers running), with data seeded through the public API only: messages
 * registered and advanced by a signed SendGrid delivery, inbound SMS threaded into a conversation, a manual
 * suppression, scheduled actions due later and due now.
 */

/** The browser and the server share two cores with other work: give each screen time to answer. */
const wait = { timeout: 15_000, interval: 100 };

interface Message {
  id: string;
  status: string;
}

const poll = async <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> => {
  const until = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

describe.skipIf(!hasPostgres() || !hasChromium())(
  "console: messages, conversations, suppressions, scheduled actions",
  () => {
    let harness: ConsoleHarness;
    let ada: Message;
    let conversationId: string;
    let later: { id: string };
    let ran: { id: string };
    const keys = sendgridKeys();
    const now = Math.floor(Date.now() / 1000);

    beforeAll(async () => {
      harness = await startConsole();
      const api = harness.api;

      // Messages: Ada's is advanced by a signed SendGrid delivery (processed, deferred, bounce, then a late
      // deferred that changes nothing); Bob's and the SMS stay `sent`.
      const register = (body: Record<string, unknown>) =>
        api<Message>("/api/v1/messages", { method: "POST", body });
      ada = await register({
        channel: "email",
        provider: "sendgrid",
        to: "ada@example.com",
        subject: "Welcome",
      });
      await register({ channel: "email", provider: "sendgrid", to: "bob@example.com", subject: "Hello Bob" });
      await register({ channel: "email", provider: "sendgrid", to: "ada@example.com", subject: "Second" });
      await register({ channel: "sms", provider: "twilio", to: "+15551230001" });
      const source = await api<{ url: string }>("/api/v1/sources", {
        method: "POST",
        body: { provider: "sendgrid", verification: { public_key: keys.publicKeyBase64 } },
      });
      const event = (type: string, secondsAfter: number, extra: Record<string, unknown> = {}) => ({
        email: "ada@example.com",
        timestamp: now - 600 + secondsAfter,
        event: type,
        sg_event_id: `console-${type}-${secondsAfter}`,
        sg_message_id: "ConsoleAda0001.filter-1",
        herald_message_id: ada.id,
        ...extra,
      });
      const body = JSON.stringify([
        event("processed", 0),
        event("deferred", 5, { response: "450 try again later", attempt: "1" }),
        event("bounce", 60, { reason: "550 5.1.1 unknown user", type: "bounce", status: "5.1.1" }),
        event("deferred", 61, { response: "450 late", attempt: "2" }),
      ]);
      const delivered = await fetch(new URL(source.url, harness.url), {
        method: "POST",
        headers: { "content-type": "application/json", ...keys.sign(body) },
        body,
      });
      expect(delivered.status).toBe(200);
      await poll(
        () => api<Message>(`/api/v1/messages/${ada.id}`),
        (m) => m.status === "bounced",
        "Ada's message bounced",
      );
      await poll(
        () => api<{ events: unknown[] }>(`/api/v1/messages/${ada.id}/events`),
        (e) => e.events.length === 4,
        "Ada's four provider events",
      );

      // A conversation: two inbound SMS from +15551230001 and the outbound SMS above to the same number.
      for (const [i, text] of ["Is my order on its way?", "Thanks!"].entries())
        await api("/api/v1/inbound", {
          method: "POST",
          body: {
            channel: "sms",
            provider: "twilio",
            provider_message_id: `SMconsole${i}`,
            from: "+15551230001",
            to: "+15559990000",
            body: text,
            received_at: new Date((now - 300 + i * 60) * 1000).toISOString(),
          },
        });
      const conversations = await poll(
        () =>
          api<{ items: { id: string; message_count: number }[] }>(
            "/api/v1/conversations?channel=sms&participant=%2B15551230001",
          ),
        (c) => c.items.length === 1 && c.items[0]!.message_count === 3,
        "the SMS conversation",
      );
      conversationId = conversations.items[0]!.id;

      await api("/api/v1/suppressions", {
        method: "POST",
        body: { channel: "email", address: "carol@example.com", reason: "manual" },
      });

      // Scheduled actions: one due tomorrow (cancellable), one due now (it runs, then cannot be cancelled).
      const emit = { event_type: "reminder.sent", source: "cron" };
      later = await api("/api/v1/scheduled-actions", {
        method: "POST",
        body: {
          action: "emit_event",
          run_at: new Date(Date.now() + 86_400_000).toISOString(),
          payload: emit,
          key: "later",
        },
      });
      ran = await api("/api/v1/scheduled-actions", {
        method: "POST",
        body: { action: "emit_event", run_at: new Date().toISOString(), payload: emit, key: "now" },
      });
      await poll(
        () => api<{ state: string }>(`/api/v1/scheduled-actions/${ran.id}`),
        (a) => a.state === "completed",
        "the due action to run",
      );
    }, 180_000);

    afterAll(async () => {
      await harness?.close();
    });

    async function signedIn(): Promise<WatchedPage> {
      const watched = await harness.newPage();
      const { page } = watched;
      await page.goto(`${harness.url}/console`);
      await page.getByLabel("API key").fill(harness.apiKey);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect
        .poll(() => page.getByRole("heading", { name: "Overview", level: 1 }).count(), wait)
        .toBe(1);
      return watched;
    }

    const heading = (page: Page, name: string) => page.getByRole("heading", { name, level: 1 });

    const rows = (page: Page, caption: string) =>
      page.locator("table", { has: page.locator("caption", { hasText: caption }) }).locator("tbody tr");

    it("searches messages by recipient and status, opens one: its provider events in order with the status transitions, its recipient's suppressions", async () => {
      const watched = await signedIn();
      const { page } = watched;
      await page.getByRole("navigation").getByRole("link", { name: "Messages", exact: true }).click();
      await expect.poll(() => heading(page, "Messages").count(), wait).toBe(1);
      await expect.poll(() => rows(page, "Messages, newest first").count(), wait).toBe(4);
      await expectAccessible(watched, "Messages");

      await page.getByLabel("Recipient", { exact: true }).fill("ada@example.com");
      await page.getByRole("button", { name: "Search" }).click();
      await expect.poll(() => page.url(), wait).toContain("to=ada%40example.com");
      await expect.poll(() => rows(page, "Messages, newest first").count(), wait).toBe(2);

      await page.getByLabel("Status", { exact: true }).selectOption("bounced");
      await page.getByRole("button", { name: "Search" }).click();
      await expect.poll(() => new URL(page.url()).searchParams.get("status"), wait).toBe("bounced");
      await expect.poll(() => rows(page, "Messages, newest first").count(), wait).toBe(1);
      // A reload (or a shared link) keeps the filter.
      await page.reload();
      await expect.poll(() => rows(page, "Messages, newest first").count(), wait).toBe(1);
      expect(await page.getByLabel("Recipient", { exact: true }).inputValue()).toBe("ada@example.com");
      expect(await page.getByLabel("Status", { exact: true }).inputValue()).toBe("bounced");
      // The empty state.
      await page.goto(`${harness.url}/console/messages?to=nobody%40example.com`);
      await expect.poll(() => page.getByText("No messages match this filter.").count(), wait).toBe(1);
      await page.goBack();
      await expect.poll(() => rows(page, "Messages, newest first").count(), wait).toBe(1);

      await page.getByRole("link", { name: `Message to ada@example.com, ${ada.id}` }).click();
      await expect.poll(() => heading(page, "Message").count(), wait).toBe(1);
      expect(page.url()).toBe(`${harness.url}/console/messages/${ada.id}`);
      await expect
        .poll(() => page.locator('[data-figure="message.status"]').textContent())
        .toMatch(/^bounced/);
      const events = rows(page, "Provider events");
      await expect.poll(() => events.count(), wait).toBe(4);
      const transitions = await events
        .locator("td[data-transition]")
        .evaluateAll((cells) => cells.map((c) => c.getAttribute("data-transition")));
      expect(transitions).toEqual([
        "sent→processed",
        "processed→deferred",
        "deferred→bounced",
        "bounced→bounced",
      ]);
      const types = await events.locator("td:nth-child(2)").allTextContents();
      expect(types).toEqual(["processed", "deferred", "bounce", "deferred"]);
      // The provider's raw event, opened.
      await events.nth(2).getByText("JSON").click();
      await expect
        .poll(() => events.nth(2).locator("pre").textContent(), wait)
        .toContain("550 5.1.1 unknown user");
      // The bounce suppressed the recipient.
      const suppressions = rows(page, "Suppressions of ada@example.com");
      await expect.poll(() => suppressions.count(), wait).toBe(1);
      expect(await suppressions.first().textContent()).toContain("bounce");
      await expectAccessible(watched, "Message");
      expect(watched.problems()).toEqual([]);
    });

    it("lists conversations and opens one with its messages", async () => {
      const watched = await signedIn();
      const { page } = watched;
      await page.getByRole("navigation").getByRole("link", { name: "Conversations", exact: true }).click();
      await expect.poll(() => heading(page, "Conversations").count(), wait).toBe(1);
      await expect.poll(() => rows(page, "Conversations").count(), wait).toBeGreaterThan(0);
      await expectAccessible(watched, "Conversations");

      await page.getByLabel("Channel", { exact: true }).selectOption("sms");
      await page.getByLabel("Participant", { exact: true }).fill("+15551230001");
      await page.getByRole("button", { name: "Search" }).click();
      await expect.poll(() => new URL(page.url()).searchParams.get("participant"), wait).toBe("+15551230001");
      await expect.poll(() => rows(page, "Conversations").count(), wait).toBe(1);
      await rows(page, "Conversations").first().getByRole("link").click();
      await expect.poll(() => heading(page, "Conversation").count(), wait).toBe(1);
      expect(page.url()).toBe(`${harness.url}/console/conversations/${conversationId}`);
      await expect
        .poll(() => page.locator('[data-figure="conversation.total"]').textContent(), wait)
        .toBe("3");
      const messages = rows(page, "Messages of this conversation");
      await expect.poll(() => messages.count(), wait).toBe(3);
      const bodies = await messages.locator("td:nth-child(5)").allTextContents();
      expect(bodies).toContain("Is my order on its way?");
      expect(bodies).toContain("Thanks!");
      expect(await messages.locator("td:nth-child(2)").allTextContents()).toContain("outbound");
      await expectAccessible(watched, "Conversation");
      expect(watched.problems()).toEqual([]);
    });

    it("adds, searches and removes a suppression (after confirming)", async () => {
      const watched = await signedIn();
      const { page } = watched;
      await page.getByRole("navigation").getByRole("link", { name: "Suppressions", exact: true }).click();
      await expect.poll(() => heading(page, "Suppressions").count(), wait).toBe(1);
      // carol (manual) and ada (the bounce).
      await expect.poll(() => rows(page, "Suppressions, newest first").count(), wait).toBe(2);
      await expectAccessible(watched, "Suppressions");

      await page.getByLabel("New suppression's channel").selectOption("email");
      await page.getByLabel("Address to suppress").fill("dave@example.com");
      await page.getByRole("button", { name: "Add suppression" }).click();
      await expect.poll(() => page.getByText("Suppressed dave@example.com (email).").count(), wait).toBe(1);
      await expect.poll(() => rows(page, "Suppressions, newest first").count(), wait).toBe(3);
      // A refused address is shown as the API's problem.
      await page.getByLabel("Address to suppress").fill("not an address");
      await page.getByRole("button", { name: "Add suppression" }).click();
      await expect.poll(() => page.getByRole("alert").count(), wait).toBe(1);

      await page.getByLabel("Address", { exact: true }).fill("dave@example.com");
      await page.getByRole("button", { name: "Search" }).click();
      await expect.poll(() => new URL(page.url()).searchParams.get("address"), wait).toBe("dave@example.com");
      await expect.poll(() => rows(page, "Suppressions, newest first").count(), wait).toBe(1);
      await page.getByRole("button", { name: "Remove dave@example.com" }).click();
      // Nothing is removed until confirmed; Keep backs out.
      await page.getByRole("button", { name: "Keep" }).click();
      await page.getByRole("button", { name: "Remove dave@example.com" }).click();
      await page.getByRole("button", { name: "Confirm removal" }).click();
      await expect.poll(() => page.getByText("No suppression matches this filter.").count(), wait).toBe(1);
      const left = await harness.api<{ suppressions: unknown[] }>(
        "/api/v1/suppressions?address=dave@example.com",
      );
      expect(left.suppressions).toEqual([]);
      await expectAccessible(watched, "Suppressions after removal");
      // Only the deliberately refused address answered an error.
      expect(watched.problems().filter((p) => !/400|Bad Request/.test(p))).toEqual([]);
      expect(watched.problems().filter((p) => p.startsWith("answer 400: POST"))).toHaveLength(1);
    });

    it("lists scheduled actions by state, cancels one, and shows the 409 for one that ran", async () => {
      const watched = await signedIn();
      const { page } = watched;
      await page
        .getByRole("navigation")
        .getByRole("link", { name: "Scheduled actions", exact: true })
        .click();
      await expect.poll(() => heading(page, "Scheduled actions").count(), wait).toBe(1);
      await expect.poll(() => rows(page, "Scheduled actions").count(), wait).toBe(2);
      await expectAccessible(watched, "Scheduled actions");

      await page.getByLabel("State", { exact: true }).selectOption("scheduled");
      await page.getByLabel("Action", { exact: true }).fill("emit_event");
      await page.getByRole("button", { name: "Search" }).click();
      await expect.poll(() => new URL(page.url()).searchParams.get("state"), wait).toBe("scheduled");
      await expect.poll(() => rows(page, "Scheduled actions").count(), wait).toBe(1);
      await page.getByRole("button", { name: `Cancel emit_event ${later.id}` }).click();
      await expect.poll(() => page.getByText(`Cancelled emit_event (${later.id}).`).count(), wait).toBe(1);
      await expect
        .poll(() => page.getByText("No scheduled actions match this filter.").count(), wait)
        .toBe(1);
      expect((await harness.api<{ state: string }>(`/api/v1/scheduled-actions/${later.id}`)).state).toBe(
        "cancelled",
      );

      await page.goto(`${harness.url}/console/scheduled-actions?state=completed`);
      await expect.poll(() => rows(page, "Scheduled actions").count(), wait).toBe(1);
      await page.getByRole("button", { name: `Cancel emit_event ${ran.id}` }).click();
      const alert = page.getByRole("alert");
      await expect.poll(() => alert.count(), wait).toBe(1);
      expect(await alert.textContent()).toContain("409");
      await expectAccessible(watched, "Scheduled actions with a problem");
      // The only error answers are the refused cancel (and Chromium's console line about it).
      expect(watched.problems().filter((p) => !/409/.test(p))).toEqual([]);
    });
  },
);
