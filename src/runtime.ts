import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import pino from "pino";
import type { Registry } from "prom-client";
import { buildApp } from "./api/app.js";
import { Foreground } from "./api/foreground.js";
import { createRegistry } from "./api/metrics.js";
import { createDispatcher } from "./bus/dispatcher.js";
import { outboxQueue } from "./bus/outboxQueue.js";
import { destinationPolicy } from "./bus/sinks/destination.js";
import { HandlerRegistry } from "./bus/sinks/handlers.js";
import { NatsPublisher } from "./bus/sinks/nats.js";
import type { Config } from "./config.js";
import type { Database } from "./db/client.js";
import { setDefaultPhoneRegion } from "./domain/address.js";
import { RollupProjection } from "./events/rollups.js";
import { createInboundMetrics } from "./inbound/metrics.js";
import { createInboundWorker } from "./inbound/processor.js";
import { createIngestMetrics } from "./ingest/metrics.js";
import { createProcessor } from "./ingest/processor.js";
import { serveMetrics } from "./metricsServer.js";
import { inboundEventsQueue, scheduledActionsQueue, webhookDeliveriesQueue } from "./queue/definitions.js";
import { instrumentWorker, registerQueueDepth } from "./queue/metrics.js";
import type { Worker } from "./queue/worker.js";
import { startRetention } from "./retention/index.js";
import { migrateConfigured, openConfiguredDatabases, openWorkerDatabase } from "./runtime/databases.js";
import { startPartitionUpkeep } from "./scheduler/maintenance.js";
import { createSchedulerMetrics, registerSchedulerDue } from "./scheduler/metrics.js";
import { createSchedulerWorker } from "./scheduler/processor.js";
import { builtInActions, type ScheduledActionRegistry } from "./scheduler/registry.js";
import { createTenant, listTenants } from "./tenancy/tenants.js";

export { type DatabaseUse, openConfiguredDatabases } from "./runtime/databases.js";

/**
 * The embedded database's admin token, kept beside the data so restarts reuse it. Only used when
 * HERALD_ADMIN_TOKEN is unset and no DATABASE_URL is given (the zero-setup path).
 */
function embeddedAdminToken(dataDir: string): { token: string; created: boolean } {
  const file = join(dataDir, "admin-token");
  if (existsSync(file)) return { token: readFileSync(file, "utf8").trim(), created: false };
  const token = randomBytes(32).toString("hex");
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, created: true };
}

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

/** `herald serve`: migrate, build the app, listen, and stop gracefully on SIGTERM/SIGINT. */
export async function serve(config: Config): Promise<RunningServer> {
  const log = pino({ level: config.logLevel });
  setDefaultPhoneRegion(config.defaultPhoneRegion);
  const { app: database, system } = await openConfiguredDatabases(config, "api");
  const { applied } = await migrateConfigured(config, system);
  if (applied.length > 0) log.info({ applied }, "migrations applied");

  const embedded = database.kind === "pglite";
  let adminToken = config.adminToken;
  const notes: string[] = [];
  if (embedded && adminToken === undefined) {
    const { token, created } = embeddedAdminToken(config.dataDir);
    adminToken = token;
    notes.push(`Admin token${created ? " (new, saved in HERALD_DATA_DIR/admin-token)" : ""}: ${token}`);
  }
  if (embedded && (await listTenants(system.db)).length === 0) {
    const { tenant, apiKey } = await createTenant(system.db, "default");
    notes.push(`Created tenant "default" (${tenant.id}). Its API key, shown once: ${apiKey}`);
  }

  // Webhook requests in flight: this process's processor gives way to them (HERALD_PROCESSOR_YIELD_MS).
  const foreground = config.runWorkers && config.worker.processorYieldMs > 0 ? new Foreground() : undefined;
  const { app, registry, cutConnections } = await buildApp({
    database,
    systemDb: system.db,
    config: {
      adminToken,
      bodyLimitBytes: config.bodyLimitBytes,
      requestTimeoutMs: config.requestTimeoutMs,
      databaseTimeoutMs: config.databaseTimeoutMs,
      jsonMaxDepth: config.jsonMaxDepth,
      webhookAllowedNetworks: config.webhookAllowedNetworks,
      maxAttempts: config.worker.maxAttempts,
      publicUrl: config.publicUrl,
      trustProxy: config.trustProxy,
      snsCertificateFile: config.snsCertificateFile,
    },
    logger: { level: config.logLevel },
    foreground,
  });
  // Workers get their own connections on a server, so long processing transactions never make a webhook's
  // one insert wait for a connection (PGlite has a single connection anyway).
  const workerDatabase =
    config.runWorkers && database.kind === "postgres" ? await openWorkerDatabase(config) : system;
  const workers = config.runWorkers
    ? await startWorkers(config, workerDatabase, registry, { foreground })
    : undefined;
  await database.warm();
  const address = await app.listen({ port: config.port, host: config.host });
  const url = address.replace("[::1]", "localhost");

  process.stdout.write(
    `Herald listening on ${url} (${embedded ? `embedded database in ${config.dataDir}` : "PostgreSQL"})\n`,
  );
  for (const note of notes) process.stdout.write(`${note}\n`);
  process.stdout.write(
    adminToken
      ? `New API key: curl -X POST ${url}/api/v1/admin/tenants/<tenant id>/api-keys -H "Authorization: Bearer <admin token>"\n`
      : "New API key: herald tenants create NAME (or set HERALD_ADMIN_TOKEN to use the admin API)\n",
  );
  process.stdout.write(`API docs: ${url}/docs\n`);
  process.stdout.write(`Console: ${url}/console\n`);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      log.info("shutting down: finishing in-flight requests");
      // Requests in flight get a grace period, then their connections are cut: nothing was acknowledged
      // on them, so their senders retry. The workers finish their transactions meanwhile.
      const cut = setTimeout(() => {
        log.warn("shutdown grace period over: closing the connections still open");
        cutConnections();
      }, config.shutdownGraceMs);
      await Promise.all([app.close().finally(() => clearTimeout(cut)), workers?.stop()]);
      if (workerDatabase !== system) await workerDatabase.close();
      await database.close();
      if (system !== database) await system.close();
      log.info("stopped");
    })();
    return stopping;
  };
  return { url, stop };
}

