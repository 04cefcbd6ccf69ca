// src/agent/manifest.ts: decoding the Phase 2 fields, required_features, the validation policy
// (PHASE2 §1.4: permissive → WARN and unusable, restrictive → rejected), the standalone file.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { manifestFromJson as fromClient } from "../../../src/agent/client.ts";
import { loadServicesFile } from "../../../src/agent/file-source.ts";
import { manifestFromJson, validateManifest } from "../../../src/agent/manifest.ts";
import { FEATURES } from "../../../src/features.ts";
import { checkServices, serviceProblems } from "../../../src/inject/index.ts";
import { createMatcher } from "../../../src/match/index.ts";

const ROOT = join(import.meta.dir, "../../..");
const doc = (extra: Record<string, unknown> = {}, services: unknown[] = []) => ({
  schema_version: 1,
  identity: "id",
  environment: "env",
  services,
  passthrough_hosts: [],
  ...extra,
});
const bearer = (name: string, host: string, extra: Record<string, unknown> = {}) => ({
  name,
  host,
  auth: { scheme: "bearer", credential: "ns/K" },
  ...extra,
});

describe("decoding", () => {
  test("client.ts still exports the same function", () => {
    expect(fromClient).toBe(manifestFromJson);
  });
  test("Phase 1 errors keep their texts", () => {
    expect(() => manifestFromJson({ schema_version: 2 })).toThrow("agent: /v1/services schema_version=2, expected 1");
    expect(() => manifestFromJson({})).toThrow("agent: /v1/services schema_version=0, expected 1");
    expect(() => manifestFromJson({ schema_version: 1, services: [{ name: 5 }] })).toThrow(
      "agent: decode /v1/services: json: cannot unmarshal number into Go struct field ServicesResponse.services.0.name",
    );
    expect(() => manifestFromJson({ schema_version: 1, services: {} })).toThrow(
      "agent: decode /v1/services: json: cannot unmarshal object into Go struct field ServicesResponse.services",
    );
  });
  test("a Phase 1 manifest decodes as before (no new keys appear)", () => {
    const m = manifestFromJson({
      schema_version: 1,
      identity: "i",
      services: [
        { name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K", header: null } },
        { name: "x", host: null, auth: null },
      ],
      passthrough_hosts: ["p.test", null],
      unknown_field: true,
    });
    expect(m).toEqual({
      schemaVersion: 1,
      identity: "i",
      environment: "",
      services: [
        { name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K" } },
        { name: "x", host: "", auth: { scheme: "", credential: "" } },
      ],
      passthroughHosts: ["p.test", ""],
    });
    expect(JSON.stringify(m)).not.toContain("undefined");
  });
  test("the Phase 2 fields", () => {
    const m = manifestFromJson(
      doc(
        {
          blocked_hosts: ["*.pastebin.com", "transfer.sh"],
          blocked_cidrs: ["10.0.0.0/8", "fc00::/7"],
          required_features: ["wildcard_hosts", "auth_template"],
        },
        [
          {
            name: "gh",
            host: "api.github.com",
            hosts: ["uploads.github.com", "*.githubusercontent.com"],
            auth: { scheme: "bearer", credential: "github/token" },
          },
          { name: "git", host: "github.com", auth: { scheme: "basic", username: "", credential: "github/token" } },
          {
            name: "u",
            host: "u.test",
            auth: { scheme: "basic", username: null, username_credential: "svc/user", credential: "svc/pass" },
          },
          {
            name: "acme",
            host: "acme.test",
            auth: {
              scheme: "template",
              credential: "acme/key",
              credentials: { key: "acme/key", secret: "acme/secret" },
              inject: [
                { type: "header", name: "X-Token", value: "Token token={{key}}", username: null },
                { type: "basic", username: "u", password: "{{secret}}" },
              ],
            },
          },
        ],
      ),
    );
    expect(m.blockedHosts).toEqual(["*.pastebin.com", "transfer.sh"]);
    expect(m.blockedCidrs).toEqual(["10.0.0.0/8", "fc00::/7"]);
    expect(m.requiredFeatures).toEqual(["wildcard_hosts", "auth_template"]);
    expect(m.services[0]!.hosts).toEqual(["uploads.github.com", "*.githubusercontent.com"]);
    expect(m.services[1]!.auth).toEqual({ scheme: "basic", credential: "github/token", username: "" });
    expect(m.services[2]!.auth).toEqual({ scheme: "basic", credential: "svc/pass", usernameCredential: "svc/user" });
    expect(m.services[3]!.auth.credentials).toEqual({ key: "acme/key", secret: "acme/secret" });
    expect(m.services[3]!.auth.inject).toEqual([
      { type: "header", name: "X-Token", value: "Token token={{key}}" },
      { type: "basic", username: "u", password: "{{secret}}" },
    ]);
    expect(m.services.map((s) => serviceProblems(s))).toEqual([[], [], [], []]);
    expect(validateManifest(m)).toEqual({ warnings: [] });
  });
  test("a credentials key named __proto__ is data, not a prototype", () => {
    const m = manifestFromJson(
      JSON.parse(
        '{"schema_version":1,"services":[{"name":"t","host":"t.test","auth":{"scheme":"template","credential":"a/b","credentials":{"__proto__":"x/y"},"inject":[{"type":"header","name":"X-A","value":"{{__proto__}}"}]}}]}',
      ),
    );
    expect(Object.keys(m.services[0]!.auth.credentials!)).toEqual(["__proto__"]);
    expect(serviceProblems(m.services[0]!)).toEqual([]);
  });
  test("new service fields of the wrong type make that service unusable, not the manifest", () => {
    const m = manifestFromJson(
      doc({}, [
        bearer("a", "a.test", { hosts: "b.test" }),
        {
          name: "b",
          host: "b.test",
          auth: {
            scheme: "template",
            credential: "n/k",
            username: 1,
            username_credential: ["x"],
            credentials: { k: 1 },
            inject: [{ type: "header", name: 5, value: "v" }, "x"],
          },
        },
        bearer("c", "c.test", { hosts: ["ok.test", null] }),
        { name: "d", host: "d.test", auth: { scheme: "template", credential: "n/k", credentials: [], inject: {} } },
      ]),
    );
    expect(m.services.map((s) => s.decodeProblems)).toEqual([
      ["hosts is not a list of strings"],
      [
        "auth.username is not a string",
        "auth.username_credential is not a string",
        "auth.credentials is not an object of strings",
        "auth.inject[0].name is not a string",
        "auth.inject[1] is not an object",
      ],
      ["hosts is not a list of strings"],
      ["auth.credentials is not an object of strings", "auth.inject is not a list"],
    ]);
    const w = validateManifest(m).warnings;
    expect(w[0]).toEqual({
      msg: "service can never be served",
      attrs: [
        ["service", "a"],
        ["host", "a.test"],
        ["problem", "hosts is not a list of strings"],
      ],
    });
  });
});

describe("required_features (PHASE2 §1.3)", () => {
  test("FEATURES is sorted and lists what this branch provides", () => {
    expect([...FEATURES]).toEqual([...FEATURES].sort());
    for (const f of ["auth_basic", "auth_template", "blocked_cidrs", "blocked_hosts", "multi_host", "wildcard_hosts"])
      expect(FEATURES).toContain(f);
  });
  test("every listed feature passes; an unknown one refuses the manifest with the spec's text", () => {
    expect(manifestFromJson(doc({ required_features: [...FEATURES] })).requiredFeatures).toEqual([...FEATURES]);
    expect(manifestFromJson(doc({ required_features: [] })).requiredFeatures).toBeUndefined();
    expect(manifestFromJson(doc({ required_features: null })).requiredFeatures).toBeUndefined();
    expect(() => manifestFromJson(doc({ required_features: ["wildcard_hosts", "nope"] }))).toThrow(
      'agent: /v1/services requires feature "nope" that this clef-proxy does not support',
    );
    expect(() => manifestFromJson(doc({ required_features: ["Wildcard_Hosts"] }))).toThrow(
      'requires feature "Wildcard_Hosts"',
    );
    expect(() => manifestFromJson(doc({ required_features: "rules" }))).toThrow(
      "agent: /v1/services rejected: required_features is not a list of strings",
    );
  });
});

describe("restrictive data rejects the whole manifest (PHASE2 §1.4)", () => {
  test.each([
    [
      { blocked_hosts: ["ok.test", "*.com"] },
      'blocked_hosts[1] "*.com" is not a valid host pattern: a wildcard needs at least two labels after "*."',
    ],
    [{ blocked_hosts: [""] }, 'blocked_hosts[0] "" is not a valid host pattern: empty host name'],
    [{ blocked_hosts: "x.test" }, "blocked_hosts is not a list of strings"],
    [{ blocked_hosts: [null] }, "blocked_hosts is not a list of strings"],
    [
      { blocked_cidrs: ["10.0.0.0/8", "10.0.0.0/33"] },
      'blocked_cidrs[1] "10.0.0.0/33": prefix length "33" is not 0-32',
    ],
    [{ blocked_cidrs: ["10.1.0.0/8"] }, 'blocked_cidrs[0] "10.1.0.0/8": host bits set (the network is 10.0.0.0/8)'],
    [{ blocked_cidrs: ["evil.test"] }, 'blocked_cidrs[0] "evil.test": "evil.test" is not an IPv4 or IPv6 address'],
    [{ blocked_cidrs: {} }, "blocked_cidrs is not a list of strings"],
  ])("%j", (extra, why) => {
    expect(() => manifestFromJson(doc(extra))).toThrow(`agent: /v1/services rejected: ${why}`);
  });
  test("validateManifest reports the same for a manifest built elsewhere", () => {
    const m = { ...manifestFromJson(doc()), blockedCidrs: ["nope"] };
    expect(validateManifest(m)).toEqual({
      warnings: [],
      rejected: 'blocked_cidrs[0] "nope": "nope" is not an IPv4 or IPv6 address',
    });
    expect(validateManifest({ ...m, blockedCidrs: [], requiredFeatures: ["x"] }).rejected).toBe(
      'requires feature "x" that this clef-proxy does not support',
    );
  });
});

describe("warnings (one WARN line each)", () => {
  test("a Phase 1 manifest warns exactly as checkServices did", () => {
    const m = manifestFromJson(
      doc({ passthrough_hosts: ["", "p.test"] }, [
        { name: "bad", host: "", auth: { scheme: "digest", credential: "noslash" } },
        { name: "h", host: "h.test", auth: { scheme: "api_key_header", credential: "n/k" } },
        bearer("ok", "ok.test"),
      ]),
    );
    expect(validateManifest(m).warnings).toEqual(
      checkServices(m).map((c) => ({
        msg: "service can never be served",
        attrs: [
          ["service", c.service],
          ["host", c.host],
          ["problem", c.problem],
        ],
      })),
    );
    expect(validateManifest(m).warnings).toHaveLength(4);
  });
  test("invalid passthrough patterns are ignored with a WARN; services with bad patterns are unusable", () => {
    const m = manifestFromJson(
      doc({ passthrough_hosts: ["ok.test", "*.com", "x.*.test"] }, [bearer("w", "*.test", { hosts: ["a.b.test"] })]),
    );
    expect(validateManifest(m).warnings).toEqual([
      {
        msg: "service can never be served",
        attrs: [
          ["service", "w"],
          ["host", "*.test"],
          ["problem", 'host "*.test" is not a valid host pattern: a wildcard needs at least two labels after "*."'],
        ],
      },
      {
        msg: "manifest entry ignored",
        attrs: [
          ["field", "passthrough_hosts[1]"],
          ["problem", '"*.com" is not a valid host pattern: a wildcard needs at least two labels after "*."'],
        ],
      },
      {
        msg: "manifest entry ignored",
        attrs: [
          ["field", "passthrough_hosts[2]"],
          [
            "problem",
            '"x.*.test" is not a valid host pattern: "*" is only allowed as the whole left-most label of a wildcard "*.name"',
          ],
        ],
      },
    ]);
    // the unusable service keeps its valid patterns (a request gets 500, not another service)
    const r = createMatcher(m).match("a.b.test", null);
    expect(r.kind === "service" && r.service.name).toBe("w");
  });
  test("patterns a block covers entirely are reported", () => {
    const m = manifestFromJson(
      doc(
        { blocked_hosts: ["*.pastebin.test", "transfer.test"], passthrough_hosts: ["transfer.test", "pastebin.test"] },
        [bearer("paste", "api.pastebin.test", { hosts: ["pastebin.test", "*.x.pastebin.test"] })],
      ),
    );
    expect(validateManifest(m).warnings).toEqual([
      {
        msg: "manifest entry shadowed by blocked_hosts",
        attrs: [
          ["field", "services[0].host"],
          ["service", "paste"],
          ["pattern", "api.pastebin.test"],
          ["blocked_by", "*.pastebin.test"],
        ],
      },
      {
        msg: "manifest entry shadowed by blocked_hosts",
        attrs: [
          ["field", "services[0].hosts[1]"],
          ["service", "paste"],
          ["pattern", "*.x.pastebin.test"],
          ["blocked_by", "*.pastebin.test"],
        ],
      },
      {
        msg: "manifest entry shadowed by blocked_hosts",
        attrs: [
          ["field", "passthrough_hosts[0]"],
          ["pattern", "transfer.test"],
          ["blocked_by", "transfer.test"],
        ],
      },
    ]);
  });
});

describe("standalone services file: same decoding and policy", () => {
  const write = (o: unknown) => {
    const p = join(mkdtempSync(join(tmpdir(), "clef-unit-")), "services.json");
    writeFileSync(p, JSON.stringify(o));
    return p;
  };
  test("rejections and required features name the file", () => {
    const a = write({ ...doc({ blocked_cidrs: ["x"] }), secrets: {} });
    expect(() => loadServicesFile(a, {})).toThrow(`agent: ${a} rejected: blocked_cidrs[0] "x"`);
    const b = write({ ...doc({ required_features: ["nope"] }), secrets: {} });
    expect(() => loadServicesFile(b, {})).toThrow(
      `agent: ${b} requires feature "nope" that this clef-proxy does not support`,
    );
  });
  test("examples/github.services.json: valid, no warnings, the F4/F5/F6 fields in use", async () => {
    const path = join(ROOT, "examples/github.services.json");
    const src = loadServicesFile(path, { GITHUB_TOKEN: "t0k" });
    expect(validateManifest(src.manifest)).toEqual({ warnings: [] });
    const m = createMatcher(src.manifest);
    const name = (h: string) => {
      const r = m.match(h, null);
      return r.kind === "service" ? r.service.name : r.kind;
    };
    expect(name("api.github.com")).toBe("github-api");
    expect(name("raw.githubusercontent.com")).toBe("github-api");
    expect(name("github.com")).toBe("github-git");
    expect(name("codeload.github.com")).toBe("passthrough");
    expect(name("gist.github.com")).toBe("deny");
    expect(src.manifest.services[1]!.auth).toMatchObject({ scheme: "basic", username: "x-access-token" });
    expect(await src.secret("github", "token")).toBe("t0k");
    expect(JSON.parse(readFileSync(path, "utf8")).schema_version).toBe(1);
  });
});
