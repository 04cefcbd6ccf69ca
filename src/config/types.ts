// The validated, defaulted configuration (see docs/CONTRACT.md §4). Produced by src/config/load.ts.
export interface Config {
  listen: { port: number }; // 1-65535, default 8888; address is always 127.0.0.1
  upstream: {
    proxyUrl: string; // "" = use HTTP(S)_PROXY / NO_PROXY env
    noProxy: string[];
    proxyAuth: string; // "user:pass" or ""
  };
  audit: {
    destination: "stdout" | "file";
    file: string;
    maxSizeMb: number; // default 100
    maxFiles: number; // default 5
  };
  ca: { certPath: string; keyPath: string }; // both "" = default CA dir
  metadata: { proxyId: string }; // default: OS hostname
  serve: { drainTimeoutMs: number; drainTimeoutText: string }; // text as Go prints it, e.g. "5s"
  lambdaLoopbackOnly: boolean;
  metrics: { port: number; token: string }; // admin listener on 127.0.0.1 (F14); port 0 = off, token "" = no auth
}
