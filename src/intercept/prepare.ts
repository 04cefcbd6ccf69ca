// What a decided request needs before it can be forwarded, in the order of shared/PHASE2.md §1.7:
//   R10 resolve and vet the destination (netguard) — before any secret is fetched (§18.19);
//   R11 fetch the secret;
//   R12 inject it, and build the upstream header list (hop-by-hop stripped, request id set).
// Each step's failure is a refusal from ./refusal.ts; nothing here writes to the client.
import { CredentialError } from "../agent/types.ts";
import { deleteHeader, type Headers, setHeader } from "../http/headers.ts";
import { stripHopByHop } from "../http/hop-by-hop.ts";
import { applyInjection, InjectError } from "../inject/index.ts";
import { info } from "../log/slog.ts";
import { NetguardError, NotResolvedError } from "../netguard/index.ts";
import type { ProxyChoice } from "./chain.ts";
import type { Route } from "./decide.ts";
import { type AuditFields, type Refusal, refusals } from "./refusal.ts";
import type { RequestScope } from "./request-scope.ts";

export interface Prepared {
  headers: Headers;
  pathAndQuery: string;
  addresses: string[];
  proxy: ProxyChoice | null;
  /** The audit fields of the outcome (injection point included). */
  fields: AuditFields;
}

export async function prepare(req: RequestScope, route: Route): Promise<Prepared | Refusal> {
  const { serving } = req;
  const service = route.service;
  const injectionPoint = service ? injectionPointOf(service.auth) : undefined;

  // R10: the destination, vetted. Through a corporate proxy a name that does not resolve here is
  // the proxy's to resolve (split DNS, §18.11); one that does resolve is vetted like a direct dial.
  const proxy = serving.proxies.choose(route.scheme, route.host, route.port);
  let addresses: string[];
  try {
    addresses = await serving.resolve(route.host);
  } catch (e) {
    if (!(proxy && e instanceof NotResolvedError)) {
      const detail = e instanceof NetguardError ? e.message : "netguard: resolution failed";
      return refusals.upstreamUnreachable({ ...route.fields, ...(injectionPoint ? { injectionPoint } : {}) }, detail);
    }
    addresses = [];
  }

  let headers = stripHopByHop(req.head.headers, { upgrade: route.websocket });
  headers = deleteHeader(headers, "expect");
  if (route.hostHeader) headers = setHeader(headers, "Host", route.hostHeader);
  headers = setHeader(headers, "X-Clef-Request-Id", req.id);
  if (!service || !route.handle) {
    info("passthrough", req.logBase());
    return { headers, pathAndQuery: route.pathAndQuery, addresses, proxy, fields: route.fields };
  }

  // R11: the secret
  const { namespace, key } = route.handle;
  let secret: string;
  try {
    secret = await serving.deps.credentials.secret(namespace, key);
  } catch (e) {
    const ce = e instanceof CredentialError ? e : new CredentialError("agent", "agent: request failed");
    if (ce.kind === "not_found")
      return refusals.credentialNotFound(route.fields, `${namespace}/${key}`, [
        ["namespace", namespace],
        ["key", key],
      ]);
    return refusals.agentError(route.fields, ce.message);
  }

  // R12: inject
  try {
    const inj = applyInjection(service, secret, headers, route.pathAndQuery);
    if (inj.overwrote)
      info("overwrote pre-set value at injection point", [
        ...req.logBase(),
        ["service", service.name],
        ["injection_point", inj.injectionPoint],
      ]);
    info("injected", [
      ...req.logBase(),
      ["service", service.name],
      ["credential", service.auth.credential],
      ["injection_point", inj.injectionPoint],
    ]);
    const fields = { ...route.fields, injectionPoint: inj.injectionPoint };
    return { headers: inj.headers, pathAndQuery: inj.target, addresses, proxy, fields };
  } catch (e) {
    return refusals.injectFailed(route.fields, e instanceof InjectError ? e.message : "clef-proxy: inject: failed");
  }
}

/** The injection point a service would use (for the audit line of a request refused before injecting). */
function injectionPointOf(auth: { scheme: string; header?: string; query?: string }): string | undefined {
  if (auth.scheme === "bearer") return "header:Authorization";
  if (auth.scheme === "api_key_header" && auth.header) return `header:${auth.header}`;
  if (auth.scheme === "api_key_query" && auth.query) return `query:${auth.query}`;
  return undefined;
}
