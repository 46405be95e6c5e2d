// npm run bench:inbound — inbound messages end to end against a server-side floor, then the conversations
// reads over a million stored messages. `herald serve` (workers on) in its own process on a fresh database.
//
// Inbound: INBOUND (default 20,000) SMS from SENDERS different numbers to one tenant number, posted by 4
// clients to `POST /api/v1/inbound`, one message a request; timed from the first post until every message is
// threaded (its inbound_messages row has a conversation: the database polled every 20 ms). Lag: an inbound
// event's commit (`inbound_events.created_at`) → its message's (`inbound_messages.created_at`), p99. Floor:
// the same rows written server-side in the same run, in another tenant — for each message its inbound event
// (completed), its conversation upserted and moved to the top, the message, committed — by a PL/pgSQL
// procedure on 4 connections at once: the database's own cost of a durable intake, without HTTP, Node or
// the queue. `batch_insert_messages_per_s` gives the same rows as three set-based `INSERT … SELECT` in one
// transaction, for scale (no per-message commit: not a floor a per-message API can approach). And the CPU
// `herald serve` used per message over the timed window (intake and worker together).
//
// Conversations: `--messages N` / MESSAGES (default 1,000,000) messages over N / 50 conversations of skewed
// sizes (a few thousand messages down to tens; half inbound, half outbound, interleaved), seeded server-side with `generate_series`, then ≥ 200 timed HTTP
// requests each, one at a time after warm-ups: the list (`limit=50`, first pages and pages further down by
// the cursor) and a messages page (a random conversation, a random page of 50). p95 of each, and of the
// cheapest tenant read (`GET /api/v1/sources`, empty) interleaved with them as the machine's baseline.
// Two JSON lines. EXPLAIN=1 prints the plans of the two reads on stderr.

import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { availableParallelism } from "node:os";
import postgres from "postgres";
import { dropDatabase, freshDatabase, percentile, round } from "./lib.mjs";

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const MESSAGES = Number(arg("messages") ?? process.env.MESSAGES ?? 1_000_000);
const INBOUND = Number(arg("inbound") ?? process.env.INBOUND ?? 20_000);
const SENDERS = Number(process.env.SENDERS ?? 2_000);
const CLIENTS = 4;
const RUNS = Number(process.env.RUNS ?? 300);
const PER_CONVERSATION = 50;
const database = "herald_inbound_bench";
const print = (line) => console.log(JSON.stringify(line));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** CPU milliseconds (user + system) a process has used, from /proc; 0 where there is none. */
function cpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // 100 clock ticks a second
  } catch {
    return 0;
  }
}
/** CPU milliseconds every PostgreSQL process on this machine has used (backends, WAL writer, checkpointer). */
function postgresCpuMs() {
  let total = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (stat.slice(stat.indexOf("(") + 1, stat.indexOf(")")) === "postgres") total += cpuMs(pid);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });

/** One request; resolves with the status, the parsed answer and the milliseconds it took. */
function request(method, url, token, body) {
  const bytes = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          ...(bytes ? { "content-type": "application/json", "content-length": bytes.length } : {}),
        },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (d) => {
          text += d;
        });
        response.on("end", () =>
          resolve({
            status: response.statusCode,
            body: text ? JSON.parse(text) : undefined,
            ms: performance.now() - t,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(bytes);
  });
}

