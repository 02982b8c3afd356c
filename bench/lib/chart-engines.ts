// chart-engines.ts: the Vega-Lite spec of bench/results/engines.svg (`npm run bench:engines`):
// worker CPU µs per request against the connections held open (the active ones plus 0, 1,000,
// 10,000 idle ones), one line per engine, x on a log scale so that the decades are spaced as
// decades.
import type { Spread } from "./util";
import { chartFrame, roundsLine } from "./chart-frame";
import type { TopLevelSpec } from "./vega-svg";

/** One engine in one load shape, as engines.json's summary holds it. */
export interface EngineCell {
  shape: string;
  engine: string;
  metrics: { cpuUsPerReq: Spread | null };
}

/** What the chart reads of a bench:engines run: engines.json has all of it. */
export interface EnginesChartInput {
  meta: { date: string; rounds: number; durationSec: number; warmupSec: number; serverCpus: string; clientCpus: string };
  shapes: readonly { id: string; idle: number; connections: number; keepAlive: boolean; pipeline: number }[];
  engines: readonly string[];
  summary: readonly EngineCell[];
}

const COLORS: Record<string, string> = {
  epoll: "#d9480f",
  uring: "#1c7ed6",
  "uring-sqpoll": "#74c0fc",
  poll: "#2f9e44",
  select: "#862e9c",
  blocking: "#495057",
};

const thousands = (n: number): string => n.toLocaleString("en-US");

/**
 * The Vega-Lite spec of engines.svg: worker CPU µs/request (median, min–max whiskers) against
 * open connections on a log x axis, one coloured line per engine; an engine that could not run
 * some points (select beyond FD_SETSIZE) says so in its legend entry.
 */
export function enginesChart(r: EnginesChartInput): TopLevelSpec {
  const m = r.meta;
  // The keep-alive shapes without pipelining: ka100 (no idle) and ka100+idleN.
  const xs = r.shapes.filter((s) => s.keepAlive && s.pipeline === 1).sort((a, b) => a.idle - b.idle);
  const active = xs[0]?.connections ?? 100;
  const labelOf = new Map<string, string>();
  const data = r.engines.flatMap((engine) => {
    const pts = xs.flatMap((s) => {
      const v = r.summary.find((c) => c.shape === s.id && c.engine === engine)?.metrics.cpuUsPerReq ?? null;
      return v === null ? [] : [{ idle: s.idle, open: s.connections + s.idle, median: v.median, min: v.min, max: v.max }];
    });
    const missing = xs.filter((s) => !pts.some((p) => p.idle === s.idle)).map((s) => thousands(s.idle));
    const label = missing.length === 0 ? engine : `${engine} (n/a at ${missing.join(", ")} idle)`;
    labelOf.set(engine, label);
    return pts.map((p) => ({ engine: label, ...p }));
  });
  const engines = r.engines.filter((e) => data.some((d) => d.engine === labelOf.get(e)));
  const domain = engines.map((e) => labelOf.get(e) ?? e);
  const range = engines.map((e) => COLORS[e] ?? "#000");
  const ticks = xs.map((s) => s.connections + s.idle);
  const color = { field: "engine", type: "nominal" as const, scale: { domain, range }, legend: { title: "engine", orient: "right" as const, labelFontSize: 12, titleFontSize: 12, labelLimit: 260 } };
  const x = {
    field: "open",
    type: "quantitative" as const,
    scale: { type: "log" as const, domain: [Math.min(...ticks) * 0.8, Math.max(...ticks) * 1.25], nice: false },
    axis: {
      values: ticks,
      labelExpr: `format(datum.value - ${active}, ',') + ' idle'`,
      title: `idle keep-alive connections beside the ${active} active ones (log scale of all open connections)`,
      titleFontSize: 12,
      labelFontSize: 11,
      grid: true,
    },
  };
  const y = { field: "median", type: "quantitative" as const, title: "worker CPU µs per request", axis: { titleFontSize: 12 }, scale: { zero: true } };
  return {
    ...chartFrame(
      `vw's engines: worker CPU per request against idle connections (${active} active)`,
      [
        `client: wrk -t1 (${active} keep-alive connections) and an idle-connection holder on CPU ${m.clientCpus}, server on CPU ${m.serverCpus}`,
        `${roundsLine(m.rounds, m.durationSec, m.warmupSec)}, engines interleaved; points: median, whiskers: min–max; ${m.date.slice(0, 10)}`,
      ],
      520,
      340,
    ),
    data: { values: data },
    encoding: { x, color },
    layer: [
      { mark: { type: "line", strokeWidth: 2 }, encoding: { y } },
      { mark: { type: "point", filled: true, size: 50 }, encoding: { y } },
      { mark: { type: "rule", strokeWidth: 1 }, encoding: { y: { field: "min", type: "quantitative" }, y2: { field: "max" } } },
    ],
  };
}
