// npm run bench:ingest — SendGrid ingestion end to end against the physical ceiling, on one PostgreSQL server.
// Ceiling: a server-side INSERT … SELECT of N message events of the same shape into the same schema.
// End to end: `herald serve` in its own process; concurrent clients post signed batches of 500 events (10%
// repeats) over loopback; timed until every event is processed. `TOPOLOGY=split` runs `herald worker` beside an
// API-only `herald serve` instead of one process doing both (the default). Door: the same requests to a
// `herald serve` that processes nothing, so the request latency of the door alone shows beside the run's.
// CPU: each process's CPU time (from /proc) over the timed window, per event, beside the CPU per event that
// 0.5 × the ceiling allows on this machine's cores. Storage: bytes on disk per stored event, by table, after
// VACUUM, with one subscription to `message.*` delivering to a local receiver (as a team runs it). One JSON line
// per result. KEEP=1 keeps the database (herald_ingest_bench) for a look afterwards. `--provider <name>|all`:
// each provider's own requests instead (see below).

import { execFileSync, spawn } from "node:child_process";
import { createHmac, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { providerFor } from "../dist/providers/registry.js";
import { dropDatabase, freshDatabase, percentile, round } from "./lib.mjs";

// 222 batches: 99,950 unique events, the size issue 19 measured storage at (a queue's index pages and the
// delivery rollups' are high-water marks, so the bytes per event depend on the run's size).
const BATCHES = Number(process.env.BATCHES ?? 222);
const CLIENTS = Number(process.env.CLIENTS ?? 8);
const PER_BATCH = 500;
/**
 * Events per provider with `--provider`: `all` then takes a few minutes on two cores. A provider that posts one
 * event a request went at 60–150 events/s in smoke runs of a few hundred events on a loaded machine (warm-up
 * included): under a minute each at this size.
 */
const PROVIDER_EVENTS = 6_000;
const print = (line) => console.log(JSON.stringify(line));
// The load generator shares the machine's two cores with Herald and PostgreSQL: plain node:http with
// keep-alive (undici's fetch costs several times more CPU per request).
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
function post(url, body, headers, through = agent) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: "POST", agent: through, headers: { ...headers, "content-length": body.length } },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode));
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Bytes on disk of each table of the schema: its partitions, indexes and TOAST included. */
async function tableSizes(sql) {
  // pg_partition_tree lists nothing for a plain table: it stands for itself.
  const rows =
    await sql`select c.relname as name, sum(pg_total_relation_size(coalesce(p.relid, c.oid)))::bigint as bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    left join lateral pg_partition_tree(c.oid) p on true
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
    group by c.relname`;
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
}
/** Bytes on disk of each heap and index, a partition's counted under its table's (and its index's) name. */
async function relationSizes(sql) {
  const rows = await sql`select regexp_replace(c.relname, '_[0-9]{4}_[0-9]{2}|_default', '') as name,
      sum(pg_relation_size(c.oid))::bigint as bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'i')
    group by 1`;
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
}
/** A process's /proc/PID/stat fields after the command name; undefined once it is gone (or not local). */
function statOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  } catch {
    return undefined;
  }
}
const ticksToMs = (ticks) => (ticks * 1000) / 100; // clock ticks, 100 per second on Linux
/** CPU milliseconds (user + system) a process has used so far; 0 once it is gone. */
function cpuMs(pid) {
  const fields = statOf(pid);
  return fields ? ticksToMs(Number(fields[11]) + Number(fields[12])) : 0;
}
/**
 * CPU milliseconds used by one PostgreSQL server: its postmaster (found as the parent of a backend), the
 * children it has reaped (backends that ended, autovacuum workers) and its live children. Undefined when the
 * server is not on this machine.
 */
function postgresCpu(postmaster) {
  const own = statOf(postmaster);
  if (!own) return undefined;
  const children = execFileSync("pgrep", ["-P", String(postmaster)], { encoding: "utf8" })
    .trim()
    .split("\n");
  return (
    ticksToMs(Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])) +
    children.reduce((sum, pid) => sum + cpuMs(pid), 0)
  );
}
/** A CPU meter over Herald's processes, PostgreSQL and this load generator; `read()` gives ms used since. */
function cpuMeter(processes, postmaster) {
  const start = {
    herald: Object.fromEntries(Object.entries(processes).map(([name, p]) => [name, cpuMs(p.pid)])),
    postgres: postgresCpu(postmaster),
    loadgen: process.cpuUsage(),
  };
  return () => {
    const loadgen = process.cpuUsage(start.loadgen);
    const postgresNow = postgresCpu(postmaster);
    return {
      ...Object.fromEntries(
        Object.entries(processes).map(([name, p]) => [name, cpuMs(p.pid) - start.herald[name]]),
      ),
      ...(start.postgres !== undefined && postgresNow !== undefined
        ? { postgres: postgresNow - start.postgres }
        : {}),
      loadgen: (loadgen.user + loadgen.system) / 1000,
    };
  };
}
const perUnit = (cpu, units, scale) =>
  Object.fromEntries(Object.entries(cpu).map(([name, ms]) => [name, round((ms * scale) / units, 1)]));

