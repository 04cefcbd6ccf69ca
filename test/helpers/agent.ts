// A scripted @clef-sh/agent on loopback: /v1/ready, /v1/services, /v1/secrets/<ns>/<key>.
// Every call is recorded (method, path, headers) so tests can assert what the proxy asked for.
import type { Server } from "bun";

export const AGENT_TOKEN = "agent-token-0123";

export interface AgentCall {
  method: string;
  path: string;
  headers: Record<string, string>;
  at: number;
}

type Handler = (req: Request, call: AgentCall) => Response | Promise<Response>;

export interface AgentScript {
  /** Answer for /v1/ready (default 200 "ok"). A function gets the 1-based attempt number. */
  ready?: number | ((attempt: number) => Response | Promise<Response>);
  /** Body for /v1/services (object → JSON with status 200), or a full handler. */
  services?: unknown | Handler;
  /** handle "ns/key" → secret value (JSON string 200) or a handler. Unknown → 404. */
  secrets?: Record<string, string | Handler>;
  token?: string;
  /** Serve HTTPS with this certificate (default: plain HTTP). */
  tls?: { cert: string; key: string };
}

export interface Agent {
  url: string;
  port: number;
  calls: AgentCall[];
  server: Server<undefined>;
  stop(): void;
}

export function manifest(services: unknown[], passthrough: string[] = [], extra: Record<string, unknown> = {}) {
  return {
    schema_version: 1,
    identity: "myid",
    environment: "prod",
    services,
    passthrough_hosts: passthrough,
    ...extra,
  };
}

export function startAgent(script: AgentScript = {}): Agent {
  const token = script.token ?? AGENT_TOKEN;
  const calls: AgentCall[] = [];
  let readyAttempts = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: script.tls,
    async fetch(req) {
      const u = new URL(req.url);
      const call: AgentCall = {
        method: req.method,
        path: u.pathname + u.search,
        headers: Object.fromEntries(req.headers),
        at: Date.now(),
      };
      calls.push(call);
      const path = u.pathname;
      if (path.endsWith("/v1/ready")) {
        readyAttempts++;
        const r = script.ready;
        if (typeof r === "function") return r(readyAttempts);
        return new Response("ok", { status: r ?? 200 });
      }
      const authed = req.headers.get("authorization") === `Bearer ${token}`;
      if (path.endsWith("/v1/services")) {
        const s = script.services;
        if (typeof s === "function") return (s as Handler)(req, call);
        if (!authed) return Response.json({ error: "unauthorized" }, { status: 401 });
        return Response.json(s ?? manifest([]));
      }
      const m = path.match(/\/v1\/secrets\/([^/]+)\/(.+)$/);
      if (m) {
        const handle = `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`;
        const v = script.secrets?.[handle];
        if (typeof v === "function") return v(req, call);
        if (!authed) return Response.json({ error: "unauthorized" }, { status: 401 });
        if (v === undefined) return Response.json({ error: "not found" }, { status: 404 });
        return Response.json(v);
      }
      return new Response("no such route", { status: 404 });
    },
  });
  return {
    url: `${script.tls ? "https" : "http"}://127.0.0.1:${server.port}`,
    port: server.port!,
    calls,
    server,
    stop: () => server.stop(true),
  };
}

/** Env for a proxy talking to `agent` with workload token `workloadToken`. */
export function agentEnv(agent: Agent, workloadToken = "workload-token-xyz"): Record<string, string> {
  return { CLEF_PROXY_AGENT_URL: agent.url, CLEF_PROXY_AGENT_TOKEN: AGENT_TOKEN, CLEF_PROXY_TOKEN: workloadToken };
}
