// The generative fuzzer's corpus and mutators (pure and seeded: the same seed gives the same cases).
//
// A case is a mode (on the listener as absolute-form requests, inside a cleartext CONNECT tunnel,
// inside a TLS tunnel), the CONNECT head and SNI for tunnels, and the bytes sent. The corpus holds
// valid requests (GET/POST with bodies, chunked, keep-alive pairs, absolute-form, query strings, a
// WebSocket handshake, Expect, every method); each case applies 1–3 mutations at byte level (flip,
// insert CR/LF/NUL/@/#/\/space/*, dictionary tokens, truncate, duplicate, delete), token level
// (method, target, version, header names and values, Host, Content-Length/Transfer-Encoding
// combinations) or header level (add/remove/duplicate Host, X-Clef-Service, Proxy-Authorization,
// Connection, Upgrade).
import { rng } from "../helpers/rng.ts";
import { basicAuth, connectHead, type Mode } from "./wire.ts";

export interface FuzzCase {
  id: number;
  mode: Mode;
  /** Tunnels: the CONNECT head sent first, the CONNECT target and the SNI. */
  connect?: string;
  connectTarget?: string;
  servername?: string;
  /** Bytes sent (latin1 string: one char per byte). */
  data: string;
  /** What was done to the seed, for reports. */
  ops: string[];
  seed: string;
}

export interface FuzzPorts {
  /** Upstream ports shared by every recorder (and the attacker). */
  tls: number;
  plain: number;
}

type Rand = () => number;

const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

interface Ctx {
  mode: Mode;
  host: string;
  port: number;
  scheme: "http" | "https";
  token: string;
}

/** One request in the form the mode wants (absolute-form and Proxy-Authorization on the listener). */
function req(c: Ctx, method: string, path: string, headers: string[] = [], body = ""): string {
  const authority = `${c.host}:${c.port}`;
  const target = c.mode === "listener" && path.startsWith("/") ? `http://${authority}${path}` : path;
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${authority}`];
  if (c.mode === "listener") lines.push(`Proxy-Authorization: ${basicAuth(c.token)}`);
  lines.push(...headers);
  return lines.join("\r\n") + "\r\n\r\n" + body;
}

const SEEDS: Array<[string, (c: Ctx) => string]> = [
  ["get", (c) => req(c, "GET", "/fz/a?x=1&y=two", ["User-Agent: fz/1", "Accept: */*"])],
  ["post-cl", (c) => req(c, "POST", "/fz/post", ["Content-Type: application/json", "Content-Length: 7"], '{"a":1}')],
  [
    "post-chunked",
    (c) => req(c, "POST", "/fz/chunked", ["Transfer-Encoding: chunked"], "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
  ],
  ["keepalive-pair", (c) => req(c, "GET", "/fz/one") + req(c, "GET", "/fz/two", ["Connection: close"])],
  ["post-then-get", (c) => req(c, "POST", "/fz/p1", ["Content-Length: 3"], "abc") + req(c, "GET", "/fz/p2")],
  ["absolute", (c) => req(c, "GET", `${c.scheme}://${c.host}:${c.port}/fz/abs?z=9`)],
  ["query", (c) => req(c, "GET", "/fz/q?key=old&a=1;b=2&c=%20&d&key=again")],
  [
    "websocket",
    (c) =>
      req(c, "GET", "/fz/ws", [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
      ]),
  ],
  ["expect", (c) => req(c, "POST", "/fz/expect", ["Expect: 100-continue", "Content-Length: 4"], "data")],
  ["head", (c) => req(c, "HEAD", "/fz/head")],
  ["put", (c) => req(c, "PUT", "/fz/put", ["Content-Length: 2"], "{}")],
  ["delete", (c) => req(c, "DELETE", "/fz/del")],
  ["options", (c) => req(c, "OPTIONS", "/fz/opt")],
  ["patch", (c) => req(c, "PATCH", "/fz/patch", ["Content-Length: 2"], "[]")],
  ["http10", (c) => req(c, "GET", "/fz/10", ["Connection: keep-alive"]).replace(" HTTP/1.1\r\n", " HTTP/1.0\r\n")],
  ["service-header", (c) => req(c, "GET", "/fz/svc", ["X-Clef-Service: api"])],
  ["auth-header", (c) => req(c, "GET", "/fz/auth", ["Authorization: Bearer workload-own", "X-Clef-Request-Id: fz"])],
];

