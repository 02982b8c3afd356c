// proxy-report.ts: what `npm run bench:proxy` makes of its runs: medians (min–max) per proxy,
// per-round ratios vw ÷ nginx medianed, issue 13's target met or not, the Markdown report and
// (the chart is chart-proxy.ts).
import { mdTable } from "./harness";
import type { ProxySpec } from "./proxies";
import type { Run, RunValues } from "./proxy-run";
import { cell, ratio } from "./report";
import { fmt, spread, type Spread } from "./util";

/**
 * Issue 13: proxy CPU per request ≤ 0.8× nginx proxy_pass with a keepalive upstream; judged for
 * vw's pool one request at a time per connection (its default) and with --proxy-pipeline.
 */
export const TARGET = { proxies: ["vw", "vw-pipeline"], peer: "nginx", cpuRatio: 0.8 } as const;

export type Metric = keyof RunValues;
const METRICS: readonly Metric[] = [
  "reqPerSec", "cpuUsPerReq", "statCpuUsPerReq", "userPct", "csPerReq", "syscallsPerReq", "perfCsPerReq",
  "proxyCpuPct", "clientCpuPct", "backendCpuUsPerReq", "p50Ms", "p99Ms",
];
const RATIO_METRICS = ["cpuUsPerReq", "reqPerSec", "syscallsPerReq", "csPerReq"] as const;
type RatioMetric = (typeof RATIO_METRICS)[number];

export interface ProxySummary {
  id: string;
  label: string;
  runs: number;
  failed: number;
  errors: number;
  metrics: Record<Metric, Spread | null>;
}

export interface PairRatio {
  proxy: string;
  peer: string;
  /** median (min–max) over rounds of proxy[round] ÷ peer[round] */
  metrics: Record<RatioMetric, Spread | null>;
}

export interface TargetCheck {
  proxy: string;
  ran: boolean;
  ratio: Spread | null;
  met: boolean | null;
}

export interface Summary {
  proxies: ProxySummary[];
  pairs: PairRatio[];
  targets: TargetCheck[];
}

export function summarise(runs: readonly Run[], specs: readonly ProxySpec[]): Summary {
  const proxies = specs.map((s): ProxySummary => {
    const mine = runs.filter((r) => r.proxy === s.id);
    const ok = mine.filter((r) => r.ok);
    return {
      id: s.id,
      label: s.label,
      runs: ok.length,
      failed: mine.length - ok.length,
      errors: mine.reduce((n, r) => n + r.errors, 0),
      metrics: Object.fromEntries(METRICS.map((m) => [m, spread(ok.map((r) => r.values[m]))])) as Record<Metric, Spread | null>,
    };
  });
  const pairs: PairRatio[] = [];
  for (const s of specs) {
    if (s.peer === null || !specs.some((x) => x.id === s.peer)) continue;
    const peer = s.peer;
    const metrics = Object.fromEntries(
      RATIO_METRICS.map((m) => {
        const xs: number[] = [];
        for (const r of runs) {
          if (r.proxy !== s.id || !r.ok) continue;
          const p = runs.find((x) => x.proxy === peer && x.round === r.round && x.ok);
          const a = r.values[m];
          const b = p?.values[m] ?? null;
          if (a !== null && b !== null && b > 0) xs.push(a / b);
        }
        return [m, spread(xs)];
      }),
    ) as Record<RatioMetric, Spread | null>;
    pairs.push({ proxy: s.id, peer, metrics });
  }
  const targets = TARGET.proxies.filter((id) => specs.some((s) => s.id === id)).map((id): TargetCheck => {
    const pair = pairs.find((p) => p.proxy === id && p.peer === TARGET.peer);
    const x = pair?.metrics.cpuUsPerReq ?? null;
    return { proxy: id, ran: pair !== undefined, ratio: x, met: x === null ? null : x.median <= TARGET.cpuRatio };
  });
  return { proxies, pairs, targets };
}

export interface ReportContext {
  date: string;
  setup: string[];
  notes: string[];
  skipped: string[];
  warnings: string[];
  specs: readonly ProxySpec[];
}

const label = (specs: readonly ProxySpec[], id: string): string => specs.find((s) => s.id === id)?.label ?? id;

/** The target for one vw variant, in one plain sentence. */
export function targetLine(t: TargetCheck, specs: readonly ProxySpec[]): string {
  const goal = `${label(specs, t.proxy)}: proxy CPU per request ≤ ${TARGET.cpuRatio}× nginx proxy_pass with keepalive upstream (median of per-round ratios)`;
  if (!t.ran) return `Issue 13's target, ${goal}: not judged (vw or nginx did not run).`;
  if (t.ratio === null) return `Issue 13's target, ${goal}: not judged (no round where both ran).`;
  return `Issue 13's target, ${goal}: ${ratio(t.ratio)}: **${t.met === true ? "met" : "NOT met"}**.`;
}

