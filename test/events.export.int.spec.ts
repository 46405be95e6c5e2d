import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import { parquetReadObjects } from "hyparquet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { type Db, openDatabase, query } from "../src/db/client.js";
import { preparePartitions } from "../src/db/partitions.js";
import { type EventSource, eventSources } from "../src/domain/vocabularies.js";
import { type ExportFormat, exportColumns, exportEvents } from "../src/events/export/index.js";
import type { EventFilter } from "../src/events/filter.js";
import { eventTotals } from "../src/events/totals.js";
import type { NewEvent } from "../src/events/types.js";
import { writeEvents } from "../src/events/write.js";
import { createTenant } from "../src/tenancy/tenants.js";
import { backends, createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { sleep } from "./support/wait.js";

const adminToken = "test-admin-token-0123456789";
const types = [
  "message.delivered",
  "message.opened",
  "message.link.clicked",
  "contact.created",
  "order.placed",
];
const awkward = ['a"b', "x,y", "line\nbreak", "cr\r\nlf", " spaced ", "日本語 🎉", "", "NULL", "\\back"];

/** A row as a reader of any format should see it: the export columns, times as RFC 3339 text. */
type Row = Record<(typeof exportColumns)[number], unknown>;

/** The reference: the tenant's events in the filter, read straight from the table, oldest first by (ts, id). */
async function expectedRows(db: Db, filter: EventFilter): Promise<Row[]> {
  const rows = await query<Record<string, unknown>>(
    db,
    sql`select id, event_type, source, floor(extract(epoch from ts) * 1000)::float8 as timestamp,
      floor(extract(epoch from created_at) * 1000)::float8 as created_at, contact_id,
      session_id, message_id, event_key, correlation_id, causation_id, schema_version,
      sequence_number::float8 as sequence_number, payload::text as payload, metadata::text as metadata
      from events where tenant_id = ${filter.tenantId}::uuid
        and ts >= ${(filter.start ?? new Date(0)).toISOString()}::timestamptz
        and ts < ${(filter.end ?? new Date("2100-01-01")).toISOString()}::timestamptz
        ${filter.type ? sql`and event_type like ${filter.type.replace(".*", ".%")}` : sql``}
        ${filter.source ? sql`and source = ${filter.source}` : sql``}
      order by ts, id`,
  );
  return rows.map((r) => ({
    ...r,
    // Times as JavaScript writes them: the export's own formatting is checked against this.
    timestamp: new Date(Number(r.timestamp)).toISOString(),
    created_at: new Date(Number(r.created_at)).toISOString(),
    schema_version: Number(r.schema_version),
    sequence_number: r.sequence_number === null ? null : Number(r.sequence_number),
    payload: JSON.parse(String(r.payload)),
    metadata: JSON.parse(String(r.metadata)),
  })) as Row[];
}

/** RFC 4180 records; an unquoted empty field is null, a quoted one the empty string. */
function parseCsv(text: string): (string | null)[][] {
  const records: (string | null)[][] = [];
  let record: (string | null)[] = [];
  let i = 0;
  while (i < text.length) {
    let field: string | null;
    if (text[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const quote = text.indexOf('"', i);
        if (quote < 0) throw new Error("unterminated quoted field");
        value += text.slice(i, quote);
        i = quote + 1;
        if (text[i] === '"') {
          value += '"';
          i++;
        } else break;
      }
      field = value;
    } else {
      let end = i;
      while (end < text.length && text[end] !== "," && text[end] !== "\r") end++;
      if (text.slice(i, end).includes('"') || text.slice(i, end).includes("\n"))
        throw new Error(`bare quote or line break in an unquoted field at ${i}`);
      field = end === i ? null : text.slice(i, end);
      i = end;
    }
    record.push(field);
    if (text[i] === ",") i++;
    else if (text.startsWith("\r\n", i)) {
      records.push(record);
      record = [];
      i += 2;
    } else if (i < text.length) throw new Error(`expected , or CRLF at ${i}`);
  }
  if (record.length > 0) throw new Error("the last record has no CRLF");
  return records;
}

/** Every format read back into rows of the reference's shape. */
async function readBack(format: ExportFormat, bytes: Buffer): Promise<Row[]> {
  if (format === "ndjson") {
    const text = bytes.toString("utf8");
    if (text === "") return [];
    expect(text.endsWith("\n")).toBe(true);
    return text
      .slice(0, -1)
      .split("\n")
      .map((line) => JSON.parse(line) as Row);
  }
  if (format === "csv") {
    const [header, ...records] = parseCsv(bytes.toString("utf8"));
    expect(header).toEqual([...exportColumns]);
    return records.map((fields) => {
      const row = Object.fromEntries(exportColumns.map((c, i) => [c, fields[i]])) as Row;
      return {
        ...row,
        schema_version: Number(row.schema_version),
        sequence_number: row.sequence_number === null ? null : Number(row.sequence_number),
        payload: JSON.parse(String(row.payload)),
        metadata: JSON.parse(String(row.metadata)),
      };
    });
  }
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
  return rows.map((r) => ({
    ...(r as Row),
    timestamp: (r.timestamp as Date).toISOString(),
    created_at: (r.created_at as Date).toISOString(),
    sequence_number: r.sequence_number === null ? null : Number(r.sequence_number),
  }));
}

/** A sink that keeps the bytes, optionally slowly (an export then spans the writers' work). */
function collector(delayMs = 0) {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      if (delayMs > 0) setTimeout(done, delayMs);
      else done();
    },
  });
  return { sink, bytes: () => Buffer.concat(chunks) };
}

