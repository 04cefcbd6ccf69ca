// src/inject: handles per scheme, every F6 problem, basic and template injection (single-pass
// expansion), and the Phase 1 entry points kept as they were.
import { describe, expect, test } from "bun:test";
import type { InjectEntry, Service, ServiceAuth } from "../../../src/agent/types.ts";
import {
  applyInjection,
  checkServices,
  InjectError,
  injectAll,
  injectProblem,
  requiredHandles,
  serviceProblems,
} from "../../../src/inject/index.ts";
import { parseTemplate, renderTemplate } from "../../../src/inject/template.ts";

const svc = (auth: Partial<ServiceAuth>, extra: Partial<Service> = {}): Service => ({
  name: "s",
  host: "s.test",
  ...extra,
  auth: { scheme: "bearer", credential: "ns/pass", ...auth },
});
const tpl = (inject: InjectEntry[], credentials: Record<string, string> = {}, credential = "acme/key") =>
  svc({ scheme: "template", credential, credentials, inject });
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const secrets = (o: Record<string, string>) => new Map(Object.entries(o));

/** The InjectError message `fn` throws (fails when it does not throw one). */
function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InjectError);
    return (e as Error).message;
  }
  throw new Error("did not throw");
}

describe("requiredHandles", () => {
  test.each([
    ["bearer", svc({}), ["ns/pass"]],
    ["basic, literal user", svc({ scheme: "basic", username: "x-access-token" }), ["ns/pass"]],
    ["basic, user handle first", svc({ scheme: "basic", usernameCredential: "ns/user" }), ["ns/user", "ns/pass"]],
    ["basic, one handle for both", svc({ scheme: "basic", usernameCredential: "ns/pass" }), ["ns/pass"]],
    [
      "template: credential first, then referenced handles in order of first reference, unreferenced not fetched",
      tpl(
        [
          { type: "header", name: "X-Sig", value: "{{secret}}" },
          { type: "header", name: "X-Key", value: "{{key}}-{{secret}}-{{credential}}" },
        ],
        { key: "acme/key", secret: "acme/secret", unused: "acme/unused" },
      ),
      ["acme/key", "acme/secret"],
    ],
  ])("%s", (_what, service, handles) => {
    expect(requiredHandles(service)).toEqual(handles);
  });
});

