// Hostile-client wire helpers: send raw bytes to the proxy on the listener, inside a cleartext
// CONNECT tunnel or inside a TLS tunnel, collect what comes back, and split it into responses.
import { isIP, connect as netConnect, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { rng } from "../helpers/rng.ts";

export type Mode = "listener" | "plain-tunnel" | "tls-tunnel";

export function basicAuth(token: string, user = "u"): string {
  return `Basic ${Buffer.from(`${user}:${token}`).toString("base64")}`;
}

export function connectHead(target: string, token: string | null): string {
  return (
    `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n` +
    (token === null ? "" : `Proxy-Authorization: ${basicAuth(token)}\r\n`) +
    "\r\n"
  );
}

export interface ExchangeOptions {
  port: number;
  mode: Mode;
  /** The bytes sent on the listener, or inside the tunnel once it is up. */
  data: string | Uint8Array;
  /** Tunnels: the CONNECT head (default: connectHead(connectTarget, token)). */
  connect?: string;
  connectTarget?: string;
  token?: string;
  /** TLS tunnels: the proxy's CA (PEM) and the SNI to send (default: the CONNECT host). */
  ca?: string;
  servername?: string;
  /** Send `data` in pieces of this size, yielding to the event loop between them. */
  pieceSize?: number;
  /** Stop when this returns true for the bytes received so far (after the tunnel is up). */
  until?: (got: Buffer) => boolean;
  /** Stop when nothing arrived for this long after at least one byte (default: off). */
  quietMs?: number;
  /** Stop when nothing at all arrived this long after sending (default: timeoutMs). */
  noResponseMs?: number;
  timeoutMs?: number;
}

export interface ExchangeResult {
  /** Tunnels: the CONNECT answer's head ("" when none arrived). */
  connectAnswer: string;
  /** Whether the tunnel (and, for TLS, the handshake) was established. */
  tunnelUp: boolean;
  tlsError?: string;
  /** Bytes received after the tunnel was up (or everything, on the listener). */
  data: Buffer;
  /** The peer closed the connection (as opposed to us stopping on a timeout or predicate). */
  closedByPeer: boolean;
  timedOut: boolean;
}

export function exchange(o: ExchangeOptions): Promise<ExchangeResult> {
  const timeoutMs = o.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    const res: ExchangeResult = {
      connectAnswer: "",
      tunnelUp: o.mode === "listener",
      data: Buffer.alloc(0),
      closedByPeer: false,
      timedOut: false,
    };
    const chunks: Buffer[] = [];
    let finished = false;
    let quietTimer: ReturnType<typeof setTimeout> | undefined;
    let noRespTimer: ReturnType<typeof setTimeout> | undefined;
    let inner: Socket | TLSSocket | undefined;
    const raw = netConnect(o.port, "127.0.0.1");
    const finish = (byPeer: boolean, timedOut = false) => {
      if (finished) return;
      finished = true;
      clearTimeout(total);
      clearTimeout(quietTimer);
      clearTimeout(noRespTimer);
      res.closedByPeer = byPeer;
      res.timedOut = timedOut;
      res.data = Buffer.concat(chunks);
      inner?.destroy();
      raw.destroy();
      resolve(res);
    };
    const total = setTimeout(() => finish(false, true), timeoutMs);

    const onInner = (d: Buffer) => {
      chunks.push(Buffer.from(d));
      clearTimeout(noRespTimer);
      if (o.until?.(Buffer.concat(chunks))) return finish(false);
      if (o.quietMs !== undefined) {
        clearTimeout(quietTimer);
        quietTimer = setTimeout(() => finish(false), o.quietMs);
      }
    };
    const send = async (s: Socket | TLSSocket) => {
      const bytes = typeof o.data === "string" ? Buffer.from(o.data, "latin1") : Buffer.from(o.data);
      if (o.pieceSize) {
        for (let i = 0; i < bytes.length && !finished; i += o.pieceSize) {
          s.write(bytes.subarray(i, i + o.pieceSize));
          await new Promise((r) => setTimeout(r, 1));
        }
      } else if (bytes.length) s.write(bytes);
      if (o.noResponseMs !== undefined && chunks.length === 0)
        noRespTimer = setTimeout(() => finish(false, true), o.noResponseMs);
    };

    raw.on("error", () => finish(true));
    raw.on("close", () => {
      if (!inner || o.mode !== "tls-tunnel") finish(true);
    });
    if (o.mode === "listener") {
      inner = raw;
      raw.on("connect", () => void send(raw));
      raw.on("data", onInner);
      return;
    }
    const connect = o.connect ?? connectHead(o.connectTarget ?? "", o.token ?? "");
    raw.on("connect", () => raw.write(connect));
    let head = Buffer.alloc(0);
    const onHead = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      raw.off("data", onHead);
      res.connectAnswer = head.subarray(0, end + 4).toString("latin1");
      const rest = head.subarray(end + 4);
      if (!res.connectAnswer.startsWith("HTTP/1.0 200") && !res.connectAnswer.startsWith("HTTP/1.1 200")) {
        // refused: whatever follows is part of the answer
        chunks.push(rest);
        raw.on("data", (x: Buffer) => chunks.push(Buffer.from(x)));
        setTimeout(() => finish(false), 200);
        return;
      }
      if (o.mode === "plain-tunnel") {
        res.tunnelUp = true;
        inner = raw;
        if (rest.length) onInner(rest);
        raw.on("data", onInner);
        void send(raw);
        return;
      }
      const host = (o.connectTarget ?? "").replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
      const sni = o.servername ?? host;
      let t: TLSSocket;
      try {
        t = tlsConnect({
          socket: raw,
          ca: o.ca,
          // no SNI for an IP literal (RFC 6066; node refuses to send one)
          ...(sni && !isIP(sni.replace(/^\[|\]$/g, "")) ? { servername: sni } : {}),
          ALPNProtocols: ["http/1.1"],
          // the fuzzer sends odd SNIs on purpose; the chain is still checked against the proxy's CA
          checkServerIdentity: () => undefined,
        });
      } catch (e) {
        res.tlsError = (e as Error).message;
        return finish(false);
      }
      inner = t;
      t.on("secureConnect", () => {
        res.tunnelUp = true;
        void send(t);
      });
      t.on("data", onInner);
      t.on("error", (e) => {
        if (!res.tunnelUp) res.tlsError = e.message;
        finish(true);
      });
      t.on("close", () => finish(true));
    };
    raw.on("data", onHead);
  });
}

