// The agent client (docs/CONTRACT.md §5, §6): readiness poll, the services manifest (once, at
// startup), and secrets on demand with a short in-memory cache (§18.13).
import { createHash } from "node:crypto";
import { GoJsonError, parseGoJson } from "../gojson/decode.ts";
import { GO_USER_AGENT } from "../http/headers.ts";
import { goUrlParseError } from "../config/load.ts";
import { info } from "../log/slog.ts";
import { series } from "../metrics/series.ts";
import { goValueName, manifestFromJson } from "./manifest.ts";
import { CredentialError, type CredentialSource, type Manifest } from "./types.ts";

export { manifestFromJson } from "./manifest.ts";

/** Exit-code-carrying failure: `code` is the process exit code the serve lifecycle uses. */
export class AgentError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export const AGENT_TIMEOUT_MS = 10_000;
export const READY_TIMEOUT_MS = 30_000;
export const READY_BACKOFF_MS = [100, 200, 400, 800];
export const READY_MAX_INTERVAL_MS = 1_000;
/** Largest agent response body we read (a manifest or a secret); larger is an agent error. */
export const MAX_AGENT_BODY = 1 << 20;
/** Secret cache: entries live this long, at most this many (LRU by insertion). */
export const SECRET_TTL_MS = 5_000;
export const SECRET_CACHE_MAX = 1024;

const IDENT = /^[A-Za-z0-9_-]+$/;
const HEADER_VALUE_OK = /^[^\r\n\0]*$/;

/** Decode a JSON body with Go-like error texts. */
function decodeJson(text: string): unknown {
  try {
    parseGoJson(text); // Go's syntax messages
  } catch (e) {
    if (e instanceof GoJsonError) throw new Error(e.message);
    throw e;
  }
  return JSON.parse(text);
}

async function readCapped(res: Response): Promise<string> {
  const len = Number(res.headers.get("content-length") ?? "-1");
  if (len > MAX_AGENT_BODY) throw new Error(`response body exceeds ${MAX_AGENT_BODY} bytes`);
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.byteLength;
    if (total > MAX_AGENT_BODY) throw new Error(`response body exceeds ${MAX_AGENT_BODY} bytes`);
    chunks.push(chunk);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

function errorSuffix(body: string): string {
  // Go ErrorResponse {error, detail}: " <error>" + ": <detail>" when present.
  try {
    const j = JSON.parse(body) as { error?: unknown; detail?: unknown };
    let s = "";
    if (typeof j.error === "string" && j.error) s += " " + j.error;
    if (typeof j.detail === "string" && j.detail) s += ": " + j.detail;
    return s;
  } catch {
    return "";
  }
}

function transportDetail(e: unknown, url: string): string {
  const err = e as { name?: string; code?: string; message?: string };
  if (err?.name === "TimeoutError" || err?.name === "AbortError")
    return `Get ${JSON.stringify(url)}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)`;
  if (err?.code === "ConnectionRefused" || /ECONNREFUSED|Unable to connect/i.test(err?.message ?? "")) {
    const u = new URL(url);
    return `Get ${JSON.stringify(url)}: dial tcp ${u.host}: connect: connection refused`;
  }
  return `Get ${JSON.stringify(url)}: ${err?.message ?? String(e)}`;
}

export type AgentEnv = Record<string, string | undefined> & {
  CLEF_PROXY_AGENT_URL?: string;
  CLEF_PROXY_AGENT_TOKEN?: string;
};

/** Counts one /v1/services or /v1/secrets call in agent_requests_total by its outcome. */
async function counted<T>(endpoint: "services" | "secrets", call: Promise<T>): Promise<T> {
  try {
    const out = await call;
    series.agentRequests.inc({ endpoint, result: "ok" });
    return out;
  } catch (e) {
    const result =
      e instanceof CredentialError && e.kind === "not_found"
        ? "not_found"
        : (e as Error).message === "agent: unauthorized"
          ? "unauthorized"
          : "error";
    series.agentRequests.inc({ endpoint, result });
    throw e;
  }
}

/** A URL for logs: userinfo (a password someone put in CLEF_PROXY_AGENT_URL) removed. */
export function redactUserinfo(url: string): string {
  return url.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/@]*@/, "$1");
}