describe("problems (WARN at load; 500 per request)", () => {
  test("Phase 1 problems keep their texts and order", () => {
    expect(serviceProblems(svc({ scheme: "digest", credential: "noslash" }, { host: "" }))).toEqual([
      'unsupported scheme "digest"',
      'malformed credential handle "noslash"',
      "empty host never matches",
    ]);
    expect(serviceProblems(svc({ scheme: "api_key_header", header: "X-Bad\r\n" }))).toEqual([
      'auth.header "X-Bad\\r\\n" is not a valid header name',
    ]);
    expect(serviceProblems(svc({ scheme: "api_key_query", credential: "ns.a/k" }))).toEqual([
      'scheme "api_key_query" requires auth.query',
      'agent: invalid namespace "ns.a"',
    ]);
    expect(serviceProblems(svc({}))).toEqual([]);
  });
  test("injectProblem leaves handle problems to the Phase 1 handle check", () => {
    expect(injectProblem(svc({ credential: "noslash" }))).toBeUndefined();
    expect(injectProblem(svc({ scheme: "nope", credential: "noslash" }))).toBe('unsupported scheme "nope"');
    expect(injectProblem(svc({}, { host: "" }))).toBeUndefined();
  });

  const cases: Array<[string, Service, string[]]> = [
    // F5
    [
      "invalid host pattern",
      svc({}, { hosts: ["ok.test", "*.com"] }),
      ['hosts[1] "*.com" is not a valid host pattern: a wildcard needs at least two labels after "*."'],
    ],
    [
      "invalid main host",
      svc({}, { host: "a*.test" }),
      [
        'host "a*.test" is not a valid host pattern: "*" is only allowed as the whole left-most label of a wildcard "*.name"',
      ],
    ],
    [
      "more than 64 patterns",
      svc({}, { hosts: Array.from({ length: 64 }, (_, i) => `h${i}.test`) }),
      ["65 host patterns (host and hosts), at most 64"],
    ],
    [
      "decode problems",
      svc({}, { decodeProblems: ["hosts is not a list of strings"] }),
      ["hosts is not a list of strings"],
    ],
    // F6 basic
    [
      "basic without user",
      svc({ scheme: "basic" }),
      ['scheme "basic" requires auth.username or auth.username_credential'],
    ],
    [
      "basic with both",
      svc({ scheme: "basic", username: "u", usernameCredential: "ns/u" }),
      ['scheme "basic" takes auth.username or auth.username_credential, not both'],
    ],
    ["basic literal user with a colon", svc({ scheme: "basic", username: "a:b" }), ['basic username contains ":"']],
    [
      "basic literal user with CR",
      svc({ scheme: "basic", username: "a\rb" }),
      ["auth.username contains a control character"],
    ],
    [
      "basic user handle malformed",
      svc({ scheme: "basic", usernameCredential: "nouser" }),
      ['auth.username_credential: malformed credential handle "nouser"'],
    ],
    // F6 template
    ["template without entries", tpl([]), ['scheme "template" requires auth.inject']],
    [
      "more than 8 entries",
      tpl(Array.from({ length: 9 }, (_, i) => ({ type: "header", name: `X-${i}`, value: "v" }))),
      ["auth.inject has 9 entries, at most 8"],
    ],
    [
      "more than 8 credentials",
      tpl(
        [{ type: "bearer", value: "{{credential}}" }],
        Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, `ns/k${i}`])),
      ),
      ["auth.credentials has 9 entries, at most 8"],
    ],
    [
      "bad reference names",
      tpl([{ type: "bearer", value: "x" }], { "1x": "ns/a", credential: "ns/b", "a-b": "ns/c" }),
      [
        'auth.credentials key "1x" is not a reference name ([A-Za-z_][A-Za-z0-9_]*, not "credential")',
        'auth.credentials key "credential" is not a reference name ([A-Za-z_][A-Za-z0-9_]*, not "credential")',
        'auth.credentials key "a-b" is not a reference name ([A-Za-z_][A-Za-z0-9_]*, not "credential")',
      ],
    ],
    ["unknown entry type", tpl([{ type: "cookie", value: "v" }]), ['auth.inject[0]: unknown type "cookie"']],
    [
      "entries missing fields",
      tpl([
        { type: "header", name: "X-A" },
        { type: "query", value: "v" },
        { type: "query", name: "", value: "v" },
        { type: "bearer" },
        { type: "basic", username: "u" },
      ]),
      [
        'auth.inject[0]: type "header" requires name and value',
        'auth.inject[1]: type "query" requires name and value',
        'auth.inject[2]: type "query" requires name and value',
        'auth.inject[3]: type "bearer" requires value',
        'auth.inject[4]: type "basic" requires username and password',
      ],
    ],
    [
      "header names: RFC 9110 token",
      tpl([{ type: "header", name: "X Bad", value: "v" }]),
      ['auth.inject[0]: header name "X Bad" is not a valid header name'],
    ],
    ...[
      "Host",
      "content-length",
      "Transfer-Encoding",
      "Connection",
      "Keep-Alive",
      "Upgrade",
      "TE",
      "Trailer",
      "Cookie",
      "Proxy-Authorization",
      "proxy-foo",
      "X-Clef-Service",
      "x-clef-request-id",
    ].map((name): [string, Service, string[]] => [
      `refused header ${name}`,
      tpl([{ type: "header", name, value: "{{credential}}" }]),
      [`auth.inject[0]: header ${JSON.stringify(name)} may not be written by a template`],
    ]),
    [
      "two entries writing Authorization",
      tpl([
        { type: "header", name: "authorization", value: "Token {{credential}}" },
        { type: "bearer", value: "{{credential}}" },
        { type: "basic", username: "u", password: "{{credential}}" },
      ]),
      [
        'auth.inject[1]: header "Authorization" is also written by auth.inject[0]',
        'auth.inject[2]: header "Authorization" is also written by auth.inject[0]',
      ],
    ],
    [
      "the same header twice, any case",
      tpl([
        { type: "header", name: "X-Key", value: "a" },
        { type: "header", name: "x-key", value: "b" },
      ]),
      ['auth.inject[1]: header "x-key" is also written by auth.inject[0]'],
    ],
    [
      "the same query parameter twice",
      tpl([
        { type: "query", name: "key", value: "a" },
        { type: "query", name: "key", value: "b" },
      ]),
      ['auth.inject[1]: query parameter "key" is also written by auth.inject[0]'],
    ],
    ...["{{ key }}", "{{key}", "x {{", "{{1x}}", "{{{key}}}", "{{key}} {{", "{{}}", "{{key.x}}"].map(
      (value): [string, Service, string[]] => [
        `malformed template ${JSON.stringify(value)}`,
        tpl([{ type: "header", name: "X-A", value }], { key: "ns/k" }),
        ['auth.inject[0].value: "{{" is not followed by a reference name and "}}"'],
      ],
    ),
    [
      "unknown reference",
      tpl([{ type: "query", name: "q", value: "{{nope}}" }]),
      ['auth.inject[0].value: unknown reference "{{nope}}"'],
    ],
    [
      "control characters in the manifest's own text",
      tpl([
        { type: "header", name: "X-A", value: "a\r\nX-Evil: 1{{credential}}" },
        { type: "query", name: "q", value: "\0" },
        { type: "basic", username: "u\n", password: "{{credential}}" },
      ]),
      [
        "auth.inject[0].value contains a control character",
        "auth.inject[1].value contains a control character",
        "auth.inject[2].username contains a control character",
      ],
    ],
    [
      "template basic entry with a literal colon in the user",
      tpl([{ type: "basic", username: "a:{{credential}}", password: "p" }]),
      ['auth.inject[0]: basic username contains ":"'],
    ],
    [
      "a malformed referenced handle",
      tpl([{ type: "header", name: "X-A", value: "{{sig}}" }], { sig: "bad.ns/k" }),
      ['auth.credentials["sig"]: agent: invalid namespace "bad.ns"'],
    ],
  ];
  test.each(cases)("%s", (_what, service, problems) => {
    expect(serviceProblems(service)).toEqual(problems);
    const first = problems.find((p) => !/handle|invalid namespace/.test(p));
    if (first) {
      expect(injectProblem(service)).toBe(first);
      expect(thrown(() => injectAll(service, new Map(), [], "/"))).toBe(`clef-proxy: inject: ${first}`);
    }
  });
});

