// The request bench/pipeline.ts and bench/pieces.ts put through our code in process: a Go client's
// keep-alive GET inside a tunnel to api.test, a bearer service of a one-service manifest.
import type { Manifest } from "../src/agent/types.ts";

export const BENCH_MANIFEST = {
  schemaVersion: 1,
  identity: "bench",
  environment: "bench",
  services: [{ name: "api", host: "api.test", auth: { scheme: "bearer", credential: "bench/KEY" } }],
  passthroughHosts: [],
} as unknown as Manifest;

/** As Go's net/http writes it. */
export const BENCH_REQUEST = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: api.test:443\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
);