async function expect2xx(promise, what) {
  const answer = await promise;
  if (answer.status < 200 || answer.status > 299)
    throw new Error(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer;
}

const tenantNumber = "+14155550000";
const sender = (n) => `+1415${String(1_000_000 + (n % SENDERS)).padStart(7, "0")}`;
const inbound = (n, run) => ({
  channel: "sms",
  provider: "twilio",
  provider_message_id: `SM${run}${String(n).padStart(30, "0")}`,
  from: sender(n),
  to: tenantNumber,
  body: `Reply ${n}: yes, Tuesday at 10 works for me`,
});

/**
 * The floor's writer: messages n ≡ first (mod step) below count, each its own transaction — the inbound
 * event (completed), the conversation upserted and moved to the top, the message — committed one by one.
 */
const floorProcedure = `create or replace procedure bench_inbound_floor(tenant uuid, first int, step int, count int,
    senders int, us text) language plpgsql as $$
  declare
    n int := first;
    address text;
    text_ text;
    conversation uuid;
  begin
    while n < count loop
      address := '+1415' || (1000000 + n % senders);
      text_ := 'Reply ' || n || ': yes, Tuesday at 10 works for me';
      insert into inbound_events (tenant_id, channel, provider, provider_message_id, payload, status, attempts)
        values (tenant, 'sms', 'twilio', 'SMF' || lpad(n::text, 30, '0'),
          jsonb_build_object('from', address, 'to', us, 'body', text_), 'completed', 1);
      insert into conversations as c (tenant_id, channel, participant_address, participants, last_activity_at,
          message_count, last_message_preview)
        values (tenant, 'sms', address, array[address], now(), 1, text_)
        on conflict (tenant_id, channel, participant_address) do update set
          last_activity_at = greatest(c.last_activity_at, excluded.last_activity_at),
          message_count = c.message_count + 1, last_message_preview = excluded.last_message_preview,
          updated_at = now()
        returning c.id into conversation;
      insert into inbound_messages (tenant_id, channel, provider, provider_message_id, from_address, to_address,
          body, conversation_id, thread_reason)
        values (tenant, 'sms', 'twilio', 'SMF' || lpad(n::text, 30, '0'), address, us, text_, conversation,
          'address_pair');
      commit;
      n := n + step;
    end loop;
  end $$`;

const url = await freshDatabase(database);
const sql = postgres(url, { max: CLIENTS, onnotice: () => {} });
const admin = "bench-admin-token-0123456789";
const port = 3900 + Math.floor(Math.random() * 90);
const base = `http://127.0.0.1:${port}`;
const child = spawn(process.execPath, ["dist/cli/main.js", "serve"], {
  env: {
    ...process.env,
    DATABASE_URL: url,
    HERALD_ADMIN_TOKEN: admin,
    HERALD_SERVE_WORKERS: "on",
    HERALD_METRICS_PORT: "off",
    LOG_LEVEL: "warn",
    PORT: String(port),
  },
  stdio: ["ignore", "pipe", "inherit"],
});
let out = "";
child.stdout.on("data", (d) => {
  out += d;
});

async function newTenant(name) {
  const { body } = await expect2xx(
    request("POST", `${base}/api/v1/admin/tenants`, admin, { name }),
    "tenant",
  );
  return { key: body.api_key, id: body.tenant.id };
}

async function inboundBench() {
  const tenant = await newTenant("inbound");
  // Warm-up in its own tenant: connections, plans, the worker's first claim.
  const warm = await newTenant("inbound-warm");
  for (let i = 0; i < 200; i++)
    await expect2xx(request("POST", `${base}/api/v1/inbound`, warm.key, inbound(i, "W")), "warm-up");

  const threaded = async () =>
    Number(
      (
        await sql`select count(*) from inbound_messages
          where tenant_id = ${tenant.id} and conversation_id is not null`
      )[0].count,
    );
  let next = 0;
  const cpu0 = cpuMs(child.pid);
  const pg0 = postgresCpuMs();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const clients = Array.from({ length: CLIENTS }, async () => {
    while (next < INBOUND) {
      const n = next++;
      await expect2xx(request("POST", `${base}/api/v1/inbound`, tenant.key, inbound(n, "E")), "inbound");
    }
  });
  await Promise.all(clients);
  const postedMs = performance.now() - t0;
  for (let waited = 0; (await threaded()) < INBOUND; waited += 20) {
    if (waited > 300_000) throw new Error(`not threaded after 5 minutes: ${await threaded()} of ${INBOUND}`);
    await sleep(20);
  }
  const ms = performance.now() - t0;
  const serveCpuMs = cpuMs(child.pid) - cpu0;
  const postgresMs = postgresCpuMs() - pg0;
  const own = process.cpuUsage(own0);
  const clientCpuMs = (own.user + own.system) / 1000;
  const lags = (
    await sql`select extract(epoch from (m.created_at - e.created_at)) * 1000 as lag
      from inbound_messages m join inbound_events e
        on e.tenant_id = m.tenant_id and e.channel = m.channel and e.provider_message_id = m.provider_message_id
      where m.tenant_id = ${tenant.id}`
  )
    .map((r) => Number(r.lag))
    .sort((a, b) => a - b);
  const conversations = Number(
    (await sql`select count(*) from conversations where tenant_id = ${tenant.id}`)[0].count,
  );
  if (conversations !== Math.min(SENDERS, INBOUND))
    throw new Error(`${conversations} conversations for ${Math.min(SENDERS, INBOUND)} senders`);

  // The floor: the same rows written server-side in another tenant, each message in its own transaction (as
  // the intake commits each before its 202) by 4 connections at once (as many as the clients).
  const floorTenant = await newTenant("inbound-floor");
  await sql.unsafe(floorProcedure);
  const floorPg0 = postgresCpuMs();
  const f0 = performance.now();
  await Promise.all(
    Array.from(
      { length: CLIENTS },
      (_, j) => sql`call bench_inbound_floor(${floorTenant.id}::uuid, ${j}::int, ${CLIENTS}::int,
        ${INBOUND}::int, ${SENDERS}::int, ${tenantNumber}::text)`,
    ),
  );
  const floorMs = performance.now() - f0;
  const floorPostgresMs = postgresCpuMs() - floorPg0;
  // For scale: the same rows again as three set-based INSERT … SELECT in one transaction (no per-message
  // commit), in a third tenant.
  const batchTenant = await newTenant("inbound-batch");
  const b0 = performance.now();
  await sql.begin(async (tx) => {
    await tx`insert into inbound_events (tenant_id, channel, provider, provider_message_id, payload, status, attempts)
      select ${batchTenant.id}::uuid, 'sms', 'twilio', 'SMB' || lpad(n::text, 30, '0'),
        jsonb_build_object('from', '+1415' || (1000000 + n % ${SENDERS}::int), 'to', ${tenantNumber}::text,
          'body', 'Reply ' || n || ': yes, Tuesday at 10 works for me'),
        'completed', 1
      from generate_series(0, ${INBOUND - 1}::int) n`;
    await tx`insert into conversations (tenant_id, channel, participant_address, participants, last_activity_at,
        message_count, last_message_preview)
      select ${batchTenant.id}::uuid, 'sms', '+1415' || (1000000 + s), array['+1415' || (1000000 + s)],
        now(), count(*), 'Reply ' || max(n) || ': yes, Tuesday at 10 works for me'
      from (select n, n % ${SENDERS}::int as s from generate_series(0, ${INBOUND - 1}::int) n) g
      group by s`;
    await tx`insert into inbound_messages (tenant_id, channel, provider, provider_message_id, from_address,
        to_address, body, conversation_id, thread_reason)
      select ${batchTenant.id}::uuid, 'sms', 'twilio', 'SMB' || lpad(n::text, 30, '0'), c.participant_address,
        ${tenantNumber}::text, 'Reply ' || n || ': yes, Tuesday at 10 works for me', c.id, 'address_pair'
      from generate_series(0, ${INBOUND - 1}::int) n
      join conversations c on c.tenant_id = ${batchTenant.id}::uuid and c.channel = 'sms'
        and c.participant_address = '+1415' || (1000000 + n % ${SENDERS}::int)`;
  });
  const batchMs = performance.now() - b0;
  const perS = INBOUND / (ms / 1000);
  const floorPerS = INBOUND / (floorMs / 1000);
  print({
    bench: "inbound",
    messages: INBOUND,
    messages_per_s: Math.round(perS),
    lag_p99_ms: round(percentile(lags, 0.99)),
    floor_messages_per_s: Math.round(floorPerS),
    ratio: round(perS / floorPerS),
    conversations,
    clients: CLIENTS,
    posted_per_s: Math.round(INBOUND / (postedMs / 1000)),
    lag_p50_ms: round(percentile(lags, 0.5)),
    batch_insert_messages_per_s: Math.round(INBOUND / (batchMs / 1000)),
    serve_cpu_us_per_message: Math.round((serveCpuMs * 1000) / INBOUND),
    // Where the CPU goes: end to end, the server, PostgreSQL and this process's clients (and its polling);
    // the floor, PostgreSQL alone. With both cores busy, the ratio could reach at most floor / end to end.
    postgres_cpu_us_per_message: Math.round((postgresMs * 1000) / INBOUND),
    clients_cpu_us_per_message: Math.round((clientCpuMs * 1000) / INBOUND),
    floor_postgres_cpu_us_per_message: Math.round((floorPostgresMs * 1000) / INBOUND),
    cpu_bound_ratio: round(floorPostgresMs / (serveCpuMs + postgresMs + clientCpuMs)),
    cpu_busy: round((serveCpuMs + postgresMs + clientCpuMs) / (ms * availableParallelism())),
  });
}

async function conversationsBench() {
  const tenant = await newTenant("conversations");
  const conversationCount = Math.max(1, Math.round(MESSAGES / PER_CONVERSATION));
  const s0 = performance.now();
  // Conversation sizes skewed as real ones are: message n goes to 1 + ⌊C·u²⌋ for u spread evenly over [0, 1)
  // (the golden-ratio sequence), so the first conversations hold thousands of messages and the last tens.
  const conversationOf = sql`1 + floor(${conversationCount}::int * power(n * 0.6180339887498949 - floor(n * 0.6180339887498949), 2))::int`;
  const us = sql`case when c.channel = 'sms' then ${tenantNumber}::text else 'support@example.com' end`;
  // Messages a second apart from a year ago; even n inbound, odd outbound. Half the conversations SMS, half
  // email.
  await sql`create unlogged table bench_seeded (k int primary key, id uuid not null)`;
  await sql`insert into bench_seeded select k, gen_random_uuid() from generate_series(1, ${conversationCount}::int) k`;
  await sql`insert into conversations (id, tenant_id, channel, participant_address, participants, last_activity_at,
      message_count)
    select s.id, ${tenant.id}::uuid, a.channel, a.address, array[a.address], now(), 0
    from bench_seeded s, lateral (select
        case when s.k % 2 = 0 then 'sms' else 'email' end as channel,
        case when s.k % 2 = 0 then '+1416' || (1000000 + s.k) else 'person' || s.k || '@example.com' end as address) a`;
  await sql`insert into inbound_messages (tenant_id, channel, provider, provider_message_id, from_address,
      to_address, body, conversation_id, received_at, thread_reason)
    select ${tenant.id}::uuid, c.channel, 'bench', 'IN' || n, c.participant_address, ${us}, 'Inbound message ' || n,
      s.id, now() - interval '365 days' + n * interval '1 second', 'address_pair'
    from generate_series(0, ${MESSAGES - 1}::int) n
    join bench_seeded s on s.k = ${conversationOf}
    join conversations c on c.id = s.id
    where n % 2 = 0`;
  // An outbound message belongs to its recipient's conversation.
  await sql`insert into outbound_messages (tenant_id, channel, provider, to_address, from_address, body,
      sent_at, thread_reason)
    select ${tenant.id}::uuid, c.channel, 'bench', c.participant_address, ${us}, 'Outbound message ' || n,
      now() - interval '365 days' + n * interval '1 second', 'outbound'
    from generate_series(0, ${MESSAGES - 1}::int) n
    join bench_seeded s on s.k = ${conversationOf}
    join conversations c on c.id = s.id
    where n % 2 = 1`;
  await sql`update conversations c set last_activity_at = m.at, message_count = m.count,
      last_message_preview = 'Message ' || m.last
    from (select s.id, count(*) as count, max(n) as last,
        now() - interval '365 days' + max(n) * interval '1 second' as at
      from generate_series(0, ${MESSAGES - 1}::int) n join bench_seeded s on s.k = ${conversationOf}
      group by s.id) m
    where c.id = m.id`;
  await sql`vacuum analyze conversations`;
  await sql`vacuum analyze inbound_messages`;
  await sql`vacuum analyze outbound_messages`;
  const seedMs = performance.now() - s0;
  const ids = (await sql`select id, message_count from bench_seeded join conversations using (id)`).map(
    (r) => ({
      id: r.id,
      messages: r.message_count,
      pages: Math.max(1, Math.ceil(r.message_count / 50)),
    }),
  );
  const largest = Math.max(...ids.map((c) => c.messages));
  const stored = Number(
    (
      await sql`select (select count(*) from inbound_messages where tenant_id = ${tenant.id})
        + (select count(*) from outbound_messages where tenant_id = ${tenant.id}) as n`
    )[0].n,
  );
  if (stored !== MESSAGES) throw new Error(`${stored} messages seeded, not ${MESSAGES}`);

  const get = (path) => expect2xx(request("GET", `${base}${path}`, tenant.key), path);
  let cursor = null;
  let depth = 0;
  const listOnce = async () => {
    // First pages and pages down the list: a walk of up to 20 pages, then from the top again.
    const answer = await get(`/api/v1/conversations?limit=50${cursor ? `&cursor=${cursor}` : ""}`);
    cursor = depth++ < 20 ? answer.body.next_cursor : null;
    if (cursor === null) depth = 0;
    return answer.ms;
  };
  const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
  const messagesOnce = async () => {
    const c = pick(ids);
    const page = 1 + Math.floor(Math.random() * c.pages);
    const answer = await get(`/api/v1/conversations/${c.id}/messages?page=${page}&page_size=50`);
    if (answer.body.total === 0 || answer.body.items.length === 0) throw new Error("an empty messages page");
    return answer.ms;
  };
  for (let i = 0; i < 50; i++) {
    await listOnce();
    await messagesOnce();
  }
  // Beside them, the cheapest tenant read there is (an empty list of webhook sources): the request's own cost
  // (HTTP, the API key, the tenant transaction) on this machine at this moment.
  const baselineOnce = async () => (await get("/api/v1/sources")).ms;
  const list = [];
  const pages = [];
  const baseline = [];
  for (let i = 0; i < RUNS; i++) {
    list.push(await listOnce());
    pages.push(await messagesOnce());
    baseline.push(await baselineOnce());
  }
  for (const xs of [list, pages, baseline]) xs.sort((a, b) => a - b);

  if (process.env.EXPLAIN) {
    const c = pick(ids);
    const plan = async (text, params) =>
      (await sql.unsafe(`explain (analyze, buffers) ${text}`, params)).map((r) => r["QUERY PLAN"]).join("\n");
    console.error(
      await plan(
        `select id from conversations c where c.tenant_id = $1
          and (c.last_activity_at, c.id) < (now(), '00000000-0000-0000-0000-000000000000'::uuid)
          order by c.last_activity_at desc nulls last, c.id desc nulls last limit 51`,
        [tenant.id],
      ),
    );
    console.error(
      await plan(
        `select * from (select i.id, i.received_at as at from inbound_messages i where i.conversation_id = $1
          union all select o.id, o.sent_at from outbound_messages o join conversations c on c.id = $1
            where o.tenant_id = c.tenant_id and o.channel = c.channel and o.to_address = c.participant_address) u
          order by u.at, u.id limit 50 offset 0`,
        [c.id],
      ),
    );
  }

  print({
    bench: "conversations",
    messages: MESSAGES,
    conversations: conversationCount,
    list_p95_ms: round(percentile(list, 0.95)),
    messages_page_p95_ms: round(percentile(pages, 0.95)),
    runs: RUNS,
    list_p50_ms: round(percentile(list, 0.5)),
    messages_page_p50_ms: round(percentile(pages, 0.5)),
    baseline_p95_ms: round(percentile(baseline, 0.95)),
    baseline_p50_ms: round(percentile(baseline, 0.5)),
    largest_conversation: largest,
    seed_s: round(seedMs / 1000, 1),
  });
}

try {
  for (let i = 0; i < 200 && !out.includes("API docs"); i++) await sleep(50);
  if (process.env.SKIP_INBOUND !== "1") await inboundBench();
  await conversationsBench();
} finally {
  agent.destroy();
  await sql.end();
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  await dropDatabase(database);
}
