// chart-latest.ts: the Vega-Lite spec of bench/results/latest.svg (`npm run bench`): for the
// chart's scenario, per server, the server CPU per request (the figure that separates the
// servers), the system calls per request and, last, the req/s the client reached. Bars are
// medians over rounds, whiskers the min–max.
import type { Cell, Report } from "./report";
import { ALL_SCENARIOS, CHART_SCENARIO } from "./scenarios";
import type { Spread } from "./util";
import { FONT } from "./text-width";
import type { TopLevelSpec } from "./vega-svg";

type TitleParams = Exclude<NonNullable<TopLevelSpec["title"]>, string | string[] | { signal: string }>;

/** What the chart reads of a report: latest.json has all of it. */
export type LatestChartInput = Pick<Report, "meta" | "scenarios" | "summary">;

const SUBJECT = "vw";
const SUBJECT_COLOR = "#d9480f";
const PEER_COLOR = "#868e96";

/** One panel of an hconcat: the spec type vega-lite gives it. */
type Panel = Extract<TopLevelSpec, { hconcat: unknown }>["hconcat"][number];

interface Row {
  server: string;
  median: number;
  min: number;
  max: number;
}

interface PanelDef {
  metric: "cpuUsPerReq" | "syscallsPerReq" | "reqPerSec";
  title: string;
  subtitle: string;
  axis: string;
  /** d3-format of the median labels */
  format: string;
  /** d3-format of the axis ticks */
  axisFormat: string;
}

function rows(cells: readonly Cell[], metric: PanelDef["metric"]): Row[] {
  return cells.flatMap((c) => {
    const s: Spread | null = c.metrics[metric];
    return s === null ? [] : [{ server: c.server, median: s.median, min: s.min, max: s.max }];
  });
}

/** Ticks from 0 to at least `top` in about 5 steps of 1, 2, 2.5 or 5 × 10^k, the last one ≥ top. */
function niceTicks(top: number): number[] {
  if (!(top > 0)) return [0, 1];
  const raw = top / 5;
  const unit = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * unit).find((s) => s >= raw) ?? 10 * unit;
  const n = Math.ceil(top / step - 1e-9);
  // Rounded to the step's decimals, so that 0.1 × 3 is 0.3.
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

/** One bar panel: median bars (vw in colour), min–max whiskers, the median written above. */
function panel(def: PanelDef, data: Row[], servers: readonly string[]): Panel {
  // Headroom above the highest whisker for the median written over it, and a tick at the top
  // of every panel, so that their titles line up.
  const ticks = niceTicks(Math.max(0, ...data.map((d) => d.max)) * 1.12);
  return {
    title: { text: def.title, subtitle: def.subtitle, anchor: "start", fontSize: 13, subtitleFontSize: 11, subtitleColor: "#555" },
    width: 200,
    height: 240,
    data: { values: data },
    encoding: { x: { field: "server", type: "nominal", sort: [...servers], title: null, axis: { labelAngle: 0, labelFontSize: 12 } } },
    layer: [
      {
        mark: { type: "bar", width: { band: 0.6 } },
        encoding: {
          y: { field: "median", type: "quantitative", title: def.axis, axis: { format: def.axisFormat, titleFontSize: 12, values: ticks }, scale: { domain: [0, ticks[ticks.length - 1]!], nice: false } },
          color: {
            condition: { test: `datum.server === '${SUBJECT}'`, value: SUBJECT_COLOR },
            value: PEER_COLOR,
          },
        },
      },
      {
        mark: { type: "rule", color: "#222" },
        encoding: { y: { field: "min", type: "quantitative" }, y2: { field: "max" } },
      },
      {
        mark: { type: "tick", color: "#222", size: 12, thickness: 1 },
        encoding: { y: { field: "min", type: "quantitative" } },
      },
      {
        mark: { type: "tick", color: "#222", size: 12, thickness: 1 },
        encoding: { y: { field: "max", type: "quantitative" } },
      },
      {
        mark: { type: "text", dy: -8, fontSize: 11 },
        encoding: { y: { field: "max", type: "quantitative" }, text: { field: "median", type: "quantitative", format: def.format } },
      },
    ],
  };
}

/**
 * The Vega-Lite spec of latest.svg: three panels for the chart's scenario (ka100), CPU µs per
 * request first, then system calls per request, then req/s; titled with what was measured.
 */
export function latestChart(r: LatestChartInput): TopLevelSpec {
  const m = r.meta;
  const cells = r.summary.filter((c) => c.scenario === CHART_SCENARIO);
  const servers = [...new Set(cells.map((c) => c.server))];
  const scenarioTitle = r.scenarios.find((s) => s.id === CHART_SCENARIO)?.title ?? CHART_SCENARIO;
  const client = ALL_SCENARIOS.find((s) => s.id === CHART_SCENARIO)?.tool ?? "wrk";
  // The servers whose runs had the client's core ≥ 90 % busy: their req/s is the client's.
  const clientBound = cells.filter((c) => c.boundBy === "client" || c.boundBy === "both").map((c) => c.server);
  const panels: PanelDef[] = [
    {
      metric: "cpuUsPerReq",
      title: "Server CPU per request",
      subtitle: "utime+stime of the server process; lower is better",
      axis: "CPU µs per request",
      format: ".3~r",
      axisFormat: "~r",
    },
    {
      metric: "syscallsPerReq",
      title: "System calls per request",
      subtitle: "perf stat raw_syscalls:sys_enter",
      axis: "system calls per request",
      format: ".3~r",
      axisFormat: "~r",
    },
    {
      metric: "reqPerSec",
      title: "Requests per second",
      subtitle: clientBound.length > 0 ? `client-bound (${client} ≥ 90 % CPU): ${clientBound.join(", ")}` : `as ${client} measured`,
      axis: "requests per second",
      format: ".3~s",
      axisFormat: "~s",
    },
  ];
  const date = m.date.slice(0, 10);
  const title: TitleParams = {
    text: `vw and its peers, ${scenarioTitle} (${CHART_SCENARIO})`,
    subtitle: [
      `client: ${client} -t1 on CPU ${m.clientCpus.join(",")}, server on CPU ${m.serverCpus.join(",")}; ` +
        `${m.rounds} round${m.rounds === 1 ? "" : "s"} × ${m.durationSec} s (+${m.warmupSec} s warm-up), servers interleaved, each started fresh`,
      `bars: median over rounds, whiskers: min–max; ${date}, ${m.kernel}; compare within one run only`,
    ],
    anchor: "start",
    fontSize: 15,
    subtitleFontSize: 11,
    subtitleColor: "#444",
    offset: 14,
  };
  if (cells.length === 0) {
    return {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: { ...title, subtitle: [`no ${CHART_SCENARIO} results in this run`] },
      background: "white",
      data: { values: [] },
      mark: "point",
    };
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    background: "white",
    padding: 12,
    config: { font: FONT, view: { stroke: null }, axis: { labelFontSize: 11, gridColor: "#e9ecef" } },
    spacing: 40,
    hconcat: panels.map((p) => panel(p, rows(cells, p.metric), servers)),
  };
}
