// metrics.ts: the Prometheus endpoint, served by the Node main thread (never by a worker) at
// http://HOST:PORT/metrics (query string ignored). The families come from metrics-model.ts and
// the process's own figures; prom-client writes the exposition text.
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";

import { Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricType, type MetricValueWithName } from "prom-client";

import { latencyFamily, single, workerFamilies, type Family, type HistogramSample } from "./metrics-model";
import { StartError } from "../errors";
import { native, type NativeListen } from "../native";
import { WorkerThreads } from "./procfs";
import type { WorkerIdentity } from "./sampler";
import type { StatsReader } from "./stats";

/** Process-wide gauges beside the per-worker counters, e.g. tables awaiting reclamation. */
export type Gauges = () => Record<string, { help: string; value: number }>;

const startTimeSeconds = Date.now() / 1000 - process.uptime();

function maxFds(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    return m && m[1] !== "unlimited" ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

function openFds(): number {
  try {
    return fs.readdirSync("/proc/self/fd").length - 1; // less the fd readdir itself held
  } catch {
    return -1;
  }
}

/** The standard process_* families of the Prometheus client guidelines, for the whole process. */
export function processFamilies(): Family[] {
  const cpu = process.cpuUsage();
  return [
    single("process_cpu_seconds_total", "counter", "Total user and system CPU time of the vw process (workers and Node thread), in seconds.", (cpu.user + cpu.system) / 1e6),
    single("process_resident_memory_bytes", "gauge", "Resident memory size of the vw process, in bytes.", process.memoryUsage.rss()),
    single("process_open_fds", "gauge", "Open file descriptors of the vw process (listeners, connections, epoll and event fds).", openFds()),
    single("process_max_fds", "gauge", "The open-file limit of the vw process (RLIMIT_NOFILE, soft).", maxFds()),
    single("process_start_time_seconds", "gauge", "Start time of the vw process since the Unix epoch, in seconds.", startTimeSeconds),
  ];
}

let versionCache: string | undefined;
function version(): string {
  if (versionCache === undefined) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "..", "package.json"), "utf8")) as { version?: string };
      versionCache = pkg.version ?? "unknown";
    } catch {
      versionCache = "unknown";
    }
  }
  return versionCache;
}

/** vw_build_info: always 1; the labels say which vw, on which Node, with which engines built in. */
export function buildInfo(): Family {
  return single("vw_build_info", "gauge", "Always 1; labels: vw's version, the Node.js version, the engines this build of the addon has.", 1, {
    version: version(),
    node: process.version,
    engines: native().engines().join(","),
  });
}

/**
 * Turns families into exposition text through one prom-client registry. A metric object is
 * made per family the first time it appears; at each render its collect() copies that
 * render's samples in. Renders run one at a time (collect reads the current families).
 */
export class Exposition {
  private readonly registry = new Registry();
  private current = new Map<string, Family>();
  private readonly defined = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  get contentType(): string {
    return this.registry.contentType;
  }

