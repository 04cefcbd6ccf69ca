// The proxy's own upstream HTTP/1.1 client (src/intercept/h1-client.ts) against scripted upstreams
// on real loopback sockets: what goes out, how responses are framed, when a connection is reused and
// when it must not be (smuggled bytes, close, errors, aborts), and the replay rule.
import { afterEach, describe, expect, test } from "bun:test";
import { createServer as createTlsServer } from "node:tls";
import type { Socket } from "bun";
import { H1Client } from "../../../src/intercept/h1-client.ts";
import type { UpstreamRequest } from "../../../src/intercept/forward-types.ts";
import { freePort } from "../../helpers/proxy.ts";
import { makeTestPki } from "../../helpers/tls.ts";

interface ServerConn {
  id: number;
  /** Every byte received, as latin1. */
  received: string;
  closed: boolean;
  sock: Socket<{ c: ServerConn }>;
}

/**
 * A raw upstream: `onHead(conn, head, n)` is called for each request head received on a connection
 * (n counts the heads on that connection) and writes whatever bytes the test wants.
 */
function scripted(onHead: (c: ServerConn, head: string, n: number) => void) {
  const conns: ServerConn[] = [];
  const server = Bun.listen<{ c: ServerConn; buf: string; n: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(sock) {
        const c: ServerConn = { id: conns.length, received: "", closed: false, sock: sock as never };
        conns.push(c);
        sock.data = { c, buf: "", n: 0 };
      },
      data(sock, d) {
        const s = Buffer.from(d).toString("latin1");
        sock.data.c.received += s;
        sock.data.buf += s;
        for (let i = sock.data.buf.indexOf("\r\n\r\n"); i >= 0; i = sock.data.buf.indexOf("\r\n\r\n")) {
          const head = sock.data.buf.slice(0, i);
          sock.data.buf = sock.data.buf.slice(i + 4);
          onHead(sock.data.c, head, sock.data.n++);
        }
      },
      close(sock) {
        sock.data.c.closed = true;
      },
      error() {},
    },
  });
  servers.push(server);
  return { port: server.port, conns };
}

const servers: { stop(force?: boolean): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true);
});

function get(port: number, path = "/x", method = "GET", headers: [string, string][] = []): UpstreamRequest {
  const ac = new AbortController();
  return {
    method,
    scheme: "http",
    host: "127.0.0.1",
    port,
    pathAndQuery: path,
    headers: [["host", `127.0.0.1:${port}`], ...headers],
    body: null,
    contentLength: null,
    addresses: ["127.0.0.1"],
    proxy: null,
    signal: ac.signal,
    controller: ac,
  };
}

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached");
    await Bun.sleep(5);
  }
};
const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: { code?: string }) => e.code ?? String(e),
  );
async function bodyOf(res: { body(): ReadableStream<Uint8Array> | null }): Promise<string> {
  const b = res.body();
  return b ? text(new Uint8Array(await new Response(b).arrayBuffer())) : "";
}

const ok = (body: string, extra = "") => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

describe("what goes out", () => {
  test("the request head: the target as given, Go's canonical names, Go's User-Agent when none was sent", async () => {
    const up = scripted((c) => c.sock.write(ok("hi")));
    const client = new H1Client();
    const req = get(up.port, "/a%20b?q=1", "GET", [
      ["x-custom-header", "v"],
      ["authorization", "Bearer s"],
    ]);
    const res = await client.request(req, "127.0.0.1", null, req.signal);
    expect(await bodyOf(res)).toBe("hi");
    expect(up.conns[0]!.received).toBe(
      `GET /a%20b?q=1 HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nX-Custom-Header: v\r\nAuthorization: Bearer s\r\nUser-Agent: Go-http-client/1.1\r\n\r\n`,
    );
  });

  test("a workload's User-Agent is kept, not doubled", async () => {
    const up = scripted((c) => c.sock.write(ok("")));
    const client = new H1Client();
    const req = get(up.port, "/", "GET", [["user-agent", "curl/8"]]);
    await client.request(req, "127.0.0.1", null, req.signal);
    expect(up.conns[0]!.received.match(/User-Agent/g)).toEqual(["User-Agent"]);
    expect(up.conns[0]!.received).toContain("User-Agent: curl/8\r\n");
  });
});