const url = await freshDatabase("herald_ingest_bench");
const admin = "bench-admin-token-0123456789";
const env = {
  ...process.env,
  DATABASE_URL: url,
  HERALD_ADMIN_TOKEN: admin,
  LOG_LEVEL: "warn",
  // The storage line's subscription delivers to a receiver in this process.
  HERALD_WEBHOOK_ALLOWED_NETWORKS: "127.0.0.1/32",
};
/** Herald's processes: stopped in `finally`, so a failed run leaves none behind. */
const children = [];
/** Start `herald <command>` and wait until it listens (serve) or has had a moment to start (worker). */
async function startHerald(command, extraEnv = {}) {
  const port = 3900 + Math.floor(Math.random() * 90);
  const child = spawn(process.execPath, ["dist/cli/main.js", command], {
    env: { ...env, PORT: String(port), ...extraEnv },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  if (command === "serve") for (let i = 0; i < 200 && !out.includes("API docs"); i++) await sleep(50);
  else await sleep(1000);
  return { child, base: `http://127.0.0.1:${port}` };
}
async function stopHerald(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on("exit", r));
  child.kill("SIGTERM");
  await exited;
}
const peakRssMb = (pid) =>
  Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024);

// --provider <name> (or a comma-separated list, or `all`): instead of the run below, each provider's own
// genuine requests, built from its fixtures and signed as it signs them, posted by the same CLIENTS to a fresh
// database and a fresh `herald serve` per provider, timed until every event is processed: one `ingest` line
// per provider. `--events N` (or EVENTS) events per provider, 10% of the requests repeating an earlier one
// (re-signed where the provider re-signs its retries). SendGrid posts 500 events a request; Twilio, Postmark,
// Resend and Mailgun one; SES one SNS notification, which is one event per recipient — so every figure counts
// events, and `events_per_request` says how many a request held. With SendGrid in the same run (`all`), each
// line also has `vs_sendgrid`: its events/s over SendGrid's.
const providerNames = ["sendgrid", "twilio", "postmark", "resend", "mailgun", "ses"];
function optionOf(name) {
  const at = process.argv.indexOf(name);
  if (at !== -1) return process.argv[at + 1] ?? "";
  return process.argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}
const providerArg = optionOf("--provider");

/** Request `r` of a run repeats request r − 9 when r is a multiple of 10: 10% repeats, of fresh requests. */
const repeatOf = (r) => (r > 0 && r % 10 === 0 ? r - 9 : undefined);
const fixture = (path) => JSON.parse(readFileSync(`test/fixtures/${path}`, "utf8"));
const fixturesOf = (provider) =>
  readdirSync(`test/fixtures/${provider}`)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => fixture(`${provider}/${f}`));
const uuidOf = (n) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const addressOf = (n) => `user${n % 5000}@example.com`;
const hmac = (hash, key, text, encoding) => createHmac(hash, key).update(text).digest(encoding);
const json = (value) => Buffer.from(JSON.stringify(value));
const snsTopicArn = "arn:aws:sns:us-east-1:123456789012:ses-events";
// Any `https://sns.<region>.amazonaws.com/….pem` URL passes the host rule; HERALD_SNS_CERTIFICATE_FILE (the
// run's self-signed certificate) is what it is verified against, so nothing is fetched.
const snsCertificateUrl = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bench.pem";

/**
 * Each provider's workload: its source's `verification`, and for fresh event number `n` (its events of the
 * last hour, as providers post them) a request whose `make()` gives the body and headers to post — called at
 * posting time, so timestamps and one-use tokens are fresh.
 */