export interface RunningWorkers {
  handlers: HandlerRegistry;
  stop(): Promise<void>;
}

export interface WorkerExtras {
  /** In-process handlers of subscriptions with a handler sink. */
  handlers?: HandlerRegistry;
  /** The webhook door of this process, which the webhook processor gives way to. */
  foreground?: Foreground | undefined;
  /** The scheduled actions this process runs. @defaultValue the built-in ones (`emit_event`) */
  scheduledActions?: ScheduledActionRegistry;
}

/**
 * The background workers of one process: the outbox dispatcher, the webhook processor, the inbound worker
 * and the event rollup projection (processes on one database take turns on its checkpoint).
 */
export async function startWorkers(
  config: Config,
  system: Database,
  registry: Registry,
  { handlers = new HandlerRegistry(), foreground, scheduledActions = builtInActions }: WorkerExtras = {},
): Promise<RunningWorkers> {
  const nats = new NatsPublisher(config.natsUrl);
  const dispatcher: Worker = createDispatcher({
    db: system.db,
    listen: system.listen,
    handlers,
    nats,
    destinations: destinationPolicy(config.webhookAllowedNetworks),
    batchSize: config.worker.batchSize,
    concurrency: config.worker.concurrency,
    leaseMs: config.worker.leaseMs,
    pollIntervalMs: config.worker.pollIntervalMs,
    backoff: { baseMs: config.worker.backoffBaseMs, maxMs: config.worker.backoffMaxMs },
  });
  const processor: Worker = createProcessor({
    db: system.db,
    listen: system.listen,
    metrics: createIngestMetrics(registry),
    yieldTo: foreground,
    maxYieldMs: config.worker.processorYieldMs,
    batchSize: config.worker.processorBatchSize,
    concurrency: config.worker.processorConcurrency,
    leaseMs: config.worker.leaseMs,
    pollIntervalMs: config.worker.pollIntervalMs,
    backoff: { baseMs: config.worker.backoffBaseMs, maxMs: config.worker.backoffMaxMs },
  });
  const inbound: Worker = createInboundWorker({
    db: system.db,
    listen: system.listen,
    metrics: createInboundMetrics(registry),
    leaseMs: config.worker.leaseMs,
    pollIntervalMs: config.worker.pollIntervalMs,
    backoff: { baseMs: config.worker.backoffBaseMs, maxMs: config.worker.backoffMaxMs },
  });
  const scheduler: Worker = createSchedulerWorker({
    db: system.db,
    listen: system.listen,
    registry: scheduledActions,
    metrics: createSchedulerMetrics(registry),
    batchSize: config.worker.schedulerBatchSize,
    concurrency: config.worker.schedulerConcurrency,
    leaseMs: config.worker.leaseMs,
    // A NOTIFY announces a new action, but not the moment a future one falls due: only a claim finds that.
    pollIntervalMs: config.worker.schedulerPollMs,
    backoff: { baseMs: config.worker.backoffBaseMs, maxMs: config.worker.backoffMaxMs },
  });
  instrumentWorker(dispatcher, outboxQueue, registry);
  instrumentWorker(processor, webhookDeliveriesQueue, registry);
  instrumentWorker(inbound, inboundEventsQueue, registry);
  instrumentWorker(scheduler, scheduledActionsQueue, registry);
  registerQueueDepth(registry, system.db, [
    outboxQueue,
    webhookDeliveriesQueue,
    inboundEventsQueue,
    scheduledActionsQueue,
  ]);
  registerSchedulerDue(registry, system.db);
  const log = pino({ level: config.logLevel });
  dispatcher.on("worker:error", (error) => log.error({ err: error, queue: "outbox" }, "worker error"));
  dispatcher.on("job:dead", (row, error) => log.warn({ outboxId: row.id, error }, "delivery dead-lettered"));
  processor.on("worker:error", (error) =>
    log.error({ err: error, queue: "webhook_deliveries" }, "worker error"),
  );
  processor.on("job:failed", (row, error) =>
    log.warn({ deliveryId: row.id, error }, "webhook delivery processing failed"),
  );
  inbound.on("worker:error", (error) => log.error({ err: error, queue: "inbound_events" }, "worker error"));
  inbound.on("job:failed", (row, error) =>
    log.warn({ inboundEventId: row.id, error }, "inbound processing failed"),
  );
  inbound.on("job:dead", (row, error) =>
    log.warn({ inboundEventId: row.id, error }, "inbound dead-lettered"),
  );
  scheduler.on("worker:error", (error) =>
    log.error({ err: error, queue: "scheduled_actions" }, "worker error"),
  );
  scheduler.on("job:failed", (row, error) =>
    log.warn({ scheduledActionId: row.action_id, error }, "scheduled action failed"),
  );
  scheduler.on("job:dead", (row, error) =>
    log.warn({ scheduledActionId: row.action_id, error }, "scheduled action dead"),
  );
  const rollups = new RollupProjection(system.db, {
    // PGlite runs in this process's event loop: smaller steps keep each pause of the API short (~30 ms).
    batch: system.kind === "pglite" ? 2000 : 10_000,
    onError: (error) => log.error({ err: error }, "rollup projection failed"),
  });
  await dispatcher.start();
  await processor.start();
  await inbound.start();
  await scheduler.start();
  rollups.start();
  // `maintain_partitions`: the coming months' partitions, made at start and hourly (scheduler/maintenance.ts).
  const upkeep = startPartitionUpkeep({
    db: system.db,
    monthsAhead: config.partitionsAhead,
    onRun: (made) => {
      for (const { table, made: names } of made)
        if (names.length > 0) log.info({ table, partitions: names }, "partitions made ahead");
    },
    onError: (error) => log.error({ err: error }, "partition upkeep failed"),
  });
  // Retention (HERALD_RETENTION_MONTHS, PostgreSQL only): a timer, a minute after the start, then hourly.
  const retentionUrl = config.systemDatabaseUrl ?? config.databaseUrl;
  const retention =
    config.retentionMonths !== undefined && retentionUrl && system.kind === "postgres"
      ? startRetention({
          url: retentionUrl,
          retentionMonths: config.retentionMonths,
          archiveDir: config.archiveDir,
          onRun: (result) => {
            if (result.months.length > 0)
              log.info(
                { partitions: result.months.map((m) => m.partition), rows: result.rows, bytes: result.bytes },
                "months archived and dropped",
              );
          },
          onError: (error) => log.error({ err: error }, "retention failed"),
        })
      : undefined;
  return {
    handlers,
    async stop() {
      await Promise.all([
        retention?.stop(),
        upkeep.stop(),
        dispatcher.stop(),
        processor.stop(),
        inbound.stop(),
        scheduler.stop(),
        rollups.stop(),
      ]);
      await nats.close();
    },
  };
}

