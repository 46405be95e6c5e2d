import { Socket } from "node:net";

/** What postgres.js passes to its `socket` option: its parsed host list, or a Unix socket path. */
interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

export interface SocketOptions {
  /**
   * Close a connection whose server has sent nothing for this long while bytes of ours wait for an answer.
   * Must exceed the longest wait the server may rightly keep us in: its `statement_timeout` (after which it
   * answers with an error) plus a round trip. @defaultValue none
   */
  silenceMs?: number | undefined;
}

/**
 * postgres.js's `socket` option: TCP (or Unix socket) connections made as postgres.js makes its own, with two
 * repairs for outages.
 *
 * - **A failed connection is closed at once.** postgres.js fails the queries in flight on the socket's
 *   'error' and forgets the connection on its 'close', which Node.js emits a turn of the event loop later. A
 *   query sent in between — a caller reacting to the failure, a retry — went to the dead connection, was never
 *   answered, and stayed queued there, so the pooled connection was stuck once it reconnected (reproduced with
 *   postgres.js 3.4.9: after an ECONNRESET, the next queries on a pool of one hang). Here 'close' follows
 *   'error' immediately. (With TLS postgres.js listens on its own TLS socket instead; the silence check below
 *   still ends such a stuck connection.)
 * - **A silent connection is closed** (with `silenceMs`): its peer is gone (a host that died, a network
 *   dropping packets, a fail-over) and no reset will tell; its queries would wait until the kernel gives up
 *   (about 15 minutes on Linux) and postgres.js would queue more behind them. Bytes are counted on the raw
 *   socket, which also works under TLS.
 */
export function databaseSockets(options: SocketOptions = {}) {
  let turn = 0;
  return (target: SocketTarget): Socket => {
    const socket = new Socket();
    if (target.path) {
      socket.connect(target.path);
    } else {
      // Several hosts in the URL: each new connection tries the next, as postgres.js does.
      const at = turn++ % target.host.length;
      const host = target.host[at]!;
      const port = target.port[at] ?? target.port[0]!;
      socket.connect(port, host);
      // Each message goes out at once, as libpq sends it: with Nagle's algorithm a write made while an earlier
      // one is unacknowledged waits for the ACK, which the server may delay.
      socket.setNoDelay(true);
      // postgres.js names them in its connection errors.
      Object.assign(socket, { host, port });
    }
    guard(socket, options.silenceMs);
    return socket;
  };
}

function guard(socket: Socket, silenceMs: number | undefined) {
  let closed = false;
  /** Plain TCP: since when a write of ours has had no byte back (exact: events come in order). */
  let unanswered: number | undefined;
  const emit = socket.emit.bind(socket);
  socket.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event === "data") unanswered = undefined;
    if (event === "close") {
      if (closed) return false; // told already
      closed = true;
      return emit(event, ...args);
    }
    const handled = emit(event, ...args);
    if (event === "error" && !closed) {
      closed = true;
      emit("close", true);
    }
    return handled;
  };
  if (silenceMs === undefined) return;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]) => {
    unanswered ??= Date.now();
    return write(...args);
  }) as Socket["write"];
  closeWhenSilent(socket, silenceMs, () => unanswered);
}

/**
 * Plain TCP: postgres.js reads and writes this socket, whose events say exactly when a write went unanswered.
 * TLS: postgres.js reads and writes a TLS socket layered on this one, out of sight but for its byte counts;
 * a look at them cannot order a read and a write seen together, so that counts as answered (a connection
 * wrongly closed would be worse than one found out at its next write).
 */
function closeWhenSilent(socket: Socket, silenceMs: number, plainUnanswered: () => number | undefined) {
  let read = 0;
  let written = 0;
  let tlsUnanswered: number | undefined;
  const timer = setInterval(
    () => {
      // Not the 'close' event: postgres.js removes every listener from the socket when it starts TLS on it.
      if (socket.destroyed) return clearInterval(timer);
      const now = Date.now();
      if (socket.bytesRead !== read) {
        read = socket.bytesRead;
        written = socket.bytesWritten;
        tlsUnanswered = undefined;
      } else if (socket.bytesWritten !== written) {
        written = socket.bytesWritten;
        tlsUnanswered ??= now;
      }
      // postgres.js reads this socket itself unless it layered TLS on it.
      const since = socket.listenerCount("data") > 0 ? plainUnanswered() : tlsUnanswered;
      if (since !== undefined && now - since >= silenceMs) {
        clearInterval(timer);
        const error = new Error(`No answer from the database server in ${silenceMs} ms: connection closed`);
        socket.destroy(Object.assign(error, { code: "ETIMEDOUT" }));
      }
    },
    Math.max(50, Math.floor(silenceMs / 10)),
  );
  timer.unref();
}
