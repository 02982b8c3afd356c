// chart-proxy.ts: the Vega-Lite spec of bench/results/proxy.svg (`npm run bench:proxy`): proxy
// CPU µs per request for each proxy, a bar at the median with min–max whiskers over the rounds,
// vw's variants in vw's colour beside the nginx set-up each is compared with.
import type { Spread } from "./util";
import { chartFrame, roundsLine } from "./chart-frame";
import type { TopLevelSpec } from "./vega-svg";

/** What the chart reads of a bench:proxy run: proxy.json has all of it. */
export interface ProxyChartInput {
  meta: { topology: string; date: string; rounds: number; durationSec: number; warmupSec: number; connections: number; path: string; proxyCpu: number; backendCpu: number };
  summary: { proxies: readonly { id: string; label: string; metrics: { cpuUsPerReq: Spread | null } }[] };
}

/** `label` in lines of about `width` characters, broken between words and joined by "|" (the axis splits them). */
function wrap(label: string, width: number): string {
  const lines: string[] = [];
  for (const word of label.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= width) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines.join("|");
}

/** The Vega-Lite spec of proxy.svg; a proxy without a figure (every run failed) is left out. */
export function proxyChart(r: ProxyChartInput): TopLevelSpec {
  const m = r.meta;
  const data = r.summary.proxies.flatMap((p) => {
    const v = p.metrics.cpuUsPerReq;
    return v === null ? [] : [{ proxy: wrap(p.label, 20), kind: p.id.startsWith("vw") ? "vw" : "nginx", median: v.median, min: v.min, max: v.max, text: v.median.toPrecision(3) }];
  });
  const order = data.map((d) => d.proxy);
  const x = {
    field: "proxy",
    type: "nominal" as const,
    sort: order,
    axis: { title: null, labelAngle: 0, labelLimit: 160, labelFontSize: 11, labelExpr: "split(datum.label, '|')" },
  };
  const y = { field: "median", type: "quantitative" as const, title: "proxy CPU µs per request", axis: { titleFontSize: 12 }, scale: { zero: true } };
  const color = { field: "kind", type: "nominal" as const, scale: { domain: ["vw", "nginx"], range: ["#d9480f", "#868e96"] }, legend: { title: null, orient: "right" as const, labelFontSize: 12 } };
  return {
    ...chartFrame(
      "vw --proxy against nginx proxy_pass: proxy CPU per request",
      [
        `${m.topology === "netns" ? "three network namespaces" : "loopback"}: the proxy alone on CPU ${m.proxyCpu}, a vw backend and wrk -t1 -c${m.connections} ${m.path} (keep-alive) on CPU ${m.backendCpu}`,
        `${roundsLine(m.rounds, m.durationSec, m.warmupSec)}, proxies interleaved; bars: median, whiskers: min–max; ${m.date.slice(0, 10)}`,
      ],
      600,
      300,
    ),
    data: { values: data },
    encoding: { x },
    layer: [
      { mark: { type: "bar", width: { band: 0.55 } }, encoding: { y, color } },
      { mark: { type: "rule", strokeWidth: 1 }, encoding: { y: { field: "min", type: "quantitative" }, y2: { field: "max" } } },
      { mark: { type: "text", dy: -8, fontSize: 12 }, encoding: { y: { field: "max", type: "quantitative" }, text: { field: "text" } } },
    ],
  };
}
