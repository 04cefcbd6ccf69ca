// The decision for one request, without any I/O (shared/PHASE2.md §1.7, R1–R9): request head +
// tunnel facts + policy → a route to forward, or a refusal. Every precedence rule of the data path
// is here, in order, and nowhere else; Phase 2 steps slot in at their R-number.
//
//   R1  request-target form (§18.20), method                        → 400 (no line) / 501
//   R2  host syntax, one host per request (§18.1)                   → 400 invalid_host / 421
//   R4  blocked_hosts                                               → 403 blocked_host
//   R6  classify: service / passthrough / not in manifest / ambiguous → 403 / 400
//   R9  credential handle and service usability                      → 500 / 502
// What needs I/O (netguard R10, secrets R11, injection R12) is ./prepare.ts.
import type { Manifest, Service } from "../agent/types.ts";
import type { RequestHead } from "../http/h1-request.ts";
import { getHeaders } from "../http/headers.ts";
import { isValidPort, parseRequestTarget } from "../http/target.ts";
import { memoize } from "../memo.ts";
import { type HandleError, injectProblem, parseHandle, requiredHandles } from "../inject/index.ts";
import {
  type Authority,
  createMatcher,
  effectiveHost,
  isValidRequestHost,
  type Matcher,
  splitAuthority,
} from "../match/index.ts";
import { type AuditFields, type Refusal, refusals } from "./refusal.ts";

export interface TunnelFacts {
  /** The CONNECT authority (port defaulted to 443). */
  connect: Authority;
  /** TLS SNI when the client sent one. */
  sni?: string;
  /** Cleartext HTTP through the tunnel (no TLS): forwarded over plain HTTP, as the reference. */
  plain: boolean;
}

export interface Policy {
  /** Services, passthrough and blocked hosts of the manifest (src/match). */
  matcher: Matcher;
}

export interface Route {
  scheme: "http" | "https";
  /** Canonical host name or IP literal (no brackets): what is matched, vetted and dialled. */
  host: string;
  port: number;
  /** Origin-form path and query to send. */
  pathAndQuery: string;
  /** The Host header to send upstream: the absolute-form authority, else the Host header as sent. */
  hostHeader: string;
  service: Service | null;
  /** Every handle the service needs, parsed (services only; usually one). Shared: never modified. */
  handles: ReadonlyArray<{ handle: string; namespace: string; key: string }>;
  /** The audit fields the request carries from here on. */
  fields: AuditFields;
  /** A WebSocket handshake (the only upgrade relayed; other Upgrade tokens are dropped, §20). */
  websocket: boolean;
}

/** The policy for one manifest (validated at load: src/agent/manifest.ts). */
export function createPolicy(manifest: Manifest): Policy {
  return { matcher: createMatcher(manifest) };
}

export type Decision = { kind: "refuse"; refusal: Refusal } | { kind: "forward"; route: Route };

/** Methods fetch forwards exactly as sent; anything else would be rewritten, so it is refused (501). */
const FORWARDABLE_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);

/** The host as the audit line and error bodies name it: absolute-form authority, else the Host header. */
export function hostAsSent(head: RequestHead): string {
  const t = parseRequestTarget(head.target);
  if ("form" in t && t.form === "absolute") return t.authority;
  return head.known.host ?? "";
}

