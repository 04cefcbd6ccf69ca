// A service compiled once into what injecting it takes (docs/CONTRACT.md §9, §18.10; shared/PHASE2.md
// §7 F5, §8 F6): the handles to fetch, the steps that write them, and every reason the service
// can never be served. Pure; cached per Service object.
//
// Problems come in Phase 1's order first (scheme, auth.header, auth.query, the credential handle,
// the empty host), with Phase 1's texts, then the Phase 2 ones. Their kinds say who answers them:
//   "inject" / "host"  the request gets 500 {"error":"clef-proxy: inject: <problem>"} (agent_error)
//   "handle"           the pipeline's handle check answers first, as Phase 1 (500 malformed / 502)
//   "warn"             only the WARN at load (a service that matches nothing)
import type { InjectEntry, Service } from "../agent/types.ts";
import { TOKEN, canonicalHeaderName } from "../http/headers.ts";
import { parseHostPattern } from "../match/host.ts";
import { parseHandle } from "./handle.ts";
import { REF_NAME, type TemplatePart, parseTemplate, templateHandles, templateLiterals } from "./template.ts";

export const PHASE1_SCHEMES: ReadonlySet<string> = new Set(["bearer", "api_key_header", "api_key_query"]);
export const MAX_HOST_PATTERNS = 64;
export const MAX_TEMPLATE_CREDENTIALS = 8;
export const MAX_TEMPLATE_ENTRIES = 8;

export interface Problem {
  kind: "inject" | "host" | "handle" | "warn";
  text: string;
}

/** "crlf": Phase 1 api_key_query (CR/LF only, the value is percent-encoded); "field": every other value. */
type Guard = "crlf" | "field";

export type Step =
  | { type: "header"; name: string; point: string; value: TemplatePart[]; guard: Guard }
  | { type: "query"; name: string; point: string; value: TemplatePart[]; guard: Guard }
  | { type: "basic"; point: string; username: TemplatePart[]; password: TemplatePart[] };

export interface Plan {
  problems: Problem[];
  /** Every handle to fetch, unique, in a fixed order (basic: user then password; template: credential first). */
  handles: string[];
  steps: Step[];
}

/** Header names a template may never write: framing, routing, cookies, the proxy's own (Docker's rule). */
const REFUSED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "cookie",
]);
export function refusedHeaderName(name: string): boolean {
  const n = name.toLowerCase();
  return REFUSED_HEADERS.has(n) || n.startsWith("proxy-") || n.startsWith("x-clef-");
}

/** A literal the manifest itself writes into a header: no CR, LF, NUL or other control character. */
const LITERAL_OK = /^[\t\x20-\x7e\x80-\uffff]*$/;

const plans = new WeakMap<Service, Plan>();

export function planFor(service: Service): Plan {
  let p = plans.get(service);
  if (!p) plans.set(service, (p = compile(service)));
  return p;
}

const lit = (s: string): TemplatePart[] => (s === "" ? [] : [s]);

