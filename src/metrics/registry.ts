// A small Prometheus metrics registry (shared/PHASE2.md §16, F14): counters, gauges and histograms
// with labels, rendered in the Prometheus text exposition format 0.0.4 (HELP and TYPE lines, label
// values and HELP text escaped as the format requires).
//
// No I/O and no timers: metrics are plain in-memory numbers, so any module can import its series and
// increment them on a hot path (a Map lookup and an addition). Values read from elsewhere (the audit
// queue, the leaf cache, /proc) are pulled at scrape time through `collect` callbacks.
//
// Cardinality is bounded by construction: every label is declared with a normaliser that maps any
// input to a value from a bounded set (an enum, or a set the serve lifecycle fills from the
// manifest). A label value the data path did not expect becomes "other" (or ""), never a new free
// text series — no host, path, IP or secret can become a label.

/** Maps an observed value to the label value actually recorded (bounded set). */
export type LabelNormaliser = (value: string) => string;
export type Labels = Record<string, string | undefined>;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Fixed histogram buckets in seconds: 5 ms … 300 s (F14). */
export const DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

/** A normaliser for a closed set: values outside it become `fallback`. */
export function oneOf(values: readonly string[], fallback = "other"): LabelNormaliser {
  const set = new Set(values);
  return (v) => (set.has(v) ? v : fallback);
}

/** Label value escaping of the text format: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text escaping of the text format: backslash and line feed. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as the text format writes it. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "+Inf";
  if (n === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(n);
}

interface MetricOptions<L extends string> {
  name: string;
  help: string;
  /** Label names, in output order, each with its normaliser. */
  labels?: Record<L, LabelNormaliser>;
  /** Label sets rendered (at 0) even before anything is recorded, e.g. every value of an enum. */
  initial?: Array<Record<L, string>>;
}

abstract class Metric<L extends string> {
  readonly name: string;
  readonly help: string;
  protected readonly labelNames: L[];
  protected readonly normalisers: LabelNormaliser[];
  abstract readonly type: "counter" | "gauge" | "histogram";

  constructor(opts: MetricOptions<L>) {
    if (!NAME_RE.test(opts.name)) throw new Error(`metrics: invalid metric name ${JSON.stringify(opts.name)}`);
    this.name = opts.name;
    this.help = opts.help;
    const labels = (opts.labels ?? {}) as Record<L, LabelNormaliser>;
    this.labelNames = Object.keys(labels) as L[];
    for (const l of this.labelNames)
      if (!LABEL_RE.test(l) || l.startsWith("__") || l === "le")
        throw new Error(`metrics: invalid label name ${JSON.stringify(l)} on ${opts.name}`);
    this.normalisers = this.labelNames.map((l) => labels[l]);
  }

  /** The normalised label values, in declared order. */
  protected values(labels: Partial<Record<L, string>> | undefined): string[] {
    return this.labelNames.map((l, i) => this.normalisers[i]!(labels?.[l] ?? ""));
  }

  /** The series key of a label set (get/count; the data path finds its series by find()). */
  protected key(labels: Partial<Record<L, string>> | undefined): string {
    return keyOf(this.values(labels));
  }

  /** The label values of the last series found, and that series: most calls repeat the previous label set. */
  private lastValues: string[] | null = null;
  private lastSeries: unknown;
  private readonly scratch: string[] = [];

  /**
   * The series of `labels` in `map` (made by `make` from the normalised values when new). A call
   * with the label values of the call before gets that series back without building its key.
   */
  protected find<S>(
    map: Map<string, S>,
    labels: Partial<Record<L, string>> | undefined,
    make: (values: string[]) => S,
  ): S {
    const names = this.labelNames;
    const n = names.length;
    const v = this.scratch;
    for (let i = 0; i < n; i++) v[i] = this.normalisers[i]!(labels?.[names[i]!] ?? "");
    const last = this.lastValues;
    if (last !== null) {
      let i = 0;
      while (i < n && v[i] === last[i]) i++;
      if (i === n) return this.lastSeries as S;
    }
    const values = v.slice(0, n);
    const key = keyOf(values);
    let s = map.get(key);
    if (s === undefined) {
      s = make(values);
      map.set(key, s);
    }
    this.lastValues = values;
    this.lastSeries = s;
    return s;
  }