describe("keep-alive and the pool", () => {
  test("sequential requests share one connection; the response heads and bodies are each their own", async () => {
    const up = scripted((c, _h, n) => c.sock.write(ok(`r${n}`, "X-N: 1\r\n")));
    const client = new H1Client();
    for (let i = 0; i < 3; i++) {
      const req = get(up.port);
      const res = await client.request(req, "127.0.0.1", null, req.signal);
      expect(res.head.status).toBe(200);
      expect(await bodyOf(res)).toBe(`r${i}`);
    }
    expect(up.conns.length).toBe(1);
    expect(client.idleConnections).toBe(1);
  });

  test("concurrent requests get connections of their own, pooled afterwards", async () => {
    const waiting: ServerConn[] = [];
    const up = scripted((c) => waiting.push(c));
    const client = new H1Client();
    const a = get(up.port);
    const b = get(up.port);
    const pa = client.request(a, "127.0.0.1", null, a.signal);
    const pb = client.request(b, "127.0.0.1", null, b.signal);
    await until(() => waiting.length === 2);
    for (const c of waiting) c.sock.write(ok(`c${c.id}`));
    expect((await Promise.all([pa, pb].map(async (p) => bodyOf(await p)))).sort()).toEqual(["c0", "c1"]);
    expect(up.conns.length).toBe(2);
    expect(client.idleConnections).toBe(2);
  });

  test("the pool is per origin: another port (or TLS name) never gets the connection", async () => {
    const up1 = scripted((c) => c.sock.write(ok("1")));
    const up2 = scripted((c) => c.sock.write(ok("2")));
    const client = new H1Client();
    const r1 = get(up1.port);
    expect(await bodyOf(await client.request(r1, "127.0.0.1", null, r1.signal))).toBe("1");
    const r2 = get(up2.port);
    expect(await bodyOf(await client.request(r2, "127.0.0.1", null, r2.signal))).toBe("2");
    expect(up1.conns.length + up2.conns.length).toBe(2);
  });

  test("bytes after the body (a second, unasked-for response) are never read as the next answer", async () => {
    const up = scripted((c, _h, n) =>
      c.sock.write(
        c.id === 0 && n === 0 ? `${ok("one")}HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled` : ok("?"),
      ),
    );
    const client = new H1Client();
    const a = get(up.port);
    expect(await bodyOf(await client.request(a, "127.0.0.1", null, a.signal))).toBe("one");
    const b = get(up.port);
    const res = await client.request(b, "127.0.0.1", null, b.signal);
    expect(await bodyOf(res)).toBe("?");
    expect(up.conns.length).toBe(2); // the first connection was closed, not reused
    await until(() => up.conns[0]!.closed);
  });

  test("bytes arriving while a connection idles: it is closed, never written to", async () => {
    const up = scripted((c, _h, n) => {
      c.sock.write(ok(`r${n}`));
      if (c.id === 0) setTimeout(() => c.sock.write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad"), 20);
    });
    const client = new H1Client();
    const a = get(up.port);
    expect(await bodyOf(await client.request(a, "127.0.0.1", null, a.signal))).toBe("r0");
    await Bun.sleep(80);
    const b = get(up.port);
    expect(await bodyOf(await client.request(b, "127.0.0.1", null, b.signal))).toBe("r0");
    expect(up.conns.length).toBe(2);
    expect(up.conns[0]!.received.split("GET ").length - 1).toBe(1);
  });

  test.each([
    ["Connection: close", ok("x", "Connection: close\r\n")],
    ["HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"],
  ])("%s: the connection is not reused", async (_n, answer) => {
    const up = scripted((c) => c.sock.write(answer));
    const client = new H1Client();
    for (let i = 0; i < 2; i++) {
      const req = get(up.port);
      expect(await bodyOf(await client.request(req, "127.0.0.1", null, req.signal))).toBe("x");
    }
    expect(up.conns.length).toBe(2);
    expect(client.idleConnections).toBe(0);
  });

  test("a connection the upstream closes while pooled leaves the pool; the next request dials afresh", async () => {
    const up = scripted((c, _h, n) => {
      c.sock.write(ok(`r${n}`));
      if (c.id === 0) setTimeout(() => c.sock.end(), 20);
    });
    const client = new H1Client();
    const a = get(up.port);
    expect(await bodyOf(await client.request(a, "127.0.0.1", null, a.signal))).toBe("r0");
    await until(() => client.idleConnections === 0);
    const b = get(up.port);
    expect(await bodyOf(await client.request(b, "127.0.0.1", null, b.signal))).toBe("r0");
    expect(up.conns.length).toBe(2);
  });
});

describe("framing", () => {
  test("close-delimited: read to the upstream's close; not pooled", async () => {
    const up = scripted((c) => {
      c.sock.write("HTTP/1.1 200 OK\r\n\r\npart1 ");
      setTimeout(() => {
        c.sock.write("part2");
        c.sock.end();
      }, 20);
    });
    const client = new H1Client();
    const req = get(up.port);
    const res = await client.request(req, "127.0.0.1", null, req.signal);
    expect(res.head.contentLength).toBeNull();
    expect(await bodyOf(res)).toBe("part1 part2");
    expect(client.idleConnections).toBe(0);
  });

  test("chunked is decoded, trailers dropped, and the connection reused", async () => {
    const up = scripted((c) =>
      c.sock.write(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
      ),
    );
    const client = new H1Client();
    for (let i = 0; i < 2; i++) {
      const req = get(up.port);
      const res = await client.request(req, "127.0.0.1", null, req.signal);
      expect(await bodyOf(res)).toBe("abcde");
    }
    expect(up.conns.length).toBe(1);
  });

  test("readAll gives the same bytes, and a body-less answer to HEAD is pooled at once", async () => {
    const up = scripted((c, h) =>
      c.sock.write(h.startsWith("HEAD") ? "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" : ok("whole")),
    );
    const client = new H1Client();
    const h = get(up.port, "/", "HEAD");
    const res = await client.request(h, "127.0.0.1", null, h.signal);
    expect(res.body()).toBeNull();
    expect(res.head.contentLength).toBe(1000);
    expect(client.idleConnections).toBe(1);
    const g = get(up.port);
    expect(text(await (await client.request(g, "127.0.0.1", null, g.signal)).readAll())).toBe("whole");
    expect(up.conns.length).toBe(1);
  });

  test.each([
    ["a bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"],
    ["a chunk size past 2^53", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc"],
    ["a body shorter than its Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"],
  ])("%s: the body fails (never ends cleanly) and the connection is closed", async (_n, answer) => {
    const up = scripted((c) => {
      c.sock.write(answer);
      setTimeout(() => c.sock.end(), 20);
    });
    const client = new H1Client();
    const req = get(up.port);
    const res = await client.request(req, "127.0.0.1", null, req.signal);
    expect(await codeOf(bodyOf(res))).not.toBe("resolved");
    expect(client.idleConnections).toBe(0);
    await until(() => up.conns[0]!.closed);
  });

  test("1xx answers are skipped; 101 (not asked for) is an error", async () => {
    const up = scripted((c, h) =>
      c.sock.write(
        h.includes("/101")
          ? "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
          : `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${ok("fin")}`,
      ),
    );
    const client = new H1Client();
    const a = get(up.port, "/1xx");
    const res = await client.request(a, "127.0.0.1", null, a.signal);
    expect(res.head.status).toBe(200);
    expect(res.headers).toEqual([["content-length", "3"]]);
    expect(await bodyOf(res)).toBe("fin");
    const b = get(up.port, "/101");
    expect(await codeOf(client.request(b, "127.0.0.1", null, b.signal))).toBe("Malformed_HTTP_Response");
  });

  test.each([
    [
      "Content-Length and Transfer-Encoding",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "Malformed_HTTP_Response",
    ],
    [
      "two Content-Lengths",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc",
      "InvalidContentLength",
    ],
    ["LF-only line ends", "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", "Malformed_HTTP_Response"],
    [
      "a head past the size limit",
      `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(1 << 20)}\r\n\r\n`,
      "ResponseHeadersTooLarge",
    ],
    ["not HTTP", "SSH-2.0-OpenSSH_9\r\n\r\n", "Malformed_HTTP_Response"],
    ["an upstream that closes without answering", "", "ConnectionClosed"],
  ])("%s: rejected, connection closed", async (_n, answer, code) => {
    const up = scripted((c) => {
      if (answer) c.sock.write(answer);
      else c.sock.end();
    });
    const client = new H1Client();
    const req = get(up.port);
    expect(await codeOf(client.request(req, "127.0.0.1", null, req.signal))).toBe(code);
    expect(client.idleConnections).toBe(0);
    await until(() => up.conns[0]!.closed);
  });
});

describe("stale connections and the replay rule", () => {
  /** Answers the first request of every connection; closes the first connection on its second. */
  const racy = () =>
    scripted((c, _h, n) => {
      if (c.id === 0 && n === 1) c.sock.end();
      else c.sock.write(ok(`c${c.id}`));
    });

  test("GET on a pooled connection the upstream closes instead of answering: replayed on a new one", async () => {
    const up = racy();
    const client = new H1Client();
    const a = get(up.port);
    expect(await bodyOf(await client.request(a, "127.0.0.1", null, a.signal))).toBe("c0");
    const b = get(up.port);
    expect(await bodyOf(await client.request(b, "127.0.0.1", null, b.signal))).toBe("c1");
  });

  test("DELETE there is not replayed (it may have been acted on): an error", async () => {
    const up = racy();
    const client = new H1Client();
    const a = get(up.port);
    await bodyOf(await client.request(a, "127.0.0.1", null, a.signal));
    const b = get(up.port, "/x", "DELETE");
    expect(await codeOf(client.request(b, "127.0.0.1", null, b.signal))).toBe("ConnectionClosed");
    expect(up.conns.length).toBe(1);
  });

  test("a fresh connection closed before any answer is not retried, whatever the method", async () => {
    const up = scripted((c) => c.sock.end());
    const client = new H1Client();
    const req = get(up.port);
    expect(await codeOf(client.request(req, "127.0.0.1", null, req.signal))).toBe("ConnectionClosed");
    expect(up.conns.length).toBe(1);
  });
});

describe("aborts and dial failures", () => {
  test("aborting while waiting for the head closes the connection", async () => {
    const up = scripted(() => {});
    const client = new H1Client();
    const req = get(up.port);
    const p = client.request(req, "127.0.0.1", null, req.signal);
    await until(() => (up.conns[0]?.received.length ?? 0) > 0);
    req.controller!.abort();
    expect(await codeOf(p)).toBe("Aborted");
    await until(() => up.conns[0]!.closed);
    expect(client.idleConnections).toBe(0);
  });

  test("aborting while the body streams closes the connection and fails the body", async () => {
    const up = scripted((c) => c.sock.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst"));
    const client = new H1Client();
    const req = get(up.port);
    const res = await client.request(req, "127.0.0.1", null, req.signal);
    const reader = res.body()!.getReader();
    expect(text((await reader.read()).value!)).toBe("first");
    req.controller!.abort();
    expect(await codeOf(reader.read())).not.toBe("resolved");
    await until(() => up.conns[0]!.closed);
    expect(client.idleConnections).toBe(0);
  });

  test("cancelling the body stream closes the connection (never pooled half-read)", async () => {
    const up = scripted((c) => c.sock.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst"));
    const client = new H1Client();
    const req = get(up.port);
    const res = await client.request(req, "127.0.0.1", null, req.signal);
    await res.body()!.cancel();
    await until(() => up.conns[0]!.closed);
    expect(client.idleConnections).toBe(0);
  });

  test("a refused port: ECONNREFUSED (the forwarder then tries the next vetted address)", async () => {
    const client = new H1Client();
    const req = get(await freePort());
    expect(await codeOf(client.request(req, "127.0.0.1", null, req.signal))).toBe("ECONNREFUSED");
  });

  test("an already aborted request never dials", async () => {
    let dialled = 0;
    const up = scripted(() => {});
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: () => void dialled++, data() {} } });
    servers.push(server);
    const client = new H1Client();
    const req = get(server.port);
    req.controller!.abort();
    expect(await codeOf(client.request(req, "127.0.0.1", null, req.signal))).toBe("Aborted");
    await Bun.sleep(50);
    expect(dialled + up.conns.length).toBe(0);
  });
});

describe("TLS", () => {
  // This process does not trust the test CA (trust comes from the runtime's default store, read at
  // start-up): the positive and wrong-name cases run through the binary (test/security/upstream-client.test.ts).
  test("an upstream whose certificate does not verify receives no request byte", async () => {
    const pki = makeTestPki(["tls.test"], ["127.0.0.1"]);
    const received: Buffer[] = [];
    const srv = createTlsServer({ key: pki.key, cert: pki.cert }, (s) => {
      s.on("data", (d: Buffer) => received.push(d));
      s.on("error", () => {});
    });
    const port = await new Promise<number>((r) =>
      srv.listen(0, "127.0.0.1", () => r((srv.address() as { port: number }).port)),
    );
    try {
      const client = new H1Client();
      for (const name of ["tls.test", ""]) {
        const req = { ...get(port), scheme: "https" as const };
        const code = await codeOf(client.request(req, "127.0.0.1", name, req.signal));
        expect(code).toMatch(/CERT|VERIFY|SELF_SIGNED|UNABLE_TO/);
      }
      await Bun.sleep(50);
      expect(Buffer.concat(received).byteLength).toBe(0);
      expect(client.idleConnections).toBe(0);
    } finally {
      srv.close();
    }
  });
});