/** `sent`: hostAsSent(head), when the caller already has it. */
export function decide(
  head: RequestHead,
  tunnel: TunnelFacts | null,
  policy: Policy,
  sent: string = hostAsSent(head),
): Decision {
  // R1: the request-target and the method
  const target = parseRequestTarget(head.target);
  if ("error" in target) return refuse(refusals.badRequestTarget(target.error));
  if (target.form === "asterisk" && head.method !== "OPTIONS")
    return refuse(refusals.badRequestTarget("asterisk-form"));
  if (!FORWARDABLE_METHODS.has(head.method)) return refuse(refusals.unsupportedMethod(sent, head.method));
  if (target.form === "asterisk") return refuse(refusals.unsupportedTarget(sent));
  // inside a tunnel an absolute-form target must carry the tunnel's own scheme
  if (tunnel && target.form === "absolute" && target.scheme !== (tunnel.plain ? "http" : "https"))
    return refuse(refusals.badRequestTarget("absolute-form scheme differs from the tunnel's"));
  const scheme: "http" | "https" = tunnel
    ? tunnel.plain
      ? "http"
      : "https"
    : target.form === "absolute"
      ? target.scheme
      : "http";

  // R2: host syntax, then one host per request
  const absoluteAuthority = target.form === "absolute" ? target.authority : null;
  const absolute = absoluteAuthority !== null ? splitAuthority(absoluteAuthority) : undefined;
  const hostHeader = head.known.host;
  if (absoluteAuthority !== null && !validAuthority(absoluteAuthority)) return refuse(refusals.invalidHost(sent));
  if (hostHeader && !validAuthority(hostHeader)) return refuse(refusals.invalidHost(sent));
  const names = effectiveHost({
    connect: tunnel?.connect,
    sni: tunnel?.sni,
    hostHeader,
    absolute,
    defaultPort: scheme === "https" ? "443" : "80",
  });
  if (!names.ok) return refuse(refusals.misdirected(sent, names.reason));
  // A request with no Host (absent or empty) and no absolute-form target is denied as host ""
  // (reference); an absolute-form target names the host itself (Go's req.Host).
  const host = !hostHeader && !absolute ? "" : names.host;

  // R4 blocked_hosts (beat everything), then R6: classify
  const serviceHeader = head.known.clefService ?? null;
  const match = host === "" ? ({ kind: "deny" } as const) : policy.matcher.match(host, serviceHeader);
  if (match.kind === "blocked") return refuse(refusals.blockedHost(sent, match.pattern));
  if (match.kind === "deny") return refuse(refusals.notInManifest(sent, serviceHeader ?? ""));
  if (match.kind === "ambiguous") return refuse(refusals.ambiguous(sent, match.candidates, match.pattern));
  const hostPattern = match.pattern ? { hostPattern: match.pattern } : {};

  const route: Route = {
    scheme,
    host,
    port: Number(names.port),
    pathAndQuery: target.pathAndQuery,
    hostHeader: absoluteAuthority ?? hostHeader ?? host,
    service: null,
    handles: [],
    fields: hostPattern,
    websocket: isWebSocketHandshake(head),
  };
  if (match.kind === "passthrough") return { kind: "forward", route };

  // R9: the service's handles and usability (no agent call for either)
  const service = match.service;
  route.service = service;
  route.fields = match.pattern
    ? { service: service.name, credentialHandle: service.auth.credential, hostPattern: match.pattern }
    : { service: service.name, credentialHandle: service.auth.credential };
  const ready = readiness(service);
  if (ready.handleError)
    return refuse(
      ready.handleError.status === 500
        ? refusals.malformedHandle(route.fields, ready.handleError.message)
        : refusals.agentError(route.fields, ready.handleError.message),
    );
  route.handles = ready.handles;
  if (ready.problem) return refuse(refusals.injectFailed(route.fields, `clef-proxy: inject: ${ready.problem}`));
  return { kind: "forward", route };
}

interface Readiness {
  /** Every handle the service needs, parsed (up to the first that does not parse). */
  handles: Route["handles"];
  /** The first handle that does not parse. */
  handleError?: HandleError;
  /** Why the service can never be injected (after its handles parsed). */
  problem?: string;
}

/**
 * R9 for a service: its handles parsed and whether it can be injected — the same answer for every
 * request to it, so worked out once per service object (a manifest reload brings new objects).
 */
function readiness(service: Service): Readiness {
  let r = readinessOf.get(service);
  if (r === undefined) {
    const handles: Array<Route["handles"][number]> = [];
    r = { handles };
    for (const handle of requiredHandles(service)) {
      try {
        handles.push({ handle, ...parseHandle(handle) });
      } catch (e) {
        r.handleError = e as HandleError;
        break;
      }
    }
    if (!r.handleError) r.problem = injectProblem(service);
    readinessOf.set(service, r);
  }
  return r;
}
const readinessOf = new WeakMap<Service, Readiness>();

/**
 * A host name or IP literal with an optional port 1-65535 (Host header, absolute-form authority).
 * Every request of a connection names the same host: the answer is remembered (bounded: 1,024
 * values of at most 255 characters, the longest DNS name).
 */
const validAuthority = memoize(
  (value) => {
    const port = splitAuthority(value).port;
    return value !== "" && isValidRequestHost(value) && (port === "" || isValidPort(port));
  },
  1024,
  255,
);

function refuse(refusal: Refusal): Decision {
  return { kind: "refuse", refusal };
}

/** GET + HTTP/1.1 + no body + `Upgrade: websocket` + `Connection: upgrade` (RFC 6455 §4.1). */
export function isWebSocketHandshake(head: RequestHead): boolean {
  if (head.method !== "GET" || head.version !== "HTTP/1.1" || head.framing.kind !== "none") return false;
  if (head.known.upgrade === undefined) return false; // the usual request: no token lists built
  const tokens = (name: string) =>
    getHeaders(head.headers, name)
      .flatMap((v) => v.split(","))
      .map((t) => t.trim().toLowerCase());
  return tokens("connection").includes("upgrade") && tokens("upgrade").includes("websocket");
}
