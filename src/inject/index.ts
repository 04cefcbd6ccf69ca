// Credential handles and injection (docs/CONTRACT.md §6, §9, §18.5, §18.6, §18.10; shared/PHASE2.md §8 F6).
//
//   parseHandle("ns/KEY")                          → {namespace, key} | throws HandleError (500 or 502)
//   requiredHandles(service)                       → every handle to fetch, unique, fixed order
//   serviceProblems(service)                       → why the service can never be served (WARN at load)
//   injectProblem(service)                         → the problem a request to it gets as 500, or undefined
//   injectAll(service, secrets, headers, target)   → {headers, target, injectionPoint, injectionPoints?,
//                                                     credentialHandles?, overwrote} | throws InjectError
//   applyInjection(service, secret, headers, target), checkServices(manifest): Phase 1 entry points,
//                                                     unchanged behaviour (bearer/api_key_* only)
// Header lists are Array<[name, value]> in wire order. No error message ever contains a secret.
import type { Manifest, Service } from "../agent/types.ts";
import { FIELD_VALUE, type Headers, setHeader, TOKEN } from "../http/headers.ts";
import { InjectError, parseHandle } from "./handle.ts";
import { PHASE1_SCHEMES, planFor, type Step } from "./plan.ts";
import { setQueryParam } from "./query.ts";
import { renderTemplate, type TemplatePart } from "./template.ts";

export { HandleError, InjectError, parseHandle } from "./handle.ts";
export { queryEscape, setQueryParam } from "./query.ts";
export { refusedHeaderName } from "./plan.ts";

export interface Injected {
  headers: Headers;
  target: string;
  injectionPoint: string;
  overwrote: boolean;
}

export interface MultiInjected extends Injected {
  /** Every injection point in entry order, only when there are several (audit `injection_points`). */
  injectionPoints?: string[];
  /** Every handle used, only when there are several (audit `credential_handles`). */
  credentialHandles?: string[];
}

/** Every credential handle the service needs, unique: basic → [username_credential, credential]; template → [credential, then each referenced handle]. */
export function requiredHandles(service: Service): string[] {
  return [...planFor(service).handles];
}

/** Every reason the service can never be served: Phase 1's (§18.10, same texts and order) then Phase 2's. One WARN each at load. */
export function serviceProblems(service: Service): string[] {
  return planFor(service).problems.map((p) => p.text);
}

/**
 * The problem a request matched to this service gets, as 500 `{"error":"clef-proxy: inject: <problem>"}`
 * (audit agent_error); undefined when it can be injected. Handle problems are not included: the
 * Phase 1 handle check answers them before (500 malformed / 502 agent error).
 */
export function injectProblem(service: Service): string | undefined {
  return planFor(service).problems.find((p) => p.kind === "inject" || p.kind === "host")?.text;
}

/** The injection point a request to this service writes first (audit `injection_point` of a line written before injecting). */
export function firstInjectionPoint(service: Service): string | undefined {
  return planFor(service).steps[0]?.point;
}

const CRLF = "clef-proxy: inject: credential value contains CR or LF (header injection guard)";
const CTL = "clef-proxy: inject: credential value contains a control character (header injection guard)";

function guard(value: string, level: "crlf" | "field"): void {
  if (/[\r\n]/.test(value)) throw new InjectError(CRLF);
  if (level === "field" && !FIELD_VALUE.test(value)) throw new InjectError(CTL);
}

/**
 * Inject every credential the service uses. `secrets` maps each of requiredHandles(service) to
 * its value. Throws InjectError whose message is the 500 body's `error` (a static problem first,
 * then the value guards in entry order); the message never contains a value.
 */