export class AgentClient implements CredentialSource {
  private readonly cache = new Map<string, { value: string; expires: number }>();
  private readonly inflight = new Map<string, Promise<string>>();
  private closed = false;
  /** SHA-256 (hex) of the last /v1/services body as received (metrics manifest_info). */
  servicesSha256 = "";

  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  url(path: string): string {
    return this.baseUrl.replace(/\/+$/, "") + path;
  }

  private headers(auth: boolean): Record<string, string> {
    const h: Record<string, string> = { "User-Agent": GO_USER_AGENT, "Accept-Encoding": "gzip" };
    if (auth) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  private async get(path: string, auth: boolean, signal?: AbortSignal): Promise<Response> {
    const url = this.url(path);
    if (auth && !HEADER_VALUE_OK.test(this.token))
      throw new Error(`Get ${JSON.stringify(url)}: net/http: invalid header field value for "Authorization"`);
    const timeout = AbortSignal.timeout(AGENT_TIMEOUT_MS);
    try {
      return await fetch(url, {
        headers: this.headers(auth),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        redirect: "manual",
      });
    } catch (e) {
      throw new Error(transportDetail(e, url));
    }
  }

  /** Poll /v1/ready (no auth) until 200, with the reference's back-off; rejects AgentError(code 3). */
  async waitReady(signal?: AbortSignal, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastErr = "";
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw signal.reason;
      try {
        const res = await this.get("/v1/ready", false, signal);
        await res.body?.cancel().catch(() => {});
        series.agentRequests.inc({ endpoint: "ready", result: res.status === 200 ? "ok" : "error" });
        if (res.status === 200) return;
        lastErr = `status ${res.status}`;
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        series.agentRequests.inc({ endpoint: "ready", result: "error" });
        lastErr = (e as Error).message;
      }
      if (attempt === 0) info("waiting for agent", { url: redactUserinfo(this.url("/v1/ready")) });
      const wait = Math.min(READY_BACKOFF_MS[attempt] ?? READY_MAX_INTERVAL_MS, Math.max(0, deadline - Date.now()));
      if (wait <= 0 || Date.now() >= deadline) {
        throw new AgentError(`agent: /v1/ready not reachable: context deadline exceeded (last error: ${lastErr})`, 3);
      }
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, wait);
        signal?.addEventListener(
          "abort",
          () => {
            clearTimeout(t);
            reject(signal.reason);
          },
          { once: true },
        );
      });
      if (Date.now() >= deadline)
        throw new AgentError(`agent: /v1/ready not reachable: context deadline exceeded (last error: ${lastErr})`, 3);
    }
  }

  /** GET /v1/services once; rejects AgentError(code 1) with the reference's messages. */
  services(): Promise<Manifest> {
    return counted("services", this.fetchServices());
  }

  private async fetchServices(): Promise<Manifest> {
    let res: Response;
    try {
      res = await this.get("/v1/services", true);
    } catch (e) {
      throw new AgentError(`agent: /v1/services: ${(e as Error).message}`, 1);
    }
    let body: string;
    try {
      body = await readCapped(res);
    } catch (e) {
      throw new AgentError(`agent: /v1/services: ${(e as Error).message}`, 1);
    }
    this.servicesSha256 = createHash("sha256").update(body).digest("hex");
    if (res.status === 401) throw new AgentError("agent: unauthorized", 1);
    if (res.status !== 200) throw new AgentError(`agent: /v1/services: ${res.status}${errorSuffix(body)}`, 1);
    let json: unknown;
    try {
      json = decodeJson(body);
    } catch (e) {
      throw new AgentError(`agent: decode /v1/services: ${(e as Error).message}`, 1);
    }
    try {
      return manifestFromJson(json);
    } catch (e) {
      throw new AgentError((e as Error).message, 1);
    }
  }

  /** CredentialSource: one secret, cached for SECRET_TTL_MS, concurrent fetches coalesced. */
  secret(namespace: string, key: string, signal?: AbortSignal): string | Promise<string> {
    if (!IDENT.test(namespace))
      return Promise.reject(new CredentialError("agent", `agent: invalid namespace ${JSON.stringify(namespace)}`));
    if (!IDENT.test(key))
      return Promise.reject(new CredentialError("agent", `agent: invalid key ${JSON.stringify(key)}`));
    const handle = `${namespace}/${key}`;
    const hit = this.cache.get(handle);
    if (hit && hit.expires > Date.now()) {
      series.secretCache.inc({ result: "hit" });
      return hit.value; // as it is: no promise to await on every request
    }
    return this.fetchOrJoin(namespace, key, handle, signal);
  }

  private async fetchOrJoin(namespace: string, key: string, handle: string, signal?: AbortSignal): Promise<string> {
    const pending = this.inflight.get(handle);
    if (pending) {
      series.secretCache.inc({ result: "hit" });
      return pending;
    }
    series.secretCache.inc({ result: "miss" });
    const p = counted("secrets", this.fetchSecret(namespace, key, signal)).finally(() => this.inflight.delete(handle));
    this.inflight.set(handle, p);
    const value = await p;
    if (!this.closed && SECRET_TTL_MS > 0) {
      this.cache.delete(handle);
      this.cache.set(handle, { value, expires: Date.now() + SECRET_TTL_MS });
      while (this.cache.size > SECRET_CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    }
    return value;
  }

  private async fetchSecret(namespace: string, key: string, signal?: AbortSignal): Promise<string> {
    const path = `/v1/secrets/${namespace}/${key}`;
    let res: Response;
    let body: string;
    try {
      res = await this.get(path, true, signal);
      body = await readCapped(res);
    } catch (e) {
      throw new CredentialError("agent", `agent: ${path}: ${(e as Error).message}`);
    }
    if (res.status === 404) throw new CredentialError("not_found", `agent: credential ${namespace}/${key} not found`);
    if (res.status === 401) throw new CredentialError("agent", "agent: unauthorized");
    if (res.status !== 200) throw new CredentialError("agent", `agent: ${path}: ${res.status}${errorSuffix(body)}`);
    let value: unknown;
    try {
      value = decodeJson(body);
    } catch (e) {
      throw new CredentialError("agent", `agent: decode ${path}: ${(e as Error).message}`);
    }
    if (typeof value !== "string") {
      throw new CredentialError(
        "agent",
        `agent: decode ${path}: json: cannot unmarshal ${goValueName(value)} into Go value of type string`,
      );
    }
    return value;
  }

  /** Forget every cached secret (shutdown). */
  close(): void {
    this.closed = true;
    this.cache.clear();
  }
}

/** Validate CLEF_PROXY_AGENT_URL / CLEF_PROXY_AGENT_TOKEN; throws AgentError(code 4). */
export function createAgentClient(env: AgentEnv): AgentClient {
  const raw = env.CLEF_PROXY_AGENT_URL ?? "";
  if (raw === "") throw new AgentError("agent: CLEF_PROXY_AGENT_URL is not set", 4);
  const perr = goUrlParseError(raw);
  if (perr) throw new AgentError(`agent: invalid CLEF_PROXY_AGENT_URL ${JSON.stringify(raw)}: ${perr}`, 4);
  const m = /^([a-zA-Z][a-zA-Z0-9+\-.]*):/.exec(raw);
  const scheme = m ? m[1]!.toLowerCase() : "";
  if (scheme !== "http" && scheme !== "https") {
    throw new AgentError(`agent: CLEF_PROXY_AGENT_URL scheme must be http or https, got ${JSON.stringify(scheme)}`, 4);
  }
  const token = env.CLEF_PROXY_AGENT_TOKEN ?? "";
  if (token === "") throw new AgentError("agent: CLEF_PROXY_AGENT_TOKEN is not set", 4);
  return new AgentClient(raw, token);
}
