import { readFileSync } from "node:fs";
import ipaddr from "ipaddr.js";
import { isPhoneRegion, type PhoneRegion } from "./domain/address.js";

/**
 * Herald's configuration, read from the environment and validated once at start-up. Every variable is
 * listed in `variables` (shown by `herald --help` and the README) with its default.
 */

export interface WorkerConfig {
  /** Rows claimed per round trip. @defaultValue 100 */
  batchSize: number;
  /** How long a claim is held before another worker may take the row. @defaultValue 30000 */
  leaseMs: number;
  /**
   * Attempts before a row becomes a dead letter: the default `max_attempts` of new subscriptions and of
   * archived webhook deliveries. @defaultValue 5
   */
  maxAttempts: number;
  /** First retry delay; doubles per attempt. @defaultValue 1000 */
  backoffBaseMs: number;
  /** Ceiling of the retry delay. @defaultValue 60000 */
  backoffMaxMs: number;
  /** Fallback poll when no NOTIFY arrives. @defaultValue 5000 */
  pollIntervalMs: number;
  /** Rows handled at once per worker. @defaultValue 16 */
  concurrency: number;
  /** The webhook processor's batch: deliveries are large (up to the body limit each). @defaultValue 8 */
  processorBatchSize: number;
  /** Deliveries the webhook processor handles at once. @defaultValue 4 */
  processorConcurrency: number;
  /**
   * `herald serve`: in a burst of webhook requests, the processor starts nothing for this long, then one chunk
   * at a time for three times as long (see `Foreground`); 0 = never. @defaultValue 250
   */
  processorYieldMs: number;
  /** Scheduled actions claimed per round trip. @defaultValue 100 */
  schedulerBatchSize: number;
  /** Transactions running scheduled actions at once per worker. @defaultValue 4 */
  schedulerConcurrency: number;
  /** How often the scheduler looks for actions that fell due (no NOTIFY announces those). @defaultValue 250 */
  schedulerPollMs: number;
}

export interface Config {
  /** postgres:// URL; absent → embedded PGlite under `dataDir`. */
  databaseUrl: string | undefined;
  /** Months kept by retention (src/retention/); undefined = retention off (the default). */
  retentionMonths: number | undefined;
  /** Where retention writes its archives. @defaultValue ./archives */
  archiveDir: string;
  /** Optional second URL for cross-tenant work (workers, key lookup), e.g. a BYPASSRLS role. */
  systemDatabaseUrl: string | undefined;
  dataDir: string;
  port: number;
  /** `herald worker`'s `GET /metrics` port (0 = any free one); undefined = not served. */
  metricsPort: number | undefined;
  host: string;
  adminToken: string | undefined;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  bodyLimitBytes: number;
  /** Deepest nesting of a JSON body (deeper is 400). @defaultValue 64 */
  jsonMaxDepth: number;
  /** How long a request may take to arrive whole (a stalled upload is answered 408). */
  requestTimeoutMs: number;
  /** On SIGTERM, how long requests in flight may finish before their connections are cut. */
  shutdownGraceMs: number;
  /** Size of the postgres.js connection pool. */
  databasePoolSize: number;
  /**
   * Bound of every database wait of the API: connecting, a lock, a statement, a query or transaction in all
   * (past it: 503 `unavailable`). Workers connect within it; their waits get their lease (see runtime.ts).
   * @defaultValue 2000
   */
  databaseTimeoutMs: number;
  /** NATS server for NATS sinks. */
  natsUrl: string;
  /** CIDRs webhook sinks may reach although they are not public (loopback, private, …); empty = none. */
  webhookAllowedNetworks: string[];
  /**
   * Herald's URL as providers call it (scheme, host, any path prefix; no trailing "/"): the public URL of a
   * webhook request is this followed by its path and query (Twilio signs that URL). Undefined: from the request.
   */
  publicUrl: string | undefined;
  /** Whether a webhook request's `X-Forwarded-Proto`/`-Host` are believed (set by the operator's proxy). */
  trustProxy: boolean;
  /** A PEM certificate SES's SNS messages are verified against instead of fetching SNS's; undefined: fetched. */
  snsCertificateFile: string | undefined;
  /** The region national phone numbers are read in (`domain/address.ts`); undefined: international only. */
  defaultPhoneRegion: PhoneRegion | undefined;
  /** Whether `herald serve` also runs the workers (off: run them with `herald worker`). */
  runWorkers: boolean;
  /** Months after the current one whose partitions running workers keep made ahead. @defaultValue 3 */
  partitionsAhead: number;
  worker: WorkerConfig;
}

interface Variable {
  name: string;
  description: string;
  default?: string;
  /** Bounds of a whole-number variable (inclusive). */
  min?: number;
  max?: number;
}