  render(families: readonly Family[]): Promise<string> {
    const run = async (): Promise<string> => {
      this.current = new Map(families.map((f) => [f.name, f]));
      for (const f of families) this.define(f);
      return this.registry.metrics();
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private define(f: Family): void {
    if (this.defined.has(f.name)) return;
    this.defined.add(f.name);
    const samples = (): Family["samples"] => this.current.get(f.name)?.samples ?? [];
    const common = { name: f.name, help: f.help, labelNames: f.labelNames, registers: [this.registry] };
    if (f.type === "histogram") {
      const histograms = (): HistogramSample[] => this.current.get(f.name)?.histograms ?? [];
      new CountedHistogram(common, histograms);
    } else if (f.type === "counter") {
      new Counter({
        ...common,
        collect(this: Counter<string>) {
          this.reset();
          for (const s of samples()) this.inc(s.labels, s.value);
        },
      });
    } else {
      new Gauge({
        ...common,
        collect(this: Gauge<string>) {
          this.reset();
          for (const s of samples()) this.set(s.labels, s.value);
        },
      });
    }
  }
}

/**
 * A prom-client Histogram whose buckets are counted elsewhere (the workers' stats slots):
 * prom-client observes one value at a time, so `get()` reports the counts as they stand, in
 * the shape the registry formats (`_bucket` with `le`, `_sum`, `_count`).
 */
class CountedHistogram extends Histogram<string> {
  private readonly family: { name: string; help: string };

  constructor(
    common: { name: string; help: string; labelNames: string[]; registers: Registry[] },
    private readonly counted: () => HistogramSample[],
  ) {
    super(common);
    this.family = { name: common.name, help: common.help };
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const { name, help } = this.family;
    const values: MetricValueWithName<string>[] = [];
    for (const h of this.counted()) {
      for (const [le, n] of h.buckets) values.push({ metricName: `${name}_bucket`, labels: { ...h.labels, le: Number.isFinite(le) ? le : "+Inf" }, value: n });
      values.push({ metricName: `${name}_sum`, labels: h.labels, value: h.sum });
      values.push({ metricName: `${name}_count`, labels: h.labels, value: h.count });
    }
    // prom-client's typings declare `type` a numeric enum; at run time its metrics carry the
    // exposition's word, which the registry prints as is.
    return { name, help, type: "histogram" as unknown as MetricType, values, aggregator: "sum", collect: () => undefined };
  }

  /** What the registry asks a histogram for when it writes text (prom-client 15; not in its typings). */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return this.get();
  }
}

/** Everything /metrics shows now: worker families, then vw-wide ones, then process_*. */
export class MetricsSource {
  private readonly threads: WorkerThreads;

  constructor(
    private readonly stats: StatsReader,
    private readonly workers: readonly WorkerIdentity[],
    private readonly gauges?: Gauges,
  ) {
    this.threads = new WorkerThreads(process.pid, workers);
  }

  families(): Family[] {
    const snap = this.stats.snapshot();
    const read = this.threads.read(snap);
    const threads = this.workers.map((_w, i) => read[i] ?? { csVoluntary: 0, csInvoluntary: 0, userSec: 0, sysSec: 0 });
    const extra = Object.entries(this.gauges?.() ?? {}).map(([name, g]) => single(`vw_${name}`, "gauge", g.help, g.value));
    const latency = latencyFamily(this.stats.latency(), this.stats.latencyBoundsNs(), this.workers);
    return [...workerFamilies(this.stats.counters(), snap, this.workers, threads), latency, ...extra, buildInfo(), ...processFamilies()];
  }
}

/** The text /metrics serves now (Prometheus text format 0.0.4). */
export function renderMetrics(source: MetricsSource, exposition = new Exposition()): Promise<string> {
  return exposition.render(source.families());
}

/** The one line for a --metrics address the system refused. */
function listenError(addr: NativeListen, err: NodeJS.ErrnoException): StartError {
  const where = `--metrics ${addr.family === 6 ? `[${addr.host}]` : addr.host}:${addr.port}`;
  switch (err.code) {
    case "EADDRINUSE":
      return new StartError(`${where}: address already in use (another vw's --metrics, or the server port itself?); choose another port`, err.code);
    case "EACCES":
      return new StartError(`${where}: permission denied; ports below 1024 need root: choose 1024 or above`, err.code);
    case "EADDRNOTAVAIL":
      return new StartError(`${where}: that address is not on this machine; use 127.0.0.1 or one of its addresses`, err.code);
  }
  return new StartError(`${where}: ${err.message}`, err.code ?? "EUNKNOWN");
}

/**
 * Serves GET and HEAD /metrics (any query string) on addr; anything else is 404. Resolves once
 * listening; rejects with the listen error (EADDRINUSE, EACCES, ...).
 */
export async function serveMetrics(addr: NativeListen, source: MetricsSource): Promise<http.Server> {
  const exposition = new Exposition();
  const server = http.createServer((req, res) => {
    const pathname = (req.url ?? "").split("?")[0];
    if (pathname !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "Content-Type": "text/plain", Connection: "close" }).end("try /metrics\n");
      return;
    }
    exposition.render(source.families()).then(
      (text) => {
        // Connection: close, so a scraper never holds an fd the workers might need.
        res.writeHead(200, { "Content-Type": exposition.contentType, Connection: "close" });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: Error) => {
        res.writeHead(500, { "Content-Type": "text/plain", Connection: "close" }).end(`${err.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(listenError(addr, err)));
    server.listen(addr.port, addr.host, () => resolve());
  });
  server.unref();
  return server;
}
