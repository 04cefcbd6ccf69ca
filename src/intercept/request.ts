// One request, top to bottom: admit → decide → prepare → forward → respond, each step a function of
// its own (shared/PHASE2.md §1.7; docs/DESIGN.md draws it). Every outcome is a response and exactly
// one audit line; `refuse()` is the one place that answers, logs and audits a refusal.
import { BodyError, BodyReader } from "../http/body.ts";
import type { RequestHead } from "../http/h1-request.ts";
import { announceClose, errorResponse, jsonResponse, writeUpstreamResponse } from "../http/h1-response.ts";
import { getHeader } from "../http/headers.ts";
import { error, logSoon } from "../log/slog.ts";
import type { Conn } from "./conn.ts";
import { decide, type Route, type TunnelFacts } from "./decide.ts";
import type { UpstreamResponse } from "./forward-types.ts";
import { IDLE_TIMEOUT_MS, MAX_DISCARD_BYTES } from "./limits.ts";
import { type Prepared, prepare } from "./prepare.ts";
import { type Refusal, refusals } from "./refusal.ts";
import { RequestScope } from "./request-scope.ts";
import type { Serving } from "./types.ts";
import { describeUpstreamError } from "./upstream-error.ts";

/** Handle one request on `conn`. Returns true when the connection may carry another request. */
export async function handleRequest(
  serving: Serving,
  conn: Conn,
  head: RequestHead,
  tunnel: TunnelFacts | null,
): Promise<boolean> {
  const body = new BodyReader(conn, head.framing, IDLE_TIMEOUT_MS);
  if (!serving.deps.audit.admit()) return refuse(serving, conn, head, tunnel, body, refusals.auditBackpressure(), null);
  const req = new RequestScope(serving, conn, head, tunnel);
  try {
    const d = decide(head, tunnel, serving.policy, req.host);
    if (d.kind === "refuse") return await refuse(serving, conn, head, tunnel, body, d.refusal, req);
    req.fields = d.route.fields;
    const prepared = await prepare(req, d.route);
    if ("status" in prepared) return await refuse(serving, conn, head, tunnel, body, prepared, req);
    req.fields = prepared.fields;
    return await forward(req, d.route, prepared, body);
  } finally {
    // (checked first: nothing more to do for the request that wrote its line, nearly every one)
    if (!req.settled && req.audit("tls_error", req.fields, 502, { reason: "internal_error" }))
      error("request ended without an audit line", req.logBase());
    req.finish();
  }
}

/** Whether the connection closes after this response (decided when the response is written). */
function closing(serving: Serving, conn: Conn, head: RequestHead, keepAlive: boolean): boolean {
  return !keepAlive || !head.keepAlive || serving.draining() || conn.closed;
}

/**
 * Answer a refusal: log it, discard the unread body (bounded) or close, write the response, audit.
 * `req` is null for answers that precede admission (503 audit back-pressure).
 */
async function refuse(
  serving: Serving,
  conn: Conn,
  head: RequestHead,
  tunnel: TunnelFacts | null,
  body: BodyReader,
  r: Refusal,
  req: RequestScope | null,
): Promise<boolean> {
  if (r.log && req) logSoon(r.log.level, r.log.msg, [...req.logBase(), ...r.log.attrs]);
  let keepAlive = !r.close;
  if (keepAlive && !body.finished && !(await body.discard(MAX_DISCARD_BYTES).catch(() => false))) keepAlive = false;
  const close = closing(serving, conn, head, keepAlive);
  const announce = announceClose(close, tunnel !== null, head.keepAlive);
  const bytes = r.text ? errorResponse(400, "") : jsonResponse(r.status, r.body, announce, r.headers);
  await conn.write(bytes).catch(() => {});
  if (r.audit && req) req.audit(r.audit.status, req.fields, undefined, r.audit.fields);
  else req?.noLine();
  return !close && !r.text;
}

