// src/intercept/forward.ts upstreamUrl: the URL handed to the HTTP client is built from the
// decision's parts and parsed back before anything is sent (docs/CONTRACT.md §18.20): exactly the
// host and port decided, no userinfo, no fragment, origin-form paths only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BodyReader, type ByteSource } from "../../../src/http/body.ts";
import type { Socket } from "bun";
import { Conn, type ConnData } from "../../../src/intercept/conn.ts";
import { createForwarder, firstByteLeft, upstreamUrl } from "../../../src/intercept/forward.ts";
import type { UpstreamRequest } from "../../../src/intercept/forward-types.ts";
import { hostPort, UpstreamError } from "../../../src/intercept/upstream-error.ts";
import { freePort } from "../../helpers/proxy.ts";

describe("upstreamUrl", () => {
  test.each([
    ["https", "api.test", 443, "/x?q=1", "https://api.test:443/x?q=1"],
    ["http", "api.test", 80, "/", "http://api.test:80/"],
    ["https", "api.test", 8443, "/a%2Fb?k=%41&x", "https://api.test:8443/a%2Fb?k=%41&x"],
    ["https", "127.0.0.2", 443, "/", "https://127.0.0.2:443/"],
    ["https", "::1", 8443, "/x", "https://[::1]:8443/x"],
    ["http", "2001:db8::5", 80, "/x", "http://[2001:db8::5]:80/x"],
    // a path starting with two slashes stays a path: the host is still the decided one
    ["http", "api.test", 80, "//evil.test/x", "http://api.test:80//evil.test/x"],
    ["http", "api.test", 80, "/@evil.test", "http://api.test:80/@evil.test"],
    ["http", "api.test", 80, "/\\evil.test", "http://api.test:80/\\evil.test"],
  ] as const)("%s %s %d %s → %s", (scheme, host, port, path, want) => {
    expect(upstreamUrl(scheme, host, port, path)).toBe(want);
    const u = new URL(want);
    expect(u.hostname.replace(/^\[|\]$/g, "")).toBe(host);
  });

  test.each(["", "x", "?q=1", "@evil.test/x", "evil.test/x", "*", "http://evil.test/", "\\\\evil.test/x", "#frag"])(
    "a path not starting with / is rejected: %p",
    (path) => {
      expect(() => upstreamUrl("https", "api.test", 443, path)).toThrow(new UpstreamError("request-target rejected"));
    },
  );

  test("a fragment is rejected", () => {
    expect(() => upstreamUrl("https", "api.test", 443, "/x#frag")).toThrow("request-target rejected");
  });

  test("a host that would parse as userinfo is rejected, never sent", () => {
    expect(() => upstreamUrl("https", "user@evil.test", 443, "/")).toThrow("request-target rejected");
  });

  test("a port out of range never yields a URL", () => {
    expect(() => upstreamUrl("https", "api.test", 99999, "/")).toThrow();
  });
});

describe("upstreamUrl's per-origin cache", () => {
  test("past its bound, every origin is still parsed and checked", () => {
    for (let port = 1; port <= 2100; port++)
      expect(upstreamUrl("https", "api.test", port, "/x")).toBe(`https://api.test:${port}/x`);
    // many hosts, both schemes, an IPv6 literal among them: each URL names its own origin
    for (let i = 0; i < 1500; i++) {
      expect(upstreamUrl("https", `h${i}.test`, 443, "/")).toBe(`https://h${i}.test:443/`);
      expect(upstreamUrl("http", `h${i}.test`, 443, "/")).toBe(`http://h${i}.test:443/`);
    }
    expect(upstreamUrl("http", "::1", 80, "/")).toBe("http://[::1]:80/");
    expect(() => upstreamUrl("https", "user@evil.test", 443, "/")).toThrow("request-target rejected");
    expect(() => upstreamUrl("https", "api.test", 99999, "/")).toThrow();
  });

  test("a URL's parse is remembered per exact string: a rejected one stays rejected, past the bound too", () => {
    const bad = (): unknown => upstreamUrl("https", "api.test", 443, "/x#frag");
    const viaUserinfo = (): unknown => upstreamUrl("https", "user@evil.test", 443, "/x");
    for (let round = 0; round < 3; round++) {
      expect(bad).toThrow("request-target rejected");
      expect(viaUserinfo).toThrow("request-target rejected");
      expect(upstreamUrl("https", "api.test", 443, "/x")).toBe("https://api.test:443/x");
      // the same path on another origin is its own string: checked against that origin
      expect(upstreamUrl("https", "127.0.0.2", 443, "/x")).toBe("https://127.0.0.2:443/x");
      for (let i = 0; i < 1500; i++)
        expect(upstreamUrl("https", "api.test", 443, `/p${i}`)).toBe(`https://api.test:443/p${i}`);
    }
    // longer than the remembered bound: parsed every time
    const long = `/${"a".repeat(4000)}`;
    expect(upstreamUrl("https", "api.test", 443, long)).toBe(`https://api.test:443${long}`);
    expect(() => upstreamUrl("https", "api.test", 443, `${long}#f`)).toThrow("request-target rejected");
  });
});