describe("scheme basic", () => {
  test("literal user: Authorization replaced, overwrite reported, one handle", () => {
    const r = injectAll(
      svc({ scheme: "basic", username: "x-access-token", credential: "gh/token" }),
      secrets({ "gh/token": "ghp_secret" }),
      [
        ["authorization", "Basic d29ya2xvYWQ="],
        ["Accept", "*/*"],
      ],
      "/repo.git/info/refs?service=git-upload-pack",
    );
    expect(r).toEqual({
      headers: [
        ["Authorization", `Basic ${b64("x-access-token:ghp_secret")}`],
        ["Accept", "*/*"],
      ],
      target: "/repo.git/info/refs?service=git-upload-pack",
      injectionPoint: "header:Authorization",
      overwrote: true,
    });
  });
  test("an empty user name is allowed explicitly; UTF-8 on both sides", () => {
    const r = injectAll(svc({ scheme: "basic", username: "" }), secrets({ "ns/pass": "pässwörd" }), [], "/");
    expect(r.headers).toEqual([["Authorization", `Basic ${b64(":pässwörd")}`]]);
    expect(r.overwrote).toBe(false);
    const u = injectAll(svc({ scheme: "basic", username: "jöhn" }), secrets({ "ns/pass": "p" }), [], "/");
    expect(u.headers).toEqual([["Authorization", `Basic ${b64("jöhn:p")}`]]);
  });
  test("user from a handle: credential_handles [user, pass]; a colon or CR/LF/NUL in a value → 500 without the value", () => {
    const s = svc({ scheme: "basic", usernameCredential: "ns/user" });
    expect(injectAll(s, secrets({ "ns/user": "bob", "ns/pass": "pw" }), [], "/")).toEqual({
      headers: [["Authorization", `Basic ${b64("bob:pw")}`]],
      target: "/",
      injectionPoint: "header:Authorization",
      credentialHandles: ["ns/user", "ns/pass"],
      overwrote: false,
    });
    const colon = thrown(() => injectAll(s, secrets({ "ns/user": "b:ob-SECRET", "ns/pass": "pw" }), [], "/"));
    expect(colon).toBe('clef-proxy: inject: basic username contains ":"');
    for (const [user, pass, msg] of [
      ["bob", "pw\r\nX: 1", "clef-proxy: inject: credential value contains CR or LF (header injection guard)"],
      ["bob\n", "pw", "clef-proxy: inject: credential value contains CR or LF (header injection guard)"],
      ["bob", "pw\0", "clef-proxy: inject: credential value contains a control character (header injection guard)"],
      ["bob", "pw\x7f", "clef-proxy: inject: credential value contains a control character (header injection guard)"],
    ] as const) {
      const m = thrown(() => injectAll(s, secrets({ "ns/user": user, "ns/pass": pass }), [], "/"));
      expect(m).toBe(msg);
      expect(m).not.toContain("pw");
    }
  });
});