  /** Series were dropped: the one found last may be gone. */
  protected forgetLast(): void {
    this.lastValues = null;
    this.lastSeries = undefined;
  }

  protected labelText(values: readonly string[], extra?: [string, string]): string {
    const parts = this.labelNames.map((l, i) => `${l}="${escapeLabelValue(values[i]!)}"`);
    if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
    return parts.length ? `{${parts.join(",")}}` : "";
  }

  /** Sample lines (without HELP/TYPE). */
  abstract samples(): string[];
  /** Number of series (label sets) currently held. */
  abstract seriesCount(): number;

  render(): string {
    const head = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    const lines = this.samples();
    return head + (lines.length ? lines.join("\n") + "\n" : "");
  }
}

const KEY_SEP = "\u0000";
/** The series key of normalised label values (in declared order). */
const keyOf = (values: readonly string[]) => values.join(KEY_SEP);

/** Counter or gauge: one number per label set. */
abstract class Scalar<L extends string> extends Metric<L> {
  protected readonly series = new Map<string, { values: string[]; v: number }>();
  private readonly collectFn?: () => Array<[Partial<Record<L, string>>, number]> | number;

  constructor(opts: MetricOptions<L> & { collect?: () => Array<[Partial<Record<L, string>>, number]> | number }) {
    super(opts);
    this.collectFn = opts.collect;
    for (const init of opts.initial ?? []) this.slot(init);
    if (this.labelNames.length === 0 && !this.collectFn) this.slot(undefined);
  }

  protected slot(labels: Partial<Record<L, string>> | undefined): { values: string[]; v: number } {
    return this.find(this.series, labels, (values) => ({ values, v: 0 }));
  }

  /** Current value for a label set (0 when never recorded). */
  get(labels?: Partial<Record<L, string>>): number {
    return this.series.get(this.key(labels))?.v ?? 0;
  }

  samples(): string[] {
    if (this.collectFn) {
      const got = this.collectFn();
      const rows: Array<[Partial<Record<L, string>>, number]> = typeof got === "number" ? [[{}, got]] : got;
      // Collected rows are merged by normalised label set (two inputs mapping to "other" add up).
      const merged = new Map<string, { values: string[]; v: number }>();
      for (const [labels, v] of rows) {
        const values = this.values(labels);
        const key = keyOf(values);
        const m = merged.get(key);
        if (m) m.v += v;
        else merged.set(key, { values, v });
      }
      return [...merged.values()].map((s) => `${this.name}${this.labelText(s.values)} ${formatValue(s.v)}`);
    }
    return [...this.series.values()].map((s) => `${this.name}${this.labelText(s.values)} ${formatValue(s.v)}`);
  }

  seriesCount(): number {
    return this.collectFn ? this.samples().length : this.series.size;
  }
}

export class Counter<L extends string = never> extends Scalar<L> {
  readonly type = "counter";
  /** Adds `n` (≥ 0) to the series of `labels`. */
  inc(labels?: Partial<Record<L, string>>, n = 1): void {
    if (!(n >= 0)) return; // counters only go up; NaN and negatives are ignored
    this.slot(labels).v += n;
  }
}

export class Gauge<L extends string = never> extends Scalar<L> {
  readonly type = "gauge";
  set(labels: Partial<Record<L, string>> | undefined, v: number): void {
    this.slot(labels).v = v;
  }
  inc(labels?: Partial<Record<L, string>>, n = 1): void {
    this.slot(labels).v += n;
  }
  dec(labels?: Partial<Record<L, string>>, n = 1): void {
    this.slot(labels).v -= n;
  }
  /** Drop every series (e.g. an info gauge whose labels changed). */
  reset(): void {
    this.series.clear();
    this.forgetLast();
  }
}

