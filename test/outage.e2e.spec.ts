import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pgArray } from "../src/db/arrays.js";
import { type Database, openDatabase, query } from "../src/db/client.js";
import { createSource } from "../src/tenancy/sources.js";
import { createTenant } from "../src/tenancy/tenants.js";
import { createServerDatabase, hasPostgres } from "./support/databases.js";
import { cleanEnv, spawnProcess } from "./support/process.js";
import { TcpRelay } from "./support/proxy.js";
import { eventually, sleep } from "./support/wait.js";

const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const boundMs = 1000;

type Kind = "event" | "webhook" | "readyz";

interface Answer {
  kind: Kind;
  /** The phase the request was sent in. */
  phase: string;
  sentAt: number;
  ms: number;
  status: number;
  contentType: string;
  body: Record<string, unknown>;
  /** The event's key, or the delivery's id once acknowledged. */
  ref: string;
}

/**
 * A real `herald serve`, its database behind a relay that the test cuts, blackholes and restores while a
 * steady stream of requests is in flight (API.md: 503 `unavailable` within the bound, never a hang or a 200
 * after one). Every request is answered within HERALD_DB_TIMEOUT_MS + 1 s with a 2xx or a 503 `unavailable`;
 * every write answered 2xx is stored; and the same process answers 2xx again once the database is back.
 */
