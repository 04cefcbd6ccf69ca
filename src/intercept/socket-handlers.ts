// The one socket-handler object for every Bun socket of the data path — the listener's sockets and
// the TLS sockets of tunnels (upgradeTLS) alike: each event goes to the socket's Conn. Every callback
// runs under a guard: an exception in a socket callback kills the process when it escapes (measured,
// shared/PHASE2.md §2.1), and one that is swallowed can leave a connection counted for ever (issue 13
// item 3). The guard closes that connection, which frees its slot, and logs once.
import type { Socket, SocketHandler } from "bun";
import { warn } from "../log/slog.ts";
import type { ConnData } from "./conn.ts";

let lastWarn = 0;

function guard(sock: Socket<ConnData>, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    const now = Date.now();
    if (now - lastWarn > 10_000) {
      lastWarn = now;
      warn("connection closed after an internal error", [["err", e instanceof Error ? e.name : "error"]]);
    }
    const conn = sock.data?.conn;
    if (conn) conn.destroy();
    else sock.terminate();
  }
}

/** The handlers; `accept` is the listener's for a new client socket. */
export function createSocketHandlers(accept: (sock: Socket<ConnData>) => void): SocketHandler<ConnData> {
  return {
    open(sock) {
      // a TLS socket of a tunnel carries its data from upgradeTLS; only listener sockets are new clients
      if (sock.data?.conn || sock.data?.onHandshake) return;
      guard(sock, () => accept(sock));
    },
    data(sock, chunk) {
      guard(sock, () => sock.data?.conn?.onData(chunk));
    },
    drain(sock) {
      guard(sock, () => sock.data?.conn?.onDrain());
    },
    end(sock) {
      guard(sock, () => sock.data?.conn?.onEnd());
    },
    close(sock) {
      guard(sock, () => sock.data?.conn?.onClose());
    },
    error(sock) {
      guard(sock, () => sock.data?.conn?.onClose());
    },
    handshake(sock, success, authorizationError) {
      guard(sock, () => {
        const h = sock.data?.onHandshake;
        if (!h) return;
        sock.data.onHandshake = undefined;
        const sni = (sock as unknown as { getServername?(): string | undefined }).getServername?.() || undefined;
        h(sock, success, sni, authorizationError?.message ?? "handshake failed");
      });
    },
  };
}