function workload(name, sns) {
  const now = Math.floor(Date.now() / 1000);
  const at = (n) => new Date((now - (n % 3600)) * 1000);
  const jsonHeaders = { "content-type": "application/json" };
  switch (name) {
    case "twilio": {
      const authToken = randomBytes(16).toString("hex");
      const forms = readdirSync("test/fixtures/twilio")
        .filter((f) => f.startsWith("status-"))
        .sort()
        .map((f) => readFileSync(`test/fixtures/twilio/${f}`, "utf8").trim());
      return {
        verification: { auth_token: authToken },
        request(n, publicUrl) {
          const params = new URLSearchParams(forms[n % forms.length]);
          const sid = `SM${n.toString(16).padStart(32, "0")}`;
          params.set("MessageSid", sid);
          if (params.has("SmsSid")) params.set("SmsSid", sid);
          params.set("To", `+1415555${String(n % 5000).padStart(4, "0")}`);
          const body = Buffer.from(params.toString());
          // HMAC-SHA1 of the URL Twilio called and each parameter, sorted by name, as name then value.
          const signed = [...params.keys()].sort().reduce((s, k) => s + k + params.get(k), publicUrl);
          const headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": hmac("sha1", authToken, signed, "base64"),
          };
          return () => ({ body, headers });
        },
      };
    }
    case "postmark": {
      const [username, password] = ["herald-bench", randomBytes(16).toString("hex")];
      const headers = {
        ...jsonHeaders,
        authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`,
      };
      const samples = fixturesOf("postmark");
      return {
        verification: { username, password },
        request(n) {
          const e = structuredClone(samples[n % samples.length]);
          e.MessageID = uuidOf(n);
          if (e.ID !== undefined) e.ID = 1_000_000_000 + n;
          for (const field of ["Recipient", "Email"]) if (e[field] !== undefined) e[field] = addressOf(n);
          for (const field of ["DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt"])
            if (e[field] !== undefined) e[field] = at(n).toISOString();
          const body = json(e);
          return () => ({ body, headers });
        },
      };
    }
    case "resend": {
      const key = randomBytes(24);
      const samples = fixturesOf("resend");
      return {
        verification: { secret: `whsec_${key.toString("base64")}` },
        request(n) {
          const e = structuredClone(samples[n % samples.length]);
          e.created_at = at(n).toISOString();
          e.data.email_id = uuidOf(n);
          e.data.to = [addressOf(n)];
          const body = json(e);
          const id = `msg_bench${n}`;
          // Svix signs each attempt anew (a retry keeps its svix-id, with a new timestamp and signature).
          return () => {
            const timestamp = String(Math.floor(Date.now() / 1000));
            const signature = `v1,${hmac("sha256", key, Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]), "base64")}`;
            return {
              body,
              headers: {
                ...jsonHeaders,
                "svix-id": id,
                "svix-timestamp": timestamp,
                "svix-signature": signature,
              },
            };
          };
        },
      };
    }
    case "mailgun": {
      const signingKey = `key-${randomBytes(16).toString("hex")}`;
      const samples = fixturesOf("mailgun").map((f) => f["event-data"]);
      return {
        verification: { signing_key: signingKey },
        request(n) {
          const e = structuredClone(samples[n % samples.length]);
          e.id = `bench${n.toString(36).padStart(8, "0")}`;
          e.timestamp = at(n).getTime() / 1000 + 0.25;
          if (e.recipient !== undefined) e.recipient = addressOf(n);
          const headers = e.message?.headers;
          if (headers) {
            headers["message-id"] = `${n}.bench@mg.example.com`;
            if (headers.to !== undefined) headers.to = addressOf(n);
          }
          const eventData = JSON.stringify(e);
          // A fresh token and timestamp on every request, retries included: each token is taken once.
          return () => {
            const timestamp = String(Math.floor(Date.now() / 1000));
            const token = randomBytes(25).toString("hex");
            const signature = {
              timestamp,
              token,
              signature: hmac("sha256", signingKey, timestamp + token, "hex"),
            };
            return {
              body: Buffer.from(`{"signature":${JSON.stringify(signature)},"event-data":${eventData}}`),
              headers: jsonHeaders,
            };
          };
        },
      };
    }
    case "ses": {
      const samples = fixturesOf("ses");
      return {
        verification: { topic_arn: snsTopicArn },
        request(n) {
          const envelope = samples[n % samples.length];
          const ses = JSON.parse(envelope.Message);
          // Each recipient of the notification an address of the run's; each time of the last hour.
          const address = (a) => (typeof a === "string" ? a.replace("@", `.${n % 5000}@`) : a);
          const retime = (part) => {
            if (part && typeof part.timestamp === "string") part.timestamp = at(n).toISOString();
          };
          ses.mail.messageId = `bench-${uuidOf(n)}-000000`;
          ses.mail.timestamp = new Date(at(n).getTime() - 1000).toISOString();
          if (Array.isArray(ses.mail.destination)) ses.mail.destination = ses.mail.destination.map(address);
          if (Array.isArray(ses.delivery?.recipients))
            ses.delivery.recipients = ses.delivery.recipients.map(address);
          for (const [part, list] of [
            ["bounce", "bouncedRecipients"],
            ["complaint", "complainedRecipients"],
            ["deliveryDelay", "delayedRecipients"],
          ])
            for (const r of ses[part]?.[list] ?? []) r.emailAddress = address(r.emailAddress);
          for (const part of [
            "bounce",
            "complaint",
            "delivery",
            "open",
            "click",
            "deliveryDelay",
            "subscription",
          ])
            retime(ses[part]);
          const message = {
            Type: "Notification",
            MessageId: uuidOf(n),
            TopicArn: snsTopicArn,
            ...(typeof envelope.Subject === "string" ? { Subject: envelope.Subject } : {}),
            Message: JSON.stringify(ses),
            // SNS's own time: within the 65 minutes a message is taken.
            Timestamp: new Date((now - (n % 600)) * 1000).toISOString(),
          };
          // SignatureVersion 2: SHA256withRSA over each signed field's name and value, a newline after each.
          const canonical = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
            .filter((f) => message[f] !== undefined)
            .map((f) => `${f}\n${message[f]}\n`)
            .join("");
          const body = json({
            ...message,
            SignatureVersion: "2",
            Signature: sign("sha256", Buffer.from(canonical), sns.privateKeyPem).toString("base64"),
            SigningCertURL: snsCertificateUrl,
            UnsubscribeURL: envelope.UnsubscribeURL,
          });
          const headers = {
            "content-type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": message.MessageId,
            "x-amz-sns-topic-arn": snsTopicArn,
          };
          // SNS retries a message as it first sent it, signature included.
          return () => ({ body, headers });
        },
      };
    }
    default:
      throw new Error(`no workload for ${name}`);
  }
}

/** SendGrid's requests, as the run below builds them: batches of 500, 10% of each repeating the previous one's. */
function sendgridRequests(target) {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const sample = fixture("sendgrid/basic-batch.json");
  const now = Math.floor(Date.now() / 1000);
  const repeats = PER_BATCH / 10;
  const requests = Array.from({ length: Math.max(1, Math.round(target / PER_BATCH)) }, (_, b) => {
    const body = json(
      Array.from({ length: PER_BATCH }, (_, j) => {
        const n = j < repeats && b > 0 ? (b - 1) * PER_BATCH + repeats + j : b * PER_BATCH + j;
        const e = sample[n % sample.length];
        return {
          ...e,
          email: addressOf(n),
          sg_event_id: `b-${n}`,
          timestamp: now - (n % 3600),
          sg_message_id: `M${n % 5000}.f-${n}`,
        };
      }),
    );
    const make = () => {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const signature = sign("sha256", Buffer.concat([Buffer.from(timestamp), body]), privateKey);
      return {
        body,
        headers: {
          "content-type": "application/json",
          "x-twilio-email-event-webhook-signature": signature.toString("base64"),
          "x-twilio-email-event-webhook-timestamp": timestamp,
        },
      };
    };
    return { make, events: PER_BATCH, unique: b === 0 ? PER_BATCH : PER_BATCH - repeats };
  });
  return {
    verification: { public_key: publicKey.export({ format: "der", type: "spki" }).toString("base64") },
    requests,
  };
}

/** A self-signed certificate and its key, as SNS's stand-in (the openssl CLI: node:crypto makes no certificates). */
function snsCertificate() {
  const dir = mkdtempSync(join(tmpdir(), "herald-bench-sns-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-subj",
      "/CN=sns.amazonaws.com",
      "-days",
      "2",
    ],
    { stdio: "ignore" },
  );
  return { dir, file: join(dir, "cert.pem"), privateKeyPem: readFileSync(join(dir, "key.pem"), "utf8") };
}

/** One provider end to end on a fresh database and server: its `ingest` line. */
async function providerRun(name, target, sns) {
  await freshDatabase("herald_ingest_bench");
  const split = process.env.TOPOLOGY === "split";
  const certificate = { HERALD_SNS_CERTIFICATE_FILE: sns.file };
  const server = await startHerald("serve", { HERALD_SERVE_WORKERS: split ? "off" : "on", ...certificate });
  const worker = split ? (await startHerald("worker", certificate)).child : undefined;
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    const [{ pid: backend }] = await sql`select pg_backend_pid() as pid`;
    const postmaster = statOf(backend)?.[1];
    const tenant = await (
      await fetch(`${server.base}/api/v1/admin/tenants`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ name: `bench-${name}` }),
      })
    ).json();
    const work = name === "sendgrid" ? sendgridRequests(target) : workload(name, sns);
    const source = await (
      await fetch(`${server.base}/api/v1/sources`, {
        method: "POST",
        headers: { authorization: `Bearer ${tenant.api_key}`, "content-type": "application/json" },
        body: JSON.stringify({ provider: name, verification: work.verification }),
      })
    ).json();
    if (!source.url) throw new Error(`${name}: source not created: ${JSON.stringify(source)}`);
    // Twilio signs the URL it calls: HERALD_PUBLIC_URL's origin when the server has one, else this one.
    const publicUrl = `${process.env.HERALD_PUBLIC_URL ?? server.base}${source.url}`;
    let requests = work.requests;
    if (!requests) {
      // Events a request holds, by the provider module's own parse (an SES notification: one per recipient).
      const module = providerFor(name);
      requests = [];
      let posted = 0;
      let fresh = 0;
      for (let r = 0; posted < target; r++) {
        const earlier = repeatOf(r);
        if (earlier !== undefined) requests.push({ ...requests[earlier], unique: 0 });
        else {
          const make = work.request(fresh++, publicUrl);
          const { body, headers } = make();
          const parsed = module.parse(body, headers);
          if (!parsed.ok) throw new Error(`${name}: a request the module refuses: ${parsed.detail}`);
          requests.push({ make, events: parsed.events.length, unique: parsed.events.length });
        }
        posted += requests[r].events;
      }
    }
    const events = requests.reduce((sum, q) => sum + q.events, 0);
    const unique = requests.reduce((sum, q) => sum + q.unique, 0);

    const latencies = [];
    let next = 0;
    const runCpu = cpuMeter(worker ? { server: server.child, worker } : { server: server.child }, postmaster);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < requests.length) {
          const { body, headers } = requests[next++].make();
          const s = performance.now();
          const status = await post(`${server.base}${source.url}`, body, headers);
          latencies.push(performance.now() - s);
          if (status !== 200) throw new Error(`${name}: HTTP ${status}`);
        }
      }),
    );
    for (;;) {
      const [{ n }] = await sql`select count(*)::int as n from webhook_deliveries
        where tenant_id = ${tenant.tenant.id} and status in ('pending', 'processing')`;
      if (n === 0) break;
      await sleep(50);
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = runCpu();
    latencies.sort((a, b) => a - b);
    const [{ stored }] =
      await sql`select count(*)::int as stored from message_events where tenant_id = ${tenant.tenant.id}`;
    if (stored !== unique) throw new Error(`${name}: expected ${unique} stored events, found ${stored}`);
    const lags = (
      await sql`select extract(epoch from (processed_at - received_at)) * 1000 as ms from webhook_deliveries
      where tenant_id = ${tenant.tenant.id} and processed_at is not null order by 1`
    ).map((r) => Number(r.ms));
    const spent = perUnit(cpu, events, 1000);
    return {
      bench: "ingest",
      provider: name,
      events,
      unique_events: unique,
      requests: requests.length,
      events_per_request: round(events / requests.length),
      clients: CLIENTS,
      events_per_s: Math.round(events / seconds),
      http_p99_ms: round(percentile(latencies, 0.99)),
      http_p50_ms: round(percentile(latencies, 0.5)),
      lag_p50_ms: round(percentile(lags, 0.5)),
      lag_p99_ms: round(percentile(lags, 0.99)),
      rss_mb: peakRssMb(server.child.pid),
      topology: split ? "split" : "single",
      ...(worker ? { worker_rss_mb: peakRssMb(worker.pid) } : {}),
      cpu_us_per_event: {
        ...spent,
        total: round(
          Object.values(spent).reduce((a, b) => a + b, 0),
          1,
        ),
      },
    };
  } finally {
    await sql.end();
    if (worker) await stopHerald(worker);
    await stopHerald(server.child);
  }
}

if (providerArg !== undefined) {
  // SendGrid first when it runs, so that every line has its ratio to it.
  const names = (providerArg === "all" ? providerNames : providerArg.split(",")).sort(
    (x, y) => (y === "sendgrid") - (x === "sendgrid"),
  );
  const target = Number(optionOf("--events") ?? process.env.EVENTS ?? PROVIDER_EVENTS);
  let sns;
  try {
    for (const name of names)
      if (!providerNames.includes(name))
        throw new Error(
          `--provider ${name}: one of ${providerNames.join(", ")}, a comma-separated list, or all`,
        );
    if (!(target > 0)) throw new Error("--events: a number of events per provider");
    sns = snsCertificate();
    let sendgridRate;
    for (const name of names) {
      const line = await providerRun(name, target, sns);
      if (name === "sendgrid") sendgridRate = line.events_per_s;
      print({ ...line, ...(sendgridRate ? { vs_sendgrid: round(line.events_per_s / sendgridRate) } : {}) });
    }
  } finally {
    if (sns) rmSync(sns.dir, { recursive: true, force: true });
    await Promise.all(children.map(stopHerald));
    await dropDatabase("herald_ingest_bench").catch(() => undefined);
  }
  // The SendGrid run below is not this one's.
  process.exit(0);
}

try {
  const split = process.env.TOPOLOGY === "split";
  // The door alone first: a server that processes nothing (it also migrates the database). The ceiling is
  // measured in the same schema while it idles.
  const door = await startHerald("serve", { HERALD_SERVE_WORKERS: "off" });
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  const [{ pid: backend }] = await sql`select pg_backend_pid() as pid`;
  const postmaster = statOf(backend)?.[1];

  const [{ id: tenantForCeiling }] = await sql`insert into tenants (name) values ('ceiling') returning id`;
  // One statement inserting N rows is quick and so noisy here: the median of three runs.
  const N = 50_000;
  const ceilings = [];
  for (let run = 0; run < 3; run++) {
    const t = performance.now();
    await sql`insert into message_events (tenant_id, provider, provider_event_id, provider_message_id, dedupe_key, type,
        event_at, recipient, url, ip, user_agent, reason, payload)
      select ${tenantForCeiling}, 'sendgrid', 'ev-' || i, 'MSG' || (i % 1000) || '.filter', 'ev-' || i, 'delivered',
        now(), 'user' || (i % 1000) || '@example.com', null, '149.72.10.11', null, '250 OK',
        jsonb_build_object('email', 'user' || i || '@example.com', 'timestamp', 1763800000 + i, 'event', 'delivered',
          'sg_event_id', 'ev-' || i, 'sg_message_id', 'MSG' || (i % 1000) || '.filter-' || i, 'response', '250 2.0.0 OK', 'ip', '149.72.10.11')
      from generate_series(${run * N + 1}::int, ${(run + 1) * N}::int) i`;
    ceilings.push(Math.round(N / ((performance.now() - t) / 1000)));
  }
  const ceiling = ceilings.sort((x, y) => x - y)[1];
  print({ bench: "ceiling", events: N, runs: ceilings, events_per_s: ceiling });

  const sample = JSON.parse(readFileSync("test/fixtures/sendgrid/basic-batch.json", "utf8"));
  let unique = 0;
  // The suppressions the run creates: one per address, reason and group (Herald's unique key).
  const suppressed = new Set();
  const suppressionOf = (e) =>
    e.event === "bounce" && e.type !== "blocked"
      ? "bounce"
      : ["spamreport", "unsubscribe"].includes(e.event)
        ? e.event
        : e.event === "group_unsubscribe" && e.asm_group_id !== undefined
          ? `group_unsubscribe:${e.asm_group_id}`
          : undefined;
  // Events of the last hour, as SendGrid posts them (seconds to minutes after they happen), so their month's
  // partitions exist as they do in production: a fixed old timestamp made every run create that month's first.
  const now = Math.floor(Date.now() / 1000);
  /** Event n of the run, as SendGrid would post it. */
  const eventOf = (n) => {
    const e = sample[n % sample.length];
    return {
      ...e,
      email: `user${n % 5000}@example.com`,
      sg_event_id: `b-${n}`,
      timestamp: now - (n % 3600),
      sg_message_id: `M${n % 5000}.f-${n}`,
    };
  };
  const bodies = Array.from({ length: BATCHES }, (_, b) => {
    const events = Array.from({ length: PER_BATCH }, (_, j) => {
      // 10% of each batch repeats events of the previous batch (from its fresh part, so they are real repeats).
      const repeats = PER_BATCH / 10;
      return eventOf(j < repeats && b > 0 ? (b - 1) * PER_BATCH + repeats + j : b * PER_BATCH + j);
    });
    unique += b === 0 ? PER_BATCH : PER_BATCH - PER_BATCH / 10;
    for (const e of events) {
      const reason = suppressionOf(e);
      if (reason) suppressed.add(`${e.email}|${reason}`);
    }
    return Buffer.from(JSON.stringify(events));
  });

  const posted = BATCHES * PER_BATCH;

  // The writes the run below requires, server-side like the ceiling and so a lower bound for Herald's
  // processing (no request, no parsing, no linking, no Node.js), per event posted: for each unique event its
  // dedupe key (the hash of provider and key), its message event (where its bytes sit in the delivery, no
  // copy), its `message.*` log event (the message event's id, no payload of its own) and its outbox row for
  // the one subscription, and the run's suppressions (one per address, reason and group) — in the same
  // proportions to the events posted.
  const [{ id: floorSubscription }] =
    await sql`insert into subscriptions (tenant_id, name, event_types, sink, secret)
    values (${tenantForCeiling}, 'floor', '{message.*}', '{"type":"webhook","url":"https://example.com/"}', 'whsec_floor')
    returning id`;
  const requiredWrites = (sql, from, count) =>
    sql`with b as (
        select ${tenantForCeiling}::uuid as tenant_id, i, 'req-' || i as key, 'MSG' || (i % 1000) || '.filter' as pmid,
          now() - (i % 3600) * interval '1 second' as at, 'user' || (i % 5000) || '@example.com' as recipient,
          -- Ids in time order as Herald's are, made cheaply: Herald sends them (the ceiling's default costs
          -- ~4.6 µs per row, more than the rest of some of these inserts).
          lpad(to_hex(i * 4), 32, '0')::uuid as id, lpad(to_hex(i * 4 + 2), 32, '0')::uuid as cause_id
        from generate_series(${from}::int, ${from + Math.round((count * unique) / posted) - 1}::int) i
      ), keyed as (
        insert into message_event_keys (tenant_id, key_hash)
        select tenant_id, md5('sendgrid:' || key)::uuid from b
      ), stored as (
        insert into message_events (id, tenant_id, provider, provider_event_id, provider_message_id, dedupe_key, type,
          event_at, recipient, ip, reason, delivery_id, raw_offset, raw_length)
        select id, tenant_id, 'sendgrid', key, pmid, key, 'delivered', at, recipient, '149.72.10.11',
          '250 OK', 1, i % 500 * 340, 340
        from b
        returning id, tenant_id, type, event_at
      ), logged as (
        insert into events (id, tenant_id, event_type, source, payload, ts)
        select id, tenant_id, 'message.' || type, 'webhook', null, event_at from stored
        returning id, tenant_id, event_type, ts
      ), queued as (
        insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type)
        select tenant_id, ${floorSubscription}, id, ts, event_type from logged
      )
      insert into communication_suppressions (tenant_id, channel, address, reason, source_event_id, source_event_at)
      select tenant_id, 'email', 'req-' || i || '@example.com', 'bounce', cause_id, at from b
      where i < ${from + Math.round((count * suppressed.size) / posted)}`;
  // On one connection, like the ceiling; then split over as many connections as there are cores: the most
  // this machine writes that way.
  const cores = availableParallelism();
  // FLOOR=off leaves the floor out: to run this script against a Herald before migration 0031 (A/B runs).
  for (const connections of process.env.FLOOR === "off" ? [] : [1, cores]) {
    const sessions = Array.from({ length: connections }, () => postgres(url, { max: 1, onnotice: () => {} }));
    const runs = [];
    for (let run = 0; run < 3; run++) {
      const from = (3 + (connections > 1 ? 3 : 0) + run) * N + 1;
      const share = Math.ceil(N / connections);
      const t = performance.now();
      await Promise.all(
        sessions.map((session, c) =>
          requiredWrites(session, from + c * share, Math.min(share, N - c * share)),
        ),
      );
      runs.push(Math.round(N / ((performance.now() - t) / 1000)));
    }
    await Promise.all(sessions.map((session) => session.end()));
    runs.sort((x, y) => x - y);
    print({
      bench: "required_writes",
      events: N,
      unique_events: Math.round((N * unique) / posted),
      suppressions: Math.round((N * suppressed.size) / posted),
      connections,
      runs,
      events_per_s: runs[1],
      ratio: round(runs[1] / ceiling),
    });
  }

  // The floor's outbox rows are not for delivery: gone with their subscription.
  await sql`delete from subscriptions where id = ${floorSubscription}`;

  // A tenant with a signed source, through the API.
  const tenant = await (
    await fetch(`${door.base}/api/v1/admin/tenants`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "bench" }),
    })
  ).json();
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const source = await (
    await fetch(`${door.base}/api/v1/sources`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({
        provider: "sendgrid",
        verification: { public_key: publicKey.export({ format: "der", type: "spki" }).toString("base64") },
      }),
    })
  ).json();

  // One subscription to every message event, delivered to a receiver here that answers at once: the outbox
  // rows it costs count in the storage line.
  const receiver = http.createServer((request, response) => {
    request.resume();
    request.on("end", () => response.writeHead(204).end());
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  // SUBSCRIBE=off: none (as the runs before 2026-12-06's third session measured).
  if (process.env.SUBSCRIBE !== "off") {
    const subscribed = await fetch(`${door.base}/api/v1/subscriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({
        name: "bench",
        event_types: ["message.*"],
        sink: { type: "webhook", url: `http://127.0.0.1:${receiver.address().port}/hook` },
      }),
    });
    if (subscribed.status !== 201)
      throw new Error(`subscription: ${subscribed.status} ${await subscribed.text()}`);
  }

  /** Post one body to `base`, signed now; resolves when it was answered 200. */
  async function postSigned(base, body, through) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = sign("sha256", Buffer.concat([Buffer.from(timestamp), body]), privateKey).toString(
      "base64",
    );
    const status = await post(
      `${base}${source.url}`,
      body,
      {
        "content-type": "application/json",
        "x-twilio-email-event-webhook-signature": signature,
        "x-twilio-email-event-webhook-timestamp": timestamp,
      },
      through,
    );
    if (status !== 200) throw new Error(`HTTP ${status}`);
  }

  /** Post every body to `base` from CLIENTS concurrent clients; each request's milliseconds, sorted. */
  async function postAll(base) {
    const latencies = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++];
          const s = performance.now();
          await postSigned(base, body);
          latencies.push(performance.now() - s);
        }
      }),
    );
    return latencies.sort((a, b) => a - b);
  }

  const doorCpu = cpuMeter({ server: door.child }, postmaster);
  const d0 = performance.now();
  const doorLatencies = await postAll(door.base);
  const doorSeconds = (performance.now() - d0) / 1000;
  print({
    bench: "door",
    requests: BATCHES,
    requests_per_s: Math.round(BATCHES / doorSeconds),
    http_p99_ms: round(percentile(doorLatencies, 0.99)),
    http_p50_ms: round(percentile(doorLatencies, 0.5)),
    cpu_ms_per_request: perUnit(doorCpu(), BATCHES, 1),
  });
  await stopHerald(door.child);
  // What the door kept is not for the run below.
  await sql`delete from webhook_deliveries where tenant_id = ${tenant.tenant.id}`;
  // Not autovacuum's work inside the timed run; FULL, so the run's deliveries take new pages (the storage line
  // below measures what the run adds).
  await sql`vacuum full webhook_deliveries`;
  await sql`vacuum`; // and every table's free-space and visibility maps made, so they do not count as the run's
  const sizesBefore = await tableSizes(sql);
  const relationsBefore = await relationSizes(sql);

  // End to end: a server that also processes (or, split, one beside a worker).
  const server = await startHerald("serve", { HERALD_SERVE_WORKERS: split ? "off" : "on" });
  const worker = split ? (await startHerald("worker")).child : undefined;
  const runCpu = cpuMeter(worker ? { server: server.child, worker } : { server: server.child }, postmaster);
  const t0 = performance.now();
  const latencies = await postAll(server.base);
  // Done when no delivery is left to process (a cheap look at the queue index, so the poll itself does not
  // load the server); then every unique event must be stored.
  for (;;) {
    const [{ n }] = await sql`select count(*)::int as n from webhook_deliveries
      where tenant_id = ${tenant.tenant.id} and status in ('pending', 'processing')`;
    if (n === 0) break;
    await sleep(50);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = runCpu();
  const [{ stored }] =
    await sql`select count(*)::int as stored from message_events where tenant_id = ${tenant.tenant.id}`;
  if (stored !== unique) throw new Error(`expected ${unique} stored events, found ${stored}`);
  const lags = (
    await sql`select extract(epoch from (processed_at - received_at)) * 1000 as ms from webhook_deliveries
    where tenant_id = ${tenant.tenant.id} and processed_at is not null order by 1`
  ).map((r) => Number(r.ms));
  const events = BATCHES * PER_BATCH;
  const eventsPerS = Math.round(events / seconds);
  print({
    bench: "ingest",
    events,
    unique_events: unique,
    clients: CLIENTS,
    events_per_s: eventsPerS,
    http_p99_ms: round(percentile(latencies, 0.99)),
    http_p50_ms: round(percentile(latencies, 0.5)),
    lag_p50_ms: round(percentile(lags, 0.5)),
    lag_p99_ms: round(percentile(lags, 0.99)),
    rss_mb: peakRssMb(server.child.pid),
    topology: split ? "split" : "single",
    ...(worker ? { worker_rss_mb: peakRssMb(worker.pid) } : {}),
  });
  print({ bench: "ingest_ratio", ratio: round(eventsPerS / ceiling) });
  // The run is CPU-bound: what it spent per event, and what 0.5 × the ceiling leaves on these cores.
  const spent = perUnit(cpu, events, 1000);
  print({
    bench: "ingest_cpu",
    cores,
    cpu_busy: round(Object.values(cpu).reduce((a, b) => a + b, 0) / (seconds * 1000 * cores)),
    cpu_us_per_event: {
      ...spent,
      total: round(
        Object.values(spent).reduce((a, b) => a + b, 0),
        1,
      ),
    },
    cpu_us_per_event_at_target: Math.round((cores * 1e6) / (0.5 * ceiling)),
  });
  // Bytes on disk per unique event the run stored, after VACUUM: every table (all its partitions, indexes and
  // TOAST) the run grew, from their sizes before it, once the subscription has had every event. The number
  // later storage work is measured against.
  for (let i = 0; ; i++) {
    const [{ n }] =
      await sql`select count(*)::int as n from outbox where status in ('pending', 'processing')`;
    if (n === 0) break;
    if (i > 6000) throw new Error(`the subscription still has ${n} events to deliver after 5 minutes`);
    await sleep(50);
  }
  await sql`vacuum`;
  const sizesAfter = await tableSizes(sql);
  const byTable = Object.fromEntries(
    Object.entries(sizesAfter)
      .map(([table, bytes]) => [table, Math.round((bytes - (sizesBefore[table] ?? 0)) / unique)])
      .filter(([, bytes]) => bytes > 0)
      .sort((a, b) => b[1] - a[1]),
  );
  const relationsAfter = await relationSizes(sql);
  // The same per heap and per index (TOAST left out), the largest first: where each table's bytes go.
  const byRelation = Object.fromEntries(
    Object.entries(relationsAfter)
      .map(([name, bytes]) => [name, Math.round((bytes - (relationsBefore[name] ?? 0)) / unique)])
      .filter(([, bytes]) => bytes > 0)
      .sort((a, b) => b[1] - a[1]),
  );
  print({
    bench: "storage",
    unique_events: unique,
    bytes_per_event: Object.values(byTable).reduce((a, b) => a + b, 0),
    by_table: byTable,
    by_relation: byRelation,
  });

  // Open loop: requests sent at a fixed rate, half the capacity the run above measured, each timed from when
  // it was due rather than from when a client got round to it — a server falling behind shows as latency
  // (a closed loop hides it: its clients wait, and so send less). New events, the same shape of batch.
  const openSeconds = Number(process.env.OPEN_LOOP_SECONDS ?? 20);
  const perSecond = (0.5 * eventsPerS) / PER_BATCH;
  const openRequests = Math.max(10, Math.round(perSecond * openSeconds));
  const first = 2 * BATCHES * PER_BATCH;
  const openBodies = Array.from({ length: openRequests }, (_, b) =>
    Buffer.from(
      JSON.stringify(Array.from({ length: PER_BATCH }, (_, j) => eventOf(first + b * PER_BATCH + j))),
    ),
  );
  const openAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const start = performance.now() + 200;
  const openLatencies = await Promise.all(
    openBodies.map(async (body, k) => {
      const due = start + (k * 1000) / perSecond;
      await sleep(Math.max(0, due - performance.now()));
      await postSigned(server.base, body, openAgent);
      return performance.now() - due;
    }),
  );
  openLatencies.sort((a, b) => a - b);
  print({
    bench: "ingest_open_loop",
    offered_per_s: Math.round(perSecond * PER_BATCH),
    requests: openRequests,
    http_p50_ms: round(percentile(openLatencies, 0.5)),
    http_p99_ms: round(percentile(openLatencies, 0.99)),
  });
  receiver.close();
  await sql.end();
} finally {
  await Promise.all(children.map(stopHerald));
  if (!process.env.KEEP) await dropDatabase("herald_ingest_bench").catch(() => undefined);
}
