import { Socket } from "node:net";

/** What postgres.js passes to its `socket` option: its parsed host list, or a Unix socket path. */
interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

/**
 * postgres.js's `socket` option: a TCP (or Unix) connection made as postgres.js makes its own, closed when
 * the server has sent nothing for `silenceMs` while bytes of ours wait for an answer. Its peer is then gone
 * (a host that died, a network dropping packets): with no reset to tell, its queries would wait for the
 * kernel to give up on it (about 15 minutes on Linux), and postgres.js would queue more queries behind them,
 * so recovery would wait as long. Closing it fails those queries and lets postgres.js reconnect.
 *
 * `silenceMs` must exceed the longest wait the server may legitimately keep us in: its `statement_timeout`
 * (after which it answers with an error) plus a round trip. Counting bytes on the raw socket also works under
 * TLS, which postgres.js layers on top of this socket.
 */
export function silenceWatchedSockets(silenceMs: number) {
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
      // postgres.js names them in its connection errors.
      Object.assign(socket, { host, port });
    }
    watch(socket, silenceMs);
    return socket;
  };
}

function watch(socket: Socket, silenceMs: number) {
  let read = 0;
  let written = 0;
  /** Since when bytes of ours have been waiting for an answer (undefined: none are, as far as we saw). */
  let waitingSince: number | undefined;
  // Polled, not per write: postgres.js writes through TLS when it is on, out of sight of this socket.
  const timer = setInterval(
    () => {
      // Not the 'close' event: postgres.js removes every listener from the socket when it starts TLS on it.
      if (socket.destroyed) return clearInterval(timer);
      const now = Date.now();
      if (socket.bytesRead !== read) {
        read = socket.bytesRead;
        // An answer came; if we also wrote since the last look, the order is unknown: wait from now.
        waitingSince = socket.bytesWritten !== written ? now : undefined;
        written = socket.bytesWritten;
      } else if (socket.bytesWritten !== written) {
        written = socket.bytesWritten;
        waitingSince ??= now;
      }
      if (waitingSince !== undefined && now - waitingSince >= silenceMs) {
        clearInterval(timer);
        const error = new Error(`No answer from the database server in ${silenceMs} ms: connection closed`);
        socket.destroy(Object.assign(error, { code: "ETIMEDOUT" }));
      }
    },
    Math.max(50, Math.floor(silenceMs / 10)),
  );
  timer.unref();
}