/** `herald worker`: the workers without the HTTP API (scale them apart from the API processes). */
export async function work(config: Config): Promise<{ stop(): Promise<void> }> {
  setDefaultPhoneRegion(config.defaultPhoneRegion);
  const { app: database, system } = await openConfiguredDatabases(config, "worker");
  await migrateConfigured(config, system);
  const registry = createRegistry();
  const workers = await startWorkers(config, system, registry);
  process.stdout.write(
    "Herald workers running (outbox dispatcher, webhook processor, inbound worker, scheduler, event rollups)\n",
  );
  // Scraping is worth having but not worth dying for: a port in use is reported and the workers go on.
  const metrics =
    config.metricsPort === undefined
      ? undefined
      : await serveMetrics(registry, config.metricsPort, config.host).then(
          (server) => {
            const { port } = server.address() as AddressInfo;
            process.stdout.write(`Metrics: http://${config.host}:${port}/metrics\n`);
            return server;
          },
          (error: unknown) => {
            process.stderr.write(`Metrics not served on port ${config.metricsPort}: ${String(error)}\n`);
            return undefined;
          },
        );
  return {
    async stop() {
      await new Promise((resolve) => (metrics ? metrics.close(resolve) : resolve(undefined)));
      await workers.stop();
      await database.close();
      if (system !== database) await system.close();
    },
  };
}