export function markdown(s: Summary, runs: readonly Run[], c: ReportContext): string {
  const out: string[] = [`# vw bench:proxy, ${c.date}`, ""];
  out.push(...c.setup);
  out.push("");
  for (const n of c.notes) out.push(`- ${n}`);
  for (const k of c.skipped) out.push(`- skipped: ${k}`);
  for (const w of c.warnings.slice(0, 20)) out.push(`- warning: ${w}`);
  if (c.warnings.length > 20) out.push(`- … and ${c.warnings.length - 20} more warnings (see the JSON)`);
  for (const r of runs) if (!r.ok) out.push(`- failed: round ${r.round} ${r.proxy}: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 300)}`);
  out.push("", "## Issue 13's target", "");
  for (const t of s.targets) out.push(`- ${targetLine(t, c.specs)}`);
  if (s.pairs.length > 0) {
    out.push("", "## vw ÷ nginx, per-round ratios (median (min–max))", "");
    out.push("Below 1× for CPU, system calls and context switches per request: vw spends less than nginx; above 1× for req/s: vw served more.", "");
    out.push(
      mdTable(
        ["vw", "nginx", "CPU µs/req", "req/s", "syscalls/req", "ctx sw/req"],
        s.pairs.map((p) => [label(c.specs, p.proxy), label(c.specs, p.peer), ratio(p.metrics.cpuUsPerReq), ratio(p.metrics.reqPerSec), ratio(p.metrics.syscallsPerReq), ratio(p.metrics.csPerReq)]),
      ),
    );
  }
  out.push("", "## Per proxy (median (min–max) over rounds)", "");
  out.push(
    mdTable(
      ["proxy", "req/s", "proxy CPU µs/req", "syscalls/req", "ctx sw/req", "proxy CPU %", "user %", "client CPU %", "backend CPU µs/req", "p50 ms", "p99 ms", "runs ok/failed", "errors"],
      s.proxies.map((p) => {
        const m = p.metrics;
        return [
          p.label, cell(m.reqPerSec), cell(m.cpuUsPerReq), cell(m.syscallsPerReq), cell(m.csPerReq), cell(m.proxyCpuPct), cell(m.userPct),
          cell(m.clientCpuPct), cell(m.backendCpuUsPerReq), cell(m.p50Ms), cell(m.p99Ms), `${p.runs}/${p.failed}`, String(p.errors),
        ];
      }),
    ),
  );
  out.push(
    "",
    "proxy CPU µs/req: the proxy process's CPU time over the measured window (schedstat run time summed over its threads: vw's worker and Node's main thread; nginx's one process) ÷ the requests wrk completed. " +
      "syscalls/req: `perf stat -e raw_syscalls:sys_enter -p PID` over a separate 1 s window of the same load (the tracepoint slows every system call, so it stays out of the CPU figure). " +
      "ctx sw/req: voluntary + involuntary context switches of the proxy's threads (/proc/PID/task/*/status) over the measured window. " +
      "backend CPU µs/req: the same vw backend behind every proxy; it should not move between proxies. errors: wrk's socket errors and non-2xx responses.",
  );
  out.push("", "## Every run", "");
  out.push(
    mdTable(
      ["round", "#", "proxy", "req/s", "CPU µs/req", "(stat)", "syscalls/req", "ctx sw/req", "(perf)", "proxy CPU %", "client CPU %", "errors", "busy before"],
      runs.map((r) => {
        const v = r.values;
        const head = [String(r.round), String(r.slot), label(c.specs, r.proxy)];
        if (!r.ok) return [...head, "failed", "", "", "", "", "", "", "", String(r.errors), pct(r.busyBeforePct)];
        return [
          ...head, fmt(v.reqPerSec), fmt(v.cpuUsPerReq), fmt(v.statCpuUsPerReq), fmt(v.syscallsPerReq), fmt(v.csPerReq), fmt(v.perfCsPerReq),
          fmt(v.proxyCpuPct), fmt(v.clientCpuPct), String(r.errors), pct(r.busyBeforePct),
        ];
      }),
    ),
  );
  out.push("", "(stat): the CPU figure from /proc/PID/stat utime+stime (10 ms ticks), a cross-check; (perf): perf's context switches in its 1 s window.", "");
  return `${out.join("\n")}\n`;
}

const pct = (x: number | null): string => (x === null ? "n/a" : `${x.toFixed(1)} %`);

