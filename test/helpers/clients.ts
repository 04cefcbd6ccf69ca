// Real clients through the proxy, all asynchronous (the agent and upstreams live in the test process,
// so a synchronous spawn would deadlock them).
import { connect as tlsConnect } from "node:tls";
import { connect as netConnect, type Socket } from "node:net";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(
  argv: string[],
  opts: { env?: Record<string, string>; stdin?: string; cwd?: string } = {},
): Promise<RunResult> {
  const p = Bun.spawn(argv, {
    env: opts.env ?? (process.env as Record<string, string>),
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    cwd: opts.cwd,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, stdout, stderr };
}

export function proxyUrl(port: number, token: string, user = "u"): string {
  return `http://${user}:${token}@127.0.0.1:${port}`;
}

/** argv of a quiet curl through the proxy, trusting its CA: add the options and the URL. */
export function curlVia(port: number, token: string, caPath: string): string[] {
  return ["curl", "-sS", "--proxy", proxyUrl(port, token), "--cacert", caPath];
}

/** curl through the proxy; returns the full response (-i) on stdout. */
export function curl(
  port: number,
  token: string,
  caPath: string,
  url: string,
  extra: string[] = [],
): Promise<RunResult> {
  return run([...curlVia(port, token, caPath), "-i", "--max-time", "20", ...extra, url]);
}

/** Parse `curl -i` output: last status/headers block and body. */
export function parseCurl(out: string): { status: number; headers: Record<string, string>; body: string } {
  let rest = out;
  // skip the CONNECT response and any 100 Continue blocks
  for (;;) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) return { status: 0, headers: {}, body: rest };
    const block = rest.slice(0, end);
    const status = Number(block.split(" ")[1]);
    const after = rest.slice(end + 4);
    if ((status === 200 && /^HTTP\/1\.0 200/.test(block) && /^HTTP\//.test(after)) || status === 100) {
      rest = after;
      continue;
    }
    const headers: Record<string, string> = {};
    for (const l of block.split("\r\n").slice(1)) {
      const i = l.indexOf(":");
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    return { status, headers, body: after };
  }
}

/** The CONNECT request head a workload sends (Basic auth with the token as password). */
export function connectRequest(target: string, token: string): string {
  return `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Basic ${Buffer.from("u:" + token).toString("base64")}\r\n\r\n`;
}

/** A raw TCP client: send bytes, collect everything until close or timeout. */
export function rawExchange(port: number, data: string | Uint8Array, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s: Socket = netConnect(port, "127.0.0.1", () => s.write(data));
    const done = () => resolve(Buffer.concat(chunks).toString("latin1"));
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("close", done);
    s.on("error", done);
    setTimeout(() => s.destroy(), timeoutMs);
  });
}

/**
 * Open a CONNECT tunnel (with auth), then TLS (trusting `ca`, SNI = servername), send raw bytes
 * inside, collect the decrypted answer until close or timeout.
 */
export function tunnelExchange(
  port: number,
  token: string,
  connectTarget: string,
  ca: string,
  servername: string | undefined,
  data: string | Uint8Array,
  timeoutMs = 3000,
  /** Resolve as soon as the answer so far satisfies this (the proxy may keep the tunnel open). */
  until?: (answer: string) => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = netConnect(port, "127.0.0.1", () => {
      raw.write(connectRequest(connectTarget, token));
    });
    let head = "";
    const onData = (c: Buffer) => {
      head += c.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      if (!head.startsWith("HTTP/1.0 200")) return resolve("CONNECT refused: " + head);
      const chunks: Buffer[] = [];
      const t = tlsConnect({ socket: raw, ca, servername, ALPNProtocols: ["http/1.1"] }, () => t.write(data));
      const done = () => resolve(Buffer.concat(chunks).toString("latin1"));
      let seen = "";
      t.on("data", (d: Buffer) => {
        chunks.push(d);
        if (!until) return;
        seen += d.toString("latin1");
        if (until(seen)) t.destroy();
      });
      t.on("close", done);
      t.on("error", (e) => (chunks.length ? done() : reject(e)));
      setTimeout(() => t.destroy(), timeoutMs);
    };
    raw.on("data", onData);
    raw.on("error", reject);
  });
}

/** Open a CONNECT tunnel (with auth) and, once it is established, send cleartext bytes through it. */
export function plainTunnelExchange(
  port: number,
  token: string,
  connectTarget: string,
  data: string,
  timeoutMs = 3000,
  until?: (answer: string) => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, "127.0.0.1", () => {
      s.write(connectRequest(connectTarget, token));
    });
    let got = "";
    let sent = false;
    s.on("data", (c: Buffer) => {
      got += c.toString("latin1");
      if (!sent && got.includes("\r\n\r\n")) {
        sent = true;
        if (!got.startsWith("HTTP/1.0 200")) return s.destroy();
        got = "";
        s.write(data);
        return;
      }
      if (sent && until?.(got)) s.destroy();
    });
    s.on("close", () => resolve(got));
    s.on("error", (e) => (got ? resolve(got) : reject(e)));
    setTimeout(() => s.destroy(), timeoutMs);
  });
}
