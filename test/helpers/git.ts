// A git smart-HTTP server for tests: HTTPS on loopback (test PKI from ./tls.ts) running
// `git http-backend` as CGI over a bare repository in a temp dir, the way GitHub answers git:
// `401 WWW-Authenticate: Basic realm="git"` unless `Authorization` is exactly
// `Basic base64("x-access-token:<token>")`. Push is allowed (`http.receivepack true`).
//
//   const git = await startGitServer({ pki, token: "ghs_…" });
//   git clone https://x-access-token:<token>@127.0.0.1:<git.port>/repo.git   (GIT_SSL_CAINFO=pki.caPath)
//
// Every request is recorded (method, path with query, the Authorization header as received) so a
// test can assert what the upstream saw. The repository starts with one commit on `main`
// (README.md = "hello from the test repo\n").
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import { run } from "./clients.ts";
import { tempDir } from "./proxy.ts";
import type { TestPki } from "./tls.ts";

export const GIT_USER = "x-access-token";
export const SEED_FILE = "README.md";
export const SEED_TEXT = "hello from the test repo\n";

export interface GitRequest {
  method: string;
  url: string;
  authorization: string | null;
  status: number;
}

export interface GitServer {
  port: number;
  /** The bare repositories' parent directory (GIT_PROJECT_ROOT). */
  root: string;
  /** `https://<host>:<port>/<repo>` (host defaults to the address it listens on). */
  url(host?: string, repo?: string): string;
  seen: GitRequest[];
  stop(): void;
}

/** Environment for git commands: no system/global config, no prompt, a fixed identity. */
export function gitEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: tempDir("clef-git-home-"),
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "Clef Test",
    GIT_AUTHOR_EMAIL: "test@example.invalid",
    GIT_COMMITTER_NAME: "Clef Test",
    GIT_COMMITTER_EMAIL: "test@example.invalid",
    ...extra,
  };
}

/** Run git; rejects with its output when it fails. */
export async function git(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = await run(["git", ...args], { cwd: opts.cwd, env: opts.env ?? gitEnv() });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** A bare repository `<root>/<name>` with one commit on main. */
async function seedRepo(root: string, name: string): Promise<void> {
  const bare = join(root, name);
  await git(["init", "-q", "--bare", "-b", "main", bare]);
  await git(["config", "http.receivepack", "true"], { cwd: bare });
  const work = tempDir("clef-git-seed-");
  await git(["init", "-q", "-b", "main", work]);
  writeFileSync(join(work, SEED_FILE), SEED_TEXT);
  await git(["add", SEED_FILE], { cwd: work });
  await git(["commit", "-q", "-m", "seed"], { cwd: work });
  await git(["push", "-q", bare, "main"], { cwd: work });
}

/** Split CGI output into status, headers and body. */
function parseCgi(out: Uint8Array): { status: number; headers: Headers; body: Uint8Array } {
  const buf = Buffer.from(out);
  let end = buf.indexOf("\r\n\r\n");
  let sep = 4;
  const lf = buf.indexOf("\n\n");
  if (end < 0 || (lf >= 0 && lf < end)) {
    end = lf;
    sep = 2;
  }
  if (end < 0) return { status: 502, headers: new Headers(), body: buf };
  const headers = new Headers();
  let status = 200;
  for (const line of buf.subarray(0, end).toString("latin1").split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const k = line.slice(0, i).trim();
    const v = line.slice(i + 1).trim();
    if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]);
    else headers.append(k, v);
  }
  return { status, headers, body: buf.subarray(end + sep) };
}

export async function startGitServer(opts: {
  pki: TestPki;
  token: string;
  hostname?: string;
  repos?: string[];
}): Promise<GitServer> {
  const root = tempDir("clef-git-root-");
  mkdirSync(root, { recursive: true });
  for (const r of opts.repos ?? ["repo.git"]) await seedRepo(root, r);
  const expected = `Basic ${Buffer.from(`${GIT_USER}:${opts.token}`, "utf8").toString("base64")}`;
  const seen: GitRequest[] = [];
  const hostname = opts.hostname ?? "127.0.0.1";
  const server: Server<undefined> = Bun.serve({
    hostname,
    port: 0,
    tls: { key: opts.pki.key, cert: opts.pki.cert },
    idleTimeout: 30,
    async fetch(req) {
      const u = new URL(req.url);
      const authorization = req.headers.get("authorization");
      const record: GitRequest = { method: req.method, url: u.pathname + u.search, authorization, status: 0 };
      seen.push(record);
      if (authorization !== expected) {
        record.status = 401;
        return new Response("Authentication required\n", {
          status: 401,
          headers: { "WWW-Authenticate": 'Basic realm="git"', "Content-Type": "text/plain" },
        });
      }
      const body = new Uint8Array(await req.arrayBuffer());
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: root,
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: "1",
        GATEWAY_INTERFACE: "CGI/1.1",
        REQUEST_METHOD: req.method,
        PATH_INFO: decodeURIComponent(u.pathname),
        QUERY_STRING: u.search.slice(1),
        CONTENT_TYPE: req.headers.get("content-type") ?? "",
        CONTENT_LENGTH: String(body.byteLength),
        REMOTE_USER: GIT_USER,
        REMOTE_ADDR: "127.0.0.1",
      };
      const enc = req.headers.get("content-encoding");
      if (enc) env.HTTP_CONTENT_ENCODING = enc;
      const proto = req.headers.get("git-protocol");
      if (proto) env.GIT_PROTOCOL = proto;
      const p = Bun.spawn(["git", "http-backend"], { env, stdin: body, stdout: "pipe", stderr: "pipe" });
      const [out] = await Promise.all([new Response(p.stdout).arrayBuffer(), p.exited]);
      const cgi = parseCgi(new Uint8Array(out));
      record.status = cgi.status;
      return new Response(cgi.body, { status: cgi.status, headers: cgi.headers });
    },
  });
  const port = server.port!;
  return {
    port,
    root,
    url: (host = hostname, repo = "repo.git") => `https://${host}:${port}/${repo}`,
    seen,
    stop: () => server.stop(true),
  };
}