const month = (m: number, day: number, minute: number) => new Date(Date.UTC(2026, m, day, 0, minute, 7, 123));

/** Varied events over Oct and Nov 2026 (two partitions), awkward text in every free-text column. */
function sampleEvents(tenantId: string, n: number): NewEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    tenantId,
    eventType: types[i % types.length]!,
    source: eventSources[i % eventSources.length] as EventSource,
    payload: { i, text: awkward[i % awkward.length], nested: { list: [1, null, "x"], empty: {} } },
    metadata: i % 3 === 0 ? { ip: "10.0.0.1", note: awkward[(i + 1) % awkward.length] } : {},
    // Several events share a millisecond: the id decides their order.
    timestamp: i % 7 === 0 ? month(9, 15, 0) : month(9 + (i % 2), 1 + (i % 28), i),
    contactId: i % 4 === 0 ? null : `contact-${awkward[i % awkward.length]}-${i % 10}`,
    sessionId: i % 5 === 0 ? `session,${i % 3}` : null,
    messageId: i % 6 === 0 ? "01890a5d-ac96-774b-bcce-b302099a8057" : null,
    eventKey: i % 8 === 0 ? `key-${i}` : null,
    correlationId: i % 2 === 0 ? `corr "${i % 5}"` : null,
    causationId: i % 9 === 0 ? "cause" : null,
    sequenceNumber: i % 3 === 0 ? i * 1000 : null,
    schemaVersion: 1 + (i % 2),
  }));
}

