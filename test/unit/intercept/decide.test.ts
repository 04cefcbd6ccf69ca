// src/intercept/decide.ts: the decision for one request, table-driven (shared/PHASE2.md §1.6, §1.7;
// docs/CONTRACT.md §8, §18.1, §18.20). Every refusal with its status, body (parsed), headers
// (X-Clef-Proxy-Error on the refusals added since Phase 1, none on Phase 1's) and audit; every
// precedence rule (R1 target/method > R2 host syntax > R2 one host (421) > R4 blocked > R6
// classification > R9 handles and usability); and the routes of forwards.
import { describe, expect, test } from "bun:test";
import type { Manifest, Service } from "../../../src/agent/types.ts";
import { parseRequestHead, type RequestHead } from "../../../src/http/h1-request.ts";
import {
  createPolicy,
  type Decision,
  decide,
  hostAsSent,
  isWebSocketHandshake,
  type Route,
  type TunnelFacts,
} from "../../../src/intercept/decide.ts";
import type { Refusal } from "../../../src/intercept/refusal.ts";

const svc = (name: string, host: string, auth: Partial<Service["auth"]> = {}, hosts?: string[]): Service => ({
  name,
  host,
  ...(hosts ? { hosts } : {}),
  auth: { scheme: "bearer", credential: "ns/K", ...auth },
});

const manifest: Manifest = {
  schemaVersion: 1,
  identity: "id",
  environment: "test",
  services: [
    svc("gh", "api.test"),
    svc("wild", "*.wild.test"),
    svc("dup2", "dup.test"),
    svc("dup1", "dup.test"),
    svc("zeta", "*.dupw.test"),
    svc("alpha", "*.dupw.test"),
    svc("one", "one.dupw.test"),
    svc("svc-bad", "svc.bad.test"),
    svc("amb-a", "amb.bad.test"),
    svc("amb-b", "amb.bad.test"),
    svc("ip", "10.0.0.5"),
    svc("v6", "[2001:db8::5]"),
    svc("mh", "mh.test", { credential: "noslash" }),
    svc("ii", "ii.test", { credential: "ns.a/k" }),
    svc("ik", "ik.test", { credential: "ns/b/c" }),
    svc("un", "un.test", { scheme: "api_key_header" }),
    svc("unk", "unk.test", { scheme: "Bearer" }),
    svc("mh-unk", "mhunk.test", { scheme: "Bearer", credential: "noslash" }),
    svc("badpat", "badpat.test", {}, ["bad pattern!"]),
    svc("basic", "basic.test", { scheme: "basic", usernameCredential: "ns/USER", credential: "ns/PASS" }),
    svc("basic-bad", "basicbad.test", { scheme: "basic", usernameCredential: "nouser", credential: "ns/PASS" }),
    svc("mixed-mh", "mixed.test", { credential: "noslash" }),
    svc("mixed-ok", "mixed.test"),
  ],
  passthroughHosts: ["pass.test", "*.pw.test", "::1", "gh-too.test", "api.test"],
  blockedHosts: ["blocked.test", "*.bad.test", "10.9.9.9"],
};
const policy = createPolicy(manifest);

/** A request head through the real parser. */
function head(line: string, fields: string[] = []): RequestHead {
  const r = parseRequestHead([line, ...fields].join("\r\n"), 200);
  if (r.kind !== "ok") throw new Error(`test head does not parse: ${JSON.stringify(r)}`);
  return r.head;
}

const tls = (host: string, port = "443", sni?: string): TunnelFacts => ({
  connect: { host, port },
  ...(sni !== undefined ? { sni } : {}),
  plain: false,
});
const cleartext = (host: string, port = "80"): TunnelFacts => ({ connect: { host, port }, plain: true });

function refused(d: Decision): Refusal {
  if (d.kind !== "refuse") throw new Error(`expected a refusal, got ${JSON.stringify(d)}`);
  return d.refusal;
}
function forwarded(d: Decision): Route {
  if (d.kind !== "forward") throw new Error(`expected a forward, got ${JSON.stringify(d.refusal)}`);
  return d.route;
}

/** A JSON refusal body: Go json.Encoder (keys sorted, trailing newline), parsed. */
function json(r: Refusal): Record<string, unknown> {
  expect(r.text).toBeUndefined();
  expect(r.body.endsWith("}\n")).toBe(true);
  const o = JSON.parse(r.body) as Record<string, unknown>;
  expect(Object.keys(o)).toEqual(Object.keys(o).sort());
  return o;
}

interface Want {
  status: number;
  body: Record<string, unknown> | string;
  /** The X-Clef-Proxy-Error reason (refusals added since Phase 1); absent → no headers at all. */
  reason?: string;
  audit: Refusal["audit"];
}

function expectRefusal(r: Refusal, want: Want): void {
  expect(r.status).toBe(want.status);
  if (typeof want.body === "string") {
    expect(r.text).toBe(true);
    expect(r.body).toBe(want.body);
  } else expect(json(r)).toEqual(want.body);
  if (want.reason) expect(r.headers).toEqual([["X-Clef-Proxy-Error", want.reason]]);
  else expect(r.headers).toBeUndefined();
  expect(r.audit).toEqual(want.audit);
}

type Row = [name: string, head: RequestHead, tunnel: TunnelFacts | null, want: Want];

const denied = (fields?: Record<string, unknown>): Refusal["audit"] =>
  fields ? { status: "denied", fields } : { status: "denied" };