const SPECIAL_BYTES = ["\r", "\n", "\0", "@", "#", "\\", " ", "*", "\t", ":", "/", "%", "?", "\r\n", "\x7f", "\xff"];

function dictionary(c: Ctx, ports: FuzzPorts): string[] {
  return [
    "@evil.test",
    `@127.0.0.2:${c.port}`,
    `@evil.test:${ports.tls}`,
    "evil.test",
    "127.0.0.2",
    "%40evil.test",
    "%00",
    "#frag",
    "?a#b",
    "\r\nHost: evil.test\r\n",
    "\r\nX-Injected: 1\r\n",
    "\r\n\r\n",
    "//evil.test",
    "..",
    "\\@evil.test",
    "\r\nTransfer-Encoding: chunked\r\n",
    "\r\nContent-Length: 5\r\n",
    ".x.w.test",
    ".p",
    "z.x.w.test",
    "&sig=mine",
    "\r\nX-Api-Key: mine\r\n",
  ];
}

function targets(c: Ctx, ports: FuzzPorts): string[] {
  const other = c.scheme === "https" ? "http" : "https";
  return [
    "@evil.test/x",
    `@127.0.0.2:${c.port}/x`,
    `@evil.test:${c.port}/x`,
    "evil.test/x",
    "\\@evil.test/x",
    "//evil.test/x",
    "/x#frag",
    "/x?a#b",
    "?a#b",
    "*",
    "",
    `http://a@evil.test/`,
    `${c.scheme}://${c.host}:${c.port}@evil.test/x`,
    `${c.scheme}://u:p@${c.host}:${c.port}/x`,
    `${c.scheme}://evil.test:${c.port}/x`,
    `${c.scheme}://127.0.0.2:${c.port}/x`,
    `${other}://${c.host}:${c.port}/x`,
    `${c.scheme}://${c.host.toUpperCase()}.:${c.port}/abs`,
    `${c.scheme}://${c.host}:${c.port}/abs`,
    `${c.scheme}://${c.host}:${ports.tls === c.port ? ports.plain : ports.tls}/other-port`,
    "/%2e%2e/x",
    "/x y",
    "/x\ty",
    "/" + "a".repeat(5000),
    "%40evil.test/x",
    "/x?key=inj&key=2",
    "/fz?key=",
    "/x?sig=inj&sig=2",
    `${c.scheme}://z.x.w.test:${c.port}/x`,
    `${c.scheme}://w.test:${c.port}/x`,
    `${c.scheme}://a.p.w.test:${c.port}/x`,
    `${c.scheme}://c4.w.test:${c.port}/x`,
  ];
}

function hostValues(c: Ctx): string[] {
  return [
    "evil.test",
    `127.0.0.2:${c.port}`,
    `${c.host}@evil.test`,
    `${c.host}:${c.port}@evil.test`,
    "*.api.test",
    `${c.host}:1`,
    "",
    `${c.host} evil.test`,
    `${c.host.toUpperCase()}.`,
    `[::1]:${c.port}`,
    `evil.test:${c.port}`,
    `${c.host}:${c.port}, evil.test`,
    `${c.host}:${c.port}\0`,
    "pass.test",
    "q.test",
    "api.test",
    // Phase 2 policy: the apex, a blocked name, the passthrough inside the wildcard, the exact
    // service inside it, a deeper name, the CIDR-blocked name, a `*`
    "w.test",
    "z.x.w.test",
    "blk.test",
    "a.p.w.test",
    "e.w.test",
    "b.c.w.test",
    "c4.w.test",
    "*.w.test",
    `a.w.test.:${c.port}`,
  ];
}

