// src/intercept/conn.ts keeps the chunks a Bun socket's data() hands it without copying them: the
// runtime gives every callback a buffer of its own, never reused. This pins that (a runtime that
// reused its receive buffer would fail here, and Conn.onData would have to copy again), on a plain
// listener socket and on the TLS socket of a tunnel (upgradeTLS with the ClientHello already read,
// as src/intercept/tunnel.ts does), and the Conn reading them back in order.
import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLeafMinter, loadOrCreateCA } from "../../../src/ca/index.ts";
import { Conn, type ConnData } from "../../../src/intercept/conn.ts";

const TOTAL = 4 * 1024 * 1024;
const payload = new Uint8Array(TOTAL);
for (let i = 0; i < TOTAL; i++) payload[i] = (i * 131 + (i >> 9)) & 255;
const sha = (xs: Uint8Array[]) => createHash("sha256").update(Buffer.concat(xs)).digest("hex");

/** Send the payload from a client socket, with back-pressure, then end. */
function sender(): { pump(s: Socket<unknown>): void } {
  let off = 0;
  return {
    pump(s) {
      while (off < TOTAL) {
        const n = s.write(payload.subarray(off, Math.min(TOTAL, off + 65536)));
        if (n <= 0) return;
        off += n;
      }
      s.end();
    },
  };
}

/** Receive on `listen`'s sockets into a Conn; resolves with the chunks as the callbacks got them. */
async function receive(
  tls: { key: string; cert: string } | null,
): Promise<{ chunks: Uint8Array[]; read: Uint8Array[] }> {
  const chunks: Uint8Array[] = [];
  const read: Uint8Array[] = [];
  let conn: Conn | undefined;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const drainConn = async (c: Conn) => {
    for (;;) {
      const x = await c.read(10_000);
      if (x === null) return done();
      read.push(x);
    }
  };
  const handlers = {
    open() {},
    data(s: Socket<ConnData & { raw?: boolean }>, chunk: Uint8Array) {
      if (tls && !s.data?.conn) {
        if (s.data?.raw) return; // the raw half keeps delivering ciphertext: ignored, as in the product
        s.data = { raw: true };
        const [, t] = s.upgradeTLS<ConnData>({
          data: {},
          ...({ initialData: new Uint8Array(chunk) } as object),
          tls,
          socket: handlers as never,
        });
        conn = new Conn(t, "127.0.0.1", 0);
        t.data = { conn };
        void drainConn(conn);
        return;
      }
      chunks.push(chunk);
      s.data!.conn!.onData(chunk);
    },
    end(s: Socket<ConnData>) {
      s.data?.conn?.onEnd();
    },
    close(s: Socket<ConnData>) {
      s.data?.conn?.onClose();
    },
  };
  const server = Bun.listen<ConnData & { raw?: boolean }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      ...handlers,
      open(s: Socket<ConnData & { raw?: boolean }>) {
        if (!tls) {
          conn = new Conn(s as Socket<ConnData>, "127.0.0.1", 0);
          s.data = { conn };
          void drainConn(conn);
        }
      },
    } as never,
  });
  const out = sender();
  await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    ...(tls ? { tls: { rejectUnauthorized: false } } : {}),
    socket: {
      data() {},
      open(s) {
        if (!tls) out.pump(s);
      },
      handshake(s) {
        out.pump(s);
      },
      drain(s) {
        out.pump(s);
      },
    },
  });
  await finished;
  server.stop(true);
  return { chunks, read };
}

describe("chunks from Bun socket callbacks are the receiver's own (Conn.onData does not copy)", () => {
  test("plain listener socket: every chunk still holds its bytes after the transfer; the Conn reads them in order", async () => {
    const { chunks, read } = await receive(null);
    expect(chunks.length).toBeGreaterThan(1);
    expect(sha(chunks)).toBe(sha([payload]));
    expect(sha(read)).toBe(sha([payload]));
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length); // no two share memory
  });

  test("TLS socket of a tunnel (upgradeTLS with the ClientHello as initial data): the same", async () => {
    const caDir = mkdtempSync(join(tmpdir(), "clef-conn-ca-"));
    const ca = loadOrCreateCA({ certPath: join(caDir, "ca.crt"), keyPath: join(caDir, "ca.key") });
    const leaf = await createLeafMinter(ca, { cap: 4 }).leafFor("127.0.0.1");
    const { chunks, read } = await receive({ key: leaf.keyPem, cert: leaf.certPem });
    expect(chunks.length).toBeGreaterThan(1);
    expect(sha(chunks)).toBe(sha([payload]));
    expect(sha(read)).toBe(sha([payload]));
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
  });
});