for (const backend of backends()) {
  describe(`events export on ${backend}`, () => {
    let t: TestDatabase;
    let db: Db;
    let h: HeraldApp;
    let tenant: string;
    let key: string;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      db = t.database.db;
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1 << 20 } });
      const created = await createTenant(db, "exporter");
      tenant = created.tenant.id;
      key = created.apiKey;
      const other = await createTenant(db, "other");
      await preparePartitions(db, ["events"], [month(9, 1, 0), month(10, 1, 0)]);
      await writeEvents(db, sampleEvents(tenant, 300));
      await writeEvents(db, sampleEvents(other.tenant.id, 40));
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    for (const format of ["ndjson", "csv", "parquet"] as const) {
      it(`${format}: every event of the range once, in (time, id) order, every field as stored`, async () => {
        const filter: EventFilter = { tenantId: tenant };
        const { sink, bytes } = collector();
        // Small batches: the windows and the keyset inside a window are both crossed many times.
        const result = await exportEvents(db, filter, format, sink, { batchRows: 7 });
        const expected = await expectedRows(db, filter);
        expect(expected).toHaveLength(300);
        expect(result.rows).toBe(300);
        expect(await readBack(format, bytes())).toEqual(expected);
        expect(result.bytes).toBe(bytes().length);
      });
    }

    it("answers each format over HTTP with its media type, the total, and the same bytes twice", async () => {
      const media = {
        ndjson: "application/x-ndjson",
        csv: "text/csv; charset=utf-8",
        parquet: "application/vnd.apache.parquet",
      };
      for (const format of ["ndjson", "csv", "parquet"] as const) {
        const url = `/api/v1/events/export?format=${format}&start=2026-10-01&end=2026-11-30`;
        const first = await h.app.inject({ method: "GET", url, headers: bearer(key) });
        const second = await h.app.inject({ method: "GET", url, headers: bearer(key) });
        expect(first.statusCode).toBe(200);
        expect(first.headers["content-type"]).toBe(media[format]);
        expect(first.headers["content-disposition"]).toBe(`attachment; filename="events.${format}"`);
        expect(first.headers["x-herald-total"]).toBe("300");
        expect(first.rawPayload.equals(second.rawPayload)).toBe(true);
        const rows = await readBack(format, first.rawPayload);
        expect(rows).toEqual(await expectedRows(db, { tenantId: tenant }));
      }
      // The default format is NDJSON; the list's total for the same range agrees.
      const plain = await h.app.inject({ method: "GET", url: "/api/v1/events/export", headers: bearer(key) });
      expect(plain.headers["content-type"]).toBe("application/x-ndjson");
      expect(plain.body.trim().split("\n")).toHaveLength(300);
    });

    it("applies type (exact and prefix), source and day ranges as the list does", async () => {
      const cases: [string, EventFilter][] = [
        ["type=message.*", { tenantId: tenant, type: "message.*" }],
        ["type=order.placed&source=cron", { tenantId: tenant, type: "order.placed", source: "cron" }],
        // A date without a time covers the whole day: Oct 10 to the end of Nov 2.
        [
          "start=2026-10-10&end=2026-11-02",
          {
            tenantId: tenant,
            start: new Date("2026-10-10T00:00:00Z"),
            end: new Date("2026-11-03T00:00:00Z"),
          },
        ],
        [
          "start=2026-10-15T00:00:07.123Z&end=2026-10-15T00:00:07.124Z",
          {
            tenantId: tenant,
            start: new Date("2026-10-15T00:00:07.123Z"),
            end: new Date("2026-10-15T00:00:07.124Z"),
          },
        ],
        ["type=nothing.here", { tenantId: tenant, type: "nothing.here" }],
      ];
      for (const [params, filter] of cases) {
        const response = await h.app.inject({
          method: "GET",
          url: `/api/v1/events/export?format=ndjson&${params}`,
          headers: bearer(key),
        });
        expect(response.statusCode).toBe(200);
        const rows = await readBack("ndjson", response.rawPayload);
        const expected = await expectedRows(db, filter);
        expect({ params, rows }).toEqual({ params, rows: expected });
        expect(response.headers["x-herald-total"]).toBe(String(expected.length));
      }
    });

    it("writes an empty file of each format when nothing matches", async () => {
      const filter: EventFilter = { tenantId: tenant, type: "nothing.here" };
      for (const format of ["ndjson", "csv", "parquet"] as const) {
        const { sink, bytes } = collector();
        const result = await exportEvents(db, filter, format, sink);
        expect(result.rows).toBe(0);
        expect(await readBack(format, bytes())).toEqual([]);
      }
    });

    it("refuses bad input with 400 and the parameter's path", async () => {
      const cases: [string, string][] = [
        ["format=xml", "/querystring/format"],
        ["start=yesterday", "/querystring/start"],
        ["end=2026-13-01", "/querystring/end"],
        ["start=2026-11-02&end=2026-11-01", "/querystring/end"],
        ["start=2026-11-01T10:00:00Z&end=2026-11-01T10:00:00Z", "/querystring/end"],
        ["type=Message.Delivered", "/querystring/type"],
        ["source=email", "/querystring/source"],
        ["limit=10", "/querystring/limit"],
        ["cursor=abc", "/querystring/cursor"],
      ];
      for (const [params, path] of cases) {
        const response = await call(h.app, {
          method: "GET",
          url: `/api/v1/events/export?${params}`,
          headers: bearer(key),
        });
        expectProblem(response, 400, "validation_failed");
        // A union (format, source) names its field once per alternative: the distinct paths are what counts.
        const paths = [...new Set(response.body.errors.map((e: { path: string }) => e.path))];
        expect({ params, paths }).toEqual({
          params,
          paths: [path],
        });
      }
      const anonymous = await call(h.app, { method: "GET", url: "/api/v1/events/export" });
      expectProblem(anonymous, 401, "unauthorized");
    });

    it("fails without ending the sink when a batch fails part-way (the caller cuts the file short)", async () => {
      let reads = 0;
      const failing = <T>(read: (executor: Db) => Promise<T>) => {
        reads += 1;
        return reads === 4 ? Promise.reject(new Error("connection lost")) : read(db);
      };
      const { sink } = collector();
      await expect(
        exportEvents(failing, { tenantId: tenant }, "ndjson", sink, { batchRows: 10 }),
      ).rejects.toThrow("connection lost");
      expect(sink.writableEnded).toBe(false);
    });
  });
}