const METHODS = [
  "GET",
  "POST",
  "HEAD",
  "PUT",
  "DELETE",
  "OPTIONS",
  "PATCH",
  "CONNECT",
  "TRACE",
  "FOO",
  "get",
  "patch",
  "PRI",
  "G ET",
  "",
  "GET\0",
  "M".repeat(300),
];
const VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "HTTP/1.1x", "http/1.1", "HTTP/1", "", "HTTP/1.1 "];
const FRAMING = [
  "Content-Length: 100",
  "Content-Length: 0",
  "Content-Length: -1",
  "Content-Length: 5, 6",
  "Content-Length: 0x10",
  "Content-Length: 99999999999999999999",
  "Transfer-Encoding: chunked",
  "Transfer-Encoding: gzip, chunked",
  "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
  "Transfer-Encoding: chunked\r\nContent-Length: 3",
  "Transfer-Encoding:  chunked",
  "Transfer-Encoding: xchunked",
];

/** Split the first request's head into lines and the rest (body and further requests). */
function splitHead(s: string): { lines: string[]; rest: string } | null {
  const end = s.indexOf("\r\n\r\n");
  if (end < 0) return null;
  return { lines: s.slice(0, end).split("\r\n"), rest: s.slice(end + 4) };
}

function joinHead(lines: string[], rest: string): string {
  return lines.join("\r\n") + "\r\n\r\n" + rest;
}

type Mutator = (r: Rand, s: string, c: Ctx, ports: FuzzPorts) => [string, string];

const BYTE: Mutator[] = [
  (r, s) => {
    if (!s.length) return [s, "flip(empty)"];
    const i = int(r, 0, s.length - 1);
    const b = r() < 0.5 ? s.charCodeAt(i) ^ (1 << int(r, 0, 7)) : int(r, 0, 255);
    return [s.slice(0, i) + String.fromCharCode(b) + s.slice(i + 1), `flip@${i}`];
  },
  (r, s) => {
    const i = int(r, 0, s.length);
    const ch = pick(r, SPECIAL_BYTES);
    return [s.slice(0, i) + ch + s.slice(i), `insert(${JSON.stringify(ch)})@${i}`];
  },
  (r, s, c, p) => {
    const i = int(r, 0, s.length);
    const t = pick(r, dictionary(c, p));
    return [s.slice(0, i) + t + s.slice(i), `insert(${JSON.stringify(t)})@${i}`];
  },
  (r, s) => {
    const i = int(r, 0, s.length);
    return [s.slice(0, i), `truncate@${i}`];
  },
  (r, s) => {
    const i = int(r, 0, s.length);
    const n = int(r, 1, Math.min(64, Math.max(1, s.length - i)));
    return [s.slice(0, i + n) + s.slice(i, i + n) + s.slice(i + n), `duplicate@${i}+${n}`];
  },
  (r, s) => {
    const i = int(r, 0, s.length);
    const n = int(r, 1, 16);
    return [s.slice(0, i) + s.slice(i + n), `delete@${i}+${n}`];
  },
];