describe("createForwarder().forward", () => {
  // a plain-HTTP upstream on loopback: /hold never answers, / answers "ok"
  let server: ReturnType<typeof Bun.serve>;
  beforeAll(() => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/hold") return new Promise<Response>(() => {});
        if (path === "/stream")
          // no Content-Length (chunked), two cookies
          return new Response(
            new ReadableStream({
              async start(c) {
                c.enqueue(new TextEncoder().encode("stream"));
                await Bun.sleep(20); // (not finished at once: the server cannot know the length)
                c.enqueue(new TextEncoder().encode("ed"));
                c.close();
              },
            }),
            {
              headers: [
                ["set-cookie", "a=1"],
                ["set-cookie", "b=2"],
                ["x-after", "1"],
              ],
            },
          );
        return new Response("ok", { headers: { "x-ua": req.headers.get("user-agent") ?? "" } });
      },
    });
  });
  afterAll(() => server.stop(true));
  const request = (path: string, ac: AbortController, withController: boolean): UpstreamRequest => ({
    method: "GET",
    scheme: "http",
    host: "127.0.0.1",
    port: server.port!,
    pathAndQuery: path,
    headers: [["Host", "127.0.0.1"]],
    body: null,
    contentLength: null,
    addresses: ["127.0.0.1"],
    proxy: null,
    signal: ac.signal,
    ...(withController ? { controller: ac } : {}),
  });

  test("a refused first address, then the next vetted one answers", async () => {
    const f = createForwarder();
    const res = await f.forward({
      ...request("/", new AbortController(), true),
      addresses: ["127.0.0.9", "127.0.0.1"],
    });
    expect(res.status).toBe(200);
    await res.readAll!();
    res.release();
  });

  test("every address refused → the reference's text for the last one, the slot freed", async () => {
    const f = createForwarder();
    const port = await freePort();
    const p = f.forward({ ...request("/", new AbortController(), true), port, addresses: ["127.0.0.1"] });
    await expect(p).rejects.toThrow(new UpstreamError(`dial tcp 127.0.0.1:${port}: connect: connection refused`));
    expect(f.scheduler.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("the first-byte deadline cuts a silent upstream and frees its slot", async () => {
    const f = createForwarder({ firstByteTimeoutMs: 100 });
    const p = f.forward(request("/hold", new AbortController(), true));
    await expect(p).rejects.toThrow(new UpstreamError("upstream did not answer within 0.1s"));
    expect(f.scheduler.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });

  for (const withController of [true, false]) {
    test(`the caller's controller ${withController ? "handed over" : "linked"}: its abort cancels a held request`, async () => {
      const f = createForwarder();
      const ac = new AbortController();
      const p = f.forward(request("/hold", ac, withController));
      setTimeout(() => ac.abort(), 50);
      await expect(p).rejects.toThrow(new UpstreamError("request cancelled"));
      expect(f.scheduler.stats()).toEqual({ inFlight: 0, waiting: 0 });
    });

    test(`an answer (controller ${withController ? "handed over" : "linked"}): status, body in one read, Go's User-Agent`, async () => {
      const f = createForwarder();
      const res = await f.forward(request("/", new AbortController(), withController));
      expect(res.status).toBe(200);
      expect(res.contentLength).toBe(2);
      expect(new TextDecoder().decode(await res.readAll!())).toBe("ok");
      expect(res.headers).toContainEqual(["x-ua", "Go-http-client/1.1"]);
      res.release();
      expect(f.scheduler.stats()).toEqual({ inFlight: 0, waiting: 0 });
    });
  }
  test("no Content-Length: length unknown (null), Set-Cookie values one by one, the other fields kept", async () => {
    const f = createForwarder();
    const res = await f.forward(request("/stream", new AbortController(), true));
    expect(res.contentLength).toBeNull();
    expect(res.headers.filter(([k]) => k === "content-length")).toEqual([]);
    expect(res.headers.filter(([k]) => k === "set-cookie")).toEqual([
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ]);
    expect(res.headers).toContainEqual(["x-after", "1"]);
    expect(await new Response(res.body).text()).toBe("streamed");
    res.release();
  });

  // src/intercept/conn.ts: a connection hands every request of its own the same controller
  // (requestController) until it was aborted — by the first-byte deadline or by the client going away.
  describe("a connection's request controller", () => {
    const connOn = () => {
      const sock = { write: (b: Uint8Array) => b.byteLength, end() {}, terminate() {}, pause() {}, resume() {} };
      return new Conn(sock as unknown as Socket<ConnData>, "127.0.0.1", 1);
    };

    test("kept across 5,000 completed requests; a request holding it is cancelled when the client goes away", async () => {
      const f = createForwarder();
      const conn = connOn();
      const first = conn.requestController();
      for (let i = 0; i < 5000; i++) {
        const ac = conn.requestController();
        expect(ac).toBe(first);
        const res = await f.forward(request("/", ac, true));
        await res.readAll!();
        res.release();
      }
      // a request still holding it is aborted when the client goes away
      const p = f.forward(request("/hold", conn.requestController(), true));
      setTimeout(() => conn.onClose(), 50);
      await expect(p).rejects.toThrow(new UpstreamError("request cancelled"));
      expect(first.signal.aborted).toBe(true);
      expect(f.scheduler.stats()).toEqual({ inFlight: 0, waiting: 0 });
    });

    test("after a first-byte timeout the next request on the connection gets a new one and is answered", async () => {
      const f = createForwarder({ firstByteTimeoutMs: 100 });
      const conn = connOn();
      const first = conn.requestController();
      await expect(f.forward(request("/hold", first, true))).rejects.toThrow(
        new UpstreamError("upstream did not answer within 0.1s"),
      );
      const next = conn.requestController();
      expect(next).not.toBe(first);
      const res = await f.forward(request("/", next, true));
      expect(res.status).toBe(200);
      await res.readAll!();
      res.release();
    });

    test("closed: the current one is aborted, and so is any asked for afterwards", () => {
      const conn = connOn();
      const ac = conn.requestController();
      conn.onClose();
      expect(ac.signal.aborted).toBe(true);
      expect(conn.requestController().signal.aborted).toBe(true);
    });
  });
});

describe("the first-byte deadline and request bodies", () => {
  test("firstByteLeft counts from the later of the start and the body's last progress", () => {
    expect(firstByteLeft(1000, 0, 0, 300)).toBe(-700);
    expect(firstByteLeft(100, 0, 0, 300)).toBe(200);
    expect(firstByteLeft(1000, 0, 900, 300)).toBe(200); // the body moved at 900
    expect(firstByteLeft(1000, 950, 900, 300)).toBe(250);
  });

  // /read answers after reading the whole body; /read-silent reads it and never answers;
  // /no-read never reads it and never answers
  let server: ReturnType<typeof Bun.serve>;
  beforeAll(() => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/no-read") return new Promise<Response>(() => {});
        const n = (await req.arrayBuffer()).byteLength;
        if (path === "/read-silent") return new Promise<Response>(() => {});
        return new Response(`got ${n}`);
      },
    });
  });
  afterAll(() => server.stop(true));

  /** A client that sends `chunks` pieces of `size` bytes, one every `everyMs`. */
  function slowClient(chunks: number, size: number, everyMs: number): ByteSource {
    let sent = 0;
    return {
      async read() {
        if (sent === chunks) return null;
        if (everyMs) await Bun.sleep(everyMs);
        sent++;
        return new Uint8Array(size).fill(0x61);
      },
      unshift() {},
    };
  }
  const upload = (path: string, body: BodyReader, length: number, ac = new AbortController()): UpstreamRequest => ({
    method: "POST",
    scheme: "http",
    host: "127.0.0.1",
    port: server.port!,
    pathAndQuery: path,
    headers: [["Host", "127.0.0.1"]],
    body: { open: () => body.stream(() => {}), started: () => body.delivered > 0, progressAt: () => body.progressAt },
    contentLength: length,
    addresses: ["127.0.0.1"],
    proxy: null,
    signal: ac.signal,
    controller: ac,
  });

  test("an upload that keeps moving for 4× the deadline is not cut; the answer comes after it", async () => {
    const f = createForwarder({ firstByteTimeoutMs: 300 });
    const body = new BodyReader(slowClient(12, 1024, 100), { kind: "length", length: 12 * 1024 }, 5000);
    const t0 = performance.now();
    const res = await f.forward(upload("/read", body, 12 * 1024));
    expect(performance.now() - t0).toBeGreaterThan(1000); // it did take longer than the deadline
    expect(res.status).toBe(200);
    expect(new TextDecoder().decode(await res.readAll!())).toBe(`got ${12 * 1024}`);
    res.release();
    expect(f.scheduler.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("after the body's end the deadline runs: a silent upstream is cut", async () => {
    const f = createForwarder({ firstByteTimeoutMs: 300 });
    const body = new BodyReader(slowClient(6, 1024, 100), { kind: "length", length: 6 * 1024 }, 5000);
    const t0 = performance.now();
    await expect(f.forward(upload("/read-silent", body, 6 * 1024))).rejects.toThrow(
      new UpstreamError("upstream did not answer within 0.3s"),
    );
    expect(body.finished).toBe(true);
    expect(performance.now() - t0).toBeGreaterThan(600 + 250);
    expect(f.scheduler.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("an upstream that stops taking the body is cut (the upload stalls: no unbounded hold)", async () => {
    const f = createForwarder({ firstByteTimeoutMs: 300 });
    const length = 1 << 30; // far more than the socket buffers hold
    const body = new BodyReader(slowClient(length / 65536, 65536, 0), { kind: "length", length }, 5000);
    await expect(f.forward(upload("/no-read", body, length))).rejects.toThrow(
      new UpstreamError("upstream did not answer within 0.3s"),
    );
    expect(body.finished).toBe(false);
    expect(body.delivered).toBeLessThan(256 << 20);
    expect(f.scheduler.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });
});

describe("upstreamUrl with the expected origin cached per origin", () => {
  // the plain definition: both URLs parsed on every call
  function fullCheck(scheme: "http" | "https", host: string, port: number, path: string): string {
    if (!path.startsWith("/")) throw new UpstreamError("request-target rejected");
    const base = `${scheme}://${hostPort(host, port)}`;
    // a target's bytes ≥ 0x80 (latin1 characters) go as %XX each
    const href = base + path.replace(/[\x80-\xff]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    const expected = new URL(`${base}/`);
    let u: URL;
    try {
      u = new URL(href);
    } catch {
      throw new UpstreamError("request-target rejected");
    }
    if (u.protocol !== expected.protocol || u.host !== expected.host || u.username || u.password || u.hash)
      throw new UpstreamError("request-target rejected");
    return href;
  }
  const outcome = (f: () => string) => {
    try {
      return f();
    } catch (e) {
      return `throws ${e instanceof UpstreamError ? e.message : "TypeError"}`;
    }
  };

  test("random hosts and paths (hostile characters included): the same URL or the same refusal", () => {
    const hostParts = ["api", ".test", "a", "@", "#", "?", "/", ":", "[", "]", "::1", "127.0.0.2", "%", " ", "\\"];
    const pathChars = [
      ..."aZ09-._~!$&'()*+,;=:@/?%",
      "#",
      "\\",
      " ",
      "\t",
      "\n",
      "[",
      "]",
      "é",
      "\x80",
      "\xff",
      "\u0000",
      "^",
      "`",
      "{",
      '"',
    ];
    let seed = 5;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      const host =
        rnd(3) === 0 ? "api.test" : Array.from({ length: 1 + rnd(3) }, () => hostParts[rnd(hostParts.length)]).join("");
      const path =
        (rnd(10) === 0 ? "" : "/") + Array.from({ length: rnd(12) }, () => pathChars[rnd(pathChars.length)]).join("");
      const scheme = rnd(2) ? "https" : "http";
      const port = [443, 80, 8443, 0, 70000][rnd(5)]!;
      const want = outcome(() => fullCheck(scheme, host, port, path));
      expect(outcome(() => upstreamUrl(scheme, host, port, path))).toBe(want);
    }
  });
});
