import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Db } from "../../db/client.js";
import { pendingMigrations } from "../../db/migrate.js";

const readinessTimeoutMs = 2000;

async function readiness(db: Db): Promise<{ ready: boolean; detail: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), readinessTimeoutMs);
  });
  try {
    const pending = await Promise.race([pendingMigrations(db), timeout]);
    return pending.length === 0
      ? { ready: true, detail: "database reachable, migrations current" }
      : { ready: false, detail: `migrations pending: ${pending.join(", ")}` };
  } catch {
    return { ready: false, detail: "database unreachable" };
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(app: FastifyInstance, db: Db, registry: Registry) {
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));

  app.get("/readyz", { schema: { hide: true } }, async (_request, reply) => {
    const { ready, detail } = await readiness(db);
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "unavailable", detail });
  });

  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}
