// src/metrics/registry.ts in process: the text exposition format (HELP/TYPE, escaping, histogram
// series), label normalisers (bounded sets) and collected values.
import { describe, expect, test } from "bun:test";
import {
  DURATION_BUCKETS,
  escapeHelp,
  escapeLabelValue,
  formatValue,
  oneOf,
  Registry,
} from "../../../src/metrics/registry.ts";

describe("text format", () => {
  test("label values escape backslash, double quote and line feed; HELP escapes backslash and line feed", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeHelp('a\\b"c\nd')).toBe('a\\\\b"c\\nd');
    expect([
      formatValue(1),
      formatValue(0.25),
      formatValue(Infinity),
      formatValue(-Infinity),
      formatValue(NaN),
    ]).toEqual(["1", "0.25", "+Inf", "-Inf", "NaN"]);
  });

  test("counter: HELP and TYPE lines, an unlabelled counter renders 0 before any increment", () => {
    const r = new Registry();
    const c = r.counter({ name: "x_total", help: "Things.\nSecond line \\ done" });
    expect(r.render()).toBe("# HELP x_total Things.\\nSecond line \\\\ done\n# TYPE x_total counter\nx_total 0\n");
    c.inc();
    c.inc(undefined, 2.5);
    c.inc(undefined, -1); // ignored: counters only go up
    c.inc(undefined, NaN);
    expect(r.render()).toContain("\nx_total 3.5\n");
  });

  test("labelled counter: one series per normalised label set, values escaped, labels in declared order", () => {
    const r = new Registry();
    const c = r.counter({
      name: "req_total",
      help: "h",
      labels: { status: oneOf(["ok", "bad"]), who: (v) => v },
    });
    expect(r.render()).toBe("# HELP req_total h\n# TYPE req_total counter\n");
    c.inc({ who: 'x"y', status: "ok" });
    c.inc({ status: "weird", who: "z" });
    c.inc({ status: "surprise", who: "z" });
    expect(r.render().split("\n").slice(2, -1)).toEqual([
      'req_total{status="ok",who="x\\"y"} 1',
      'req_total{status="other",who="z"} 2',
    ]);
    expect(c.get({ status: "ok", who: 'x"y' })).toBe(1);
    expect(r.seriesCount()).toBe(2);
  });

  test("gauge: set/inc/dec/reset and initial label sets rendered at 0", () => {
    const r = new Registry();
    const g = r.gauge({ name: "g", help: "h", labels: { k: oneOf(["a", "b"]) }, initial: [{ k: "a" }, { k: "b" }] });
    g.set({ k: "a" }, 5);
    g.inc({ k: "b" });
    g.dec({ k: "a" }, 2);
    expect(r.render()).toBe('# HELP g h\n# TYPE g gauge\ng{k="a"} 3\ng{k="b"} 1\n');
    g.reset();
    expect(r.render()).toBe("# HELP g h\n# TYPE g gauge\n");
    // the label set used just before the reset gets a new series, not the dropped one
    g.set({ k: "a" }, 7);
    expect(r.render()).toBe('# HELP g h\n# TYPE g gauge\ng{k="a"} 7\n');
  });

  test("repeated and alternating label sets (the last series is remembered): every call counted in its series", () => {
    const r = new Registry();
    const c = r.counter({ name: "c", help: "h", labels: { s: oneOf(["x", "y"]), t: oneOf(["1", "2"]) } });
    const h = r.histogram({ name: "d", help: "h", labels: { s: oneOf(["x", "y"]) } });
    const want = new Map<string, number>();
    let seed = 3;
    for (let i = 0; i < 500; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      // runs of the same set, then another (normalised: "z" counts as "other")
      const s = ["x", "y", "z"][(seed >> 8) % 3]!;
      const t = ["1", "2"][(seed >> 4) % 2]!;
      const n = 1 + (seed % 3);
      for (let k = 0; k < n; k++) {
        c.inc({ s, t });
        h.observe({ s }, 0.001);
      }
      const key = `${s === "z" ? "other" : s}/${t}`;
      want.set(key, (want.get(key) ?? 0) + n);
    }
    for (const [key, n] of want) {
      const [s, t] = key.split("/") as [string, string];
      expect(c.get({ s, t })).toBe(n);
    }
    for (const s of ["x", "y", "other"])
      expect(h.count({ s })).toBe([...want].filter(([k]) => k.startsWith(`${s}/`)).reduce((a, [, n]) => a + n, 0));
  });

  test("collected values: read at render, rows mapping to one label set add up, a throwing collector renders no samples", () => {
    const r = new Registry();
    let n = 1;
    r.gauge({ name: "live", help: "h", collect: () => n });
    r.counter({
      name: "by_sink_total",
      help: "h",
      labels: { sink: oneOf(["file"]) },
      collect: () => [
        [{ sink: "file" }, 2],
        [{ sink: "strange" }, 3],
        [{ sink: "odd" }, 4],
      ],
    });
    r.gauge({
      name: "broken",
      help: "h",
      collect: () => {
        throw new Error("nope");
      },
    });
    n = 7;
    const out = r.render();
    expect(out).toContain("\nlive 7\n");
    expect(out).toContain('\nby_sink_total{sink="file"} 2\nby_sink_total{sink="other"} 7\n');
    expect(out).toEndWith("# HELP broken h\n# TYPE broken gauge\n");
  });

  test("histogram: cumulative buckets 5 ms … 300 s, +Inf, _sum and _count per label set", () => {
    const r = new Registry();
    const h = r.histogram({ name: "d_seconds", help: "h", labels: { s: oneOf(["a"]) } });
    h.observe({ s: "a" }, 0.004);
    h.observe({ s: "a" }, 0.3);
    h.observe({ s: "a" }, 1000);
    h.observe({ s: "a" }, NaN); // ignored
    const lines = r.render().split("\n");
    expect(DURATION_BUCKETS[0]).toBe(0.005);
    expect(DURATION_BUCKETS.at(-1)).toBe(300);
    expect(lines).toContain('d_seconds_bucket{s="a",le="0.005"} 1');
    expect(lines).toContain('d_seconds_bucket{s="a",le="0.25"} 1');
    expect(lines).toContain('d_seconds_bucket{s="a",le="0.5"} 2');
    expect(lines).toContain('d_seconds_bucket{s="a",le="300"} 2');
    expect(lines).toContain('d_seconds_bucket{s="a",le="+Inf"} 3');
    expect(lines).toContain('d_seconds_sum{s="a"} 1000.304');
    expect(lines).toContain('d_seconds_count{s="a"} 3');
    expect(h.count({ s: "a" })).toBe(3);
    // unlabelled: rendered with zeros before any observation
    r.histogram({ name: "e_seconds", help: "h" });
    expect(r.render()).toContain('e_seconds_bucket{le="+Inf"} 0\ne_seconds_sum 0\ne_seconds_count 0\n');
  });

  test("histogram: each bucket counts every observation ≤ its bound (random values, bounds included)", () => {
    const r = new Registry();
    const h = r.histogram({ name: "x_seconds", help: "h", labels: { s: oneOf(["a", "b"]) } });
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const seen: number[] = [];
    for (let i = 0; i < 3_000; i++) {
      // values on the bounds, between them, below the first, past the last, and -0 / Infinity
      const pick = rand();
      const v =
        pick < 0.3
          ? DURATION_BUCKETS[Math.floor(rand() * DURATION_BUCKETS.length)]!
          : pick < 0.9
            ? rand() * 400
            : [0, -0, -1, Infinity, 1e-9][Math.floor(rand() * 5)]!;
      h.observe({ s: "a" }, v);
      seen.push(v);
    }
    const lines = r.render().split("\n");
    for (const b of DURATION_BUCKETS)
      expect(lines).toContain(`x_seconds_bucket{s="a",le="${b}"} ${seen.filter((v) => v <= b).length}`);
    expect(lines).toContain(`x_seconds_bucket{s="a",le="+Inf"} ${seen.length}`);
    expect(h.count({ s: "b" })).toBe(0);
  });

  test("declarations are checked: names, label names, duplicates, bucket order", () => {
    const r = new Registry();
    expect(() => r.counter({ name: "bad-name", help: "h" })).toThrow("invalid metric name");
    expect(() => r.counter({ name: "ok_total", help: "h", labels: { le: (v) => v } })).toThrow("invalid label name");
    expect(() => r.counter({ name: "ok2_total", help: "h", labels: { __x: (v) => v } })).toThrow("invalid label name");
    r.counter({ name: "dup_total", help: "h" });
    expect(() => r.counter({ name: "dup_total", help: "h" })).toThrow("registered twice");
    expect(() => r.histogram({ name: "h_seconds", help: "h", buckets: [1, 1] })).toThrow("not increasing");
  });
});
