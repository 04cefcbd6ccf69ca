// CONNECT (docs/CONTRACT.md §3, §7): answer 200, then the tunnel's first bytes decide — a TLS
// ClientHello (0x16) is terminated with a leaf minted for the CONNECT host; anything else is
// cleartext HTTP served inside the tunnel, as the reference does. A tunnel that stays silent, or
// whose handshake fails or never completes, is closed at once and forgotten (issue 13 item 3: a
// failed handshake used to keep its slot for ever).
import type { Socket } from "bun";
import type { RequestHead } from "../http/h1-request.ts";
import { errorResponse } from "../http/h1-response.ts";
import { isValidPort } from "../http/target.ts";
import { warn } from "../log/slog.ts";
import { canonicalHost, isValidRequestHost, splitAuthority } from "../match/index.ts";
import { sniOf } from "./client-hello.ts";
import { type ConnHost, serveTunnel } from "./client-loop.ts";
import { Conn, type ConnData } from "./conn.ts";
import type { TunnelFacts } from "./decide.ts";
import { HandshakeGate, type Release } from "./handshake-gate.ts";
import { HANDSHAKE_SLOT_HOLD_MS, HANDSHAKE_SLOTS, TLS_HANDSHAKE_TIMEOUT_MS } from "./limits.ts";

/** One per process: the runtime's handshake budget is per event loop. */
const handshakes = new HandshakeGate(HANDSHAKE_SLOTS, HANDSHAKE_SLOT_HOLD_MS);

/** Handle an authenticated CONNECT on `conn`; the connection is served (or closed) from here on. */
export async function openTunnel(host: ConnHost, conn: Conn, head: RequestHead): Promise<void> {
  const authority = splitAuthority(head.target);
  if (!authority.port) authority.port = "443";
  const name = canonicalHost(authority.host);
  if (name === "" || !isValidRequestHost(head.target) || !isValidPort(authority.port)) {
    await conn.write(errorResponse(400, "malformed CONNECT target")).catch(() => {});
    return;
  }
  let leaf: Awaited<ReturnType<typeof host.serving.deps.minter.leafFor>>;
  try {
    leaf = await host.serving.deps.minter.leafFor(name);
  } catch {
    warn("cannot mint leaf certificate", [["host", name]]);
    await conn.write(errorResponse(400, "cannot serve this CONNECT host")).catch(() => {});
    return;
  }
  if (conn.closed) return;
  await conn.write("HTTP/1.0 200 OK\r\n\r\n");
  let first: Uint8Array | null;
  try {
    first = await conn.read(TLS_HANDSHAKE_TIMEOUT_MS);
  } catch {
    return; // silent tunnel
  }
  if (first === null) return;
  const facts: TunnelFacts = { connect: authority, plain: first[0] !== 0x16 };
  if (facts.plain) {
    conn.inTunnel = true;
    conn.unshift(first);
    return serveTunnel(host, conn, facts);
  }
  // A server name that is no host name is refused before any TLS is spoken (the leaf is the CONNECT
  // host's whatever the SNI says; the name is checked again after the handshake, ./decide.ts R2).
  const sni = sniOf(first);
  if (sni !== undefined && sni !== null && (sni === "" || !isValidRequestHost(sni))) {
    handshakeFailed(host, name, "invalid server name in ClientHello");
    return;
  }
  const release = await handshakes.acquire();
  if (conn.closed) return release();
  const tls = startTls(host, conn, first, leaf, facts, release);
  if (tls) await tls;
}

/**
 * Terminate TLS on the connection's socket with the leaf, feeding it the ClientHello bytes already
 * read. Resolves when the tunnel is over; null when the handshake failed at once. `release` gives
 * the handshake's slot back (./handshake-gate.ts) once the handshake is over, whichever way.
 */
function startTls(
  host: ConnHost,
  conn: Conn,
  clientHello: Uint8Array,
  leaf: { keyPem: string; certPem: string },
  facts: TunnelFacts,
  release: Release,
): Promise<void> | null {
  let done: (() => void) | undefined;
  const over = new Promise<void>((r) => (done = r));
  let tlsConn: Conn | undefined;
  let failed = false;
  let unwatch: (() => void) | undefined;
  const raw = conn.sock;
  const timer = setTimeout(() => {
    release();
    failed = true;
    tlsConn?.destroy();
    conn.destroy();
    done?.();
  }, TLS_HANDSHAKE_TIMEOUT_MS);
  const onHandshake = (sock: Socket<ConnData>, success: boolean, sni: string | undefined, err: string) => {
    clearTimeout(timer);
    release();
    unwatch?.();
    const name = sni ? canonicalHost(sni) : undefined;
    if (!success || (name !== undefined && (name === "" || !isValidRequestHost(name)))) {
      failed = true;
      handshakeFailed(host, name ?? canonicalHost(facts.connect.host), success ? "invalid SNI" : err);
      sock.terminate();
      tlsConn?.destroy();
      conn.destroy();
      done?.();
      return;
    }
    if (!tlsConn) return; // cannot happen: a successful handshake needs the event loop
    void serveTunnel(host, tlsConn, { ...facts, ...(name ? { sni: name } : {}) }).finally(() => {
      tlsConn?.end();
      done?.();
    });
  };
  const [rawAfter, tls] = raw.upgradeTLS<ConnData>({
    data: { onHandshake },
    // the ClientHello bytes already read (Bun ≥ 1.4 feeds them to the handshake)
    ...({ initialData: clientHello } as object),
    // ALPN as a wire-format string: an array throws synchronously (shared/PHASE2.md §2.1)
    tls: { key: leaf.keyPem, cert: leaf.certPem, ALPNProtocols: "\x08http/1.1" } as never,
    socket: host.socketHandlers,
  });
  // Bun keeps delivering the tunnel's ciphertext to the listener's handlers after the upgrade,
  // through the raw half it returns: detach the plain Conn from both handles, or it would buffer
  // (and hold) every encrypted byte of the tunnel — a 1 GiB upload held 1 GiB.
  raw.data = {};
  if (rawAfter) rawAfter.data = {};
  if (failed) {
    release();
    return null;
  }
  tlsConn = new Conn(tls, conn.clientIp, conn.remotePort);
  unwatch = tlsConn.onceClosed(release); // a client that goes away mid-handshake frees its slot at once
  tls.data = { ...tls.data, conn: tlsConn };
  tlsConn.busy = true;
  host.replace(conn, tlsConn);
  return over;
}

const lastHandshakeWarn = new Map<string, number>();
const HANDSHAKE_WARN_INTERVAL_MS = 60_000;

/**
 * A client that does not trust our leaf (the most common setup mistake) fails the handshake and
 * usually says nothing useful itself: one WARN per host and minute names the host and the fix.
 */
function handshakeFailed(_host: ConnHost, name: string, err: string): void {
  const now = Date.now();
  if ((lastHandshakeWarn.get(name) ?? 0) > now - HANDSHAKE_WARN_INTERVAL_MS) return;
  if (lastHandshakeWarn.size > 1024) lastHandshakeWarn.clear();
  lastHandshakeWarn.set(name, now);
  warn("TLS handshake with client failed", [
    ["host", name],
    ["err", err.replace(/^error:[0-9a-f]+:SSL routines:OPENSSL_internal:/i, "")],
    ["hint", "if the client does not trust the proxy's CA: `clef-proxy ca env` prints the variables to set"],
  ]);
}