export const variables: Variable[] = [
  { name: "DATABASE_URL", description: "PostgreSQL URL; unset = embedded PGlite in HERALD_DATA_DIR" },
  {
    name: "HERALD_SYSTEM_DATABASE_URL",
    description: "URL for cross-tenant work (workers, key lookup): a BYPASSRLS role",
    default: "DATABASE_URL",
  },
  { name: "HERALD_DATA_DIR", description: "where the embedded database is kept", default: "./.herald" },
  { name: "PORT", description: "HTTP port", default: "3000", min: 0, max: 65535 },
  {
    name: "HERALD_METRICS_PORT",
    description: "`herald worker`: port of its GET /metrics (Prometheus); `off` = none",
    default: "9464",
    min: 0,
    max: 65535,
  },
  { name: "HOST", description: "HTTP bind address", default: "127.0.0.1" },
  { name: "HERALD_ADMIN_TOKEN", description: "bearer token of /api/v1/admin routes; unset = admin disabled" },
  { name: "LOG_LEVEL", description: "fatal|error|warn|info|debug|trace|silent", default: "info" },
  {
    name: "HERALD_BODY_LIMIT_BYTES",
    description: "largest request body accepted",
    default: "5242880",
    min: 1024,
    max: 1024 * 1024 * 1024,
  },
  {
    name: "HERALD_JSON_MAX_DEPTH",
    description: "deepest nesting of a JSON body (deeper is 400)",
    default: "64",
    min: 8,
    max: 1000,
  },
  {
    name: "HERALD_REQUEST_TIMEOUT_MS",
    description:
      "a request must arrive whole within about this (checked every 30 s; a stalled upload gets 408)",
    default: "60000",
    min: 1000,
    max: 3600 * 1000,
  },
  {
    name: "HERALD_SHUTDOWN_GRACE_MS",
    description: "on SIGTERM, requests in flight get this long before their connections are cut",
    default: "10000",
    min: 0,
    max: 3600 * 1000,
  },
  {
    name: "HERALD_DB_POOL_SIZE",
    description: "PostgreSQL connections per process",
    default: "10",
    min: 2,
    max: 1000,
  },
  {
    name: "HERALD_DB_TIMEOUT_MS",
    description: "API: longest wait for the database (connect, lock, statement, whole query) before a 503",
    default: "2000",
    min: 100,
    max: 600_000,
  },
  {
    name: "HERALD_NATS_URL",
    description: "NATS server used by subscriptions with a NATS sink",
    default: "nats://127.0.0.1:4222",
  },
  {
    name: "HERALD_WEBHOOK_ALLOWED_NETWORKS",
    description:
      "CIDRs webhook sinks may reach though not public, e.g. 127.0.0.0/8,::1/128,10.20.0.0/16; unset = none",
  },
  {
    name: "HERALD_PUBLIC_URL",
    description:
      "Herald's URL as providers call it, e.g. https://herald.example.com (Twilio signs it); unset = from each request",
  },
  {
    name: "HERALD_TRUST_PROXY",
    description:
      "on: a webhook's public URL follows X-Forwarded-Proto/-Host (only behind a proxy that sets them)",
    default: "off",
  },
  {
    name: "HERALD_DEFAULT_PHONE_REGION",
    description:
      "the region (ISO 3166-1 alpha-2, such as US) phone numbers in national format are read in; unset: only international (+…) numbers",
  },
  {
    name: "HERALD_SNS_CERTIFICATE_FILE",
    description:
      "a PEM certificate SES sources' SNS messages are verified against instead of fetching SigningCertURL",
  },
  {
    name: "HERALD_SERVE_WORKERS",
    description: "on: `serve` also runs the workers; off: API only (run `herald worker` beside it)",
    default: "on",
  },
  {
    name: "HERALD_WORKER_BATCH_SIZE",
    description: "outbox dispatcher: deliveries claimed per round trip",
    default: "100",
    min: 1,
    max: 10000,
  },
  {
    name: "HERALD_WORKER_CONCURRENCY",
    description: "outbox dispatcher: deliveries sent at once per worker",
    default: "16",
    min: 1,
    max: 1000,
  },
  {
    name: "HERALD_PROCESSOR_BATCH_SIZE",
    description: "webhook processor: archived deliveries claimed per round trip",
    default: "8",
    min: 1,
    max: 1000,
  },
  {
    name: "HERALD_PROCESSOR_CONCURRENCY",
    description: "webhook processor: deliveries processed at once per worker",
    default: "4",
    min: 1,
    max: 100,
  },
  {
    name: "HERALD_LEASE_MS",
    description: "claim lease before another worker may retry",
    default: "30000",
    min: 15_000,
    max: 24 * 3600 * 1000,
  },
  {
    name: "HERALD_MAX_ATTEMPTS",
    description: "attempts before a dead letter (default of new subscriptions and webhook deliveries)",
    default: "5",
    min: 1,
    max: 1000,
  },
  {
    name: "HERALD_BACKOFF_BASE_MS",
    description: "first retry delay, doubled per attempt",
    default: "1000",
    min: 1,
    max: 3600 * 1000,
  },
  {
    name: "HERALD_BACKOFF_MAX_MS",
    description: "longest retry delay",
    default: "60000",
    min: 1,
    max: 24 * 3600 * 1000,
  },
  {
    name: "HERALD_POLL_INTERVAL_MS",
    description: "fallback poll when no NOTIFY arrives",
    default: "5000",
    min: 10,
    max: 3600 * 1000,
  },
  {
    name: "HERALD_PROCESSOR_YIELD_MS",
    description:
      "`serve`: a burst of webhooks holds processing back this long, then slows it 3x as long; 0 = never",
    default: "250",
    min: 0,
    max: 10_000,
  },
  {
    name: "HERALD_SCHEDULER_BATCH_SIZE",
    description: "scheduler: scheduled actions claimed per round trip",
    default: "100",
    min: 1,
    max: 10_000,
  },
  {
    name: "HERALD_SCHEDULER_CONCURRENCY",
    description: "scheduler: transactions running scheduled actions at once per worker",
    default: "4",
    min: 1,
    max: 100,
  },
  {
    name: "HERALD_SCHEDULER_POLL_MS",
    description: "scheduler: how often it looks for actions that fell due",
    default: "250",
    min: 10,
    max: 60_000,
  },
  {
    name: "HERALD_PARTITIONS_AHEAD",
    description: "months after the current one whose partitions the workers keep made ahead",
    default: "3",
    min: 1,
    max: 120,
  },
  {
    name: "HERALD_RETENTION_MONTHS",
    description:
      "months of events and message_events kept; older months are archived and dropped; `off` = none",
    default: "off",
    min: 1,
    max: 1200,
  },
  {
    name: "HERALD_ARCHIVE_DIR",
    description: "where retention writes its archive files",
    default: "./archives",
  },
];