const TOKEN: Mutator[] = [
  (r, s) => {
    const h = splitHead(s);
    if (!h) return [s, "method(nohead)"];
    const parts = h.lines[0]!.split(" ");
    const m = pick(r, METHODS);
    parts[0] = m;
    h.lines[0] = parts.join(" ");
    return [joinHead(h.lines, h.rest), `method=${JSON.stringify(m)}`];
  },
  (r, s, c, p) => {
    const h = splitHead(s);
    if (!h) return [s, "target(nohead)"];
    const parts = h.lines[0]!.split(" ");
    let t: string;
    if (r() < 0.3 && parts.length >= 2) {
      // prepend a userinfo-looking prefix to the target as it is
      t = pick(r, ["@evil.test", `@127.0.0.2:${c.port}`, "evil.test", "\\@evil.test", "/"]) + parts[1];
    } else t = pick(r, targets(c, p));
    if (parts.length >= 3) parts[1] = t;
    else parts.splice(1, 0, t);
    h.lines[0] = parts.join(" ");
    return [joinHead(h.lines, h.rest), `target=${JSON.stringify(t.length > 60 ? t.slice(0, 60) + "…" : t)}`];
  },
  (r, s) => {
    const h = splitHead(s);
    if (!h) return [s, "version(nohead)"];
    const parts = h.lines[0]!.split(" ");
    const v = pick(r, VERSIONS);
    parts[parts.length - 1] = v;
    h.lines[0] = parts.join(" ");
    return [joinHead(h.lines, h.rest), `version=${JSON.stringify(v)}`];
  },
  (r, s) => {
    const h = splitHead(s);
    if (!h || h.lines.length < 2) return [s, "hname(nohead)"];
    const i = int(r, 1, h.lines.length - 1);
    const l = h.lines[i]!;
    const c = l.indexOf(":");
    const name = c > 0 ? l.slice(0, c) : l;
    const variant = pick(r, [
      name + " ",
      " " + name,
      name.toUpperCase(),
      name.toLowerCase(),
      name + "\0",
      name.replace(/-/g, "_"),
      name + "@",
      "",
    ]);
    h.lines[i] = variant + (c > 0 ? l.slice(c) : "");
    return [joinHead(h.lines, h.rest), `header-name[${i}]=${JSON.stringify(variant)}`];
  },
  (r, s) => {
    const h = splitHead(s);
    if (!h || h.lines.length < 2) return [s, "hvalue(nohead)"];
    const i = int(r, 1, h.lines.length - 1);
    const l = h.lines[i]!;
    const c = l.indexOf(":");
    if (c < 0) return [s, "hvalue(nocolon)"];
    const v = l.slice(c + 1);
    const variant = pick(r, [
      v + "\r",
      v + "\n",
      v + "\0",
      v + "@evil.test",
      v + "#x",
      " " + "v".repeat(9000),
      v + "\r\n X-Fold: 1",
      v + ",",
      "",
    ]);
    h.lines[i] = l.slice(0, c + 1) + variant;
    return [joinHead(h.lines, h.rest), `header-value[${i}]`];
  },
  (r, s, c) => {
    const h = splitHead(s);
    if (!h) return [s, "host(nohead)"];
    const v = pick(r, hostValues(c));
    const i = h.lines.findIndex((l) => /^host:/i.test(l));
    if (i > 0) h.lines[i] = `Host: ${v}`;
    else h.lines.splice(1, 0, `Host: ${v}`);
    return [joinHead(h.lines, h.rest), `host=${JSON.stringify(v)}`];
  },
  (r, s) => {
    const h = splitHead(s);
    if (!h) return [s, "framing(nohead)"];
    const f = pick(r, FRAMING);
    if (r() < 0.5) h.lines = h.lines.filter((l) => !/^(content-length|transfer-encoding):/i.test(l));
    h.lines.push(f);
    return [joinHead(h.lines, h.rest), `framing=${JSON.stringify(f)}`];
  },
];

const HEADER_NAMES: Array<[string, (c: Ctx) => string[]]> = [
  ["Host", (c) => [`${c.host}:${c.port}`, "evil.test", c.host]],
  ["X-Clef-Service", () => ["api", "q", "vault", "pass", "", "evil", "gh", "exact", "git"]],
  ["Proxy-Authorization", (c) => [basicAuth(c.token), basicAuth("wrong"), "Basic !!!", `Bearer ${c.token}`]],
  [
    "Connection",
    () => ["close", "keep-alive", "Upgrade", "Host", "X-Clef-Request-Id", "Authorization, Proxy-Authorization"],
  ],
  ["Upgrade", () => ["h2c", "websocket", "TLS/1.2"]],
  ["HTTP2-Settings", () => ["AAMAAABkAARAAAAAAAIAAAAA"]],
  ["X-Clef-Request-Id", () => ["fuzz-id"]],
  ["Authorization", () => ["Bearer fuzz-own", "Basic Zm9vOmJhcg=="]],
  ["X-Api-Key", () => ["mine", ""]],
  ["Expect", () => ["100-continue", "nonsense"]],
];

