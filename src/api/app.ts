import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { Registry } from "prom-client";
import { destinationPolicy } from "../bus/sinks/destination.js";
import type { Config } from "../config.js";
import type { Database, Db } from "../db/client.js";
import { createIngestMetrics } from "../ingest/metrics.js";
import type { Foreground } from "../queue/foreground.js";
import { tenantAuth } from "./auth.js";
import { createRegistry, registerRequestMetrics } from "./metrics.js";
import { trackOpenRequests } from "./openRequests.js";
import { registerProblemHandlers } from "./problem.js";
import { adminRoutes } from "./routes/admin.js";
import { busRoutes } from "./routes/bus.js";
import { eventRoutes } from "./routes/events.js";
import { healthRoutes } from "./routes/health.js";
import { messageRoutes } from "./routes/messages.js";
import { sourceRoutes } from "./routes/sources.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { ProblemSchema } from "./schemas.js";

export interface AppDeps {
  database: Database;
  /** Cross-tenant handle (API key lookup, admin); defaults to `database.db`. */
  systemDb?: Db;
  config: Pick<Config, "adminToken" | "bodyLimitBytes"> &
    Partial<Pick<Config, "requestTimeoutMs">> &
    // Unset: webhook sinks may name public addresses only.
    Partial<Pick<Config, "webhookAllowedNetworks">>;
  registry?: Registry;
  logger?: FastifyServerOptions["logger"];
  /** Webhook requests in flight, which this process's webhook processor gives way to. */
  foreground?: Foreground;
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
  });

  // JSON only, unless a route scope (provider webhooks) registers its own parser: anything else is 415.
  app.removeContentTypeParser("text/plain");
  // An empty body is no body, whatever its content type says: a POST whose fields are all optional (retry all
  // dead letters, pause) may be sent bare; a route that needs fields answers 400 naming them.
  const json = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "") return done(null, undefined);
    json(request, body as string, done);
  });
  app.addHook("preValidation", async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body) request.body = {};
  });
  registerProblemHandlers(app);
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

  healthRoutes(app, db, registry);
  if (deps.config.adminToken) adminRoutes(app, systemDb, deps.config.adminToken);
  webhookRoutes(app, systemDb, createIngestMetrics(registry), deps.foreground);

  await app.register(async (tenantScope) => {
    tenantScope.addHook("onRequest", tenantAuth(systemDb));
    sourceRoutes(tenantScope, db);
    eventRoutes(tenantScope, db);
    busRoutes(tenantScope, db, { destinations: destinationPolicy(deps.config.webhookAllowedNetworks) });
    messageRoutes(tenantScope, db);
  });

  await app.ready();
  const cutConnections = () => {
    app.server.closeAllConnections(); // also those whose request has not arrived yet
    cutOpenRequests();
  };
  return { app, registry, cutConnections };
}
