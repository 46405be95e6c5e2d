import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { preparePartitions } from "../src/db/partitions.js";
import { type EventFilter, typeMatch, typeMatches } from "../src/events/filter.js";
import { writeEvents } from "../src/events/write.js";
import {
  countEventsByContact,
  countEventsBySession,
  findEvent,
  findEventsByContact,
  findEventsBySession,
  findEventsByType,
  findEventsInRange,
  fold,
  type ReadPage,
  type ReadPosition,
  streamEvents,
} from "../src/index.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { bearer, call, expectProblem } from "./support/http.js";

const adminToken = "events-query-admin-token-0123456789";

/** A seeded pseudo-random sequence: the same events on every run. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
}

interface Seeded {
  id: string;
  type: string;
  source: "system" | "webhook" | "manual" | "cron" | "workflow";
  ts: number;
  contact?: string;
  session?: string;
  message?: string;
  correlation?: string;
}

// `message` alone and `messages.x` sit at the edges of the `message.*` prefix.
const types = [
  "message.sent",
  "message.delivered",
  "message.bounce",
  "message.open.machine",
  "message",
  "messages.x",
  "contact.created",
  "contact.updated",
  "order.placed",
  "order_item.added",
];
const sources = ["system", "webhook", "manual", "cron", "workflow"] as const;
const messageIds = [
  "0194a000-0000-7000-8000-000000000001",
  "0194a000-0000-7000-8000-000000000002",
  "0194a000-0000-7000-8000-000000000003",
];
const day = 86_400_000;

/** The reference: the seeded events a filter selects, in (time, id) order. */
function reference(events: Seeded[], f: Omit<EventFilter, "tenantId">): Seeded[] {
  const match = typeMatch(f.type);
  return events
    .filter(
      (e) =>
        typeMatches(match, e.type) &&
        (f.source === undefined || e.source === f.source) &&
        (f.contactId === undefined || e.contact === f.contactId) &&
        (f.sessionId === undefined || e.session === f.sessionId) &&
        (f.messageId === undefined || e.message === f.messageId) &&
        (f.correlationId === undefined || e.correlation === f.correlationId) &&
        (f.start === undefined || e.ts >= f.start.getTime()) &&
        (f.end === undefined || e.ts < f.end.getTime()),
    )
    .sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const iso = (ms: number) => new Date(ms).toISOString();

for (const backend of backends()) {
  describe(`event log queries on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    let key: string;
    let otherKey: string;
    let tenantId: string;
    const seeded: Seeded[] = [];
    const now = Date.now();
    const first = now - 10 * day;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1_000_000 } });
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "reader" },
      });
      key = created.body.api_key;
      tenantId = created.body.tenant.id;
      const other = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "other" },
      });
      otherKey = other.body.api_key;
      const next = random(15);
      const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)]!;
      const maybe = <T>(value: T, p = 0.5) => (next() < p ? value : undefined);
      const drafts = Array.from({ length: 2400 }, () => {
        // Whole seconds now and then, so that several events share a time and the id decides.
        const ts = first + Math.floor(next() * 10 * day);
        return {
          type: pick(types),
          source: pick(sources),
          ts: next() < 0.2 ? ts - (ts % 60_000) : ts,
          contact: maybe(`c${Math.floor(next() * 30)}`, 0.6),
          session: maybe(`s${Math.floor(next() * 12)}`, 0.4),
          message: maybe(pick(messageIds), 0.2),
          correlation: maybe(`corr${Math.floor(next() * 5)}`, 0.3),
        };
      });
      await preparePartitions(
        t.database.db,
        ["events"],
        drafts.map((d) => new Date(d.ts)),
      );
      for (let i = 0; i < drafts.length; i += 600) {
        const batch = drafts.slice(i, i + 600);
        const results = await writeEvents(
          t.database.db,
          batch.map((d) => ({
            tenantId,
            eventType: d.type,
            source: d.source,
            timestamp: new Date(d.ts),
            contactId: d.contact ?? null,
            sessionId: d.session ?? null,
            messageId: d.message ?? null,
            correlationId: d.correlation ?? null,
            payload: { n: i },
          })),
        );
        results.forEach((r, j) => {
          seeded.push({ ...batch[j]!, id: r.event.id });
        });
      }
      // The other tenant's events must never show.
      await call(h.app, {
        method: "POST",
        url: "/api/v1/events/batch",
        headers: bearer(otherKey),
        payload: {
          events: Array.from({ length: 50 }, (_, i) => ({
            event_type: "message.sent",
            source: "system",
            contact_id: "c1",
            timestamp: iso(now - i * 1000),
          })),
        },
      });
    }, 60_000);
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    /** Every page of a list, following next_cursor; the events and what the first page said. */
    async function everyPage(query: Record<string, string>, limit: number) {
      const ids: string[] = [];
      let cursor: string | null = null;
      let firstPage: Record<string, unknown> | undefined;
      do {
        const params = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
        const page = await call(h.app, {
          method: "GET",
          url: `/api/v1/events?${params}`,
          headers: bearer(key),
        });
        expect(page.status, JSON.stringify(page.body)).toBe(200);
        firstPage ??= page.body;
        expect(page.body.total).toBe(firstPage!.total);
        ids.push(...(page.body.events as { id: string }[]).map((e) => e.id));
        cursor = page.body.next_cursor;
      } while (cursor !== null);
      return { ids, first: firstPage! };
    }

    it("returns exactly the events, total and time range of every filter and combination", async () => {
      const next = random(99);
      const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)]!;
      const filters: { query: Record<string, string>; filter: Omit<EventFilter, "tenantId"> }[] = [
        { query: {}, filter: {} },
        { query: { type: "message.*" }, filter: { type: "message.*" } },
        { query: { type: "message" }, filter: { type: "message" } },
        { query: { type: "*" }, filter: {} },
        { query: { type: "message.open.*" }, filter: { type: "message.open.*" } },
      ];
      for (let i = 0; i < 30; i++) {
        const query: Record<string, string> = {};
        const filter: Omit<EventFilter, "tenantId"> = {};
        if (next() < 0.5) {
          const type = pick([...types, "message.*", "contact.*", "order.*"]);
          query.type = type;
          filter.type = type;
        }
        if (next() < 0.3) filter.source = query.source = pick(sources);
        if (next() < 0.2) filter.contactId = query.contact_id = `c${Math.floor(next() * 30)}`;
        if (next() < 0.15) filter.sessionId = query.session_id = `s${Math.floor(next() * 12)}`;
        if (next() < 0.1) filter.messageId = query.message_id = pick(messageIds);
        if (next() < 0.1) filter.correlationId = query.correlation_id = `corr${Math.floor(next() * 5)}`;
        if (next() < 0.5) {
          const start = first + Math.floor(next() * 5 * day);
          filter.start = new Date(start);
          query.start = iso(start);
        }
        if (next() < 0.5) {
          const end = first + 5 * day + Math.floor(next() * 6 * day);
          filter.end = new Date(end);
          query.end = iso(end);
        }
        filters.push({ query, filter });
      }
      for (const [i, { query, filter }] of filters.entries()) {
        const expected = reference(seeded, filter);
        const order = i % 2 === 0 ? "desc" : "asc";
        const { ids, first: firstPage } = await everyPage({ ...query, order }, [7, 50, 333, 1000][i % 4]!);
        const wanted = expected.map((e) => e.id);
        // The public shape only: no keyset internals.
        const shown = firstPage.events as Record<string, unknown>[];
        if (shown.length > 0) expect(Object.keys(shown[0]!)).not.toContain("ts_us");
        expect(ids, JSON.stringify(query)).toEqual(order === "desc" ? wanted.reverse() : wanted);
        expect(firstPage.total).toBe(expected.length);
        expect(firstPage.time_range).toEqual({
          start: expected.length ? iso(expected[0]!.ts) : null,
          end: expected.length ? iso(expected.at(-1)!.ts) : null,
        });
        const counted = await call(h.app, {
          method: "GET",
          url: `/api/v1/events/count?${new URLSearchParams(query)}`,
          headers: bearer(key),
        });
        expect(counted.body).toEqual({ count: expected.length });
      }
    }, 120_000);

    it("answers dates without a time as whole days: start inclusive, end through that day", async () => {
      const startDay = iso(first + 2 * day).slice(0, 10);
      const endDay = iso(first + 4 * day).slice(0, 10);
      const expected = reference(seeded, {
        start: new Date(`${startDay}T00:00:00.000Z`),
        end: new Date(Date.parse(`${endDay}T00:00:00.000Z`) + day),
      });
      const { ids, first: firstPage } = await everyPage({ start: startDay, end: endDay }, 1000);
      expect(firstPage.total).toBe(expected.length);
      expect(new Set(ids)).toEqual(new Set(expected.map((e) => e.id)));
    });

    it("counts stats by type, source, day, hour and pairs, exactly", async () => {
      const start = first + 3 * day + 1234;
      const end = first + 6 * day - 4321;
      const window = reference(seeded, { start: new Date(start), end: new Date(end) });
      const bucketOf = {
        type: (e: Seeded) => e.type,
        source: (e: Seeded) => e.source,
        day: (e: Seeded) => `${iso(e.ts).slice(0, 10)}T00:00:00.000Z`,
        hour: (e: Seeded) => `${iso(e.ts).slice(0, 13)}:00:00.000Z`,
      };
      for (const groupBy of ["type", "source", "day", "hour", "type,day", "source,hour"]) {
        const dims = groupBy.split(",") as (keyof typeof bucketOf)[];
        const expected = new Map<string, number>();
        for (const e of window) {
          const k = dims.map((d) => bucketOf[d](e)).join(",");
          expected.set(k, (expected.get(k) ?? 0) + 1);
        }
        const stats = await call(h.app, {
          method: "GET",
          url: `/api/v1/events/stats?${new URLSearchParams({ start: iso(start), end: iso(end), group_by: groupBy })}`,
          headers: bearer(key),
        });
        expect(stats.status).toBe(200);
        expect(stats.body.total).toBe(window.length);
        expect(
          new Map((stats.body.buckets as { key: string; count: number }[]).map((b) => [b.key, b.count])),
        ).toEqual(expected);
      }
      const messages = await call(h.app, {
        method: "GET",
        url: "/api/v1/events/stats?group_by=type&type=message.*",
        headers: bearer(key),
      });
      expect(messages.body.total).toBe(reference(seeded, { type: "message.*" }).length);
    });

    it("serves a contact's and a session's timeline oldest first, paged", async () => {
      for (const [path, field] of [
        ["contacts/c3", "contact"],
        ["sessions/s4", "session"],
      ] as const) {
        const id = path.split("/")[1];
        const expected = seeded
          .filter((e) => e[field] === id)
          .sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : 1));
        const ids: string[] = [];
        let cursor: string | null = null;
        do {
          const page = await call(h.app, {
            method: "GET",
            url: `/api/v1/${path}/events?limit=13${cursor ? `&cursor=${cursor}` : ""}`,
            headers: bearer(key),
          });
          expect(page.status).toBe(200);
          ids.push(...(page.body.events as { id: string }[]).map((e) => e.id));
          cursor = page.body.next_cursor;
        } while (cursor);
        expect(ids).toEqual(expected.map((e) => e.id));
      }
      // Another tenant's contact c1 has 50 events; this tenant sees only its own.
      const own = seeded.filter((e) => e.contact === "c1").length;
      const counted = await call(h.app, {
        method: "GET",
        url: "/api/v1/events/count?contact_id=c1",
        headers: bearer(key),
      });
      expect(counted.body.count).toBe(own);
    });

    it("shows each event in a page and a timeline exactly as GET /events/{id} shows it", async () => {
      // Its own tenant: the seeded one's references stay as they are.
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "shapes" },
      });
      const shapesKey = created.body.api_key as string;
      const texts = ['a"b\\c', "日本語 🎉", "", "line\nbreak", "it's", "NULL"];
      const { length } = await writeEvents(
        t.database.db,
        texts.map((text, i) => ({
          tenantId: created.body.tenant.id,
          eventType: i % 2 === 0 ? "contact.noted" : "message.delivered",
          source: sources[i % sources.length]!,
          payload: {
            text,
            nothing: null,
            big: 2 ** 60,
            frac: 0.1 + i,
            nested: { list: [null, i] },
          },
          ...(i % 2 === 0 ? { metadata: { text } } : {}),
          timestamp: new Date(now - i * 1_234_567 - 0.5),
          contactId: "shape",
          sessionId: `${text}|${i}`,
          ...(i % 3 === 0 ? { correlationId: text, causationId: "cause" } : {}),
          ...(i % 2 === 1 ? { sequenceNumber: i * 1_000_000_007, eventKey: `key-${text}` } : {}),
          ...(i === 4 ? { messageId: messageIds[0], schemaVersion: 3 } : {}),
        })),
      );
      expect(length).toBe(texts.length);
      const list = await call(h.app, {
        method: "GET",
        url: "/api/v1/events?limit=100",
        headers: bearer(shapesKey),
      });
      const timeline = await call(h.app, {
        method: "GET",
        url: "/api/v1/contacts/shape/events",
        headers: bearer(shapesKey),
      });
      expect(list.headers["content-type"]).toMatch(/^application\/json/);
      expect(list.body.events).toHaveLength(texts.length);
      expect(timeline.body.events).toHaveLength(texts.length);
      for (const shown of [...list.body.events, ...timeline.body.events] as { id: string }[]) {
        const one = await call(h.app, {
          method: "GET",
          url: `/api/v1/events/${shown.id}`,
          headers: bearer(shapesKey),
        });
        expect(one.status).toBe(200);
        expect(shown).toEqual(one.body);
      }
      // Values travel as literals in the statement's text (`query`'s `inline`): quotes, backslashes and the
      // like find exactly their own events, and a NUL is refused as bad input.
      for (const [i, text] of texts.entries()) {
        const session = await call(h.app, {
          method: "GET",
          url: `/api/v1/sessions/${encodeURIComponent(`${text}|${i}`)}/events`,
          headers: bearer(shapesKey),
        });
        expect(session.status).toBe(200);
        expect(session.body.events.map((e: { session_id: string }) => e.session_id)).toEqual([
          `${text}|${i}`,
        ]);
      }
      const counted = await call(h.app, {
        method: "GET",
        url: `/api/v1/events/count?correlation_id=${encodeURIComponent("it's' or '1'='1")}`,
        headers: bearer(shapesKey),
      });
      expect(counted.body).toEqual({ count: 0 });
      expectProblem(
        await call(h.app, {
          method: "GET",
          url: "/api/v1/contacts/a%00b/events",
          headers: bearer(shapesKey),
        }),
        400,
        "validation_failed",
      );
    });

    it("streams a filter in one snapshot and folds it in order (the library)", async () => {
      const filter: EventFilter = { tenantId, type: "order.*" };
      const expected = reference(seeded, filter);
      const seen = await fold(
        streamEvents(t.database.db, filter, { batch: 37 }),
        (ids: string[], event) => [...ids, event.id],
        [],
      );
      expect(seen).toEqual(expected.map((e) => e.id));
    });

    it("finds by id, contact, session, type and time range, and counts by contact and session (the library)", async () => {
      const db = t.database.db;
      const all = async (read: (after?: ReadPosition) => Promise<ReadPage>) => {
        const ids: string[] = [];
        let after: ReadPosition | undefined;
        do {
          const page = await read(after);
          ids.push(...page.events.map((e) => e.id));
          after = page.next;
        } while (after);
        return ids;
      };
      const ids = (events: Seeded[]) => events.map((e) => e.id);
      expect(await all((after) => findEventsByContact(db, tenantId, "c7", { limit: 11, after }))).toEqual(
        ids(reference(seeded, { contactId: "c7" })),
      );
      expect(await all((after) => findEventsBySession(db, tenantId, "s2", { after }))).toEqual(
        ids(reference(seeded, { sessionId: "s2" })),
      );
      expect(await all((after) => findEventsByType(db, tenantId, "contact.*", { limit: 64, after }))).toEqual(
        ids(reference(seeded, { type: "contact.*" })),
      );
      const range = { start: new Date(first + day), end: new Date(first + 2 * day) };
      expect(await all((after) => findEventsInRange(db, tenantId, range, { limit: 500, after }))).toEqual(
        ids(reference(seeded, range)),
      );
      expect(await countEventsByContact(db, tenantId, "c7")).toBe(
        reference(seeded, { contactId: "c7" }).length,
      );
      expect(await countEventsBySession(db, tenantId, "s2")).toBe(
        reference(seeded, { sessionId: "s2" }).length,
      );
      const one = seeded[123]!;
      expect(await findEvent(db, tenantId, one.id)).toMatchObject({ id: one.id, event_type: one.type });
    });

    it("refuses bad input on every parameter with the contract's 400 and its path", async () => {
      const bad: [string, string][] = [
        ["/api/v1/events?limit=0", "/querystring/limit"],
        ["/api/v1/events?limit=5000", "/querystring/limit"],
        ["/api/v1/events?colour=red", "/querystring/colour"],
        ["/api/v1/events?type=Message.*", "/querystring/type"],
        ["/api/v1/events?type=message.**", "/querystring/type"],
        ["/api/v1/events?type=message.", "/querystring/type"],
        ["/api/v1/events?start=yesterday", "/querystring/start"],
        ["/api/v1/events?start=2026-11-10&end=2026-11-01", "/querystring/end"],
        ["/api/v1/events?order=sideways", "/querystring/order"],
        ["/api/v1/events?source=carrier", "/querystring/source"],
        ["/api/v1/events?message_id=nope", "/querystring/message_id"],
        ["/api/v1/events?cursor=garbage", "/querystring/cursor"],
        ["/api/v1/events/stats?group_by=week", "/querystring/group_by"],
        ["/api/v1/events/stats?group_by=type,type", "/querystring/group_by"],
        ["/api/v1/events/stats?group_by=type,day,hour", "/querystring/group_by"],
        ["/api/v1/events/count?limit=3", "/querystring/limit"],
        ["/api/v1/contacts/c1/events?type=message.*", "/querystring/type"],
      ];
      for (const [url, path] of bad) {
        const answer = await call(h.app, { method: "GET", url, headers: bearer(key) });
        expectProblem(answer, 400, "validation_failed");
        expect(
          (answer.body.errors as { path: string }[]).map((e) => e.path),
          url,
        ).toContain(path);
      }
      // A cursor of another filter, another tenant, or edited, is refused.
      const page = await call(h.app, {
        method: "GET",
        url: "/api/v1/events?type=message.*&limit=5",
        headers: bearer(key),
      });
      const cursor = page.body.next_cursor as string;
      for (const [url, token] of [
        [`/api/v1/events?type=contact.*&limit=5&cursor=${cursor}`, key],
        [`/api/v1/events?type=message.*&limit=5&cursor=${cursor}`, otherKey],
        [`/api/v1/events?type=message.*&limit=5&cursor=${cursor.slice(0, 10)}x${cursor.slice(11)}`, key],
      ] as const) {
        expectProblem(
          await call(h.app, { method: "GET", url, headers: bearer(token) }),
          400,
          "validation_failed",
        );
      }
      // The page size may change between pages.
      const more = await call(h.app, {
        method: "GET",
        url: `/api/v1/events?type=message.*&limit=9&cursor=${cursor}`,
        headers: bearer(key),
      });
      expect(more.status).toBe(200);
    });
  });
}