const HEADER: Mutator[] = [
  (r, s, c) => {
    const h = splitHead(s);
    if (!h) return [s, "add(nohead)"];
    const [name, values] = pick(r, HEADER_NAMES);
    const v = pick(r, values(c));
    h.lines.splice(int(r, 1, h.lines.length), 0, `${name}: ${v}`);
    return [joinHead(h.lines, h.rest), `add ${name}: ${JSON.stringify(v)}`];
  },
  (r, s) => {
    const h = splitHead(s);
    if (!h) return [s, "remove(nohead)"];
    const [name] = pick(r, HEADER_NAMES);
    const before = h.lines.length;
    h.lines = h.lines.filter((l, i) => i === 0 || !l.toLowerCase().startsWith(name.toLowerCase() + ":"));
    return [joinHead(h.lines, h.rest), `remove ${name}${before === h.lines.length ? " (absent)" : ""}`];
  },
  (r, s) => {
    const h = splitHead(s);
    if (!h || h.lines.length < 2) return [s, "dup(nohead)"];
    const i = int(r, 1, h.lines.length - 1);
    h.lines.splice(int(r, 1, h.lines.length), 0, h.lines[i]!);
    return [joinHead(h.lines, h.rest), `duplicate ${h.lines[i]!.split(":")[0]}`];
  },
];

export interface GenOptions {
  seed: number;
  count: number;
  ports: FuzzPorts;
  token: string;
}

/** The fuzz cases for a seed, in order. */
export function generateCases(o: GenOptions): FuzzCase[] {
  const r = rng(o.seed);
  const out: FuzzCase[] = [];
  for (let id = 0; id < o.count; id++) {
    const mode: Mode = pick(r, ["listener", "plain-tunnel", "tls-tunnel"] as const);
    const host = pick(r, [
      "api.test",
      "api.test",
      "api.test",
      "q.test",
      "q.test",
      "pass.test",
      "pass.test",
      "vault.test",
      // Phase 2 (test/security/world.ts): template under a wildcard and its extra host, the exact
      // service inside the wildcard, basic, the passthrough wildcard inside the service's
      "a.w.test",
      "b.c.w.test",
      "w2.test",
      "e.w.test",
      "b.test",
      "a.p.w.test",
      // well-formed requests for names that must be refused: blocked (by pattern, by exact name, by
      // the CIDR of their address) and the wildcard's apex; all of them are placed at the attacker
      "z.x.w.test",
      "blk.test",
      "c4.w.test",
      "w.test",
    ]);
    const tls = mode === "tls-tunnel";
    const c: Ctx = {
      mode,
      host,
      port: tls ? o.ports.tls : o.ports.plain,
      scheme: tls ? "https" : "http",
      token: o.token,
    };
    const [seedName, seed] = pick(r, SEEDS);
    let data = seed(c);
    const ops: string[] = [];
    if (r() >= 0.05) {
      const n = int(r, 1, 3);
      for (let k = 0; k < n; k++) {
        const x = r();
        const family = x < 0.35 ? BYTE : x < 0.7 ? TOKEN : HEADER;
        const [next, op] = pick(r, family)(r, data, c, o.ports);
        data = next;
        ops.push(op);
      }
    } else ops.push("unmutated");
    const fc: FuzzCase = { id, mode, data, ops, seed: seedName };
    if (mode !== "listener") {
      let target = `${host}:${c.port}`;
      let sni: string | undefined;
      if (r() < 0.1) {
        target = pick(r, [
          `evil.test:${c.port}`,
          `127.0.0.2:${c.port}`,
          `pass.test:${c.port}`,
          `q.test:${c.port}`,
          `api.test:${c.port}`,
          `*.api.test:${c.port}`,
          `${host}`,
          `w.test:${c.port}`,
          `z.x.w.test:${c.port}`,
          `blk.test:${c.port}`,
          `c4.w.test:${c.port}`,
          `a.p.w.test:${c.port}`,
          `*.w.test:${c.port}`,
        ]);
        ops.push(`connect=${target}`);
      }
      if (tls && r() < 0.05) {
        sni = pick(r, [
          "evil.test",
          "pass.test",
          "*.api.test",
          "API.TEST.",
          "z.x.w.test",
          "w.test",
          "a.p.w.test",
          "e.w.test",
        ]);
        ops.push(`sni=${sni}`);
      }
      fc.connectTarget = target;
      fc.connect = connectHead(target, o.token);
      fc.servername = sni ?? target.replace(/:\d+$/, "");
    }
    out.push(fc);
  }
  return out;
}

/** How many requests the bytes seem to carry (request lines), at least 1. */
export function estimatedRequests(data: string): number {
  return Math.max(1, (data.match(/ HTTP\/[0-9.]+\s*\r?\n/g) ?? []).length);
}
