/**
 * Every environment variable Herald reads, with its description, default and bounds: `herald --help` and the
 * README's configuration table show this list (a test keeps the README in step), and `loadConfig` takes its
 * defaults from it.
 */
export interface Variable {
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
