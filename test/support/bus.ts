import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll } from "vitest";
import type { Db } from "../../src/db/client.js";
import type { Worker } from "../../src/queue/worker.js";
import { type Backend, createTestDatabase, type TestDatabase } from "./databases.js";

/** Dispatcher settings that keep the bus tests quick: frequent polls, millisecond backoff. */
export const fast = { pollIntervalMs: 50, backoff: { baseMs: 5, maxMs: 20 }, leaseMs: 5000 };

/**
 * One migrated database for a describe block of bus tests, and the workers they start, stopped at the end
 * (a test that fails half-way leaves none running).
 */
export function useBusDatabase(backend: Backend) {
  let t: TestDatabase | undefined;
  const workers: Worker[] = [];
  beforeAll(async () => {
    t = await createTestDatabase(backend);
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await t?.drop();
  });
  return {
    get db(): Db {
      return t!.database.db;
    },
    get listen() {
      return t!.database.listen;
    },
    async start<W extends Worker>(worker: W): Promise<W> {
      workers.push(worker);
      await worker.start();
      return worker;
    },
  };
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on loopback; `answer` picks each request's status (default 204). */
export async function webhookReceiver(
  answer: (request: Received) => { status: number; body?: string } = () => ({ status: 204 }),
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const request = { headers: req.headers, body };
      const { status, body: text } = answer(request);
      if (status >= 200 && status < 300) received.push(request);
      res.writeHead(status).end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, server };
}
