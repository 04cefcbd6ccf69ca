// src/config/load.ts in process: the `metrics` section (F14) and unknown-field detection with
// "did you mean" suggestions (src/config/suggest.ts). The exit codes and exact framing through the
// binary are in test/ops.test.ts and test/metrics.test.ts.
import { describe, expect, test } from "bun:test";
import { parseConfig, type UnknownField, unknownFields } from "../../../src/config/load.ts";
import { closest, editDistance } from "../../../src/config/suggest.ts";
import { parseGoJson } from "../../../src/gojson/decode.ts";

const unknown = (text: string) => unknownFields(parseGoJson(text));
const validateErr = (text: string): string => {
  try {
    parseConfig(text, {});
  } catch (e) {
    return `${(e as { phase?: string }).phase}: ${(e as Error).message}`;
  }
  return "ok";
};

describe("metrics section", () => {
  test("defaults off; port and token read (case-insensitive keys, null = default)", () => {
    expect(parseConfig("{}", {}).metrics).toEqual({ port: 0, token: "" });
    expect(parseConfig('{"Metrics":{"PORT":9464,"token":"t"}}', {}).metrics).toEqual({ port: 9464, token: "t" });
    expect(parseConfig('{"metrics":null}', {}).metrics).toEqual({ port: 0, token: "" });
  });
  test("validation messages (after every rule the reference knows)", () => {
    expect(validateErr('{"metrics":{"port":70000}}')).toBe("validate: metrics.port: 70000 out of range (1-65535)");
    expect(validateErr('{"metrics":{"port":-1}}')).toBe("validate: metrics.port: -1 out of range (1-65535)");
    expect(validateErr('{"metrics":{"port":8888}}')).toBe("validate: metrics.port: equals listen.port");
    expect(validateErr('{"listen":{"port":9000},"metrics":{"port":9000}}')).toBe(
      "validate: metrics.port: equals listen.port",
    );
    expect(validateErr('{"listen":{"port":70000},"metrics":{"port":70000}}')).toBe(
      "validate: listen.port: 70000 out of range (1-65535)",
    );
    expect(validateErr('{"metrics":{"port":"9464"}}')).toBe(
      "parse: json: cannot unmarshal string into Go struct field MetricsConfig.metrics.port of type int",
    );
    expect(validateErr('{"metrics":{"token":1}}')).toBe(
      "parse: json: cannot unmarshal number into Go struct field MetricsConfig.metrics.token of type string",
    );
  });
});

describe("unknown fields", () => {
  test("known fields (any case) are not reported; unknown ones are, with their JSON path", () => {
    expect(unknown('{"LISTEN":{"Port":1},"audit":{"max_files":1},"metrics":{"port":2}}')).toEqual([]);
    expect(unknown('{"listen":{"prot":1},"zzzzqq":{"a":1},"serve":{"drain":"1s"}}')).toEqual<UnknownField[]>([
      { path: "listen.prot", suggestion: "listen.port" },
      { path: "zzzzqq", suggestion: null },
      { path: "serve.drain", suggestion: "serve.drain_timeout" },
    ]);
  });
  test("suggestions: siblings first, then a field elsewhere, then a dotted path used as a key", () => {
    const s = (text: string) => unknown(text).map((f) => f.suggestion);
    expect(s('{"lisen":{}}')).toEqual(["listen"]);
    expect(s('{"upstream":{"proxyurl":"x"}}')).toEqual(["upstream.proxy_url"]);
    expect(s('{"audit":{"fiel":"x"}}')).toEqual(["audit.file"]);
    expect(s('{"port":1}')).toEqual(["listen.port"]);
    expect(s('{"drain_timeout":"1s"}')).toEqual(["serve.drain_timeout"]);
    expect(s('{"listen.port":1}')).toEqual(["listen.port"]);
    expect(s('{"lambda_loopback":true}')).toEqual(["lambda_loopback_only"]);
    expect(s('{"x":1,"ab":2}')).toEqual([null, null]);
  });
  test("a value of the wrong type for a struct is not walked; arrays are not walked", () => {
    expect(unknown('{"listen":"x","upstream":{"no_proxy":[{"a":1}]}}')).toEqual([]);
  });
  test("parseConfig reports them through onUnknownField before validation, and still validates", () => {
    const seen: string[] = [];
    expect(() =>
      parseConfig('{"listen":{"prot":1,"port":70000}}', {}, { onUnknownField: (f) => seen.push(f.path) }),
    ).toThrow("listen.port: 70000 out of range");
    expect(seen).toEqual(["listen.prot"]);
  });
});

describe("edit distance", () => {
  test("optimal string alignment: a transposition is one edit", () => {
    expect(editDistance("prot", "port")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("same", "same")).toBe(0);
  });
  test("closest: case-insensitive, within a budget that grows with the word, earlier candidate on ties", () => {
    expect(closest("PORT", [["port", "listen.port"]])).toBe("listen.port");
    expect(closest("ab", [["ac", "x"]])).toBeNull();
    expect(
      closest("port", [
        ["port", "a"],
        ["port", "b"],
      ]),
    ).toBe("a");
    expect(closest("destinaton", [["destination", "audit.destination"]])).toBe("audit.destination");
    expect(closest("xyz", [["destination", "audit.destination"]])).toBeNull();
    expect(closest("proxy", [["proxy_url", "upstream.proxy_url"]])).toBe("upstream.proxy_url");
    expect(closest("pro", [["proxy_url", "upstream.proxy_url"]])).toBeNull();
  });
});

describe("defaults and Go's decoding (moved from test/policy.test.ts)", () => {
  test("defaults for {}", () => {
    const c = parseConfig("{}", {});
    expect(c.listen.port).toBe(8888);
    expect(c.audit).toMatchObject({ destination: "stdout", file: "", maxSizeMb: 100, maxFiles: 5 });
    expect(c.serve.drainTimeoutText).toBe("5s");
    expect(parseConfig("{}", { AWS_LAMBDA_FUNCTION_NAME: "f" }).serve.drainTimeoutText).toBe("1s");
    expect(parseConfig('{"listen":{"port":0},"serve":{"drain_timeout":"0s"}}', {}).listen.port).toBe(8888);
  });
  test("Go's case-insensitive field names and null", () => {
    const c = parseConfig('{"LISTEN":{"Port":9000},"audit":null,"upstream":{"no_proxy":null}}', {});
    expect(c.listen.port).toBe(9000);
    expect(c.upstream.noProxy).toEqual([]);
  });
  test("drain_timeout: Go duration strings, printed back in Go's form", () => {
    expect(parseConfig('{"serve":{"drain_timeout":"0.5m"}}', {}).serve.drainTimeoutText).toBe("30s");
    expect(validateErr('{"serve":{"drain_timeout":"90s"}}')).toBe(
      "validate: serve.drain_timeout: 1m30s exceeds sanity cap of 1m0s",
    );
    expect(parseConfig('{"serve":{"drain_timeout":"1500ms"}}', {}).serve.drainTimeoutMs).toBe(1500);
    expect(validateErr('{"serve":{"drain_timeout":"5"}}')).toContain('time: missing unit in duration "5"');
    expect(validateErr('{"serve":{"drain_timeout":"-1s"}}')).toContain("serve.drain_timeout: -1s must be positive");
  });
});
