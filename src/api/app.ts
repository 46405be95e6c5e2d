import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { Registry } from "prom-client";
import { destinationPolicy } from "../bus/sinks/destination.js";
import type { Config } from "../config.js";
import type { Database, Db } from "../db/client.js";
import { instanceSecret } from "../db/instanceSecret.js";
import { defaultMaxJsonDepth } from "../domain/jsonDepth.js";
import { createInboundMetrics } from "../inbound/metrics.js";
import { createIngestMetrics } from "../ingest/metrics.js";
import type { ReceiveOptions } from "../ingest/receive.js";
import { snsCertificates } from "../ingest/snsCertificates.js";
import { builtInActions, type ScheduledActionRegistry } from "../scheduler/registry.js";
import { consoleRoutes } from "./console.js";
import type { Foreground } from "./foreground.js";
import { onClientError, onFrameworkError, refuseLongUrls, registerNotFound } from "./httpErrors.js";
import { registerJsonBody } from "./jsonBody.js";
import { createRegistry, registerRequestMetrics } from "./metrics.js";
import { trackOpenRequests } from "./openRequests.js";
import { registerProblemHandlers } from "./problem.js";
import { adminRoutes } from "./routes/admin.js";
import { busStatsRoutes } from "./routes/busStats.js";
import { conversationRoutes } from "./routes/conversations.js";
import { deadLetterRoutes } from "./routes/deadLetters.js";
import { eventReadRoutes } from "./routes/eventReads.js";
import { eventRoutes } from "./routes/events.js";
import { eventExportRoutes } from "./routes/eventsExport.js";
import { healthRoutes } from "./routes/health.js";
import { inboundRoutes } from "./routes/inbound.js";
import { messageEventStatsRoutes } from "./routes/messageEventStats.js";
import { messageEventRoutes } from "./routes/messageEvents.js";
import { messageRoutes } from "./routes/messages.js";
import { replayRoutes } from "./routes/replays.js";
import { scheduledActionRoutes } from "./routes/scheduledActions.js";
import { sourceRoutes } from "./routes/sources.js";
import { subscriptionRoutes } from "./routes/subscriptions.js";
import { suppressionRoutes } from "./routes/suppressions.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { NoQuery, ProblemSchema } from "./schemas.js";
import { tenantScope } from "./tenantScope.js";

export interface AppDeps {
  database: Database;
  /** Cross-tenant handle (API key lookup, admin); defaults to `database.db`. */
  systemDb?: Db;
  config: Pick<Config, "adminToken" | "bodyLimitBytes"> &
    // The bound /readyz answers within (the handles' own bounds are set where they are opened).
    Partial<Pick<Config, "databaseTimeoutMs">> &
    Partial<Pick<Config, "requestTimeoutMs" | "jsonMaxDepth">> &
    // Unset: webhook sinks may name public addresses only.
    Partial<Pick<Config, "webhookAllowedNetworks">> &
    // How a provider webhook's public URL is known (HERALD_PUBLIC_URL, HERALD_TRUST_PROXY; unset: off).
    Partial<Pick<Config, "publicUrl" | "trustProxy">> &
    // HERALD_SNS_CERTIFICATE_FILE: SES's SNS messages verified against this certificate, none fetched.
    Partial<Pick<Config, "snsCertificateFile">> &
    // HERALD_MAX_ATTEMPTS: the max_attempts of a subscription created without one and of each archived
    // webhook delivery. @defaultValue 5
    Partial<Pick<Config["worker"], "maxAttempts">>;
  registry?: Registry;
  logger?: FastifyServerOptions["logger"];
  /** Webhook requests in flight, which this process's webhook processor gives way to. */
  foreground?: Foreground;
  /**
   * How SNS signing certificates are had and subscriptions confirmed (SES sources). @defaultValue fetched over
   * HTTPS and cached (or `snsCertificateFile`), and an HTTPS GET
   */
  sns?: Pick<ReceiveOptions, "snsCertificate" | "visit">;
  /** The actions `POST /api/v1/scheduled-actions` accepts. @defaultValue the built-in ones (`emit_event`) */
  scheduledActions?: ScheduledActionRegistry;
}