describe.runIf(hasPostgres())("events export while writers commit (PostgreSQL)", () => {
  let t: TestDatabase;
  let tenant: string;

  beforeAll(async () => {
    t = await createTestDatabase("postgres");
    tenant = (await createTenant(t.database.db, "busy")).tenant.id;
    await preparePartitions(t.database.db, ["events"], [month(9, 1, 0), month(10, 1, 0)]);
  });
  afterAll(() => t?.drop());

  it("holds every event committed before it began exactly once, whatever four writers commit meanwhile", async () => {
    const db = t.database.db;
    const before = await writeEvents(db, sampleEvents(tenant, 400));
    const committedBefore = new Set(before.map((r) => r.event.id));

    // Writers on connections of their own; some hold their transaction open across the export's start and
    // commit events with older times (into windows the export has passed) after it.
    const writers = await Promise.all(
      Array.from({ length: 4 }, () => openDatabase({ url: t.url!, poolSize: 2 })),
    );
    let stop = false;
    let started = false;
    const lateIds = new Set<string>();
    let commitsDuringExport = 0;
    const openBeforeStart: Promise<void>[] = [];
    const loops = writers.map(async (writer, w) => {
      let round = 0;
      while (!stop) {
        round += 1;
        const holdsOpen = (w + round) % 2 === 0;
        const events = sampleEvents(tenant, 5).map((e, i) => ({
          ...e,
          // Old times (October, where the export starts) and new ones.
          timestamp: month(9 + ((w + i) % 2), 1 + ((round + i) % 27), i),
          eventKey: null,
        }));
        const done = writer.db.transaction(async (tx) => {
          const results = await writeEvents(tx, events);
          if (holdsOpen) await sleep(30);
          for (const r of results) lateIds.add(r.event.id);
        });
        if (!started && holdsOpen) openBeforeStart.push(done.then(() => {}));
        await done;
        if (started && !stop) commitsDuringExport += 1;
      }
    });
    await sleep(100);
    // Whatever committed by now is part of "before" too.
    const [{ ids }] = (await query<{ ids: string[] }>(
      db,
      sql`select coalesce(array_agg(id::text), '{}') as ids from events where tenant_id = ${tenant}::uuid`,
    )) as [{ ids: string[] }];
    for (const id of ids) committedBefore.add(id);

    started = true;
    const { sink, bytes } = collector(5);
    // Counted first, as the route and the CLI do: the file then holds exactly as many rows.
    const totals = await eventTotals(db, { tenantId: tenant });
    const result = await exportEvents(db, { tenantId: tenant }, "ndjson", sink, { batchRows: 10, totals });
    stop = true;
    await Promise.all(loops);
    await Promise.all(openBeforeStart);
    await Promise.all(writers.map((w) => w.close()));

    const exported = (await readBack("ndjson", bytes())).map((r) => String(r.id));
    expect(exported).toHaveLength(result.rows);
    expect(new Set(exported).size).toBe(exported.length); // never twice
    expect(result.rows).toBe(totals.total); // exactly the events of the snapshot counted
    const missing = [...committedBefore].filter((id) => !exported.includes(id));
    expect(missing).toEqual([]); // never skipped
    // The writers did commit during the export, older times among them, and those are not in it.
    const [{ total }] = (await query<{ total: number }>(
      db,
      sql`select count(*)::int as total from events where tenant_id = ${tenant}::uuid`,
    )) as [{ total: number }];
    expect(total).toBeGreaterThan(result.rows);
    expect(lateIds.size).toBeGreaterThan(0);
    expect(commitsDuringExport).toBeGreaterThan(10);
    // Still (time, id) order.
    const rows = await readBack("ndjson", bytes());
    const keys = rows.map((r) => `${r.timestamp} ${r.id}`);
    expect(keys).toEqual([...keys].sort());
  }, 60_000);

  it("cuts the response short when the database fails after the first byte, and answers a problem before it", async () => {
    const db = t.database.db;
    const created = await createTenant(db, "cut");
    // Enough to outlast the socket's buffers and the batches read ahead (about 8 MB).
    await db.execute(sql`insert into events (tenant_id, event_type, source, payload, ts)
      select ${created.tenant.id}::uuid, 'order.placed', 'manual', jsonb_build_object('pad', repeat('x', 300), 'i', i),
        timestamptz '2026-10-01T00:00:00Z' + i * interval '1 minute'
      from generate_series(1, 20000) i`);
    const app = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1 << 20 } });
    await app.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.app.server.address() as { port: number };
    const url = `http://127.0.0.1:${port}/api/v1/events/export?format=ndjson`;
    const headers = bearer(created.apiKey);
    try {
      const response = await fetch(url, { headers });
      expect(response.status).toBe(200);
      // The body is not read yet: the export waits for the socket to drain, part of the file sent.
      await sleep(300);
      await db.execute(sql`alter table events rename to events_away`);
      let received = 0;
      const reader = response.body!.getReader();
      const outcome = await (async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return "ended";
            received += value.length;
          }
        } catch {
          return "cut short";
        }
      })();
      expect(outcome).toBe("cut short");
      expect(received).toBeGreaterThan(0);

      // Before the first byte (the count fails): a problem response, not a cut.
      const early = await fetch(url, { headers });
      expect(early.status).toBeGreaterThanOrEqual(500);
      expect(early.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    } finally {
      await db.execute(sql`alter table if exists events_away rename to events`);
      await app.app.close();
    }
  }, 60_000);
});