export interface ParsedResponse {
  status: number;
  version: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Head and body complete as framed. */
  complete: boolean;
}

export function header(r: { headers: Array<[string, string]> }, name: string): string | undefined {
  return r.headers.find(([k]) => k.toLowerCase() === name)?.[1];
}

/**
 * Split a byte stream into HTTP/1.x responses. A body announced with Content-Length that is
 * immediately followed by another status line is taken as empty (the answer to a HEAD); bodies
 * never start with "HTTP/1." here. Interim 1xx responses are returned too.
 */
export function parseResponses(buf: Buffer): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf("\r\n\r\n", off);
    if (end < 0) {
      if (buf.subarray(off, off + 5).toString("latin1") === "HTTP/")
        out.push({ status: 0, version: "", headers: [], body: buf.subarray(off), complete: false });
      break;
    }
    const lines = buf.subarray(off, end).toString("latin1").split("\r\n");
    const m = /^(HTTP\/\d\.\d) (\d{3})/.exec(lines[0] ?? "");
    if (!m) break;
    const headers: Array<[string, string]> = [];
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers.push([l.slice(0, i), l.slice(i + 1).trim()]);
    }
    const status = Number(m[2]);
    let p = end + 4;
    const r: ParsedResponse = { status, version: m[1]!, headers, body: Buffer.alloc(0), complete: true };
    out.push(r);
    const cl = header(r, "content-length");
    const te = header(r, "transfer-encoding");
    const startsHttp = buf.subarray(p, p + 7).toString("latin1") === "HTTP/1.";
    if ((status >= 100 && status < 200) || status === 204 || status === 304 || startsHttp) {
      off = p;
      continue;
    }
    if (te && /chunked/i.test(te)) {
      const parts: Buffer[] = [];
      let ok = false;
      for (;;) {
        const nl = buf.indexOf("\r\n", p);
        if (nl < 0) break;
        const size = parseInt(buf.subarray(p, nl).toString("latin1"), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const t = buf.indexOf("\r\n", nl + 2);
          p = t < 0 ? buf.length : t + 2;
          ok = t >= 0;
          break;
        }
        if (buf.length < nl + 2 + size + 2) {
          parts.push(buf.subarray(nl + 2));
          p = buf.length;
          break;
        }
        parts.push(buf.subarray(nl + 2, nl + 2 + size));
        p = nl + 2 + size + 2;
      }
      r.body = Buffer.concat(parts);
      r.complete = ok;
      off = p;
      continue;
    }
    if (cl !== undefined && /^\d+$/.test(cl)) {
      const n = Number(cl);
      r.body = buf.subarray(p, p + n);
      r.complete = r.body.length === n;
      off = p + n;
      continue;
    }
    // close-delimited
    r.body = buf.subarray(p);
    off = buf.length;
  }
  return out;
}