function compile(s: Service): Plan {
  const a = s.auth;
  const problems: Problem[] = [];
  const add = (kind: Problem["kind"], text: string) => problems.push({ kind, text });
  const steps: Step[] = [];
  let handles: string[] = [a.credential];

  // Phase 1 checks, order and texts as checkServices (§18.10).
  const known = PHASE1_SCHEMES.has(a.scheme) || a.scheme === "basic" || a.scheme === "template";
  if (!known) add("inject", `unsupported scheme ${JSON.stringify(a.scheme)}`);
  if (a.scheme === "api_key_header" && !a.header) add("inject", `scheme "api_key_header" requires auth.header`);
  if (a.scheme === "api_key_header" && a.header && !TOKEN.test(a.header))
    add("inject", `auth.header ${JSON.stringify(a.header)} is not a valid header name`);
  if (a.scheme === "api_key_query" && !a.query) add("inject", `scheme "api_key_query" requires auth.query`);
  const handleProblem = (h: string, field: string) => {
    try {
      parseHandle(h);
    } catch (e) {
      add("handle", (field ? `${field}: ` : "") + (e as Error).message.replace(/^clef-proxy: /, ""));
    }
  };
  handleProblem(a.credential, "");
  if (s.host.trim() === "" && (s.hosts ?? []).length === 0) add("warn", "empty host never matches");

  // Phase 2: fields of the wrong type, host patterns.
  for (const d of s.decodeProblems ?? []) add("inject", d);
  const distinct = new Set<string>();
  const patterns: Array<[string, string]> = [];
  if (s.host.trim() !== "") patterns.push(["host", s.host]);
  (s.hosts ?? []).forEach((h, i) => patterns.push([`hosts[${i}]`, h]));
  for (const [field, raw] of patterns) {
    const r = parseHostPattern(raw);
    if (r.ok) distinct.add(r.pattern.text);
    else add("host", `${field} ${JSON.stringify(raw)} is not a valid host pattern: ${r.problem}`);
  }
  if (distinct.size > MAX_HOST_PATTERNS)
    add("host", `${distinct.size} host patterns (host and hosts), at most ${MAX_HOST_PATTERNS}`);

  const cred: TemplatePart[] = [{ handle: a.credential }];
  switch (a.scheme) {
    case "bearer":
      steps.push({
        type: "header",
        name: "Authorization",
        point: "header:Authorization",
        value: ["Bearer ", ...cred],
        guard: "field",
      });
      break;
    case "api_key_header":
      if (a.header)
        steps.push({
          type: "header",
          name: canonicalHeaderName(a.header),
          point: `header:${a.header}`,
          value: cred,
          guard: "field",
        });
      break;
    case "api_key_query":
      if (a.query) steps.push({ type: "query", name: a.query, point: `query:${a.query}`, value: cred, guard: "crlf" });
      break;
    case "basic":
      handles = compileBasic(a.username, a.usernameCredential, a.credential, steps, add, handleProblem);
      break;
    case "template":
      handles = compileTemplate(a.credential, a.credentials, a.inject, steps, add, handleProblem);
      break;
  }
  return { problems, handles: [...new Set(handles)], steps };
}

function compileBasic(
  username: string | undefined,
  usernameCredential: string | undefined,
  credential: string,
  steps: Step[],
  add: (kind: Problem["kind"], text: string) => void,
  handleProblem: (h: string, field: string) => void,
): string[] {
  const password: TemplatePart[] = [{ handle: credential }];
  if (username === undefined && usernameCredential === undefined) {
    add("inject", `scheme "basic" requires auth.username or auth.username_credential`);
    return [credential];
  }
  if (username !== undefined && usernameCredential !== undefined) {
    add("inject", `scheme "basic" takes auth.username or auth.username_credential, not both`);
    return [credential];
  }
  if (usernameCredential !== undefined) {
    handleProblem(usernameCredential, "auth.username_credential");
    steps.push({ type: "basic", point: "header:Authorization", username: [{ handle: usernameCredential }], password });
    return [usernameCredential, credential];
  }
  const u = username!;
  if (!LITERAL_OK.test(u)) add("inject", "auth.username contains a control character");
  else if (u.includes(":")) add("inject", 'basic username contains ":"');
  steps.push({ type: "basic", point: "header:Authorization", username: lit(u), password });
  return [credential];
}

function compileTemplate(
  credential: string,
  credentials: Record<string, string> | undefined,
  inject: InjectEntry[] | undefined,
  steps: Step[],
  add: (kind: Problem["kind"], text: string) => void,
  handleProblem: (h: string, field: string) => void,
): string[] {
  const refs = new Map<string, string>([["credential", credential]]);
  const creds = Object.entries(credentials ?? {});
  if (creds.length > MAX_TEMPLATE_CREDENTIALS)
    add("inject", `auth.credentials has ${creds.length} entries, at most ${MAX_TEMPLATE_CREDENTIALS}`);
  for (const [ref, handle] of creds) {
    if (!REF_NAME.test(ref) || ref === "credential") {
      add(
        "inject",
        `auth.credentials key ${JSON.stringify(ref)} is not a reference name ([A-Za-z_][A-Za-z0-9_]*, not "credential")`,
      );
      continue;
    }
    refs.set(ref, handle);
  }
  const entries = inject ?? [];
  if (entries.length === 0) add("inject", `scheme "template" requires auth.inject`);
  if (entries.length > MAX_TEMPLATE_ENTRIES)
    add("inject", `auth.inject has ${entries.length} entries, at most ${MAX_TEMPLATE_ENTRIES}`);
  const c = new TemplateCompiler(refs, steps, add, credential);
  entries.forEach((e, i) => c.entry(e, i));
  const handles = [...new Set(c.used)];
  for (const h of handles.slice(1)) {
    const ref = [...refs].find(([, v]) => v === h)?.[0] ?? "";
    handleProblem(h, `auth.credentials[${JSON.stringify(ref)}]`);
  }
  return handles;
}