/** R13–R14: forward (fetch, or the WebSocket relay), stream the response back, audit at its end. */
async function forward(req: RequestScope, route: Route, prepared: Prepared, body: BodyReader): Promise<boolean> {
  const { serving, conn, head } = req;
  const okStatus = route.service ? "injected" : "passthrough";
  // 100-continue: the body is wanted now (§18.18).
  // (the header is looked up only when a body follows: a body-less request never gets a 100)
  if (
    head.framing.kind !== "none" &&
    head.version === "HTTP/1.1" &&
    getHeader(head.headers, "expect")?.toLowerCase() === "100-continue"
  )
    await conn.write("HTTP/1.1 100 Continue\r\n\r\n").catch(() => {});
  const abort = conn.requestController(); // aborted when the client goes away
  let bodyFailed: unknown = null;
  const upstreamReq = {
    method: head.method,
    scheme: route.scheme,
    host: route.host,
    port: route.port,
    pathAndQuery: prepared.pathAndQuery,
    headers: prepared.headers,
    body:
      head.framing.kind === "none"
        ? null
        : {
            open: () => body.stream((e) => (bodyFailed = e)),
            started: () => body.delivered > 0,
            progressAt: () => body.progressAt,
          },
    contentLength: head.framing.kind === "length" ? head.framing.length : null,
    addresses: prepared.addresses,
    proxy: prepared.proxy,
    signal: abort.signal,
    controller: abort,
  };
  if (route.websocket) return await relayWebSocket(req, upstreamReq, okStatus);
  let res: UpstreamResponse;
  try {
    res = await serving.forwarder.forward(upstreamReq);
  } catch (e) {
    if (conn.closed || bodyFailed instanceof BodyError) {
      req.audit("tls_error", req.fields, 502);
      return false;
    }
    const detail = describeUpstreamError(e, { host: route.host, addr: route.host, port: route.port });
    const r = refusals.upstreamUnreachable(req.fields, detail);
    r.close = !body.finished; // fetch may still hold the body stream: never read it twice, close instead
    return await refuse(serving, conn, head, req.tunnel, body, r, req);
  }
  return await respond(req, res, body);
}

/** R14: stream the upstream response; the audit line is written when it ended (or failed). */
async function respond(req: RequestScope, res: UpstreamResponse, body: BodyReader): Promise<boolean> {
  const { serving, conn, head } = req;
  const okStatus = req.fields.service ? "injected" : "passthrough";
  try {
    // The request body must be fully consumed before the connection can carry another request.
    const reusable = await writeUpstreamResponse(conn, res, {
      method: head.method,
      clientVersion: head.version,
      close: () => closing(serving, conn, head, true),
      announce: (close) => announceClose(close, req.tunnel !== null, head.keepAlive),
    });
    req.audit(okStatus, req.fields, res.status);
    return reusable && body.finished && !serving.draining();
  } catch {
    req.audit(okStatus, req.fields, res.status);
    await res.body?.cancel().catch(() => {});
    return false;
  } finally {
    res.release();
  }
}

/** WebSocket: a raw connection; audited at the upstream's answer; the client connection ends with it. */
async function relayWebSocket(
  req: RequestScope,
  upstreamReq: Parameters<Serving["forwarder"]["upgrade"]>[0],
  okStatus: "injected" | "passthrough",
): Promise<boolean> {
  const { serving, conn, head } = req;
  let answered = false;
  try {
    await serving.forwarder.upgrade(upstreamReq, conn, (status) => {
      answered = true;
      conn.upgraded = status === 101;
      req.audit(okStatus, req.fields, status);
    });
  } catch (e) {
    if (answered || conn.closed) {
      req.audit("tls_error", req.fields, 502);
      return false;
    }
    const detail = describeUpstreamError(e, { host: upstreamReq.host, addr: upstreamReq.host, port: upstreamReq.port });
    const empty = new BodyReader(conn, { kind: "none" }, IDLE_TIMEOUT_MS);
    return await refuse(serving, conn, head, req.tunnel, empty, refusals.upstreamUnreachable(req.fields, detail), req);
  }
  return false;
}