/** Whether `buf` holds `n` complete responses (interim 1xx not counted). */
export function hasResponses(n: number): (buf: Buffer) => boolean {
  return (buf) => parseResponses(buf).filter((r) => r.complete && (r.status < 100 || r.status >= 200)).length >= n;
}

/** Printable form of raw bytes for reproducers: JS string literal escapes. */
export function escapeBytes(b: Uint8Array | string): string {
  const s = typeof b === "string" ? b : Buffer.from(b).toString("latin1");
  let out = "";
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "\r") out += "\\r";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c >= 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `"${out}"`;
}

/** Every form a secret may take on the wire or in text: raw, percent-encoded, base64 at any alignment. */
export function secretForms(secret: string): Buffer[] {
  const forms = new Set<string>([
    secret,
    encodeURIComponent(secret),
    encodeURIComponent(secret).replace(/%20/g, "+"),
    JSON.stringify(secret).slice(1, -1),
  ]);
  for (const pad of ["", "x", "xx"]) {
    const b64 = Buffer.from(pad + secret).toString("base64");
    // drop the characters that depend on neighbouring bytes
    const start = pad.length === 0 ? 0 : pad.length === 1 ? 4 : 4;
    const inner = b64.slice(start, b64.length - 4);
    if (inner.length >= 8) forms.add(inner);
  }
  return [...forms].map((f) => Buffer.from(f, "latin1"));
}

export function containsAny(hay: Uint8Array | string, forms: Buffer[]): Buffer | null {
  const h =
    typeof hay === "string" ? Buffer.from(hay, "latin1") : Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength);
  for (const f of forms) if (h.indexOf(f) >= 0) return f;
  return null;
}

export type JunkKind = "garbage-record" | "truncated-hello" | "random-after-0x16" | "close-mid-handshake";
export const JUNK_KINDS: JunkKind[] = ["garbage-record", "truncated-hello", "random-after-0x16", "close-mid-handshake"];

/**
 * An authenticated CONNECT followed by junk where the ClientHello should be; the client closes
 * its side shortly after. Resolves with whatever the proxy answered after the CONNECT's 200.
 */
export function junkHandshake(port: number, token: string, target: string, kind: JunkKind, seed = 1): Promise<string> {
  const rand = rng(seed);
  let junk: Buffer;
  switch (kind) {
    case "garbage-record":
      junk = Buffer.from("\x16\x03\x01\x00\x07garbage", "latin1");
      break;
    case "truncated-hello":
      // a ClientHello record header announcing 512 bytes, then 38 of them
      junk = Buffer.concat([
        Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
        Buffer.from(Array.from({ length: 32 }, () => Math.floor(rand() * 256))),
        Buffer.from([0x20, 0x01, 0x02]),
      ]);
      break;
    case "random-after-0x16":
      junk = Buffer.concat([
        Buffer.from([0x16]),
        Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 300) }, () => Math.floor(rand() * 256))),
      ]);
      break;
    default:
      junk = Buffer.alloc(0);
  }
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1", () => s.write(connectHead(target, token)));
    let got = "";
    let up = false;
    const done = () => resolve(got);
    const timer = setTimeout(() => s.destroy(), 3000);
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (up || !got.includes("\r\n\r\n")) return;
      up = true;
      if (!got.startsWith("HTTP/1.0 200")) return s.destroy();
      got = "";
      if (kind === "close-mid-handshake") {
        // a real ClientHello, then the client vanishes before the handshake can finish
        const t = tlsConnect({ socket: s, servername: target.replace(/:\d+$/, ""), rejectUnauthorized: false });
        t.on("error", () => {});
        setTimeout(() => {
          t.destroy();
          s.destroy();
        }, 5);
        return;
      }
      s.write(junk);
      setTimeout(() => s.destroy(), 50);
    });
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      done();
    });
  });
}

/** The first flight of a real TLS client (a ClientHello naming `servername`), as bytes. */
export function clientHelloBytes(servername: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const wire = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        resolve(Buffer.from(chunk));
        cb();
      },
    });
    tlsConnect({ socket: wire, servername, rejectUnauthorized: false }).on("error", () => {});
  });
}

/**
 * An authenticated CONNECT, then a real ClientHello, then nothing: the handshake never completes
 * (the proxy's answer is read and dropped). Resolves with the open socket once the hello is sent.
 */
export function stalledHandshake(port: number, token: string, target: string, hello: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, "127.0.0.1", () => s.write(connectHead(target, token)));
    let head = "";
    s.on("data", (d: Buffer) => {
      if (head.includes("\r\n\r\n")) return; // the proxy's ServerHello and the rest: never answered
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      if (!head.startsWith("HTTP/1.0 200")) return reject(new Error(`CONNECT answered ${head.split("\r\n")[0]}`));
      s.write(hello, () => resolve(s));
    });
    s.on("error", reject);
  });
}