describe("scheme template", () => {
  const acme = tpl(
    [
      { type: "header", name: "authorization", value: "Token token={{key}}" },
      { type: "header", name: "x-acme-sig", value: "{{secret}}" },
      { type: "query", name: "account", value: "{{credential}}" },
    ],
    { key: "acme/key", secret: "acme/secret" },
  );
  test("the PHASE2 §8.2 example: every point and handle listed, query per §18.6", () => {
    const r = injectAll(
      acme,
      secrets({ "acme/key": "K1", "acme/secret": "S 2&=" }),
      [
        ["Authorization", "Bearer workload"],
        ["X-Acme-Sig", "a"],
        ["x-acme-sig", "b"],
      ],
      "/v1/x?b=2&account=1&a=%41;c&account=3",
    );
    expect(r).toEqual({
      headers: [
        ["Authorization", "Token token=K1"],
        ["X-Acme-Sig", "S 2&="],
      ],
      target: "/v1/x?b=2&account=K1&a=%41;c",
      injectionPoint: "header:authorization",
      injectionPoints: ["header:authorization", "header:x-acme-sig", "query:account"],
      credentialHandles: ["acme/key", "acme/secret"],
      overwrote: true,
    });
  });
  test("bearer and basic entries; a value in the query is percent-encoded", () => {
    const r = injectAll(
      tpl(
        [
          { type: "bearer", value: "{{credential}}" },
          { type: "query", name: "sig", value: "{{sig}}" },
        ],
        { sig: "acme/sig" },
      ),
      secrets({ "acme/key": "tok", "acme/sig": "a b/é" }),
      [],
      "/p",
    );
    expect(r.headers).toEqual([["Authorization", "Bearer tok"]]);
    expect(r.target).toBe("/p?sig=a+b%2F%C3%A9");
    expect(r.overwrote).toBe(false);
    const basic = injectAll(
      tpl([{ type: "basic", username: "api-{{credential}}", password: "{{pw}}" }], { pw: "acme/pw" }),
      secrets({ "acme/key": "u", "acme/pw": "p" }),
      [],
      "/",
    );
    expect(basic.headers).toEqual([["Authorization", `Basic ${b64("api-u:p")}`]]);
    expect(basic.injectionPoints).toBeUndefined();
  });
  test("single pass: a secret containing {{key}} arrives literally, never re-expanded", () => {
    const r = injectAll(
      tpl([{ type: "header", name: "X-A", value: "[{{credential}}]" }], { key: "acme/other" }),
      secrets({ "acme/key": "{{key}}{{credential}}{{", "acme/other": "OTHER" }),
      [],
      "/",
    );
    expect(r.headers).toEqual([["X-A", "[{{key}}{{credential}}{{]"]]);
    const parts = parseTemplate(
      "{{a}}{{b}}",
      new Map([
        ["a", "h/a"],
        ["b", "h/b"],
      ]),
    );
    expect(parts.ok && renderTemplate(parts.parts, (h) => (h === "h/a" ? "{{b}}" : "B"))).toBe("{{b}}B");
  });
  test("a rendered value with CR/LF/NUL → 500 with the Phase 1 guard text, never the value", () => {
    for (const [value, msg] of [
      ["x\r\nInjected: 1", "clef-proxy: inject: credential value contains CR or LF (header injection guard)"],
      ["x\0", "clef-proxy: inject: credential value contains a control character (header injection guard)"],
    ] as const) {
      for (const entry of [
        { type: "header", name: "X-A", value: "{{credential}}" },
        { type: "query", name: "q", value: "{{credential}}" },
        { type: "bearer", value: "{{credential}}" },
      ]) {
        const m = thrown(() => injectAll(tpl([entry]), secrets({ "acme/key": value }), [], "/"));
        expect(m).toBe(msg);
        expect(m).not.toContain("Injected");
      }
    }
  });
  test("a handle missing from the fetched secrets is an error naming the handle only", () => {
    expect(thrown(() => injectAll(acme, secrets({ "acme/key": "K" }), [], "/"))).toBe(
      "clef-proxy: inject: credential acme/secret was not fetched",
    );
  });
});

