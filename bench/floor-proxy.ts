// The runtime's floor for the keep-alive cells: the least a Bun program must do to proxy the bench's
// requests the way clef-proxy does — CONNECT, TLS terminated with a leaf (upgradeTLS), one request
// head read, the upstream request with the credential, the response written back — and nothing else
// (no policy, no audit, no log, no limits). Run by bench/cells.ts as `floor-fetch` (upstream through
// Bun's fetch, as the product) or `floor-raw` (an HTTP/1.1 keep-alive client on Bun.connect TLS sockets
// on the JS thread). Not a product; measurements only (docs/PERFORMANCE.md).
//
//   bun bench/floor-proxy.ts fetch|raw serve --config <json with listen.port>
// env: FLOOR_CERT, FLOOR_KEY (leaf for the CONNECT host), FLOOR_UPSTREAM (host=ip), SSL_CERT_FILE.
import type { Socket } from "bun";
import { readFileSync } from "node:fs";

const mode = process.argv[2];
const cfg = JSON.parse(readFileSync(process.argv[process.argv.indexOf("--config") + 1]!, "utf8"));
const cert = readFileSync(process.env.FLOOR_CERT!, "utf8");
const key = readFileSync(process.env.FLOOR_KEY!, "utf8");
const ca = readFileSync(process.env.SSL_CERT_FILE!, "utf8");
const [upName, upIp] = process.env.FLOOR_UPSTREAM!.split("=") as [string, string];

interface D {
  drain?: () => void;
  buf: string;
  tls?: boolean;
  busy?: boolean;
  connected?: boolean;
}

const enc = new TextEncoder();

// --- raw upstream client: one pool of keep-alive TLS sockets per port ------------------------------
interface Up {
  sock: Socket<UpD>;
}
interface UpD {
  buf: Uint8Array | null;
  resolve: ((r: { head: string; body: Uint8Array }) => void) | null;
}
const idle: Up[] = [];
function parseResponse(d: UpD): { head: string; body: Uint8Array } | null {
  const b = d.buf!;
  let i = -1;
  for (let j = 0; j + 3 < b.length; j++)
    if (b[j] === 13 && b[j + 1] === 10 && b[j + 2] === 13 && b[j + 3] === 10) {
      i = j;
      break;
    }
  if (i < 0) return null;
  const head = Buffer.from(b.subarray(0, i)).toString("latin1");
  const m = /\r\ncontent-length: *(\d+)/i.exec(head);
  const len = m ? Number(m[1]) : 0;
  if (b.length < i + 4 + len) return null;
  const body = b.subarray(i + 4, i + 4 + len);
  d.buf = null;
  return { head, body };
}
async function rawRequest(port: number, path: string, headers: string): Promise<{ head: string; body: Uint8Array }> {
  let up = idle.pop();
  if (!up) {
    let ready: () => void = () => {};
    const handshaken = new Promise<void>((r) => (ready = r));
    const sock = await Bun.connect<UpD>({
      hostname: upIp,
      port,
      tls: { serverName: upName, ca },
      data: { buf: null, resolve: null },
      socket: {
        data(s, chunk) {
          const d = s.data;
          d.buf = d.buf ? Buffer.concat([d.buf, chunk]) : new Uint8Array(chunk);
          const r = parseResponse(d);
          if (r && d.resolve) {
            const f = d.resolve;
            d.resolve = null;
            f(r);
          }
        },
        handshake() {
          ready();
        },
        close() {},
        error() {},
      },
    });
    await handshaken; // a write before the handshake is not buffered (returns 0)
    up = { sock };
  }
  const u = up;
  return new Promise((resolve) => {
    u.sock.data.resolve = (r) => {
      idle.push(u);
      resolve(r);
    };
    u.sock.write(`GET ${path} HTTP/1.1\r\n${headers}\r\n`);
  });
}

/** Write with back-pressure (the socket's drain event resumes). */
async function writeAll(s: Socket<D>, data: Uint8Array | string): Promise<void> {
  let bytes = typeof data === "string" ? Buffer.from(data) : data;
  for (;;) {
    const n = s.write(bytes);
    if (n >= bytes.byteLength) return;
    if (n > 0) bytes = bytes.subarray(n);
    await new Promise<void>((r) => (s.data.drain = r));
  }
}

