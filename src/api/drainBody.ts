import type { FastifyRequest } from "fastify";

/** A body over the limit is read and discarded up to this many bytes (or this long) before the 413 answer. */
const drainMaxBytes = 64 * 1024 * 1024;
const drainMaxMs = 10_000;

/**
 * Read and discard the rest of a body refused for its size before answering: a client that writes its
 * whole body before reading would otherwise see its connection reset instead of the 413. Bounded in bytes
 * and time; past either, the answer goes out and the connection closes.
 */
export function drainBody(request: FastifyRequest): Promise<void> {
  const raw = request.raw;
  if (raw.complete || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let read = 0;
    const finish = () => {
      clearTimeout(timer);
      raw.off("data", onData);
      raw.off("end", finish);
      raw.off("error", finish);
      raw.off("close", finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > drainMaxBytes) finish();
    };
    const timer = setTimeout(finish, drainMaxMs);
    raw.on("data", onData);
    raw.once("end", finish);
    raw.once("error", finish);
    raw.once("close", finish);
    raw.resume();
  });
}