const agentError = (service: string, credentialHandle: string): Refusal["audit"] => ({
  status: "agent_error",
  fields: { service, credentialHandle },
});
const MISDIRECTED = "clef-proxy: misdirected request: the request names more than one host";
const misdirected = (host: string, detail: string): Want => ({
  status: 421,
  body: { detail, error: MISDIRECTED, host },
  audit: denied(),
});
const notInManifest = (host: string): Want => ({
  status: 403,
  body: { error: `host ${JSON.stringify(host)} not in clef-proxy manifest`, host },
  audit: denied(),
});
const blocked = (host: string, pattern: string): Want => ({
  status: 403,
  body: { error: `host ${JSON.stringify(host)} is blocked by clef-proxy policy`, host, reason: "blocked_host" },
  reason: "blocked_host",
  audit: denied({ reason: "blocked_host", hostPattern: pattern }),
});
const ambiguous = (host: string, candidates: string[], pattern?: string): Want => ({
  status: 400,
  body: {
    candidates,
    error: `multiple services match host ${JSON.stringify(host)}; set X-Clef-Service header to one of these`,
  },
  audit: denied(pattern ? { hostPattern: pattern } : {}),
});
const invalidHost = (host: string): Want => ({
  status: 400,
  body: { error: "clef-proxy: invalid host name", host, reason: "invalid_host" },
  reason: "invalid_host",
  audit: denied({ reason: "invalid_host" }),
});
const unsupportedMethod = (host: string, method: string): Want => ({
  status: 501,
  body: { error: `clef-proxy: method ${JSON.stringify(method)} is not supported`, host, reason: "unsupported_method" },
  reason: "unsupported_method",
  audit: denied({ reason: "unsupported_method" }),
});
const BAD_TARGET: Want = { status: 400, body: "400 Bad Request", audit: null };

function runRows(rows: Row[]): void {
  for (const [name, h, tunnel, want] of rows) {
    test(name, () => {
      expectRefusal(refused(decide(h, tunnel, policy)), want);
    });
  }
}

