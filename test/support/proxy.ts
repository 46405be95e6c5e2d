import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP relay to a real server that can be cut and restored, to see what Herald does when it goes away.
 * Outages, from the kindest to the nastiest:
 * - `cut()`: the server is down (port closed, every connection closed): the driver learns at once.
 * - `reset()`: the server restarted: every connection reset, new ones welcome.
 * - `blackhole()`: the host or the network is gone: connections are accepted and kept open, but nothing
 *   passes either way, so only time-outs tell.
 * - `blackhole({ newConnections: true })`: a fail-over: the old connections went silent, new ones work.
 */
export class TcpRelay {
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  /** Connections held silent by `blackhole()`; `restore()` resets them. */
  private held = new Set<Socket>();
  private silentNew = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async open(port = this.port): Promise<number> {
    this.server = createServer((client) => {
      this.track(client);
      if (this.silentNew) return this.hold(client);
      const upstream = connect(this.targetPort, this.targetHost);
      this.track(upstream);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : port;
    return this.port;
  }

  /** Close the port and drop every live connection. */
  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.held.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  /** Reset every live connection (TCP RST: the driver sees ECONNRESET); the port stays open. */
  reset(): void {
    for (const s of this.sockets) s.resetAndDestroy();
    this.held.clear();
  }

  /**
   * Let nothing through, without closing anything: every live connection goes silent, and so does every new
   * one (unless `newConnections`: they reach the server as usual).
   */
  blackhole({ newConnections = false }: { newConnections?: boolean } = {}): void {
    this.silentNew = !newConnections;
    for (const s of this.sockets) this.hold(s);
  }

  /** End an outage: held connections are reset (as a restarted server would), new ones reach the server. */
  async restore(): Promise<void> {
    this.silentNew = false;
    for (const s of this.held) s.destroy();
    this.held.clear();
    if (!this.server) await this.open();
  }

  private track(socket: Socket) {
    this.sockets.add(socket);
    socket.on("close", () => {
      this.sockets.delete(socket);
      this.held.delete(socket);
    });
    socket.on("error", () => socket.destroy());
  }

  /** Stop reading and forwarding: what was sent stays unanswered, and the socket stays open. */
  private hold(socket: Socket) {
    socket.unpipe();
    socket.pause();
    this.held.add(socket);
  }
}
