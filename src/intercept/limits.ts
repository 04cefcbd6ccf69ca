// Every timeout and limit of the data path in one place (docs/CONTRACT.md §18.14).

/** A complete request head must arrive within this time of its first byte (as the reference). */
export const HEAD_TIMEOUT_MS = 10_000;
/** An idle keep-alive connection (outside or inside a tunnel) is closed after this long. */
export const IDLE_TIMEOUT_MS = 60_000;
/** CONNECT answered → TLS handshake complete. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Client TLS handshakes under way at once; the next ones wait their turn (./handshake-gate.ts)… */
export const HANDSHAKE_SLOTS = 10;
/** …and the longest one handshake holds its slot (a stalled client no longer delays the queue). */
export const HANDSHAKE_SLOT_HOLD_MS = 100;
/** Upstream must send its response head within this time of the request being sent. */
export const UPSTREAM_FIRST_BYTE_TIMEOUT_MS = 300_000;
/** Request head size limit, on the listener and inside tunnels (→ 431). */
export const MAX_HEADER_BYTES = 1 << 20;
/** Request header field count limit (→ 431). */
export const MAX_HEADER_COUNT = 200;
/** Concurrent client connections; beyond, new connections are closed at once. */
export const MAX_CONNECTIONS = 4096;
/** Buffered unread client input before the socket is paused (request-body back-pressure). */
export const INPUT_HIGH_WATER = 1 << 20;
/** A request body we refuse without forwarding is discarded up to this size, else the connection closes. */
export const MAX_DISCARD_BYTES = 1 << 20;
/** Dial (and TLS handshake) to an upstream on the raw-socket upgrade path. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 30_000;
/** An upgraded (WebSocket) connection with no byte in either direction for this long is closed. */
export const UPGRADED_IDLE_TIMEOUT_MS = 600_000;
/** A write to a client that makes no progress for this long (the client stopped reading) ends it. */
export const WRITE_STALL_TIMEOUT_MS = 30_000;
/** Connections that have not yet authenticated: their own cap (the oldest is evicted when full)… */
export const MAX_UNAUTHENTICATED = 512;
/** …and their deadline to present the token (from accept to an authenticated request). */
export const AUTH_DEADLINE_MS = 10_000;
/** Wrong workload tokens: a burst of this many answers, then AUTH_FAILURE_RATE per second (global). */
export const AUTH_FAILURE_BURST = 20;
export const AUTH_FAILURE_RATE = 10;
/** Connections waiting for their (rate-limited) 407 beyond this are closed at once. */
export const AUTH_FAILURE_MAX_WAITING = 256;
/** Wrong-token WARN lines after the first are summed over this interval. */
export const AUTH_WARN_INTERVAL_MS = 10_000;
/** Upstream requests in flight through fetch, in total and per origin (fetch's own cap is 256). */
export const UPSTREAM_MAX_IN_FLIGHT = 224;
export const UPSTREAM_MAX_PER_ORIGIN = 128;
