// src/intercept/startup-pages.ts: which mappings are handed back after start-up (only the
// executable's read-only and executable ones), and that doing so leaves the process working.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { executableMappings, releaseStartupPages } from "../../../src/intercept/startup-pages.ts";

const MAPS = `00200000-01a39000 r--p 00000000 fe:00 5390576                            /opt/clef/clef-proxy
01a40000-0684a000 r-xp 01838000 fe:00 5390576                            /opt/clef/clef-proxy
0685f000-06867000 r--p 06656000 fe:00 5390576                            /opt/clef/clef-proxy
06867000-06cdb000 rw-p 0665e000 fe:00 5390576                            /opt/clef/clef-proxy
06cdb000-06e00000 rw-p 00000000 00:00 0                                  [heap]
333bda00000-333fda00000 rw-p 00000000 00:00 0
7fb1007a2000-7fb1008f8000 r-xp 00026000 fe:00 339380                     /usr/lib/x86_64-linux-gnu/libc.so.6
7fb100900000-7fb100901000 r--p 00000000 00:00 0                          /opt/clef/clef-proxy
7ffd5c9e8000-7ffd5ca09000 rw-p 00000000 00:00 0                          [stack]`;

describe("executableMappings", () => {
  test("the executable's r--p and r-xp file mappings, nothing writable, anonymous or of another file", () => {
    expect(executableMappings(MAPS, "/opt/clef/clef-proxy")).toEqual([
      [0x00200000n, 0x01a39000n],
      [0x01a40000n, 0x0684a000n],
      [0x0685f000n, 0x06867000n],
    ]);
    expect(executableMappings(MAPS, "/opt/other")).toEqual([]);
    expect(executableMappings("", "/opt/clef/clef-proxy")).toEqual([]);
  });
});

describe.skipIf(process.platform !== "linux")("releaseStartupPages (this test process's own executable)", () => {
  test("advises every mapping of the executable, and the process goes on (JIT, crypto, sockets)", async () => {
    const want = executableMappings(readFileSync("/proc/self/maps", "utf8"), process.execPath).length;
    expect(want).toBeGreaterThan(0);
    expect(await releaseStartupPages()).toBe(want);
    // code of the runtime that was paged out comes back on use
    const { createHash, generateKeyPairSync } = await import("node:crypto");
    expect(createHash("sha256").update("x").digest("hex")).toHaveLength(64);
    expect(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.type).toBe("public");
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (s, d) => void s.write(d) } });
    const echoed = await new Promise<string>((resolve) => {
      void Bun.connect({
        hostname: "127.0.0.1",
        port: server.port,
        socket: { open: (s) => void s.write("ping"), data: (_s, d) => resolve(d.toString()) },
      });
    });
    server.stop(true);
    expect(echoed).toBe("ping");
  });
});