// --- the client side ----------------------------------------------------------------------------
async function serveRequest(s: Socket<D>, head: string): Promise<void> {
  const [reqLine] = head.split("\r\n", 1);
  const path = reqLine!.split(" ")[1]!;
  const hostM = /\r\nhost: *([^\r]+)/i.exec(head)!;
  const hostport = hostM[1]!;
  const port = Number(hostport.split(":")[1] ?? 443);
  const ua = /\r\nuser-agent: *([^\r]+)/i.exec(head)?.[1] ?? "Go-http-client/1.1";
  let out: Uint8Array;
  if (mode === "fetch" && path.startsWith("/bytes/")) {
    // a large body, streamed with back-pressure: the floor of the stream cell
    const res = await fetch(`https://${upIp}:${port}${path}`, {
      headers: [
        ["host", hostport],
        ["user-agent", ua],
      ],
      tls: { serverName: upName },
      decompress: false,
    } as RequestInit);
    await writeAll(s, `HTTP/1.1 200 OK\r\nContent-Length: ${res.headers.get("content-length")}\r\n\r\n`);
    for await (const chunk of res.body!) {
      await writeAll(s, chunk);
      // experiment: free each chunk as soon as the socket took it
      if (process.env.FLOOR_DETACH && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength)
        (chunk.buffer as ArrayBuffer).transfer(0);
    }
    return;
  }
  if (mode === "raw" && path.startsWith("/bytes/")) {
    // socket to socket: the upstream is paused while the client's socket is full
    let first = true;
    let left = -1;
    await new Promise<void>((done) => {
      let up: Socket<UpD> | undefined;
      void Bun.connect<UpD>({
        hostname: upIp,
        port,
        tls: { serverName: upName, ca },
        data: { buf: null, resolve: null },
        socket: {
          handshake(u) {
            up = u;
            u.write(`GET ${path} HTTP/1.1\r\nHost: ${hostport}\r\nUser-Agent: ${ua}\r\n\r\n`);
          },
          data(u, chunk) {
            let body: Uint8Array = chunk;
            if (first) {
              const i = chunk.indexOf("\r\n\r\n");
              const head = chunk.subarray(0, i).toString("latin1");
              left = Number(/content-length: *(\d+)/i.exec(head)![1]);
              s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${left}\r\n\r\n`);
              body = chunk.subarray(i + 4);
              first = false;
            }
            left -= body.byteLength;
            const n = s.write(body);
            if (n < body.byteLength) {
              // keep the rest, pause the upstream until the client drains
              const rest = body.subarray(Math.max(0, n));
              u.pause();
              s.data.drain = () => {
                const m = s.write(rest);
                if (m < rest.byteLength) throw new Error("short write after drain (floor tool)");
                u.resume();
                if (left <= 0) u.end(), done();
              };
              return;
            }
            if (left <= 0) {
              u.end();
              done();
            }
          },
          close() {},
          error() {},
        },
      });
      void up;
    });
    return;
  }
  if (mode === "fetch") {
    const res = await fetch(`https://${upIp}:${port}${path}`, {
      headers: [
        ["host", hostport],
        ["user-agent", ua],
        ["authorization", "Bearer bench-secret-value"],
      ],
      tls: { serverName: upName },
      redirect: "manual",
      decompress: false,
    } as RequestInit);
    const body = new Uint8Array(await res.arrayBuffer());
    const h = `HTTP/1.1 ${res.status} OK\r\nContent-Type: ${res.headers.get("content-type")}\r\nDate: ${res.headers.get("date")}\r\nContent-Length: ${body.byteLength}\r\n\r\n`;
    out = Buffer.concat([enc.encode(h), body]);
  } else {
    const r = await rawRequest(
      port,
      path,
      `Host: ${hostport}\r\nUser-Agent: ${ua}\r\nAuthorization: Bearer bench-secret-value\r\n`,
    );
    const ct = /\r\ncontent-type: *([^\r]+)/i.exec(r.head)?.[1];
    const date = /\r\ndate: *([^\r]+)/i.exec(r.head)?.[1];
    const h = `HTTP/1.1 200 OK\r\nContent-Type: ${ct}\r\nDate: ${date}\r\nContent-Length: ${r.body.byteLength}\r\n\r\n`;
    out = Buffer.concat([enc.encode(h), r.body]);
  }
  s.write(out);
}

const handlers = {
  open(s: Socket<D>) {
    if (!s.data) s.data = { buf: "" };
  },
  data(s: Socket<D>, chunk: Buffer) {
    const d = s.data;
    if (!d || d.busy) return;
    if (!d.tls && d.connected) {
      // the ClientHello: terminate TLS with the leaf
      d.busy = true;
      const [, tls] = s.upgradeTLS<D>({
        data: { buf: "", tls: true },
        ...({ initialData: new Uint8Array(chunk) } as object),
        tls: { key, cert, ALPNProtocols: "\x08http/1.1" } as never,
        socket: handlers,
      });
      void tls;
      return;
    }
    d.buf += chunk.toString("latin1");
    const i = d.buf.indexOf("\r\n\r\n");
    if (i < 0) return;
    const head = d.buf.slice(0, i);
    d.buf = d.buf.slice(i + 4);
    if (!d.tls) {
      d.connected = true;
      s.write("HTTP/1.0 200 OK\r\n\r\n");
      return;
    }
    void serveRequest(s, head);
  },
  close() {},
  error() {},
  drain(s: Socket<D>) {
    const d = s.data?.drain;
    if (d) {
      s.data.drain = undefined;
      d();
    }
  },
};

Bun.listen<D>({ hostname: "127.0.0.1", port: cfg.listen.port, socket: handlers as never });
process.stderr.write(`time=0 level=INFO msg=listening port=${cfg.listen.port}\n`);
// a clean exit on SIGTERM, so that `bun --cpu-prof` (bench/cells.ts --prof) writes its profile
process.on("SIGTERM", () => process.exit(0));
