// One request's decision and forwarding (docs/CONTRACT.md §8, §9, §11, §18.1, §18.3, §18.19):
// one-host rule → match → (service: handle → netguard → secret → inject) → forward → respond → audit.
import { randomUUID } from "node:crypto";
import { CredentialError } from "../agent/types.ts";
import { nowNs } from "../audit/encode.ts";
import { goJsonEncode } from "../gojson/encode.ts";
import type { AuditEntry, AuditStatus } from "../audit/types.ts";
import { applyInjection, type HandleError, InjectError, parseHandle } from "../inject/index.ts";
import { deleteHeader, getHeader, getHeaders, type Headers, setHeader } from "../http/headers.ts";
import { stripHopByHop } from "../http/hop-by-hop.ts";
import { info } from "../log/slog.ts";
import { type Authority, createMatcher, effectiveHost, type Matcher, splitAuthority } from "../match/index.ts";
import { ambiguousBody, denyBody, misdirectedBody } from "../match/responses.ts";
import { NetguardError, cachedResolver } from "../netguard/index.ts";
import { BodyError, BodyReader } from "./body.ts";
import type { Conn } from "./conn.ts";
import type { Forwarder, UpstreamResponse } from "./forward-types.ts";
import { UpstreamError } from "./forward-types.ts";
import type { RequestHead } from "../http/h1-request.ts";
import { MAX_DISCARD_BYTES } from "./limits.ts";
import { announceClose, jsonResponse, writeUpstreamResponse } from "./respond.ts";
import type { InterceptDeps } from "./types.ts";

export interface PipelineContext {
  deps: InterceptDeps;
  matcher: Matcher;
  forwarder: Forwarder;
  resolve: (host: string) => Promise<string[]>;
}

export function createPipelineContext(deps: InterceptDeps, forwarder: Forwarder): PipelineContext {
  return { deps, matcher: createMatcher(deps.manifest), forwarder, resolve: cachedResolver() };
}

export interface TunnelInfo {
  connect: Authority;
  sni?: string;
  /** Cleartext HTTP sent through the tunnel (no TLS): forwarded over plain HTTP, as the reference. */
  plain?: boolean;
}