export function injectAll(
  service: Service,
  secrets: ReadonlyMap<string, string>,
  headers: Headers,
  target: string,
): MultiInjected {
  const plan = planFor(service);
  const problem = injectProblem(service);
  if (problem !== undefined) throw new InjectError(`clef-proxy: inject: ${problem}`);
  const value = (handle: string): string => {
    const v = secrets.get(handle);
    if (v === undefined) throw new InjectError(`clef-proxy: inject: credential ${handle} was not fetched`);
    return v;
  };
  const render = (parts: TemplatePart[], level: "crlf" | "field"): string => {
    // guard each inserted value (the literals were checked at load), then assemble once
    for (const p of parts) if (typeof p !== "string") guard(value(p.handle), level);
    return renderTemplate(parts, value);
  };
  let overwrote = false;
  const points: string[] = [];
  for (const step of plan.steps) {
    points.push(step.point);
    ({ headers, target, overwrote } = applyStep(step, headers, target, overwrote, render));
  }
  if (points.length === 0) throw new InjectError(`clef-proxy: inject: nothing to inject`);
  const out: MultiInjected = { headers, target, injectionPoint: points[0]!, overwrote };
  if (points.length > 1) out.injectionPoints = points;
  if (plan.handles.length > 1) out.credentialHandles = [...plan.handles];
  return out;
}

/**
 * Whether `setHeader(before, …)` replaced a field that was there: without one it appends (one field
 * more), with one or more it keeps one in their place (as many fields or fewer).
 */
const replaced = (before: Headers, after: Headers): boolean => after.length <= before.length;

function applyStep(
  step: Step,
  headers: Headers,
  target: string,
  overwrote: boolean,
  render: (parts: TemplatePart[], level: "crlf" | "field") => string,
): { headers: Headers; target: string; overwrote: boolean } {
  switch (step.type) {
    case "header": {
      const v = render(step.value, step.guard);
      const set = setHeader(headers, step.name, v);
      return { headers: set, target, overwrote: overwrote || replaced(headers, set) };
    }
    case "query": {
      const r = setQueryParam(target, step.name, render(step.value, step.guard));
      return { headers, target: r.target, overwrote: overwrote || r.overwrote };
    }
    case "basic": {
      const user = render(step.username, "field");
      const pass = render(step.password, "field");
      if (user.includes(":")) throw new InjectError('clef-proxy: inject: basic username contains ":"');
      const token = Buffer.from(`${user}:${pass}`, "utf8").toString("base64");
      const set = setHeader(headers, "Authorization", `Basic ${token}`);
      return { headers: set, target, overwrote: overwrote || replaced(headers, set) };
    }
  }
}

/**
 * Phase 1 entry point, kept until the pipeline calls injectAll: one secret, the Phase 1 schemes
 * (anything else is `unsupported scheme`, as before). Throws InjectError with the 500 body's error.
 */
export function applyInjection(service: Service, secret: string, headers: Headers, target: string): Injected {
  if (!PHASE1_SCHEMES.has(service.auth.scheme))
    throw new InjectError(`clef-proxy: inject: unsupported scheme ${JSON.stringify(service.auth.scheme)}`);
  const r = injectAll(service, new Map([[service.auth.credential, secret]]), headers, target);
  return { headers: r.headers, target: r.target, injectionPoint: r.injectionPoint, overwrote: r.overwrote };
}

/** §18.10 as Phase 1 (used until startup calls validateManifest): unusable services, Phase 1 reasons only. */
export function checkServices(manifest: Manifest): Array<{ service: string; host: string; problem: string }> {
  const out: Array<{ service: string; host: string; problem: string }> = [];
  for (const s of manifest.services) {
    const add = (problem: string) => out.push({ service: s.name, host: s.host, problem });
    const a = s.auth;
    if (!PHASE1_SCHEMES.has(a.scheme)) add(`unsupported scheme ${JSON.stringify(a.scheme)}`);
    if (a.scheme === "api_key_header" && !a.header) add(`scheme "api_key_header" requires auth.header`);
    if (a.scheme === "api_key_header" && a.header && !TOKEN.test(a.header))
      add(`auth.header ${JSON.stringify(a.header)} is not a valid header name`);
    if (a.scheme === "api_key_query" && !a.query) add(`scheme "api_key_query" requires auth.query`);
    try {
      parseHandle(a.credential);
    } catch (e) {
      add((e as Error).message.replace(/^clef-proxy: /, ""));
    }
    if (s.host.trim() === "") add("empty host never matches");
  }
  return out;
}
