// What a decided request needs before it can be forwarded, in the order of shared/PHASE2.md §1.7:
//   R10 resolve and vet the destination (netguard) — before any secret is fetched (§18.19);
//   R11 fetch the secret;
//   R12 inject it, and build the upstream header list (hop-by-hop stripped, request id set).
// Each step's failure is a refusal from ./refusal.ts; nothing here writes to the client.
import { CredentialError, type Service } from "../agent/types.ts";
import type { AuditEntry } from "../audit/types.ts";
import type { Headers } from "../http/headers.ts";
import { upstreamRequestHeaders } from "../http/hop-by-hop.ts";
import { firstInjectionPoint, InjectError, injectAll } from "../inject/index.ts";
import { infoSoon, type LineTemplate, logSoonFrom } from "../log/slog.ts";
import { memoize } from "../memo.ts";
import { NetguardError, NotResolvedError } from "../netguard/index.ts";
import type { ProxyChoice } from "../http/corporate-proxy.ts";
import type { Route } from "./decide.ts";
import { type AuditFields, type Refusal, refusals } from "./refusal.ts";
import { type RequestScope, requestLine } from "./request-scope.ts";

export interface Prepared {
  headers: Headers;
  pathAndQuery: string;
  addresses: string[];
  proxy: ProxyChoice | null;
  /** The audit fields of the outcome (injection point included). */
  fields: AuditFields;
}

/**
 * The INFO lines of injected and passthrough requests, declared once per proxy id and (injected)
 * per service and injection point: all but the request's own values fixed in them.
 */
const injectedLines = new WeakMap<Service, { proxyId: string; byPoint: Map<string, LineTemplate> }>();
function injectedLine(proxyId: string, service: Service, point: string): LineTemplate {
  let forService = injectedLines.get(service);
  if (forService === undefined || forService.proxyId !== proxyId) {
    forService = { proxyId, byPoint: new Map() };
    injectedLines.set(service, forService);
  }
  let line = forService.byPoint.get(point);
  if (line === undefined) {
    line = requestLine(
      "INFO",
      "injected",
      proxyId,
      ["service", service.name],
      ["credential", service.auth.credential],
      ["injection_point", point],
    );
    forService.byPoint.set(point, line);
  }
  return line;
}
const passthroughLine = memoize((proxyId) => requestLine("INFO", "passthrough", proxyId), 16);

export async function prepare(req: RequestScope, route: Route): Promise<Prepared | Refusal> {
  const { serving } = req;
  const service = route.service;
  const injectionPoint = service ? firstInjectionPoint(service) : undefined;

  // R10: the destination, vetted. Through a corporate proxy a name that does not resolve here is
  // the proxy's to resolve (split DNS, §18.11); one that does resolve is vetted like a direct dial.
  const proxy = serving.proxies.choose(route.scheme, route.host, route.port);
  let addresses: string[];
  try {
    const vetted = serving.resolve(route.host);
    addresses = Array.isArray(vetted) ? vetted : await vetted;
  } catch (e) {
    if (!(proxy && e instanceof NotResolvedError)) {
      const detail = e instanceof NetguardError ? e.message : "netguard: resolution failed";
      const r = refusals.upstreamUnreachable(
        { ...route.fields, ...(injectionPoint ? { injectionPoint } : {}) },
        detail,
      );
      if (e instanceof NetguardError && e.reason && r.audit) r.audit.fields = { ...r.audit.fields, reason: e.reason };
      return r;
    }
    addresses = [];
  }

  // Hop-by-hop fields stripped, Expect dropped (§18.18), Host set to the decided one after stripping
  // (`Connection: Host` must not remove it: fetch would then send the dialled address, and a
  // virtual-hosting upstream could route the credential to another tenant), the request id set.
  const headers = upstreamRequestHeaders(req.head.headers, route.websocket, route.hostHeader, req.id);
  if (!service) {
    logSoonFrom(passthroughLine(serving.deps.proxyId), req.lineValues());
    return { headers, pathAndQuery: route.pathAndQuery, addresses, proxy, fields: route.fields };
  }

  // R11: the secrets (all handles at once; the first failure decides, naming its handle)
  let secrets: Map<string, string>;
  try {
    if (route.handles.length === 1) {
      // the usual service: one handle, awaited as is (no Promise.all, no per-handle closures)
      const h = route.handles[0]!;
      let value: string;
      try {
        const got = serving.deps.credentials.secret(h.namespace, h.key);
        value = typeof got === "string" ? got : await got;
      } catch (error) {
        throw new SecretFailure(h, error);
      }
      secrets = new Map();
      secrets.set(h.handle, value);
    } else {
      const values = await Promise.all(
        route.handles.map((h) =>
          Promise.resolve(serving.deps.credentials.secret(h.namespace, h.key)).catch((error: unknown) => {
            throw new SecretFailure(h, error);
          }),
        ),
      );
      secrets = new Map(route.handles.map((h, i) => [h.handle, values[i]!]));
    }
  } catch (e) {
    return secretRefusal(route, e as SecretFailure);
  }

  // R12: inject
  try {
    const inj = injectAll(service, secrets, headers, route.pathAndQuery);
    const point = inj.injectionPoint;
    if (inj.overwrote)
      infoSoon("overwrote pre-set value at injection point", [
        ...req.logBase(),
        ["service", service.name],
        ["injection_point", point],
      ]);
    logSoonFrom(injectedLine(serving.deps.proxyId, service, point), req.lineValues());
    // (the route's own fields, made for this request by decide: completed rather than copied)
    const fields: AuditFields & Pick<AuditEntry, "credentialHandles" | "injectionPoints"> = route.fields;
    fields.injectionPoint = point;
    if (inj.credentialHandles) fields.credentialHandles = inj.credentialHandles;
    if (inj.injectionPoints) fields.injectionPoints = inj.injectionPoints;
    return { headers: inj.headers, pathAndQuery: inj.target, addresses, proxy, fields };
  } catch (e) {
    return refusals.injectFailed(route.fields, e instanceof InjectError ? e.message : "clef-proxy: inject: failed");
  }
}

class SecretFailure {
  constructor(
    readonly handle: Route["handles"][number],
    readonly error: unknown,
  ) {}
}

/** A secret fetch failed: 502 `credential <handle> not found`, or 502 `agent error`. */
function secretRefusal(route: Route, f: SecretFailure): Refusal {
  const ce = f.error instanceof CredentialError ? f.error : new CredentialError("agent", "agent: request failed");
  const { handle, namespace, key } = f.handle;
  if (ce.kind === "not_found")
    return refusals.credentialNotFound(route.fields, handle, [
      ["namespace", namespace],
      ["key", key],
      ["err", ce.message],
    ]);
  return refusals.agentError(route.fields, ce.message);
}