/** Decoded path without query, as Go's url.Path (for audit and logs). */
function decodedPath(target: string): string {
  let p = target;
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(p);
  if (abs) p = p.slice(abs[0].length) || "/";
  const q = p.search(/[?#]/);
  if (q >= 0) p = p.slice(0, q);
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

/**
 * Handle one request on `conn`. Returns true when the connection may carry another request.
 * Never throws for request-level failures: every outcome is a response plus an audit line.
 */
export async function handleRequest(
  ctx: PipelineContext,
  conn: Conn,
  head: RequestHead,
  tunnel: TunnelInfo | null,
): Promise<boolean> {
  const { deps } = ctx;
  const startNs = nowNs();
  const t0 = performance.now();
  const requestId = randomUUID();
  const body = new BodyReader(conn, head.framing);
  let keepAlive = head.keepAlive && !conn.closeAfterResponse;

  // The request-target: origin-form inside tunnels, absolute-form (http:// or https://) otherwise.
  let absolute: Authority | undefined;
  const tunnelScheme = tunnel?.plain ? "http" : "https";
  let scheme: "http" | "https" = tunnel ? tunnelScheme : "http";
  let originTarget = head.target;
  const abs = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/i.exec(head.target);
  if (abs) {
    const s = abs[1]!.toLowerCase();
    if (s === "http" || s === "https") scheme = tunnel ? tunnelScheme : (s as "http" | "https");
    absolute = splitAuthority(abs[2]!.replace(/^[^@]*@/, ""));
    originTarget = abs[3] || "/";
    if (!originTarget.startsWith("/")) originTarget = "/" + originTarget;
  }
  const hostHeader = getHeader(head.headers, "host");
  const decision = effectiveHost({
    connect: tunnel?.connect,
    sni: tunnel?.sni,
    hostHeader,
    absolute,
    defaultPort: scheme === "https" ? "443" : "80",
  });
  const auditHost = decision.hostForAudit;
  const path = decodedPath(head.target);
  const serviceHeader = getHeaders(head.headers, "x-clef-service")[0] ?? null;

  const audit = (status: AuditStatus, extra: Partial<AuditEntry> = {}) => {
    const entry: AuditEntry = {
      ts: startNs,
      requestId,
      clientIp: conn.clientIp,
      method: head.method,
      host: auditHost,
      path,
      status,
      latencyMs: Math.floor(performance.now() - t0),
      ...extra,
    };
    deps.audit.write(entry);
  };

  /** Answer without forwarding: the unread body is discarded (bounded) or the connection closes. */
  const answer = async (status: number, json: string): Promise<boolean> => {
    if (!body.finished && !(await body.discard(MAX_DISCARD_BYTES).catch(() => false))) keepAlive = false;
    await conn.write(jsonResponse(status, json, announceClose(!keepAlive, tunnel !== null, head.keepAlive)));
    return keepAlive;
  };

  const logBase = (): Array<[string, string]> => [
    ["host", auditHost],
    ["method", head.method],
    ["path", path],
    ["proxy_id", deps.proxyId],
    ["request_id", requestId],
  ];

  if (!decision.ok) {
    info("denied: misdirected request", [...logBase(), ["reason", decision.reason]]);
    const r = await answer(421, misdirectedBody(auditHost, decision.reason));
    audit("denied");
    return r;
  }
  // A request with no Host at all (and no absolute-form target) is denied as host "" (reference).
  const host = hostHeader === undefined || (hostHeader === "" && !absolute) ? "" : decision.host;
  const match = host === "" ? ({ kind: "deny" } as const) : ctx.matcher.match(host, serviceHeader);

  if (match.kind === "deny") {
    info("denied: host not in manifest", [...logBase(), ["service_header", serviceHeader ?? ""]]);
    const r = await answer(403, denyBody(auditHost));
    audit("denied");
    return r;
  }
  if (match.kind === "ambiguous") {
    info("ambiguous: multiple services match", [...logBase(), ["candidates", `[${match.candidates.join(" ")}]`]]);
    const r = await answer(400, ambiguousBody(auditHost, match.candidates));
    audit("denied");
    return r;
  }

  const service = match.kind === "service" ? match.service : undefined;
  const serviceFields: Partial<AuditEntry> = service
    ? { service: service.name, credentialHandle: service.auth.credential }
    : {};
  const port = Number(decision.port);

  // 1. Credential handle (no agent call when malformed).
  let handle: { namespace: string; key: string } | undefined;
  if (service) {
    try {
      handle = parseHandle(service.auth.credential);
    } catch (e) {
      const he = e as HandleError;
      if (he.status === 500) {
        info("invalid credential handle in manifest", [
          ...logBase(),
          ["service", service.name],
          ["credential", service.auth.credential],
        ]);
        const r = await answer(500, goJsonEncode({ error: he.message }));
        audit("agent_error", serviceFields);
        return r;
      }
      info("agent resolution failed", [...logBase(), ["service", service.name], ["err", he.message]]);
      const r = await answer(502, goJsonEncode({ error: "clef-proxy: agent error" }));
      audit("agent_error", serviceFields);
      return r;
    }
  }

  // 2. Resolve and vet the destination before any secret is fetched (§18.19).
  let addresses: string[];
  try {
    addresses = await ctx.resolve(host);
  } catch (e) {
    const detail = e instanceof NetguardError ? e.message : String(e);
    info("upstream unreachable", [...logBase(), ["err", detail]]);
    const r = await answer(502, goJsonEncode({ detail, error: "clef-proxy: upstream unreachable" }));
    audit("tls_error", {
      ...serviceFields,
      ...(service ? { injectionPoint: injectionPointOf(service.auth) } : {}),
      upstreamStatus: 502,
    });
    return r;
  }

  // 3. Build the upstream request headers (an upgrade keeps Upgrade and Connection: §10, §18.8).
  const connectionTokens = getHeaders(head.headers, "connection")
    .flatMap((v) => v.split(","))
    .map((t) => t.trim().toLowerCase());
  const isUpgrade =
    head.method === "GET" &&
    head.version === "HTTP/1.1" &&
    head.framing.kind === "none" &&
    getHeader(head.headers, "upgrade") !== undefined &&
    connectionTokens.includes("upgrade");
  let headers: Headers = stripHopByHop(head.headers, { upgrade: isUpgrade });
  headers = deleteHeader(headers, "expect");
  if (absolute)
    headers = setHeader(headers, "Host", absolute.port ? `${absolute.host}:${absolute.port}` : absolute.host);
  headers = setHeader(headers, "X-Clef-Request-Id", requestId);
  let target = originTarget;
  let injectionPoint: string | undefined;
  if (service && handle) {
    let secret: string;
    try {
      secret = await deps.credentials.secret(handle.namespace, handle.key);
    } catch (e) {
      const ce = e instanceof CredentialError ? e : new CredentialError("agent", String(e));
      if (ce.kind === "not_found") {
        info("credential not found", [
          ...logBase(),
          ["service", service.name],
          ["namespace", handle.namespace],
          ["key", handle.key],
        ]);
        const r = await answer(
          502,
          goJsonEncode({ error: `clef-proxy: credential ${handle.namespace}/${handle.key} not found` }),
        );
        audit("agent_error", serviceFields);
        return r;
      }
      info("agent resolution failed", [...logBase(), ["service", service.name], ["err", ce.message]]);
      const r = await answer(502, goJsonEncode({ error: "clef-proxy: agent error" }));
      audit("agent_error", serviceFields);
      return r;
    }
    try {
      const inj = applyInjection(service, secret, headers, target);
      headers = inj.headers;
      target = inj.target;
      injectionPoint = inj.injectionPoint;
      if (inj.overwrote)
        info("overwrote pre-set value at injection point", [
          ...logBase(),
          ["service", service.name],
          ["injection_point", inj.injectionPoint],
        ]);
    } catch (e) {
      const msg = e instanceof InjectError ? e.message : "clef-proxy: inject: failed";
      info("injection failed", [...logBase(), ["service", service.name], ["err", msg]]);
      const r = await answer(500, goJsonEncode({ error: msg }));
      audit("agent_error", serviceFields);
      return r;
    }
    info("injected", [
      ...logBase(),
      ["service", service.name],
      ["credential", service.auth.credential],
      ["injection_point", injectionPoint],
    ]);
  } else {
    info("passthrough", logBase());
  }
  const okStatus: AuditStatus = service ? "injected" : "passthrough";
  const okFields: Partial<AuditEntry> = { ...serviceFields, ...(injectionPoint ? { injectionPoint } : {}) };

  // 4. 100-continue: the body is wanted now (§18.18).
  const expect = getHeader(head.headers, "expect");
  if (
    expect &&
    expect.toLowerCase() === "100-continue" &&
    head.version === "HTTP/1.1" &&
    head.framing.kind !== "none"
  ) {
    await conn.write("HTTP/1.1 100 Continue\r\n\r\n");
  }

  // 5. Forward.
  const abort = new AbortController();
  const offClosed = conn.onceClosed(() => abort.abort());
  try {
    return await forwardAndRespond(abort.signal);
  } finally {
    offClosed();
  }

  async function forwardAndRespond(signal: AbortSignal): Promise<boolean> {
    if (isUpgrade) {
      // WebSocket and other protocol switches: a raw connection; the client connection ends with it.
      let answered = false;
      try {
        await ctx.forwarder.upgrade(
          {
            method: head.method,
            scheme,
            host,
            port,
            target,
            headers,
            body: null,
            contentLength: null,
            addresses,
            signal,
          },
          conn,
          (status) => {
            answered = true;
            audit(okStatus, { ...okFields, upstreamStatus: status });
          },
        );
      } catch (e) {
        if (answered || conn.closed) return false;
        const detail = e instanceof UpstreamError ? e.message : String((e as Error)?.message ?? e);
        info("upstream unreachable", [...logBase(), ["err", detail]]);
        await conn
          .write(
            jsonResponse(
              502,
              goJsonEncode({ detail, error: "clef-proxy: upstream unreachable" }),
              announceClose(!keepAlive, tunnel !== null, head.keepAlive),
            ),
          )
          .catch(() => {});
        audit("tls_error", { ...okFields, upstreamStatus: 502 });
        return keepAlive;
      }
      return false;
    }
    let bodyFailed: unknown = null;
    let res: UpstreamResponse;
    try {
      res = await ctx.forwarder.forward({
        method: head.method,
        scheme,
        host,
        port,
        target,
        headers,
        body: head.framing.kind === "none" ? null : body.stream((e) => (bodyFailed = e)),
        contentLength: head.framing.kind === "length" ? head.framing.length : null,
        addresses,
        signal,
      });
    } catch (e) {
      const detail = e instanceof UpstreamError ? e.message : String((e as Error)?.message ?? e);
      if (conn.closed || bodyFailed instanceof BodyError) {
        audit("tls_error", { ...okFields, upstreamStatus: 502 });
        return false;
      }
      info("upstream unreachable", [...logBase(), ["err", detail]]);
      keepAlive = keepAlive && body.finished;
      await conn
        .write(
          jsonResponse(
            502,
            goJsonEncode({ detail, error: "clef-proxy: upstream unreachable" }),
            announceClose(!keepAlive, tunnel !== null, head.keepAlive),
          ),
        )
        .catch(() => {});
      audit("tls_error", { ...okFields, upstreamStatus: 502 });
      return keepAlive;
    }
    try {
      // The request body must be fully consumed before the connection can carry another request.
      const reusable = await writeUpstreamResponse(conn, res, {
        method: head.method,
        clientVersion: head.version,
        close: !keepAlive,
        announce: announceClose(!keepAlive, tunnel !== null, head.keepAlive),
      });
      audit(okStatus, { ...okFields, upstreamStatus: res.status });
      return reusable && body.finished && !conn.closeAfterResponse;
    } catch {
      audit(okStatus, { ...okFields, upstreamStatus: res.status });
      return false;
    }
  }
}

function injectionPointOf(auth: { scheme: string; header?: string; query?: string }): string | undefined {
  if (auth.scheme === "bearer") return "header:Authorization";
  if (auth.scheme === "api_key_header" && auth.header) return `header:${auth.header}`;
  if (auth.scheme === "api_key_query" && auth.query) return `query:${auth.query}`;
  return undefined;
}
