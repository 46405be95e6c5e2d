import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Db } from "../../db/client.js";
import { withDeadline } from "../../db/deadline.js";
import { pendingMigrations } from "../../db/migrate.js";

export interface HealthOptions {
  /** /readyz answers within this: 503 when the database has not answered by then. @defaultValue 2000 */
  timeoutMs?: number | undefined;
}

async function readiness(db: Db, timeoutMs: number): Promise<{ ready: boolean; detail: string }> {
  try {
    const pending = await withDeadline(timeoutMs, pendingMigrations(db));
    return pending.length === 0
      ? { ready: true, detail: "database reachable, migrations current" }
      : { ready: false, detail: `migrations pending: ${pending.join(", ")}` };
  } catch {
    return { ready: false, detail: "database unreachable" };
  }
}

export function healthRoutes(app: FastifyInstance, db: Db, registry: Registry, options: HealthOptions = {}) {
  const timeoutMs = options.timeoutMs ?? 2000;
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));

  app.get("/readyz", { schema: { hide: true } }, async (_request, reply) => {
    const { ready, detail } = await readiness(db, timeoutMs);
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "unavailable", detail });
  });

  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}
