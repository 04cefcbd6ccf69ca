// Echo upstreams on loopback: HTTPS (test PKI) and plain HTTP. GET/POST anything → JSON with what
// arrived (method, path with raw query, headers in order, body length and sha256). Special routes:
//   /sse            three events 150 ms apart
//   /bytes/<n>      n bytes of a repeating pattern, with Content-Length
//   /stream/<n>     n bytes, chunked (no Content-Length)
//   /zeros/<n>      n zero bytes, generated as they are read (for GiB-sized bodies)
//   /status/<code>  that status, no body
//   /cookies        two Set-Cookie headers
//   /gzip           a gzip-encoded body with Content-Encoding: gzip
//   /slow/<ms>      answer after ms
import { createHash } from "node:crypto";
import type { Server } from "bun";
import type { TestPki } from "./tls.ts";

export interface Seen {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  bodyLength: number;
  bodySha256: string;
}

export interface Upstream {
  server: Server<undefined>;
  port: number;
  seen: Seen[];
  /** Resolves the /sse-hold stream's remaining events. */
  release(): void;
  stop(): void;
}

export function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 13) & 255;
  return b;
}

/**
 * Run `start(port)` on a port below the kernel's ephemeral range (32768–60999 by default), where no
 * process lands by asking for port 0: the same port on another loopback address then stays free — a
 * test that needs it to refuse connections can rely on that while other suites run beside it. A port
 * that is taken is tried again.
 */
export function belowEphemeral<T>(start: (port: number) => T): T {
  for (let i = 0; ; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      return start(port);
    } catch (e) {
      if (i >= 50) throw e;
    }
  }
}

export function startUpstream(opts: { hostname?: string; pki?: TestPki; port?: number } = {}): Upstream {
  const seen: Seen[] = [];
  let release: () => void = () => {};
  let held = new Promise<void>((r) => (release = r));
  const server = Bun.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port ?? 0,
    tls: opts.pki ? { key: opts.pki.key, cert: opts.pki.cert } : undefined,
    idleTimeout: 30,
    maxRequestBodySize: 4 * 1024 ** 3, // GiB-sized uploads (Bun's default stops at 128 MiB)
    async fetch(req) {
      const u = new URL(req.url);
      const hash = createHash("sha256");
      let len = 0;
      if (req.body)
        for await (const c of req.body) {
          hash.update(c);
          len += c.byteLength;
        }
      const headers: Array<[string, string]> = [];
      req.headers.forEach((v, k) => headers.push([k, v]));
      const s: Seen = {
        method: req.method,
        url: u.pathname + u.search,
        headers,
        bodyLength: len,
        bodySha256: hash.digest("hex"),
      };
      seen.push(s);
      const p = u.pathname;
      let m: RegExpMatchArray | null;
      if (p === "/sse") {
        const enc = new TextEncoder();
        return new Response(
          new ReadableStream({
            async start(c) {
              for (let i = 0; i < 3; i++) {
                c.enqueue(enc.encode(`data: event ${i}\n\n`));
                await Bun.sleep(150);
              }
              c.close();
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        );
      }
      if (p === "/sse-hold") {
        const enc = new TextEncoder();
        return new Response(
          new ReadableStream({
            async start(c) {
              c.enqueue(enc.encode("data: first\n\n"));
              await held;
              c.enqueue(enc.encode("data: second\n\n"));
              c.close();
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        );
      }
      if ((m = p.match(/^\/bytes\/(\d+)$/)))
        return new Response(pattern(Number(m[1])), { headers: { "content-type": "application/octet-stream" } });
      if ((m = p.match(/^\/stream\/(\d+)$/))) {
        const total = Number(m[1]);
        const full = pattern(total);
        let off = 0;
        return new Response(
          new ReadableStream({
            pull(c) {
              if (off >= total) return c.close();
              const n = Math.min(65536, total - off);
              c.enqueue(full.subarray(off, off + n));
              off += n;
            },
          }),
          { headers: { "content-type": "application/octet-stream" } },
        );
      }
      if ((m = p.match(/^\/zeros\/(\d+)$/))) {
        let left = Number(m[1]);
        const zeros = new Uint8Array(256 * 1024);
        return new Response(
          new ReadableStream({
            pull(c) {
              if (left <= 0) return c.close();
              const n = Math.min(zeros.byteLength, left);
              c.enqueue(n === zeros.byteLength ? zeros : zeros.subarray(0, n));
              left -= n;
            },
          }),
          { headers: { "content-type": "application/octet-stream", "content-length": m[1]! } },
        );
      }
      if ((m = p.match(/^\/status\/(\d+)$/)))
        return new Response(null, { status: Number(m[1]), headers: { "x-a": "1" } });
      if (p === "/cookies") {
        const h = new Headers();
        h.append("set-cookie", "a=1; Path=/");
        h.append("set-cookie", "b=2; Path=/");
        return new Response("ok", { headers: h });
      }
      if (p === "/gzip")
        return new Response(Bun.gzipSync(new TextEncoder().encode("hello gzip")), {
          headers: { "content-encoding": "gzip", "content-type": "text/plain" },
        });
      if ((m = p.match(/^\/slow\/(\d+)$/))) {
        await Bun.sleep(Number(m[1]));
        return Response.json(s);
      }
      return Response.json(s, { headers: { "x-upstream": "echo" } });
    },
  });
  return {
    server,
    port: server.port!,
    seen,
    release: () => {
      release();
      held = new Promise<void>((r) => (release = r));
    },
    stop: () => server.stop(true),
  };
}

/** A WebSocket echo upstream (TLS when `pki`): records each upgrade request's headers; echoes text frames prefixed "echo:". */
export function startWsUpstream(opts: { hostname?: string; pki?: TestPki; port?: number } = {}): {
  port: number;
  upgrades: Array<Array<[string, string]>>;
  stop(): void;
} {
  const upgrades: Array<Array<[string, string]>> = [];
  const server = Bun.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port ?? 0,
    tls: opts.pki ? { key: opts.pki.key, cert: opts.pki.cert } : undefined,
    fetch(req, srv) {
      const headers: Array<[string, string]> = [];
      req.headers.forEach((v, k) => headers.push([k, v]));
      upgrades.push(headers);
      if (srv.upgrade(req)) return undefined;
      return new Response("not a websocket request", { status: 426 });
    },
    websocket: {
      message(ws, msg) {
        ws.send(`echo:${typeof msg === "string" ? msg : new TextDecoder().decode(msg)}`);
      },
    },
  });
  return { port: server.port!, upgrades, stop: () => server.stop(true) };
}

/** One masked client text frame (RFC 6455), payload < 126 bytes. */
export function wsClientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}

/** The text of the first unmasked server text frame in `raw` (after the 101 head), or null. */
export function wsServerText(raw: string): string | null {
  const i = raw.indexOf("\r\n\r\n");
  if (i < 0) return null;
  const b = Buffer.from(raw.slice(i + 4), "latin1");
  if (b.length < 2 || b[0] !== 0x81) return null;
  const len = b[1]! & 0x7f;
  if (len > 125 || b.length < 2 + len) return null;
  return b.subarray(2, 2 + len).toString();
}
