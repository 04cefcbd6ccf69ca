// Heap census for a proxy run from source: `bun --preload ./bench/heap-preload.ts src/cli/main.ts serve …`.
// Every second appends RSS, JS heap size, extra (native, GC-accounted) memory and the most numerous
// object types to $CLEF_HEAP_LOG (default /tmp/clef-heap.log). An object type whose count grows with
// the number of requests served, and never falls back, is a leak: this is how the per-request close
// listener (one AbortController per request on every keep-alive connection) was found.
import { heapStats } from "bun:jsc";
import { appendFileSync } from "node:fs";

const out = process.env.CLEF_HEAP_LOG ?? "/tmp/clef-heap.log";
const MiB = 1048576;
setInterval(() => {
  const h = heapStats();
  const m = process.memoryUsage();
  const top = Object.entries(h.objectTypeCounts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");
  appendFileSync(
    out,
    `${new Date().toISOString()} rss=${(m.rss / MiB).toFixed(0)} heap=${(h.heapSize / MiB).toFixed(1)} extra=${(h.extraMemorySize / MiB).toFixed(1)} objects=${h.objectCount} | ${top}\n`,
  );
}, 1000).unref();
