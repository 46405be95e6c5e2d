import { Socket } from "node:net";
import type { FastifyInstance } from "fastify";

/**
 * The connections that have carried a request, on every address the app listens on: `HOST=localhost` makes
 * Fastify listen on each address the name resolves to, and `app.server` is only the first of them. A shutdown
 * whose grace period is over cuts them all; nothing was acknowledged on a request still open.
 */
export function trackOpenRequests(app: FastifyInstance): () => void {
  const open = new Set<Socket>();
  app.addHook("onRequest", (request, _reply, done) => {
    const socket = request.raw.socket;
    // `app.inject()` requests have a mock socket that never closes: nothing to cut.
    if (socket instanceof Socket && !open.has(socket)) {
      open.add(socket);
      socket.once("close", () => open.delete(socket));
    }
    done();
  });
  return () => {
    for (const socket of open) socket.destroy();
  };
}
