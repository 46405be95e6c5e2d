import { readFileSync } from "node:fs";
import ipaddr from "ipaddr.js";
import { variables } from "./config/variables.js";
import { isPhoneRegion, type PhoneRegion } from "./domain/address.js";

export { type Variable, variables } from "./config/variables.js";

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