export interface HeraldApp {
  app: FastifyInstance;
  registry: Registry;
  /** Cut every connection that has carried a request: the end of a shutdown's grace period. */
  cutConnections: () => void;
}

/** The HTTP API, built without opening a socket (tests use `app.inject()`). */
export async function buildApp(deps: AppDeps): Promise<HeraldApp> {
  const db = deps.database.db;
  const systemDb = deps.systemDb ?? db;
  const registry = deps.registry ?? createRegistry();
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: deps.config.bodyLimitBytes,
    // Reject unknown fields and query parameters instead of silently dropping them.
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true, allErrors: false },
    },
    return503OnClosing: true,
    forceCloseConnections: "idle",
    // A client that stops sending mid-body would otherwise hold its socket and buffer for good, and keep a
    // shutdown waiting (Fastify's default is no limit).
    requestTimeout: deps.config.requestTimeoutMs ?? 60_000,
    clientErrorHandler: onClientError,
    frameworkErrors: onFrameworkError,
  });

  // JSON only, unless a route scope (provider webhooks) registers its own parser: anything else is 415.
  app.removeContentTypeParser("text/plain");
  registerJsonBody(app, deps.config.jsonMaxDepth ?? defaultMaxJsonDepth);
  app.addHook("preValidation", async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body) request.body = {};
  });
  registerProblemHandlers(app);
  registerNotFound(app);
  refuseLongUrls(app);
  // API.md: unknown query parameters are refused, also on routes that take none. Not on provider webhooks
  // (a provider's URL may carry parameters of the user's own) nor on the documentation and console pages
  // (a console screen's filters are in its URL's query).
  app.addHook("onRoute", (route) => {
    if (/^\/(docs|console|api\/v1\/webhooks)\b/.test(route.url)) return;
    route.schema = { ...route.schema, querystring: route.schema?.querystring ?? NoQuery };
  });
  registerRequestMetrics(app, registry);
  const cutOpenRequests = trackOpenRequests(app);
  app.addSchema(ProblemSchema);

  await app.register(swagger, {
    openapi: {
      info: { title: "Herald API", version: "1", description: "See API.md for the contract." },
      components: {
        securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "API key (hk_…)" } },
      },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  consoleRoutes(app);

  healthRoutes(app, db, registry, { timeoutMs: deps.config.databaseTimeoutMs });
  if (deps.config.adminToken) adminRoutes(app, systemDb, deps.config.adminToken);
  webhookRoutes(app, systemDb, createIngestMetrics(registry), {
    foreground: deps.foreground,
    maxAttempts: deps.config.maxAttempts,
    publicUrl: deps.config.publicUrl,
    trustProxy: deps.config.trustProxy,
    inboundMetrics: createInboundMetrics(registry),
    snsCertificate: deps.sns?.snsCertificate ?? snsCertificates({ file: deps.config.snsCertificateFile }),
    visit: deps.sns?.visit,
  });

  const cursorKey = await instanceSecret(systemDb, "cursor");
  await app.register(async (scope) => {
    tenantScope(scope, { db, systemDb, cursorKey });
    sourceRoutes(scope, { publicUrl: deps.config.publicUrl, trustProxy: deps.config.trustProxy });
    eventRoutes(scope, db);
    eventReadRoutes(scope);
    eventExportRoutes(scope);
    subscriptionRoutes(scope, {
      destinations: destinationPolicy(deps.config.webhookAllowedNetworks),
      defaultMaxAttempts: deps.config.maxAttempts,
    });
    deadLetterRoutes(scope);
    replayRoutes(scope);
    busStatsRoutes(scope);
    messageRoutes(scope);
    messageEventRoutes(scope);
    messageEventStatsRoutes(scope);
    suppressionRoutes(scope);
    inboundRoutes(scope, {
      db: systemDb,
      metrics: createInboundMetrics(registry),
      maxAttempts: deps.config.maxAttempts,
    });
    conversationRoutes(scope);
    scheduledActionRoutes(scope, {
      registry: deps.scheduledActions ?? builtInActions,
      maxAttempts: deps.config.maxAttempts,
    });
  });

  await app.ready();
  const cutConnections = () => {
    app.server.closeAllConnections(); // also those whose request has not arrived yet
    cutOpenRequests();
  };
  return { app, registry, cutConnections };
}
