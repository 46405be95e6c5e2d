import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Db } from "../../db/client.js";
import { withDeadline } from "../../db/deadline.js";
import { incompatibility, migrationState } from "../../db/migrate.js";

export interface HealthOptions {
  /** /readyz answers within this: 503 when the database has not answered by then. @defaultValue 2000 */
  timeoutMs?: number | undefined;
}

type Readiness =
  | { ready: true; detail: string }
  | {
      ready: false;
      reason: "database_unreachable" | "migrations_pending" | "database_too_new" | "migration_mismatch";
      detail: string;
    };

async function readiness(db: Db, timeoutMs: number): Promise<Readiness> {
  let state: Awaited<ReturnType<typeof migrationState>>;
  try {
    state = await withDeadline(timeoutMs, migrationState(db));
  } catch {
    return { ready: false, reason: "database_unreachable", detail: "database unreachable" };
  }
  // Another process may have migrated the database with a newer Herald since this one started: this one's
  // code no longer matches the schema, so it stops taking traffic until the database or Herald is fixed.
  const error = incompatibility(state);
  if (error) return { ready: false, reason: error.code, detail: error.message };
  return state.pending.length === 0
    ? { ready: true, detail: "database reachable, migrations current" }
    : {
        ready: false,
        reason: "migrations_pending",
        detail: `migrations pending: ${state.pending.join(", ")}`,
      };
}

export function healthRoutes(app: FastifyInstance, db: Db, registry: Registry, options: HealthOptions = {}) {
  const timeoutMs = options.timeoutMs ?? 2000;
  // The incompatibility last logged: each is logged once when found, not on every probe.
  let logged: string | undefined;
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));

  app.get("/readyz", { schema: { hide: true } }, async (_request, reply) => {
    const state = await readiness(db, timeoutMs);
    if (!state.ready && (state.reason === "database_too_new" || state.reason === "migration_mismatch")) {
      if (logged !== state.detail) app.log.error({ reason: state.reason }, `not ready: ${state.detail}`);
      logged = state.detail;
    } else if (state.ready && logged !== undefined) {
      app.log.info("ready again: the database matches this Herald's migrations");
      logged = undefined;
    }
    return state.ready
      ? reply.status(200).send({ status: "ready", detail: state.detail })
      : reply.status(503).send({ status: "unavailable", reason: state.reason, detail: state.detail });
  });

  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}
