import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { databaseSockets } from "../src/db/socket.js";
import { sleep } from "./support/wait.js";

/** The database layer's sockets against tiny local servers: one that echoes, one that never answers. */
describe("database sockets", () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  async function serve(onConnection: (peer: Socket) => void): Promise<number> {
    const server = createServer((peer) => {
      sockets.push(peer);
      onConnection(peer);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as { port: number }).port;
  }
  function open(port: number, silenceMs?: number): Socket {
    const socket = databaseSockets({ silenceMs })({ host: ["127.0.0.1"], port: [port] });
    sockets.push(socket);
    return socket;
  }
  const closing = (socket: Socket) =>
    new Promise<{ error: NodeJS.ErrnoException | undefined; at: number }>((resolve) => {
      let error: NodeJS.ErrnoException | undefined;
      socket.on("error", (e) => {
        error = e;
      });
      socket.on("close", () => resolve({ error, at: performance.now() }));
    });

  it("closes a connection whose server stops answering, after the silence", async () => {
    const socket = open(await serve(() => {}), 300);
    const closed = closing(socket);
    const started = performance.now();
    socket.write("are you there?");
    const { error, at } = await closed;
    expect(error?.code).toBe("ETIMEDOUT");
    expect(at - started).toBeGreaterThanOrEqual(300);
    expect(at - started).toBeLessThan(600);
  });

  it("keeps a connection that was answered, however long it then stays idle", async () => {
    const socket = open(await serve((peer) => peer.on("data", (d) => peer.write(d))), 200);
    socket.on("data", () => {});
    // Real sockets and their real timers are what is tested, and the claim is an absence: the connection
    // must outlive four times its 200 ms bound after being answered. The window is the point, bounded.
    for (let i = 0; i < 3; i++) {
      socket.write(`ping ${i}`);
      await sleep(30);
    }
    await sleep(800);
    expect(socket.destroyed).toBe(false);
  });

  it("tells 'close' right after 'error', before anyone can send on the failed connection", async () => {
    const socket = open(await serve((peer) => peer.resetAndDestroy()));
    const order: string[] = [];
    socket.on("error", () => {
      order.push("error");
      // A caller reacting to the failure (a promise rejected in the error handler) runs after this.
      queueMicrotask(() => order.push("reaction"));
    });
    await new Promise((resolve) => socket.on("close", () => resolve(order.push("close"))));
    await new Promise((r) => setImmediate(r)); // every microtask queued so far has run
    expect(order).toEqual(["error", "close", "reaction"]);
  });

  it("opens no silence check without a bound", async () => {
    const socket = open(await serve(() => {}));
    socket.write("no answer expected");
    // An absence on a real socket: no check may cut it within 300 ms (longer than the bounds used above).
    await sleep(300);
    expect(socket.destroyed).toBe(false);
  });
});