describe("R1: request-target and method", () => {
  runRows([
    [
      "`@evil.test/x` → plain 400, no audit line",
      head("GET @evil.test/x HTTP/1.1", ["Host: api.test"]),
      tls("api.test"),
      BAD_TARGET,
    ],
    ["`evil.test/x` → plain 400", head("GET evil.test/x HTTP/1.1", ["Host: api.test"]), tls("api.test"), BAD_TARGET],
    ["a fragment → plain 400", head("GET /x#y HTTP/1.1", ["Host: api.test"]), tls("api.test"), BAD_TARGET],
    ["userinfo → plain 400", head("GET http://u:p@api.test/ HTTP/1.1", ["Host: api.test"]), null, BAD_TARGET],
    ["`%40` in the authority → plain 400", head("GET http://a%40api.test/ HTTP/1.1", []), null, BAD_TARGET],
    ["ftp:// → plain 400", head("GET ftp://api.test/ HTTP/1.1", ["Host: api.test"]), null, BAD_TARGET],
    ["`*` with GET → plain 400", head("GET * HTTP/1.1", ["Host: api.test"]), tls("api.test"), BAD_TARGET],
    [
      "OPTIONS * → 501 unsupported_target",
      head("OPTIONS * HTTP/1.1", ["Host: api.test"]),
      tls("api.test"),
      {
        status: 501,
        body: {
          error: "clef-proxy: asterisk-form request-target is not supported",
          host: "api.test",
          reason: "unsupported_target",
        },
        reason: "unsupported_target",
        audit: denied({ reason: "unsupported_target" }),
      },
    ],
    [
      "BREW → 501 unsupported_method",
      head("BREW / HTTP/1.1", ["Host: api.test"]),
      tls("api.test"),
      unsupportedMethod("api.test", "BREW"),
    ],
    [
      "lower-case get → 501 (methods are case-sensitive)",
      head("get / HTTP/1.1", ["Host: api.test"]),
      tls("api.test"),
      unsupportedMethod("api.test", "get"),
    ],
    [
      "TRACE → 501",
      head("TRACE / HTTP/1.1", ["Host: api.test"]),
      tls("api.test"),
      unsupportedMethod("api.test", "TRACE"),
    ],
    [
      "CONNECT inside a tunnel (authority-form) → plain 400",
      head("CONNECT api.test:443 HTTP/1.1", ["Host: api.test"]),
      tls("api.test"),
      BAD_TARGET,
    ],
  ]);

  test("the method and host named in the 501 body are the absolute-form authority when there is one", () => {
    expectRefusal(
      refused(decide(head("PROPFIND http://api.test:8080/ HTTP/1.1", ["Host: api.test:8080"]), null, policy)),
      unsupportedMethod("api.test:8080", "PROPFIND"),
    );
  });

  test("every forwardable method is forwarded", () => {
    for (const m of ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
      expect(decide(head(`${m} / HTTP/1.1`, ["Host: api.test"]), tls("api.test"), policy).kind).toBe("forward");
  });

  test("the log line of a bad target names why (never the target itself)", () => {
    const r = refused(decide(head("GET @evil.test/x HTTP/1.1", ["Host: api.test"]), tls("api.test"), policy));
    expect(r.log).toEqual({
      level: "WARN",
      msg: "malformed request",
      attrs: [["reason", "request-target is neither origin-form nor absolute-form"]],
    });
    expect(r.close).toBe(true);
  });
});

describe("R2: host syntax (400 invalid_host)", () => {
  runRows([
    [
      "absolute-form port out of range (99999), before netguard and the secret",
      head("GET http://api.test:99999/ HTTP/1.1", ["Host: api.test:99999"]),
      null,
      invalidHost("api.test:99999"),
    ],
    ["absolute-form port 0", head("GET http://api.test:0/ HTTP/1.1", []), null, invalidHost("api.test:0")],
    [
      "Host port out of range",
      head("GET / HTTP/1.1", ["Host: api.test:70000"]),
      tls("api.test"),
      invalidHost("api.test:70000"),
    ],
    ["a space in Host", head("GET / HTTP/1.1", ["Host: api test"]), tls("api.test"), invalidHost("api test")],
    [
      "a wildcard as Host",
      head("GET / HTTP/1.1", ["Host: *.wild.test"]),
      tls("x.wild.test"),
      invalidHost("*.wild.test"),
    ],
    [
      "a non-numeric port",
      head("GET / HTTP/1.1", ["Host: api.test:https"]),
      tls("api.test"),
      invalidHost("api.test:https"),
    ],
    ["an unclosed bracket", head("GET / HTTP/1.1", ["Host: [::1"]), tls("::1"), invalidHost("[::1")],
    ["a numeric last label", head("GET / HTTP/1.1", ["Host: 127.1"]), tls("127.1"), invalidHost("127.1")],
    [
      "a Unicode name (IDNs as A-labels only)",
      head("GET / HTTP/1.1", ["Host: b\xfccher.test"]),
      tls("x.test"),
      invalidHost("b\xfccher.test"),
    ],
    [
      "an absolute-form wildcard",
      head("GET http://*.wild.test/ HTTP/1.1", ["Host: *.wild.test"]),
      null,
      invalidHost("*.wild.test"),
    ],
    [
      "an absolute-form name with a bad character",
      head("GET http://a_b!.test/ HTTP/1.1", []),
      null,
      invalidHost("a_b!.test"),
    ],
  ]);
});

describe("R2: the remembered answers of the host syntax check", () => {
  test("the same Host again (valid, then invalid, then valid) gets the same answer each time", () => {
    for (let i = 0; i < 3; i++) {
      expect(decide(head("GET / HTTP/1.1", ["Host: api.test"]), tls("api.test"), policy).kind).toBe("forward");
      const bad = decide(head("GET / HTTP/1.1", ["Host: api.test:70000"]), tls("api.test"), policy);
      expect(bad.kind === "refuse" && bad.refusal.status).toBe(400);
    }
  });
  test("past the bound (1,024 values) and for long values (not remembered), still checked", () => {
    for (let i = 0; i < 1100; i++) decide(head("GET / HTTP/1.1", [`Host: h${i}.test`]), tls(`h${i}.test`), policy);
    const long = `${"a".repeat(63)}.`.repeat(3) + "b".repeat(56) + ".test"; // 253 characters
    for (let i = 0; i < 2; i++) {
      const d = decide(head("GET / HTTP/1.1", [`Host: ${long}:44443`]), tls(long, "44443"), policy);
      expect(d.kind === "refuse" && d.refusal.status).toBe(403); // a valid name, not in the manifest
      const bad = decide(head("GET / HTTP/1.1", [`Host: ${long}:00000`]), tls(long), policy);
      expect(bad.kind === "refuse" && bad.refusal.status).toBe(400);
    }
  });
  test("the host as sent, when the caller passes it, is the one the refusal names", () => {
    const d = decide(head("GET / HTTP/1.1", ["Host: api.test:70000"]), tls("api.test"), policy, "api.test:70000");
    expect(d.kind === "refuse" && d.refusal.status).toBe(400);
  });
});

describe("R2: one host per request (421 misdirected, §18.1)", () => {
  runRows([
    [
      "CONNECT vs Host",
      head("GET / HTTP/1.1", ["Host: other.test"]),
      tls("api.test"),
      misdirected("other.test", 'Host header names "other.test" but CONNECT names "api.test"'),
    ],
    [
      "CONNECT vs SNI",
      head("GET / HTTP/1.1", ["Host: api.test"]),
      tls("api.test", "443", "other.test"),
      misdirected("api.test", 'TLS SNI names "other.test" but CONNECT names "api.test"'),
    ],
    [
      "CONNECT vs absolute-form in the tunnel",
      head("GET https://other.test/x HTTP/1.1", ["Host: api.test"]),
      tls("api.test"),
      misdirected("other.test", 'request-target names "other.test" but CONNECT names "api.test"'),
    ],
    [
      "absolute-form vs Host (plain HTTP)",
      head("GET http://api.test/ HTTP/1.1", ["Host: other.test"]),
      null,
      misdirected("api.test", 'Host header names "other.test" but request-target names "api.test"'),
    ],
    [
      "Host port vs CONNECT port",
      head("GET / HTTP/1.1", ["Host: api.test:8443"]),
      tls("api.test", "443"),
      misdirected("api.test:8443", "Host header port 8443 differs from CONNECT port 443"),
    ],
    [
      "absolute-form port vs CONNECT port",
      head("GET https://api.test:8443/ HTTP/1.1", ["Host: api.test"]),
      tls("api.test", "443"),
      misdirected("api.test:8443", "request-target port 8443 differs from CONNECT port 443"),
    ],
    [
      "Host port vs absolute-form port (plain HTTP; the default port counts)",
      head("GET http://api.test:8080/ HTTP/1.1", ["Host: api.test"]),
      null,
      misdirected("api.test:8080", "Host header port 80 differs from request-target port 8080"),
    ],
    [
      "Host :443 vs an https absolute-form with no port",
      head("GET https://api.test/ HTTP/1.1", ["Host: api.test:80"]),
      null,
      misdirected("api.test", "Host header port 80 differs from request-target port 443"),
    ],
    [
      "a cleartext tunnel: CONNECT vs Host",
      head("GET / HTTP/1.1", ["Host: other.test"]),
      cleartext("api.test"),
      misdirected("other.test", 'Host header names "other.test" but CONNECT names "api.test"'),
    ],
  ]);

  test("names are compared canonically: case, trailing dot, brackets", () => {
    for (const [h, t] of [
      [head("GET / HTTP/1.1", ["Host: API.test."]), tls("api.test", "443", "Api.Test")],
      [head("GET / HTTP/1.1", ["Host: api.test:443"]), tls("api.test")],
      [head("GET HTTPS://API.TEST:443/ HTTP/1.1", ["Host: api.test"]), tls("api.test")],
      [head("GET / HTTP/1.1", ["Host: [::1]:443"]), tls("::1")],
    ] as const)
      expect(decide(h, t, policy).kind).toBe("forward");
  });

  test("the refusal logs which names differ; the audit line is `denied` with no reason key (Phase 1 bytes)", () => {
    const r = refused(decide(head("GET / HTTP/1.1", ["Host: other.test"]), tls("api.test"), policy));
    expect(r.log).toEqual({
      level: "INFO",
      msg: "denied: misdirected request",
      attrs: [["reason", 'Host header names "other.test" but CONNECT names "api.test"']],
    });
  });
});

describe("R4: blocked_hosts (403 blocked_host)", () => {
  runRows([
    [
      "an exact block",
      head("GET / HTTP/1.1", ["Host: blocked.test"]),
      tls("blocked.test"),
      blocked("blocked.test", "blocked.test"),
    ],
    [
      "a wildcard block beats an exact service",
      head("GET / HTTP/1.1", ["Host: svc.bad.test"]),
      tls("svc.bad.test"),
      blocked("svc.bad.test", "*.bad.test"),
    ],
    [
      "a block beats an ambiguity",
      head("GET / HTTP/1.1", ["Host: amb.bad.test"]),
      tls("amb.bad.test"),
      blocked("amb.bad.test", "*.bad.test"),
    ],
    [
      "X-Clef-Service cannot unblock",
      head("GET / HTTP/1.1", ["Host: svc.bad.test", "X-Clef-Service: svc-bad"]),
      tls("svc.bad.test"),
      blocked("svc.bad.test", "*.bad.test"),
    ],
    [
      "the host as sent (port, case) is named; the pattern as written",
      head("GET http://Blocked.Test.:8080/x HTTP/1.1", ["Host: blocked.test:8080"]),
      null,
      blocked("Blocked.Test.:8080", "blocked.test"),
    ],
    [
      "an IPv4 block covers its IPv4-mapped IPv6 form",
      head("GET / HTTP/1.1", ["Host: [::ffff:10.9.9.9]"]),
      tls("::ffff:10.9.9.9"),
      blocked("[::ffff:10.9.9.9]", "10.9.9.9"),
    ],
  ]);
});

describe("R6: classification", () => {
  runRows([
    [
      "a host in no list → 403 not in manifest",
      head("GET / HTTP/1.1", ["Host: nope.test"]),
      tls("nope.test"),
      notInManifest("nope.test"),
    ],
    [
      "the port stays in the host named",
      head("GET / HTTP/1.1", ["Host: nope.test:8443"]),
      tls("nope.test", "8443"),
      notInManifest("nope.test:8443"),
    ],
    [
      "a wildcard never matches its apex",
      head("GET / HTTP/1.1", ["Host: wild.test"]),
      tls("wild.test"),
      notInManifest("wild.test"),
    ],
    [
      "IP literals match only exactly",
      head("GET / HTTP/1.1", ["Host: 10.0.0.6"]),
      tls("10.0.0.6"),
      notInManifest("10.0.0.6"),
    ],
    [
      'a missing Host in a tunnel is host "" (not the CONNECT name)',
      head("GET / HTTP/1.1"),
      tls("api.test"),
      notInManifest(""),
    ],
    ['an empty Host in a tunnel is host ""', head("GET / HTTP/1.1", ["Host:"]), tls("api.test"), notInManifest("")],
    ["HTTP/1.0 without Host in a tunnel", head("GET / HTTP/1.0"), tls("api.test"), notInManifest("")],
    ["a missing Host in a cleartext tunnel", head("GET / HTTP/1.1"), cleartext("api.test"), notInManifest("")],
    [
      "two services at the exact level → 400 ambiguous, candidates sorted, no host key",
      head("GET / HTTP/1.1", ["Host: dup.test"]),
      tls("dup.test"),
      ambiguous("dup.test", ["dup1", "dup2"]),
    ],
    [
      "X-Clef-Service is exact-case",
      head("GET / HTTP/1.1", ["Host: dup.test", "X-Clef-Service: DUP1"]),
      tls("dup.test"),
      ambiguous("dup.test", ["dup1", "dup2"]),
    ],
    [
      "an unknown X-Clef-Service",
      head("GET / HTTP/1.1", ["Host: dup.test", "X-Clef-Service: gh"]),
      tls("dup.test"),
      ambiguous("dup.test", ["dup1", "dup2"]),
    ],
    [
      "only the first X-Clef-Service value counts",
      head("GET / HTTP/1.1", ["Host: dup.test", "X-Clef-Service: nope", "X-Clef-Service: dup1"]),
      tls("dup.test"),
      ambiguous("dup.test", ["dup1", "dup2"]),
    ],
    [
      "a wildcard level ambiguity carries its pattern (audit host_pattern)",
      head("GET / HTTP/1.1", ["Host: x.dupw.test"]),
      tls("x.dupw.test"),
      ambiguous("x.dupw.test", ["alpha", "zeta"], "*.dupw.test"),
    ],
    [
      "X-Clef-Service never reaches a service of a more specific level from a less specific one",
      head("GET / HTTP/1.1", ["Host: x.dupw.test", "X-Clef-Service: one"]),
      tls("x.dupw.test"),
      ambiguous("x.dupw.test", ["alpha", "zeta"], "*.dupw.test"),
    ],
    [
      "the host named in an ambiguity is the absolute-form authority",
      head("GET http://dup.test:8080/ HTTP/1.1", ["Host: dup.test:8080"]),
      null,
      ambiguous("dup.test:8080", ["dup1", "dup2"]),
    ],
  ]);

  test("not in manifest logs the X-Clef-Service header it got", () => {
    const r = refused(
      decide(head("GET / HTTP/1.1", ["Host: nope.test", "X-Clef-Service: gh"]), tls("nope.test"), policy),
    );
    expect(r.log).toEqual({ level: "INFO", msg: "denied: host not in manifest", attrs: [["service_header", "gh"]] });
    const amb = refused(decide(head("GET / HTTP/1.1", ["Host: dup.test"]), tls("dup.test"), policy));
    expect(amb.log).toEqual({
      level: "INFO",
      msg: "ambiguous: multiple services match",
      attrs: [["candidates", "[dup1 dup2]"]],
    });
  });

  test("X-Clef-Service picks among the services at the winning level", () => {
    const r = forwarded(
      decide(head("GET / HTTP/1.1", ["Host: dup.test", "X-Clef-Service: dup2"]), tls("dup.test"), policy),
    );
    expect(r.service?.name).toBe("dup2");
    const w = forwarded(
      decide(head("GET / HTTP/1.1", ["Host: x.dupw.test", "X-Clef-Service: zeta"]), tls("x.dupw.test"), policy),
    );
    expect(w.service?.name).toBe("zeta");
    expect(w.fields).toEqual({ service: "zeta", credentialHandle: "ns/K", hostPattern: "*.dupw.test" });
  });

  test("one service at the winning level: X-Clef-Service is ignored, even naming another service", () => {
    for (const header of ["alpha", "gh", "nope"]) {
      const r = forwarded(
        decide(
          head("GET / HTTP/1.1", ["Host: one.dupw.test", `X-Clef-Service: ${header}`]),
          tls("one.dupw.test"),
          policy,
        ),
      );
      expect(r.service?.name).toBe("one");
      expect(r.fields.hostPattern).toBeUndefined();
    }
  });
});

describe("R9: handles and usability (no agent call)", () => {
  runRows([
    [
      "a malformed handle → 500",
      head("GET / HTTP/1.1", ["Host: mh.test"]),
      tls("mh.test"),
      {
        status: 500,
        body: { error: 'clef-proxy: malformed credential handle "noslash"' },
        audit: agentError("mh", "noslash"),
      },
    ],
    [
      "an invalid namespace → 502 agent error",
      head("GET / HTTP/1.1", ["Host: ii.test"]),
      tls("ii.test"),
      { status: 502, body: { error: "clef-proxy: agent error" }, audit: agentError("ii", "ns.a/k") },
    ],
    [
      "an invalid key → 502 agent error",
      head("GET / HTTP/1.1", ["Host: ik.test"]),
      tls("ik.test"),
      { status: 502, body: { error: "clef-proxy: agent error" }, audit: agentError("ik", "ns/b/c") },
    ],
    [
      "a service missing auth.header → 500 inject",
      head("GET / HTTP/1.1", ["Host: un.test"]),
      tls("un.test"),
      {
        status: 500,
        body: { error: 'clef-proxy: inject: scheme "api_key_header" requires auth.header' },
        audit: agentError("un", "ns/K"),
      },
    ],
    [
      "an unknown scheme (case-sensitive) → 500 inject",
      head("GET / HTTP/1.1", ["Host: unk.test"]),
      tls("unk.test"),
      {
        status: 500,
        body: { error: 'clef-proxy: inject: unsupported scheme "Bearer"' },
        audit: agentError("unk", "ns/K"),
      },
    ],
    [
      "the handle check comes before the scheme check",
      head("GET / HTTP/1.1", ["Host: mhunk.test"]),
      tls("mhunk.test"),
      {
        status: 500,
        body: { error: 'clef-proxy: malformed credential handle "noslash"' },
        audit: agentError("mh-unk", "noslash"),
      },
    ],
    [
      "every handle of the service is checked (basic: the user name's handle)",
      head("GET / HTTP/1.1", ["Host: basicbad.test"]),
      tls("basicbad.test"),
      {
        status: 500,
        body: { error: 'clef-proxy: malformed credential handle "nouser"' },
        audit: agentError("basic-bad", "ns/PASS"),
      },
    ],
  ]);

  test("a service with an invalid host pattern is unusable on its valid ones (500, never another service)", () => {
    const r = refused(decide(head("GET / HTTP/1.1", ["Host: badpat.test"]), tls("badpat.test"), policy));
    expect(r.status).toBe(500);
    expect(String(json(r).error)).toStartWith(
      'clef-proxy: inject: hosts[0] "bad pattern!" is not a valid host pattern: ',
    );
    expect(r.headers).toBeUndefined();
    expect(r.audit).toEqual(agentError("badpat", "ns/K"));
  });

  test("the log lines name the service and the problem, never a secret (there is none yet)", () => {
    expect(refused(decide(head("GET / HTTP/1.1", ["Host: mh.test"]), tls("mh.test"), policy)).log).toEqual({
      level: "ERROR",
      msg: "invalid credential handle in manifest",
      attrs: [
        ["service", "mh"],
        ["credential", "noslash"],
        ["err", 'clef-proxy: malformed credential handle "noslash"'],
      ],
    });
    expect(refused(decide(head("GET / HTTP/1.1", ["Host: ii.test"]), tls("ii.test"), policy)).log).toEqual({
      level: "INFO",
      msg: "agent resolution failed",
      attrs: [
        ["service", "ii"],
        ["err", 'agent: invalid namespace "ns.a"'],
      ],
    });
    expect(refused(decide(head("GET / HTTP/1.1", ["Host: un.test"]), tls("un.test"), policy)).log?.msg).toBe(
      "injection failed",
    );
  });
});

describe("precedence (shared/PHASE2.md §1.7: misdirected > blocked > classification > handles)", () => {
  runRows([
    [
      "bad target > bad method",
      head("BREW @evil.test HTTP/1.1", ["Host: blocked.test"]),
      tls("blocked.test"),
      BAD_TARGET,
    ],
    [
      "bad method > invalid host",
      head("BREW / HTTP/1.1", ["Host: *.x.test"]),
      tls("api.test"),
      unsupportedMethod("*.x.test", "BREW"),
    ],
    [
      "bad method > blocked",
      head("BREW / HTTP/1.1", ["Host: blocked.test"]),
      tls("blocked.test"),
      unsupportedMethod("blocked.test", "BREW"),
    ],
    [
      "invalid host > misdirected",
      head("GET / HTTP/1.1", ["Host: bad!.test"]),
      tls("api.test"),
      invalidHost("bad!.test"),
    ],
    [
      "misdirected > blocked (CONNECT to a blocked host, Host names a service)",
      head("GET / HTTP/1.1", ["Host: api.test"]),
      tls("blocked.test"),
      misdirected("api.test", 'Host header names "api.test" but CONNECT names "blocked.test"'),
    ],
    [
      "misdirected > blocked (Host names the blocked host)",
      head("GET / HTTP/1.1", ["Host: blocked.test"]),
      tls("api.test"),
      misdirected("blocked.test", 'Host header names "blocked.test" but CONNECT names "api.test"'),
    ],
    [
      "misdirected > not in manifest",
      head("GET / HTTP/1.1", ["Host: nope.test"]),
      tls("nope2.test"),
      misdirected("nope.test", 'Host header names "nope.test" but CONNECT names "nope2.test"'),
    ],
    [
      "misdirected (SNI) > everything after it",
      head("GET / HTTP/1.1", ["Host: mh.test"]),
      tls("mh.test", "443", "blocked.test"),
      misdirected("mh.test", 'TLS SNI names "blocked.test" but CONNECT names "mh.test"'),
    ],
    [
      "blocked > exact service",
      head("GET / HTTP/1.1", ["Host: svc.bad.test"]),
      tls("svc.bad.test"),
      blocked("svc.bad.test", "*.bad.test"),
    ],
    [
      "ambiguous > a malformed handle among the candidates",
      head("GET / HTTP/1.1", ["Host: mixed.test"]),
      tls("mixed.test"),
      ambiguous("mixed.test", ["mixed-mh", "mixed-ok"]),
    ],
    [
      "X-Clef-Service picking a service with a malformed handle → that service's 500",
      head("GET / HTTP/1.1", ["Host: mixed.test", "X-Clef-Service: mixed-mh"]),
      tls("mixed.test"),
      {
        status: 500,
        body: { error: 'clef-proxy: malformed credential handle "noslash"' },
        audit: agentError("mixed-mh", "noslash"),
      },
    ],
  ]);

  test("an exact service beats an exact passthrough of the same host (injected, Phase 1)", () => {
    expect(forwarded(decide(head("GET / HTTP/1.1", ["Host: api.test"]), tls("api.test"), policy)).service?.name).toBe(
      "gh",
    );
  });
});

describe("forwards: the route", () => {
  test("TLS tunnel, origin-form: https, the one host, the CONNECT port, path as sent, Host as sent", () => {
    const r = forwarded(
      decide(head("GET /x/%2e%2e/y?q=1&r=%41 HTTP/1.1", ["Host: API.test"]), tls("api.test"), policy),
    );
    expect(r).toEqual({
      scheme: "https",
      host: "api.test",
      port: 443,
      pathAndQuery: "/x/%2e%2e/y?q=1&r=%41",
      hostHeader: "API.test",
      service: manifest.services[0]!,
      handles: [{ handle: "ns/K", namespace: "ns", key: "K" }],
      fields: { service: "gh", credentialHandle: "ns/K" },
      websocket: false,
    });
  });

  test("`//x` stays a path (origin-form), never an authority", () => {
    const r = forwarded(decide(head("GET //evil.test/x HTTP/1.1", ["Host: api.test"]), tls("api.test"), policy));
    expect([r.host, r.pathAndQuery]).toEqual(["api.test", "//evil.test/x"]);
  });

  test("a non-default CONNECT port is the port dialled", () => {
    const r = forwarded(decide(head("GET / HTTP/1.1", ["Host: api.test:8443"]), tls("api.test", "8443"), policy));
    expect([r.scheme, r.port]).toEqual(["https", 8443]);
    const bare = forwarded(decide(head("GET / HTTP/1.1", ["Host: api.test"]), tls("api.test", "8443"), policy));
    expect(bare.port).toBe(8443);
  });

  test("cleartext tunnel: http, the CONNECT port", () => {
    const r = forwarded(decide(head("GET / HTTP/1.1", ["Host: api.test"]), cleartext("api.test", "8080"), policy));
    expect([r.scheme, r.host, r.port]).toEqual(["http", "api.test", 8080]);
  });

  test("absolute-form in a TLS tunnel: https and the CONNECT port; Host set from the authority", () => {
    const r = forwarded(decide(head("GET https://api.test/x HTTP/1.1", ["Host: api.test"]), tls("api.test"), policy));
    expect([r.scheme, r.port, r.pathAndQuery, r.hostHeader]).toEqual(["https", 443, "/x", "api.test"]);
  });

  test("absolute-form with the other scheme inside a tunnel: Go's 400, no line (§18.20)", () => {
    for (const [target, t] of [
      ["http://api.test/x", tls("api.test")],
      ["https://api.test/x", cleartext("api.test", "80")],
    ] as const) {
      const r = refused(decide(head(`GET ${target} HTTP/1.1`, ["Host: api.test"]), t, policy));
      expect([r.status, r.text, r.audit]).toEqual([400, true, null]);
    }
  });

  test("plain absolute-form on the listener: its scheme and port, canonical host, Host header = the authority", () => {
    const r = forwarded(decide(head("GET http://API.test.:8080/x?y HTTP/1.1", ["Host: api.test:8080"]), null, policy));
    expect([r.scheme, r.host, r.port, r.pathAndQuery, r.hostHeader]).toEqual([
      "http",
      "api.test",
      8080,
      "/x?y",
      "API.test.:8080",
    ]);
    const s = forwarded(decide(head("GET https://api.test HTTP/1.1", ["Host: api.test"]), null, policy));
    expect([s.scheme, s.port, s.pathAndQuery, s.hostHeader]).toEqual(["https", 443, "/", "api.test"]);
    const h = forwarded(decide(head("GET http://api.test/ HTTP/1.1", ["Host: api.test"]), null, policy));
    expect(h.port).toBe(80);
  });

  test("absolute-form with an empty Host is matched on the authority", () => {
    expect(forwarded(decide(head("GET http://api.test/ HTTP/1.1", ["Host:"]), null, policy)).service?.name).toBe("gh");
    expect(
      forwarded(decide(head("GET https://api.test/ HTTP/1.1", ["Host:"]), tls("api.test"), policy)).service?.name,
    ).toBe("gh");
  });

  // Found here and fixed (src/intercept/decide.ts, `const host = hostHeader === undefined || …`): an
  // absolute-form request with NO Host field is denied as host "" while its 403 body names the
  // authority — `{"error":"host \"api.test\" not in clef-proxy manifest","host":"api.test"}` for a
  // host that is in the manifest. The line's own comment says host "" is only for "no Host at all
  // (and no absolute-form target)", and an empty Host with the same target is matched on the
  // authority (test above). docs/CONTRACT.md §8: the host is Go's req.Host, where an absolute-form
  // request line wins over the Host header (goproxy's http.ReadRequest inside tunnels; Go's server
  // for HTTP/1.0 on the listener).
  test("absolute-form with no Host field is matched on the authority (tunnel)", () => {
    expect(forwarded(decide(head("GET https://api.test/x HTTP/1.1"), tls("api.test"), policy)).service?.name).toBe(
      "gh",
    );
  });
  test("absolute-form with no Host field is matched on the authority (HTTP/1.0 on the listener)", () => {
    expect(forwarded(decide(head("GET http://api.test/x HTTP/1.0"), null, policy)).service?.name).toBe("gh");
  });

  test("passthrough: no service, no handles; a wildcard passthrough carries its pattern", () => {
    const p = forwarded(decide(head("GET / HTTP/1.1", ["Host: pass.test"]), tls("pass.test"), policy));
    expect([p.service, p.handles, p.fields]).toEqual([null, [], {}]);
    const w = forwarded(decide(head("GET / HTTP/1.1", ["Host: a.b.pw.test"]), tls("a.b.pw.test"), policy));
    expect([w.service, w.fields]).toEqual([null, { hostPattern: "*.pw.test" }]);
  });

  test("a wildcard service carries its pattern; IP literals, IPv6 without brackets", () => {
    expect(forwarded(decide(head("GET / HTTP/1.1", ["Host: a.wild.test"]), tls("a.wild.test"), policy)).fields).toEqual(
      {
        service: "wild",
        credentialHandle: "ns/K",
        hostPattern: "*.wild.test",
      },
    );
    expect(forwarded(decide(head("GET / HTTP/1.1", ["Host: 10.0.0.5"]), tls("10.0.0.5"), policy)).host).toBe(
      "10.0.0.5",
    );
    const v6 = forwarded(
      decide(head("GET / HTTP/1.1", ["Host: [2001:db8::5]:8443"]), tls("2001:db8::5", "8443"), policy),
    );
    expect([v6.host, v6.port, v6.service?.name]).toEqual(["2001:db8::5", 8443, "v6"]);
    const lo = forwarded(decide(head("GET http://[::1]:9/ HTTP/1.1", ["Host: [::1]:9"]), null, policy));
    expect([lo.host, lo.port, lo.hostHeader]).toEqual(["::1", 9, "[::1]:9"]);
  });

  test("every handle of a service, in order (basic: user name, then password)", () => {
    const r = forwarded(decide(head("GET / HTTP/1.1", ["Host: basic.test"]), tls("basic.test"), policy));
    expect(r.handles).toEqual([
      { handle: "ns/USER", namespace: "ns", key: "USER" },
      { handle: "ns/PASS", namespace: "ns", key: "PASS" },
    ]);
    expect(r.fields).toEqual({ service: "basic", credentialHandle: "ns/PASS" });
  });
});

describe("WebSocket detection (only the websocket token; h2c is not an upgrade)", () => {
  const rows: Array<[string, RequestHead, boolean]> = [
    [
      "GET + Connection: Upgrade + Upgrade: websocket",
      head("GET / HTTP/1.1", ["Host: a", "Connection: Upgrade", "Upgrade: websocket"]),
      true,
    ],
    [
      "token lists and case",
      head("GET / HTTP/1.1", ["Host: a", "Connection: keep-alive, UPGRADE", "Upgrade: h2c, WebSocket"]),
      true,
    ],
    [
      "Connection in two fields",
      head("GET / HTTP/1.1", ["Host: a", "Connection: keep-alive", "Connection: upgrade", "Upgrade: websocket"]),
      true,
    ],
    ["Upgrade: h2c", head("GET / HTTP/1.1", ["Host: a", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c"]), false],
    ["Upgrade: websocket2", head("GET / HTTP/1.1", ["Host: a", "Connection: Upgrade", "Upgrade: websocket2"]), false],
    ["no Connection: upgrade", head("GET / HTTP/1.1", ["Host: a", "Upgrade: websocket"]), false],
    ["Connection: upgraded", head("GET / HTTP/1.1", ["Host: a", "Connection: upgraded", "Upgrade: websocket"]), false],
    ["POST", head("POST / HTTP/1.1", ["Host: a", "Connection: Upgrade", "Upgrade: websocket"]), false],
    ["HTTP/1.0", head("GET / HTTP/1.0", ["Host: a", "Connection: Upgrade", "Upgrade: websocket"]), false],
    [
      "with a body",
      head("GET / HTTP/1.1", ["Host: a", "Connection: Upgrade", "Upgrade: websocket", "Content-Length: 3"]),
      false,
    ],
    [
      "chunked",
      head("GET / HTTP/1.1", ["Host: a", "Connection: Upgrade", "Upgrade: websocket", "Transfer-Encoding: chunked"]),
      false,
    ],
  ];
  for (const [name, h, want] of rows) {
    test(`${name} → ${want}`, () => {
      expect(isWebSocketHandshake(h)).toBe(want);
    });
  }

  test("the route says so, for services and passthrough alike", () => {
    const ws = ["Connection: Upgrade", "Upgrade: websocket"];
    expect(
      forwarded(decide(head("GET / HTTP/1.1", ["Host: api.test", ...ws]), tls("api.test"), policy)).websocket,
    ).toBe(true);
    expect(
      forwarded(decide(head("GET / HTTP/1.1", ["Host: pass.test", ...ws]), tls("pass.test"), policy)).websocket,
    ).toBe(true);
    expect(
      forwarded(
        decide(
          head("GET / HTTP/1.1", ["Host: api.test", "Connection: Upgrade", "Upgrade: h2c"]),
          tls("api.test"),
          policy,
        ),
      ).websocket,
    ).toBe(false);
  });
});

describe("hostAsSent", () => {
  test('the absolute-form authority as written, else the Host header as sent, else ""', () => {
    expect(hostAsSent(head("GET HTTP://Api.Test:80/x HTTP/1.1", ["Host: other"]))).toBe("Api.Test:80");
    expect(hostAsSent(head("GET / HTTP/1.1", ["Host: API.test:443"]))).toBe("API.test:443");
    expect(hostAsSent(head("GET / HTTP/1.1"))).toBe("");
    expect(hostAsSent(head("GET @x HTTP/1.1", ["Host: h"]))).toBe("h");
  });
});

describe("no refusal before R10 depends on anything but the head, the tunnel and the policy", () => {
  test("decide is pure: the same input gives the same decision, and the head is not modified", () => {
    const h = head("GET / HTTP/1.1", ["Host: dup.test", "X-Clef-Service: dup1"]);
    const copy = structuredClone(h);
    const a = decide(h, tls("dup.test"), policy);
    const b = decide(h, tls("dup.test"), policy);
    expect(a).toEqual(b);
    expect(h).toEqual(copy);
  });
});

describe("R9 is worked out once per service object", () => {
  test("every request to a service gets the same answer; a reloaded manifest's services are judged afresh", () => {
    const h = head("GET / HTTP/1.1", ["Host: r9.test"]);
    const bad = createPolicy({ ...manifest, services: [svc("r9", "r9.test", { credential: "noslash" })] });
    for (let i = 0; i < 3; i++)
      expectRefusal(refused(decide(h, tls("r9.test"), bad)), {
        status: 500,
        body: { error: 'clef-proxy: malformed credential handle "noslash"' },
        audit: agentError("r9", "noslash"),
      });
    // the same name and host after a reload, now with a good handle: a new object, a new answer
    const good = createPolicy({ ...manifest, services: [svc("r9", "r9.test", { credential: "ns/R9" })] });
    const a = forwarded(decide(h, tls("r9.test"), good));
    const b = forwarded(decide(h, tls("r9.test"), good));
    expect(a.handles).toEqual([{ handle: "ns/R9", namespace: "ns", key: "R9" }]);
    expect(b.handles).toEqual(a.handles);
    // a service that can never be injected stays refused on every request
    const never = createPolicy({ ...manifest, services: [svc("r9", "r9.test", { scheme: "api_key_header" })] });
    for (let i = 0; i < 2; i++) expect(refused(decide(h, tls("r9.test"), never)).status).toBe(500);
  });
});