export class ConfigError extends Error {
  override name = "ConfigError";
}

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

function defaultOf(name: string): string | undefined {
  return variables.find((v) => v.name === name)?.default;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const int = (name: string): number => {
    const { min = 0, max = Number.MAX_SAFE_INTEGER } = variables.find((v) => v.name === name) ?? {};
    const raw = text(name) ?? defaultOf(name)!;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name}=${raw} must be a whole number from ${min} to ${max}`);
      return min;
    }
    return value;
  };
  const onOff = (name: string): boolean => {
    const raw = (text(name) ?? defaultOf(name)!).toLowerCase();
    if (["on", "true", "1", "yes"].includes(raw)) return true;
    if (["off", "false", "0", "no"].includes(raw)) return false;
    problems.push(`${name}=${raw} must be on or off`);
    return true;
  };
  const url = (name: string): string | undefined => {
    const value = text(name);
    if (value !== undefined && !/^postgres(ql)?:\/\//.test(value)) {
      problems.push(`${name} must be a postgres:// URL (or unset it to use the embedded database)`);
    }
    return value;
  };

  const networks = (name: string): string[] => {
    const list = (text(name) ?? "").split(",").map((entry) => entry.trim());
    const cidrs = list.filter((entry) => entry !== "");
    for (const cidr of cidrs.filter((entry) => !ipaddr.isValidCIDR(entry))) {
      problems.push(`${name}: "${cidr}" is not a network in CIDR notation (such as 10.20.0.0/16 or ::1/128)`);
    }
    return cidrs;
  };

  const publicUrl = (name: string): string | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    let parsed: URL | undefined;
    try {
      parsed = new URL(value);
    } catch {}
    if (
      !parsed ||
      !["http:", "https:"].includes(parsed.protocol) ||
      parsed.search !== "" ||
      parsed.hash !== "" ||
      parsed.username !== "" ||
      parsed.password !== "" ||
      value.includes("?") ||
      value.includes("#")
    ) {
      problems.push(
        `${name} must be an http:// or https:// URL without query or fragment, such as https://herald.example.com`,
      );
      return undefined;
    }
    // As written (a provider signs the URL as configured there), less any trailing "/".
    return value.replace(/\/+$/, "");
  };

  const phoneRegion = (name: string): PhoneRegion | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    const code = value.toUpperCase();
    if (isPhoneRegion(code)) return code;
    problems.push(`${name}=${value} is not a region code (ISO 3166-1 alpha-2, such as US or GB)`);
    return undefined;
  };

  const certificateFile = (name: string): string | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    let pem = "";
    try {
      pem = readFileSync(value, "utf8");
    } catch {
      problems.push(`${name}=${value} cannot be read`);
      return undefined;
    }
    if (!pem.includes("-----BEGIN CERTIFICATE-----"))
      problems.push(`${name}=${value} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    return value;
  };

  const logLevel = (text("LOG_LEVEL") ?? "info") as Config["logLevel"];
  if (!logLevels.includes(logLevel))
    problems.push(`LOG_LEVEL=${logLevel} must be one of ${logLevels.join(", ")}`);
  const adminToken = text("HERALD_ADMIN_TOKEN");
  if (adminToken !== undefined && adminToken.length < 16) {
    problems.push("HERALD_ADMIN_TOKEN must be at least 16 characters (try: openssl rand -hex 32)");
  }

  const config: Config = {
    databaseUrl: url("DATABASE_URL"),
    systemDatabaseUrl: url("HERALD_SYSTEM_DATABASE_URL"),
    dataDir: text("HERALD_DATA_DIR") ?? "./.herald",
    port: int("PORT"),
    metricsPort:
      (text("HERALD_METRICS_PORT") ?? "").toLowerCase() === "off" ? undefined : int("HERALD_METRICS_PORT"),
    host: text("HOST") ?? "127.0.0.1",
    adminToken,
    logLevel,
    bodyLimitBytes: int("HERALD_BODY_LIMIT_BYTES"),
    jsonMaxDepth: int("HERALD_JSON_MAX_DEPTH"),
    requestTimeoutMs: int("HERALD_REQUEST_TIMEOUT_MS"),
    shutdownGraceMs: int("HERALD_SHUTDOWN_GRACE_MS"),
    databasePoolSize: int("HERALD_DB_POOL_SIZE"),
    databaseTimeoutMs: int("HERALD_DB_TIMEOUT_MS"),
    natsUrl: text("HERALD_NATS_URL") ?? "nats://127.0.0.1:4222",
    webhookAllowedNetworks: networks("HERALD_WEBHOOK_ALLOWED_NETWORKS"),
    publicUrl: publicUrl("HERALD_PUBLIC_URL"),
    trustProxy: onOff("HERALD_TRUST_PROXY"),
    snsCertificateFile: certificateFile("HERALD_SNS_CERTIFICATE_FILE"),
    defaultPhoneRegion: phoneRegion("HERALD_DEFAULT_PHONE_REGION"),
    runWorkers: onOff("HERALD_SERVE_WORKERS"),
    partitionsAhead: int("HERALD_PARTITIONS_AHEAD"),
    retentionMonths:
      (text("HERALD_RETENTION_MONTHS") ?? "off").toLowerCase() === "off"
        ? undefined
        : int("HERALD_RETENTION_MONTHS"),
    archiveDir: text("HERALD_ARCHIVE_DIR") ?? "./archives",
    worker: {
      batchSize: int("HERALD_WORKER_BATCH_SIZE"),
      concurrency: int("HERALD_WORKER_CONCURRENCY"),
      processorBatchSize: int("HERALD_PROCESSOR_BATCH_SIZE"),
      processorConcurrency: int("HERALD_PROCESSOR_CONCURRENCY"),
      // Longer than the 10 s webhook timeout with room to spare, or deliveries in flight would be reaped.
      leaseMs: int("HERALD_LEASE_MS"),
      maxAttempts: int("HERALD_MAX_ATTEMPTS"),
      backoffBaseMs: int("HERALD_BACKOFF_BASE_MS"),
      backoffMaxMs: int("HERALD_BACKOFF_MAX_MS"),
      pollIntervalMs: int("HERALD_POLL_INTERVAL_MS"),
      processorYieldMs: int("HERALD_PROCESSOR_YIELD_MS"),
      schedulerBatchSize: int("HERALD_SCHEDULER_BATCH_SIZE"),
      schedulerConcurrency: int("HERALD_SCHEDULER_CONCURRENCY"),
      schedulerPollMs: int("HERALD_SCHEDULER_POLL_MS"),
    },
  };
  // Rows claimed while the processor holds back wait in its buffer: their lease must outlast the wait.
  if (config.worker.processorYieldMs * 8 > config.worker.leaseMs) {
    problems.push("HERALD_PROCESSOR_YIELD_MS must be at most an eighth of HERALD_LEASE_MS");
  }
  if (config.worker.backoffMaxMs < config.worker.backoffBaseMs) {
    problems.push("HERALD_BACKOFF_MAX_MS must not be below HERALD_BACKOFF_BASE_MS");
  }
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
  return config;
}