describe("Phase 1 entry points unchanged", () => {
  test("applyInjection equals injectAll for the Phase 1 schemes", () => {
    for (const auth of [
      { scheme: "bearer" },
      { scheme: "api_key_header", header: "x-lower-key" },
      { scheme: "api_key_query", query: "key" },
    ]) {
      const s = svc(auth);
      const a = applyInjection(s, "S", [["X-Lower-Key", "w"]], "/x?key=1&b=2");
      const b = injectAll(s, secrets({ "ns/pass": "S" }), [["X-Lower-Key", "w"]], "/x?key=1&b=2");
      expect(a).toEqual(b);
    }
    expect(applyInjection(svc({ scheme: "api_key_query", query: "key" }), "a\0b", [], "/").target).toBe("/?key=a%00b");
  });
  test("applyInjection still refuses the Phase 2 schemes until the pipeline calls injectAll", () => {
    expect(thrown(() => applyInjection(svc({ scheme: "basic", username: "u" }), "S", [], "/"))).toBe(
      'clef-proxy: inject: unsupported scheme "basic"',
    );
    expect(thrown(() => applyInjection(tpl([{ type: "bearer", value: "{{credential}}" }]), "S", [], "/"))).toBe(
      'clef-proxy: inject: unsupported scheme "template"',
    );
  });
  test("checkServices keeps the Phase 1 startup lines", () => {
    const w = checkServices({
      schemaVersion: 1,
      identity: "",
      environment: "",
      passthroughHosts: [],
      services: [svc({ scheme: "basic", credential: "noslash" }), svc({}, { hosts: ["*.com"] })],
    });
    expect(w.map((x) => x.problem)).toEqual(['unsupported scheme "basic"', 'malformed credential handle "noslash"']);
  });
});

describe("Phase 1 injection (moved from test/policy.test.ts)", () => {
  const p1 = (auth: Service["auth"]): Service => ({ name: "s", host: "h", auth });
  test("schemes and guards; the secret never appears in an error", () => {
    const r = applyInjection(
      p1({ scheme: "bearer", credential: "n/k" }),
      "S",
      [
        ["authorization", "x"],
        ["Authorization", "y"],
      ],
      "/",
    );
    expect(r.headers).toEqual([["Authorization", "Bearer S"]]);
    expect(r.overwrote).toBe(true);
    expect(
      applyInjection(p1({ scheme: "api_key_header", header: "x-lower-key", credential: "n/k" }), "S", [], "/").headers,
    ).toEqual([["X-Lower-Key", "S"]]);
    for (const [auth, msg] of [
      [
        { scheme: "api_key_header", credential: "n/k" },
        'clef-proxy: inject: scheme "api_key_header" requires auth.header',
      ],
      [
        { scheme: "api_key_query", credential: "n/k" },
        'clef-proxy: inject: scheme "api_key_query" requires auth.query',
      ],
      [{ scheme: "Bearer", credential: "n/k" }, 'clef-proxy: inject: unsupported scheme "Bearer"'],
      [
        { scheme: "api_key_header", header: "X-Bad\r\nInjected", credential: "n/k" },
        'clef-proxy: inject: auth.header "X-Bad\\r\\nInjected" is not a valid header name',
      ],
    ] as const) {
      expect(() => applyInjection(p1(auth as Service["auth"]), "S", [], "/")).toThrow(msg);
    }
    for (const bad of ["a\r\nb", "a\nb", "a\x00b"]) {
      try {
        applyInjection(p1({ scheme: "bearer", credential: "n/k" }), bad, [], "/");
        throw new Error("not thrown");
      } catch (e) {
        expect((e as Error).message).toContain("header injection guard");
        expect((e as Error).message).not.toContain(bad);
      }
    }
  });
  test("startup warnings for services that can never work (§18.10)", () => {
    const w = checkServices({
      schemaVersion: 1,
      identity: "",
      environment: "",
      passthroughHosts: [],
      services: [p1({ scheme: "basic", credential: "noslash" }), p1({ scheme: "bearer", credential: "ns/K" })],
    });
    expect(w.map((x) => x.problem)).toEqual(['unsupported scheme "basic"', 'malformed credential handle "noslash"']);
  });
});