/** One template's entries → steps; every problem reported through `add`. */
class TemplateCompiler {
  readonly used: string[];
  private readonly headersWritten = new Map<string, number>();
  private readonly queriesWritten = new Map<string, number>();

  constructor(
    private readonly refs: Map<string, string>,
    private readonly steps: Step[],
    private readonly add: (kind: Problem["kind"], text: string) => void,
    credential: string,
  ) {
    this.used = [credential];
  }

  entry(e: InjectEntry, i: number): void {
    if (e.type === "header") this.header(e, i);
    else if (e.type === "query") this.query(e, i);
    else if (e.type === "bearer") this.bearer(e, i);
    else if (e.type === "basic") this.basic(e, i);
    else this.add("inject", `auth.inject[${i}]: unknown type ${JSON.stringify(e.type)}`);
  }

  /** A template text, parsed and checked; its handles are recorded as used. */
  private text(i: number, field: string, value: string | undefined): TemplatePart[] | null {
    if (value === undefined) return null;
    const r = parseTemplate(value, this.refs);
    if (!r.ok) {
      this.add("inject", `auth.inject[${i}].${field}: ${r.problem}`);
      return null;
    }
    if (!LITERAL_OK.test(templateLiterals(r.parts))) {
      this.add("inject", `auth.inject[${i}].${field} contains a control character`);
      return null;
    }
    for (const h of templateHandles(r.parts)) this.used.push(h);
    return r.parts;
  }

  /** Claim a header for entry i; false (and a problem) when another entry writes it too. */
  private writes(i: number, header: string): boolean {
    const n = header.toLowerCase();
    const prev = this.headersWritten.get(n);
    if (prev !== undefined) {
      this.add("inject", `auth.inject[${i}]: header ${JSON.stringify(header)} is also written by auth.inject[${prev}]`);
      return false;
    }
    this.headersWritten.set(n, i);
    return true;
  }

  private header(e: InjectEntry, i: number): void {
    if (e.name === undefined || e.value === undefined)
      return this.add("inject", `auth.inject[${i}]: type "header" requires name and value`);
    if (!TOKEN.test(e.name))
      return this.add("inject", `auth.inject[${i}]: header name ${JSON.stringify(e.name)} is not a valid header name`);
    if (refusedHeaderName(e.name))
      return this.add("inject", `auth.inject[${i}]: header ${JSON.stringify(e.name)} may not be written by a template`);
    const v = this.text(i, "value", e.value);
    if (v && this.writes(i, e.name))
      this.steps.push({
        type: "header",
        name: canonicalHeaderName(e.name),
        point: `header:${e.name}`,
        value: v,
        guard: "field",
      });
  }

  private query(e: InjectEntry, i: number): void {
    if (e.name === undefined || e.name === "" || e.value === undefined)
      return this.add("inject", `auth.inject[${i}]: type "query" requires name and value`);
    const prev = this.queriesWritten.get(e.name);
    if (prev !== undefined)
      return this.add(
        "inject",
        `auth.inject[${i}]: query parameter ${JSON.stringify(e.name)} is also written by auth.inject[${prev}]`,
      );
    this.queriesWritten.set(e.name, i);
    const v = this.text(i, "value", e.value);
    if (v) this.steps.push({ type: "query", name: e.name, point: `query:${e.name}`, value: v, guard: "field" });
  }

  private bearer(e: InjectEntry, i: number): void {
    if (e.value === undefined) return this.add("inject", `auth.inject[${i}]: type "bearer" requires value`);
    const v = this.text(i, "value", e.value);
    if (v && this.writes(i, "Authorization"))
      this.steps.push({
        type: "header",
        name: "Authorization",
        point: "header:Authorization",
        value: ["Bearer ", ...v],
        guard: "field",
      });
  }

  private basic(e: InjectEntry, i: number): void {
    if (e.username === undefined || e.password === undefined)
      return this.add("inject", `auth.inject[${i}]: type "basic" requires username and password`);
    const u = this.text(i, "username", e.username);
    const p = this.text(i, "password", e.password);
    if (u && templateLiterals(u).includes(":"))
      return this.add("inject", `auth.inject[${i}]: basic username contains ":"`);
    if (u && p && this.writes(i, "Authorization"))
      this.steps.push({ type: "basic", point: "header:Authorization", username: u, password: p });
  }
}