export class Histogram<L extends string = never> extends Metric<L> {
  readonly type = "histogram";
  private readonly buckets: readonly number[];
  /** Per series: observations per bucket (not cumulative: one increment per observation; the
   * cumulative counts Prometheus reads are summed when rendered), their sum and count. */
  private readonly series = new Map<string, { values: string[]; counts: number[]; sum: number; count: number }>();

  constructor(opts: MetricOptions<L> & { buckets?: readonly number[] }) {
    super(opts);
    this.buckets = opts.buckets ?? DURATION_BUCKETS;
    for (let i = 1; i < this.buckets.length; i++)
      if (!(this.buckets[i]! > this.buckets[i - 1]!))
        throw new Error(`metrics: buckets of ${this.name} not increasing`);
    for (const init of opts.initial ?? []) this.slot(init);
    if (this.labelNames.length === 0) this.slot(undefined);
  }

  private slot(labels: Partial<Record<L, string>> | undefined) {
    return this.find(this.series, labels, (values) => ({
      values,
      counts: this.buckets.map(() => 0),
      sum: 0,
      count: 0,
    }));
  }

  /** Records one observation (seconds for the duration histograms). */
  observe(labels: Partial<Record<L, string>> | undefined, v: number): void {
    if (Number.isNaN(v)) return;
    const s = this.slot(labels);
    const b = this.buckets;
    let i = 0;
    while (i < b.length && !(v <= b[i]!)) i++;
    if (i < b.length) s.counts[i]!++; // beyond the last bucket: only in +Inf (= count)
    s.sum += v;
    s.count++;
  }

  /** Observation count for a label set (tests, consistency checks). */
  count(labels?: Partial<Record<L, string>>): number {
    return this.series.get(this.key(labels))?.count ?? 0;
  }

  samples(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += s.counts[i]!;
        out.push(`${this.name}_bucket${this.labelText(s.values, ["le", formatValue(b)])} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${this.labelText(s.values, ["le", "+Inf"])} ${s.count}`);
      out.push(`${this.name}_sum${this.labelText(s.values)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${this.labelText(s.values)} ${s.count}`);
    }
    return out;
  }

  seriesCount(): number {
    return this.series.size;
  }
}

/** What the registry needs of a metric. */
export interface Renderable {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  render(): string;
  seriesCount(): number;
}

export class Registry {
  private readonly metrics: Renderable[] = [];

  register<M extends Renderable>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metrics: ${m.name} registered twice`);
    this.metrics.push(m);
    return m;
  }

  counter<L extends string = never>(
    opts: MetricOptions<L> & { collect?: () => Array<[Partial<Record<L, string>>, number]> | number },
  ): Counter<L> {
    return this.register(new Counter<L>(opts));
  }

  gauge<L extends string = never>(
    opts: MetricOptions<L> & { collect?: () => Array<[Partial<Record<L, string>>, number]> | number },
  ): Gauge<L> {
    return this.register(new Gauge<L>(opts));
  }

  histogram<L extends string = never>(opts: MetricOptions<L> & { buckets?: readonly number[] }): Histogram<L> {
    return this.register(new Histogram<L>(opts));
  }

  /** The whole exposition (text format 0.0.4). A collector that throws renders no samples. */
  render(): string {
    let out = "";
    for (const m of this.metrics) {
      try {
        out += m.render();
      } catch {
        out += `# HELP ${m.name} ${escapeHelp(m.help)}\n# TYPE ${m.name} ${m.type}\n`;
      }
    }
    return out;
  }

  /** Total number of series across every metric (cardinality tests). */
  seriesCount(): number {
    return this.metrics.reduce((n, m) => n + m.seriesCount(), 0);
  }

  names(): string[] {
    return this.metrics.map((m) => m.name);
  }
}

/** The content type of the text format. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
