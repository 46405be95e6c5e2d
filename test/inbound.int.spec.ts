import { sql } from "drizzle-orm";
import { getExpectedTwilioSignature } from "twilio/lib/webhooks/webhooks.js";
import { describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { createInboundWorker } from "../src/inbound/processor.js";
import { retryInbound } from "../src/inbound/retry.js";
import { backends } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { ingestHarness } from "./support/ingestHarness.js";
import { eventually } from "./support/wait.js";

const authToken = "9f2d7c31b8e04a6f5c1d2e3f4a5b6c7d";
const ours = "+14155550100";

/**
 * Inbound messages through `POST /api/v1/inbound` and the Twilio webhook, threaded by the inbound worker:
 * kept once per provider message id, one conversation per tenant + channel + outside address however many
 * arrive at once, email replies by their `In-Reply-To`, failures to dead letters and back, opt-outs.
 */
describe.each(backends())("inbound messages on %s", (backend) => {
  const k = ingestHarness(backend);
  const db = () => k.t.database.db;

  const inbound = (key: string, payload: object) =>
    call(k.h.app, { method: "POST", url: "/api/v1/inbound", headers: bearer(key), payload });

  const sms = (id: string, from: string, body = "hello") => ({
    channel: "sms",
    provider: "twilio",
    provider_message_id: id,
    from,
    to: ours,
    body,
  });

  /** Run `workers` inbound workers at once until no event is pending or in flight. */
  async function threadAll(workers = 1) {
    const running = Array.from({ length: workers }, (_, i) =>
      createInboundWorker({ db: db(), listen: k.t.database.listen, pollIntervalMs: 20, workerId: `w${i}` }),
    );
    await Promise.all(running.map((w) => w.start()));
    await eventually(
      async () => (await count(db(), "inbound_events", "status in ('pending', 'processing')")) === 0,
      15_000,
      "inbound events threaded",
    );
    await Promise.all(running.map((w) => w.stop()));
  }

  const conversationsOf = (tenantId: string) =>
    query<{ id: string; participant_address: string; message_count: number; channel: string }>(
      db(),
      sql`select id, participant_address, message_count, channel from conversations where tenant_id = ${tenantId}`,
    );
  const messagesOf = (tenantId: string) =>
    query<{ id: string; conversation_id: string; thread_reason: string; metadata: Record<string, unknown> }>(
      db(),
      sql`select id, conversation_id, thread_reason, metadata from inbound_messages where tenant_id = ${tenantId}
        order by received_at, id`,
    );

  it("20 copies of one message posted at once: one message, one conversation", async () => {
    const { key, tenantId } = await k.tenantWithSource("inbound-copies", false);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => inbound(key, sms("SMcopy1", "+1 (415) 555-0199"))),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(202));
    expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(1);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(await count(db(), "inbound_events", `tenant_id = '${tenantId}'`)).toBe(1);
    await threadAll(2);
    const messages = await messagesOf(tenantId);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ id: answers[0]!.body.id, thread_reason: "new" });
    expect(await conversationsOf(tenantId)).toEqual([
      expect.objectContaining({ participant_address: "+14155550199", message_count: 1, channel: "sms" }),
    ]);
  });

  it("20 different messages of one pair at once, threaded by two workers: one conversation of 20", async () => {
    const { key, tenantId } = await k.tenantWithSource("inbound-pair", false);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => inbound(key, sms(`SMpair${i}`, "+14155550142", `message ${i}`))),
    );
    expect(answers.every((a) => a.status === 202 && a.body.duplicate === false)).toBe(true);
    await threadAll(2);
    const conversations = await conversationsOf(tenantId);
    expect(conversations).toEqual([expect.objectContaining({ message_count: 20 })]);
    const messages = await messagesOf(tenantId);
    expect(messages).toHaveLength(20);
    expect(messages.every((m) => m.conversation_id === conversations[0]!.id)).toBe(true);
    expect(messages.map((m) => m.thread_reason).sort()).toEqual([...Array(19).fill("address_pair"), "new"]);
  });

  it("threads an email reply by In-Reply-To to its outbound message's conversation, else by address", async () => {
    const { key, tenantId } = await k.tenantWithSource("inbound-email", false);
    const sent = await k.register(key, {
      channel: "email",
      provider: "sendgrid",
      to: "Ada@Example.com",
      email_message_id: "<abc.123@mail.example.com>",
    });
    expect(sent.status).toBe(201);
    expect(sent.body.email_message_id).toBe("abc.123@mail.example.com");
    // From another address of hers (a forward, an alias): only the header can thread it.
    const reply = await inbound(key, {
      channel: "email",
      provider: "inbound-parse",
      provider_message_id: "<reply-1@example.com>",
      from: "ada.lovelace@example.org",
      to: "support@herald.example",
      subject: "Re: hello",
      body: "Thanks!",
      in_reply_to: "abc.123@mail.example.com",
      references: ["<older@mail.example.com>", "<abc.123@mail.example.com>"],
    });
    expect(reply.status).toBe(202);
    const other = await inbound(key, {
      channel: "email",
      provider: "inbound-parse",
      provider_message_id: "<other-1@example.com>",
      from: " ADA@example.COM ",
      to: "support@herald.example",
      body: "And another thing",
      in_reply_to: "<unknown@nowhere>",
    });
    expect(other.status).toBe(202);
    await threadAll();
    const conversations = await conversationsOf(tenantId);
    expect(conversations).toEqual([
      // The message sent and its two replies.
      expect.objectContaining({ participant_address: "ada@example.com", message_count: 3 }),
    ]);
    const byId = new Map((await messagesOf(tenantId)).map((m) => [m.id, m]));
    expect(byId.get(reply.body.id)?.thread_reason).toBe("reply_to_message");
    expect(byId.get(other.body.id)?.thread_reason).toBe("address_pair");
  });

  it("registered outbound messages belong to their recipient's conversation as outbound, counted once", async () => {
    const { key, tenantId } = await k.tenantWithSource("inbound-outbound", false);
    const first = await k.register(key, {
      channel: "sms",
      provider: "twilio",
      to: "+1 415 555 0188",
      dedupe_key: "welcome",
    });
    expect(first.status).toBe(201);
    expect(
      (
        await k.register(key, {
          channel: "sms",
          provider: "twilio",
          to: "+14155550188",
          dedupe_key: "welcome",
        })
      ).status,
    ).toBe(200);
    const batch = await k.registerBatch(key, [
      { channel: "sms", provider: "twilio", to: "+14155550188" },
      { channel: "sms", provider: "twilio", to: "+14155550189", dedupe_key: "b" },
      { channel: "sms", provider: "twilio", to: "+14155550189", dedupe_key: "b" },
      { channel: "email", provider: "sendgrid", to: "+14155550188@example.com" },
    ]);
    expect(batch.status).toBe(201);
    // Sending starts no conversation: the first message from the address does, counting what was sent there.
    expect(await conversationsOf(tenantId)).toEqual([]);
    await inbound(key, sms("SMout1", "+14155550188", "thanks"));
    await threadAll();
    const [conversation, ...others] = await conversationsOf(tenantId);
    expect(others).toEqual([]);
    expect(conversation).toMatchObject({
      channel: "sms",
      participant_address: "+14155550188",
      message_count: 3,
    });
    const [reply] = await messagesOf(tenantId);
    // Messages had been sent to the address: the reply joined them, it did not start anything new.
    expect(reply).toMatchObject({ conversation_id: conversation!.id, thread_reason: "address_pair" });
    const page = await call(k.h.app, {
      method: "GET",
      url: `/api/v1/conversations/${conversation!.id}/messages`,
      headers: bearer(key),
    });
    expect(page.status).toBe(200);
    expect(page.body.total).toBe(3);
    expect(page.body.items.map((m: { direction: string; thread_reason: string }) => m.direction)).toEqual([
      "outbound",
      "outbound",
      "inbound",
    ]);
    expect(
      page.body.items.slice(0, 2).every((m: { thread_reason: string }) => m.thread_reason === "outbound"),
    ).toBe(true);

    // Sent after: moved to the top and counted (a repeated dedupe key counts nothing).
    const later = new Date(Date.now() + 60_000).toISOString();
    expect(
      (await k.register(key, { channel: "sms", provider: "twilio", to: "+14155550188", sent_at: later }))
        .status,
    ).toBe(201);
    expect(
      (
        await k.register(key, {
          channel: "sms",
          provider: "twilio",
          to: "+14155550188",
          dedupe_key: "welcome",
        })
      ).status,
    ).toBe(200);
    const [moved] = await query<{ message_count: number; last_activity_at: Date }>(
      db(),
      sql`select message_count, last_activity_at from conversations where id = ${conversation!.id}`,
    );
    expect(moved!.message_count).toBe(4);
    expect(new Date(moved!.last_activity_at).toISOString()).toBe(later);
  });

  it("registrations racing the first reply from their address are all counted, by either order", async () => {
    const { key, tenantId } = await k.tenantWithSource("inbound-race", false);
    const address = "+14155550177";
    // Registrations (singles and batches) while replies arrive and the worker threads them: whichever
    // commits first, the conversation's count ends equal to the messages of both directions.
    const worker = createInboundWorker({
      db: db(),
      listen: k.t.database.listen,
      pollIntervalMs: 5,
      workerId: "race",
    });
    await worker.start();
    try {
      const sends = Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0
          ? k.registerBatch(key, [
              { channel: "sms", provider: "twilio", to: address },
              { channel: "sms", provider: "twilio", to: address },
            ])
          : k.register(key, { channel: "sms", provider: "twilio", to: address }),
      );
      const replies = Array.from({ length: 5 }, (_, i) =>
        inbound(key, sms(`SMrace${i}`, address, `reply ${i}`)),
      );
      const answers = await Promise.all([...sends, ...replies]);
      expect(answers.every((a) => a.status === 201 || a.status === 202)).toBe(true);
      await eventually(
        async () => (await count(db(), "inbound_events", "status in ('pending', 'processing')")) === 0,
        15_000,
        "inbound events threaded",
      );
    } finally {
      await worker.stop();
    }
    const [conversation] = await conversationsOf(tenantId);
    expect(conversation!.message_count).toBe(40 + 5);
    const page = await call(k.h.app, {
      method: "GET",
      url: `/api/v1/conversations/${conversation!.id}/messages?page_size=100`,
      headers: bearer(key),
    });
    expect(page.body.total).toBe(45);
  });

  it("refuses bad input with a problem naming the field, and stores nothing", async () => {
    const { key, tenantId } = await k.tenantWithSource("inbound-bad", false);
    const cases: [object, string][] = [
      [sms("SMbad1", "0415 555 0100"), "/body/from"],
      [{ ...sms("SMbad2", "+14155550100"), to: "not a phone" }, "/body/to"],
      [
        { ...sms("SMbad3", "ada@example.com"), channel: "email", from: "Ada <ada@example.com>" },
        "/body/from",
      ],
      [{ ...sms("SMbad4", "+14155550100"), channel: "fax" }, "/body/channel"],
      [{ ...sms("SMbad5", "+14155550100"), colour: "blue" }, "/body"],
      [{ channel: "sms", provider: "twilio", from: "+14155550100", to: ours, body: "x" }, "/body"],
    ];
    for (const [payload, path] of cases) {
      const answer = await inbound(key, payload);
      expectProblem(answer, 400, "validation_failed");
      expect(JSON.stringify(answer.body.errors ?? []), JSON.stringify(payload)).toContain(path);
    }
    const unauthenticated = await call(k.h.app, {
      method: "POST",
      url: "/api/v1/inbound",
      payload: sms("SMbad6", "+14155550100"),
    });
    expect(unauthenticated.status).toBe(401);
    expect(await count(db(), "inbound_events", `tenant_id = '${tenantId}'`)).toBe(0);
  });

  it("counts failed attempts up to a dead letter, threading the others of its chunk; a retry threads it", async () => {
    const { key, tenantId } = await k.tenantWithSource("inbound-dead", false);
    const posted = await inbound(key, sms("SMdead1", "+14155550177"));
    // A payload the worker cannot store (its message id is no UUID): every attempt fails.
    await query(
      db(),
      sql`update inbound_events set max_attempts = 3,
        payload = jsonb_set(payload, '{message_id}', '"not-a-uuid"') where tenant_id = ${tenantId}`,
    );
    // Claimed with it, in one chunk: threaded all the same.
    const others = await Promise.all(
      [2, 3, 4, 5].map((n) => inbound(key, sms(`SMdead${n}`, `+1415555017${n}`, `good ${n}`))),
    );
    const worker = createInboundWorker({
      db: db(),
      pollIntervalMs: 20,
      backoff: { baseMs: 1, maxMs: 5 },
    });
    const dead: unknown[] = [];
    worker.on("job:dead", (row) => dead.push(row.id));
    await worker.start();
    await eventually(
      async () =>
        (await count(db(), "inbound_events", `tenant_id = '${tenantId}' and status = 'dead'`)) === 1,
      15_000,
    );
    await worker.stop();
    const [row] = await query<{ id: string; attempts: number; last_error: string }>(
      db(),
      sql`select id, attempts, last_error from inbound_events
        where tenant_id = ${tenantId} and status = 'dead'`,
    );
    expect(row).toMatchObject({ attempts: 3, last_error: expect.stringMatching(/uuid/i) });
    expect(dead).toHaveLength(1);
    expect((await messagesOf(tenantId)).map((m) => m.id).sort()).toEqual(others.map((o) => o.body.id).sort());
    // Fixed, then retried: threaded like a new one.
    await query(
      db(),
      sql`update inbound_events set payload = jsonb_set(payload, '{message_id}', to_jsonb(${posted.body.id}::text))
        where tenant_id = ${tenantId}`,
    );
    expect(await retryInbound(db(), tenantId, [Number(row!.id) + 1000])).toEqual([]);
    // All of the tenant's dead (`herald inbound retry --tenant`): this one.
    expect(await retryInbound(db(), tenantId)).toEqual([Number(row!.id)]);
    await threadAll();
    expect((await messagesOf(tenantId)).map((m) => m.id)).toContain(posted.body.id);
    expect(await count(db(), "inbound_messages", `tenant_id = '${tenantId}'`)).toBe(5);
  });

  describe("Twilio", () => {
    async function tenantWithTwilio(name: string) {
      const { key, tenantId } = await k.tenantWithSource(name, false);
      const source = await call(k.h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "twilio", verification: { auth_token: authToken } },
      });
      expect(source.status).toBe(201);
      return { key, tenantId, url: source.body.url as string };
    }

    const twilioSms = (url: string, sid: string, from: string, body: string, signed = true) => {
      const params: Record<string, string> = {
        ToCountry: "US",
        SmsMessageSid: sid,
        NumMedia: "0",
        SmsSid: sid,
        SmsStatus: "received",
        Body: body,
        To: ours,
        NumSegments: "1",
        MessageSid: sid,
        AccountSid: "AC3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c",
        From: from,
        ApiVersion: "2010-04-01",
      };
      return call(k.h.app, {
        method: "POST",
        url,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          ...(signed
            ? {
                "x-twilio-signature": getExpectedTwilioSignature(authToken, `http://localhost${url}`, params),
              }
            : {}),
        },
        payload: new URLSearchParams(params).toString(),
      });
    };

    const suppressions = async (key: string) =>
      (
        await call(k.h.app, {
          method: "GET",
          url: "/api/v1/suppressions?channel=sms",
          headers: bearer(key),
        })
      ).body;
    const logged = (tenantId: string) =>
      query<{ event_type: string; payload: Record<string, unknown> }>(
        db(),
        sql`select event_type, payload from events where tenant_id = ${tenantId} and event_type like 'contact.%'
          order by ts, id`,
      );

    it("keeps an inbound SMS once, answers TwiML, and a retry adds nothing", async () => {
      const a = await tenantWithTwilio("twilio-inbound");
      const sid = "SM10000000000000000000000000000001";
      for (let i = 0; i < 2; i++) {
        const answer = await twilioSms(a.url, sid, "+14155550123", "Is it open today?");
        expect(answer.status).toBe(200);
        expect(String(answer.headers["content-type"])).toMatch(/^text\/xml/);
        expect(answer.body).toContain("<Response/>");
      }
      expect(await count(db(), "inbound_events", `tenant_id = '${a.tenantId}'`)).toBe(1);
      expect(await count(db(), "webhook_deliveries", `tenant_id = '${a.tenantId}'`)).toBe(0);
      await threadAll();
      expect(await twilioSms(a.url, sid, "+14155550123", "Is it open today?")).toMatchObject({ status: 200 });
      await threadAll();
      expect(await messagesOf(a.tenantId)).toHaveLength(1);
      expect(await conversationsOf(a.tenantId)).toEqual([
        expect.objectContaining({ participant_address: "+14155550123", message_count: 1 }),
      ]);
      // A status callback to the same URL still goes to the delivery archive, answered with an empty 200.
      const status: Record<string, string> = {
        MessageSid: "SM10000000000000000000000000000003",
        MessageStatus: "delivered",
        To: "+14155550123",
        From: ours,
        AccountSid: "AC3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c",
      };
      const callback = await call(k.h.app, {
        method: "POST",
        url: a.url,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-twilio-signature": getExpectedTwilioSignature(authToken, `http://localhost${a.url}`, status),
        },
        payload: new URLSearchParams(status).toString(),
      });
      expect(callback).toMatchObject({ status: 200, body: "" });
      expect(String(callback.headers["content-type"])).toMatch(/^text\/plain/);
      expect(await count(db(), "webhook_deliveries", `tenant_id = '${a.tenantId}'`)).toBe(1);
      const metrics = await k.h.registry.metrics();
      expect(metrics).toMatch(/herald_inbound_received_total\{channel="sms",duplicate="true"\} [1-9]\d*/);
      expect(metrics).toMatch(/herald_inbound_received_total\{channel="sms",duplicate="false"\} [1-9]\d*/);
      const unsigned = await twilioSms(
        a.url,
        "SM10000000000000000000000000000002",
        "+14155550123",
        "x",
        false,
      );
      expect(unsigned.status).toBe(401);
      expect(await count(db(), "inbound_events", `tenant_id = '${a.tenantId}'`)).toBe(1);
    });

    it("STOP suppresses the sender, START lifts it, HELP is recorded; each opt-out and opt-in logged", async () => {
      const a = await tenantWithTwilio("twilio-optout");
      const from = "+14155550166";
      expect((await twilioSms(a.url, "SM20000000000000000000000000000001", from, " stop ")).status).toBe(200);
      await threadAll();
      expect((await suppressions(a.key)).suppressions).toEqual([
        expect.objectContaining({ channel: "sms", address: from, reason: "opt_out" }),
      ]);
      // "stop it" is a message, not a keyword.
      expect((await twilioSms(a.url, "SM20000000000000000000000000000002", from, "stop it")).status).toBe(
        200,
      );
      expect((await twilioSms(a.url, "SM20000000000000000000000000000003", from, "HELP")).status).toBe(200);
      await threadAll();
      expect((await suppressions(a.key)).suppressions).toHaveLength(1);
      expect((await twilioSms(a.url, "SM20000000000000000000000000000004", from, "Start")).status).toBe(200);
      await threadAll();
      expect((await suppressions(a.key)).suppressions).toEqual([]);
      expect(
        (await logged(a.tenantId)).map((e) => [e.event_type, e.payload.keyword, e.payload.address]),
      ).toEqual([
        ["contact.opted_out", "STOP", from],
        ["contact.opted_in", "START", from],
      ]);
      const keywords = (await messagesOf(a.tenantId)).map((m) => m.metadata.keyword ?? null);
      expect(keywords).toEqual(["STOP", null, "HELP", "START"]);
      expect(await conversationsOf(a.tenantId)).toEqual([expect.objectContaining({ message_count: 4 })]);
    });
  });
});