describe.skipIf(!hasPostgres())("herald serve while PostgreSQL goes away", () => {
  let server: Awaited<ReturnType<typeof createServerDatabase>>;
  let direct: Database;
  let relay: TcpRelay;

  beforeAll(async () => {
    server = await createServerDatabase();
    direct = await openDatabase({ url: server.url });
    const target = new URL(server.url);
    relay = new TcpRelay(target.hostname, Number(target.port || 5432));
    await relay.open();
  });
  afterAll(async () => {
    await relay?.cut();
    await direct?.close();
    await server?.drop();
  });

  it("answers within the bound through a cut, a blackhole and a fail-over, loses no 2xx, and recovers", async () => {
    const { tenant, apiKey } = await createTenant(direct.db, "outage");
    const source = await createSource(direct.db, tenant.id, { provider: "sendgrid" });
    const viaRelay = new URL(server.url);
    viaRelay.host = `127.0.0.1:${relay.port}`;
    const herald = spawnProcess(process.execPath, [cli, "serve"], {
      env: cleanEnv({
        DATABASE_URL: viaRelay.toString(),
        PORT: "0",
        LOG_LEVEL: "fatal",
        HERALD_DB_TIMEOUT_MS: String(boundMs),
        // Two API connections, both busy at the fail-over: recovery needs the dead ones found and closed.
        HERALD_DB_POOL_SIZE: "2",
      }),
    });
    const [, url] = await herald.waitFor(/Herald listening on (http:\/\/\S+)/, 60_000);

    let phase = "up";
    const phaseStarts = new Map<string, number>([[phase, performance.now()]]);
    const enter = (name: string) => {
      phase = name;
      phaseStarts.set(name, performance.now());
    };
    const answers: Answer[] = [];
    const send = async (kind: Kind): Promise<void> => {
      const ref = randomUUID();
      const [target, init]: [string, RequestInit] =
        kind === "event"
          ? [
              `${url}/api/v1/events`,
              {
                method: "POST",
                headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
                body: JSON.stringify({
                  event_type: "outage.probe",
                  source: "system",
                  event_key: ref,
                  payload: {},
                }),
              },
            ]
          : kind === "webhook"
            ? [
                `${url}/api/v1/webhooks/sendgrid/${source.id}`,
                {
                  method: "POST",
                  headers: { "content-type": "application/json" },
                  body: JSON.stringify([
                    {
                      email: "someone@example.com",
                      event: "delivered",
                      sg_event_id: ref,
                      sg_message_id: `${ref}.filter0001`,
                      timestamp: Math.floor(Date.now() / 1000),
                    },
                  ]),
                },
              ]
            : [`${url}/readyz`, {}];
      const at = phase;
      const sentAt = performance.now();
      // A hang shows as a slow answer (status 0), not as a stuck test.
      const response = await fetch(target, { ...init, signal: AbortSignal.timeout(15_000) }).catch(
        () => undefined,
      );
      const text = response ? await response.text().catch(() => "") : "";
      const ms = performance.now() - sentAt;
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      const status = response?.status ?? 0;
      answers.push({
        kind,
        phase: at,
        sentAt,
        ms,
        status,
        contentType: response?.headers.get("content-type") ?? "",
        body,
        ref: kind === "webhook" && status === 200 ? String(body.delivery_id) : ref,
      });
    };

    // Three clients of each kind, each sending one request after another: always some in flight.
    let running = true;
    const clients = (["event", "webhook", "readyz"] as const).flatMap((kind) =>
      [0, 1, 2].map(async () => {
        while (running) {
          await send(kind);
          await sleep(20); // pacing of the load, not a wait: a steady stream of requests
        }
      }),
    );
    /** Answers to the requests sent during a phase. */
    const sentIn = (name: string) => answers.filter((a) => a.phase === name);
    const ok = (a: Answer) => a.status >= 200 && a.status < 300;
    /** Wait until the process answers a write with a 2xx again, and a little longer. */
    const untilWritesSucceed = async (name: string) => {
      await eventually(
        () => sentIn(name).some((a) => a.kind === "event" && ok(a)),
        30_000,
        `a write answered 2xx in ${name}`,
      ).catch(() => undefined); // the assertions below say what never recovered
      await sleep(1000);
    };

    // The sleeps below are the outage's phases, the point of this test, each bounded: traffic before the
    // cut (1.5 s), the database kept down (3 s, longer than the bound, so requests meet it), the host kept
    // silent (3 s), a second of traffic after each recovery, and 2 s of steady traffic at the end.
    await sleep(1500);
    enter("cut"); // the server is down: port closed, connections reset
    await relay.cut();
    await sleep(3000);
    enter("after cut");
    await relay.restore();
    await untilWritesSucceed(phase);
    enter("blackhole"); // the host is gone: connections accepted and kept, nothing answered
    relay.blackhole();
    await sleep(3000);
    enter("after blackhole");
    await relay.restore();
    await untilWritesSucceed(phase);
    // A fail-over: the old connections go silent for good, new ones work. No restore: Herald finds out alone.
    enter("fail-over");
    relay.blackhole({ newConnections: true });
    await untilWritesSucceed(phase);
    enter("steady");
    await sleep(2000);
    running = false;
    await Promise.all(clients);
    expect(herald.child.exitCode, herald.output()).toBeNull();

    const summary = [...phaseStarts.keys()].map((name) => {
      const of = sentIn(name);
      const firstOk = of.filter(ok).sort((a, b) => a.sentAt - b.sentAt)[0];
      return {
        "requests sent in": name,
        count: of.length,
        "2xx": of.filter(ok).length,
        "503": of.filter((a) => a.status === 503).length,
        other: of.filter((a) => !ok(a) && a.status !== 503).length,
        "max ms": Math.round(Math.max(...of.map((a) => a.ms))),
        "first 2xx sent at ms": firstOk ? Math.round(firstOk.sentAt - phaseStarts.get(name)!) : null,
      };
    });
    console.log(`HERALD_DB_TIMEOUT_MS=${boundMs}`);
    console.table(summary);

    // Every request answered within the bound plus a second, with a 2xx or 503 unavailable.
    for (const answer of answers) {
      const what = `${answer.kind} sent in ${answer.phase}: ${answer.status} ${JSON.stringify(answer.body)}`;
      expect(answer.ms, what).toBeLessThan(boundMs + 1000);
      if (answer.status === 503) {
        if (answer.kind === "readyz") expect(answer.body, what).toMatchObject({ status: "unavailable" });
        else {
          expect(answer.contentType, what).toContain("application/problem+json");
          expect(answer.body, what).toMatchObject({ status: 503, code: "unavailable" });
        }
      } else {
        expect([200, 201], what).toContain(answer.status);
      }
    }
    // Each outage hit requests in flight; after each the same process answered every kind with a 2xx again.
    for (const outage of ["cut", "blackhole", "fail-over"]) {
      expect(sentIn(outage).filter((a) => a.status === 503).length, outage).toBeGreaterThan(0);
    }
    for (const recovered of ["after cut", "after blackhole", "fail-over"]) {
      const kinds = new Set(
        sentIn(recovered)
          .filter(ok)
          .map((a) => a.kind),
      );
      expect([...kinds].sort(), recovered).toEqual(["event", "readyz", "webhook"]);
    }
    expect(sentIn("steady").every(ok)).toBe(true);

    // Every acknowledged write is stored.
    const acknowledged = (kind: Kind) => answers.filter((a) => a.kind === kind && ok(a)).map((a) => a.ref);
    const events = acknowledged("event");
    const storedEvents = await query<{ event_key: string }>(
      direct.db,
      sql`select event_key from events where tenant_id = ${tenant.id} and event_key = any(${pgArray(events)}::text[])`,
    );
    expect(new Set(storedEvents.map((r) => r.event_key))).toEqual(new Set(events));
    const deliveries = acknowledged("webhook");
    const storedDeliveries = await query<{ id: string }>(
      direct.db,
      sql`select id::text from webhook_deliveries where id = any(${pgArray(deliveries)}::bigint[])`,
    );
    expect(new Set(storedDeliveries.map((r) => r.id))).toEqual(new Set(deliveries));
    // Answered 503, yet committed: allowed (the client retries; event keys and provider event ids dedupe).
    const refused = answers.filter((a) => a.kind === "event" && a.status === 503).map((a) => a.ref);
    const committedAnyway = await query<{ n: number }>(
      direct.db,
      sql`select count(*)::int as n from events where tenant_id = ${tenant.id}
        and event_key = any(${pgArray(refused) ?? "{}"}::text[])`,
    );
    console.log(
      `stored: all ${events.length} events and ${deliveries.length} deliveries answered 2xx; ` +
        `${committedAnyway[0]!.n} of ${refused.length} events answered 503 were committed after the answer`,
    );
  }, 120_000);
});
