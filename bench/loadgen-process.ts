// The Go load generator and upstream (bench/loadgen/main.go) as the bench scripts use it: built once
// into a work directory, and its `serve` mode started on an address, resolved once it listens.
import { $ } from "bun";
import { join } from "node:path";

/** Build bench/loadgen into `work`; the binary's path. */
export async function buildLoadgen(work: string): Promise<string> {
  const bin = join(work, "loadgen");
  await $`go build -o ${bin} main.go`
    .cwd(join(import.meta.dir, "loadgen"))
    .env({ ...process.env, GO111MODULE: "off", GOFLAGS: "" } as Record<string, string>)
    .quiet();
  return bin;
}

/** `loadgen serve` on `addr` with the PKI's certificate; resolves with the process and its port. */
export async function serveUpstream(
  loadgen: string,
  addr: string,
  pki: { certPath: string; keyPath: string },
  extra: string[] = [],
): Promise<{ proc: ReturnType<typeof Bun.spawn>; port: number }> {
  const proc = Bun.spawn([loadgen, "serve", "-addr", addr, "-cert", pki.certPath, "-key", pki.keyPath, ...extra], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!/listening (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("upstream exited");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { proc, port: Number(/listening (\d+)/.exec(text)![1]) };
}
