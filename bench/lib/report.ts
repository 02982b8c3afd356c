// report.ts: medians, per-round ratios, and the markdown table (stdout); latest.json holds the
// same, and latest.svg is drawn from it by chart-latest.ts.
import type { Metric, RunResult } from "./run";
import { METRICS } from "./run";
import type { Scenario } from "./scenarios";
import { fmt, spread, type Spread } from "./util";

export interface Cell {
  scenario: string;
  server: string;
  runs: number;
  failed: number;
  errors: number;
  metrics: Record<Metric, Spread | null>;
  boundBy: string;
}

export const RATIO_METRICS = ["cpuUsPerReq", "reqPerSec", "syscallsPerReq", "p99Ms"] as const;
export type RatioMetric = (typeof RATIO_METRICS)[number];

export interface RatioRow {
  scenario: string;
  peer: string;
  /** median over rounds of vw[round] / peer[round] */
  metrics: Record<RatioMetric, Spread | null>;
}

export interface Meta {
  date: string;
  rounds: number;
  durationSec: number;
  warmupSec: number;
  serverCpus: number[];
  clientCpus: number[];
  kernel: string;
  node: string;
  clkTck: number;
  perf: string; // "ok" or why not
  wallSec: number;
}

export interface Report {
  meta: Meta;
  skipped: string[];
  warnings: string[];
  scenarios: { id: string; title: string }[];
  servers: string[];
  summary: Cell[];
  ratios: RatioRow[];
  runs: RunResult[];
}

const SUBJECT = "vw";

function boundBy(server: number | null, client: number | null): string {
  const s = server !== null && server >= 90;
  const c = client !== null && client >= 90;
  if (s && c) return "both";
  if (s) return "server";
  if (c) return "client";
  return server === null && client === null ? "n/a" : "neither";
}

export function summarise(runs: readonly RunResult[], scenarios: readonly Scenario[], servers: readonly string[]): {
  summary: Cell[];
  ratios: RatioRow[];
} {
  const summary: Cell[] = [];
  const ratios: RatioRow[] = [];
  for (const sc of scenarios) {
    for (const name of servers) {
      const mine = runs.filter((r) => r.scenario === sc.id && r.server === name);
      if (mine.length === 0) continue;
      const ok = mine.filter((r) => r.ok);
      const metrics = Object.fromEntries(METRICS.map((m) => [m, spread(ok.map((r) => r.values[m]))])) as Record<
        Metric,
        Spread | null
      >;
      summary.push({
        scenario: sc.id,
        server: name,
        runs: ok.length,
        failed: mine.length - ok.length,
        errors: mine.reduce((s, r) => s + r.errors, 0),
        metrics,
        boundBy: boundBy(metrics.serverCpuPct?.median ?? null, metrics.clientCpuPct?.median ?? null),
      });
    }
    if (!servers.includes(SUBJECT)) continue;
    for (const peer of servers) {
      if (peer === SUBJECT) continue;
      const row = { scenario: sc.id, peer, metrics: {} as Record<RatioMetric, Spread | null> };
      for (const m of RATIO_METRICS) {
        const perRound: number[] = [];
        for (const r of runs) {
          if (r.scenario !== sc.id || r.server !== SUBJECT || !r.ok) continue;
          const p = runs.find((x) => x.scenario === sc.id && x.server === peer && x.round === r.round && x.ok);
          const a = r.values[m];
          const b = p?.values[m] ?? null;
          if (a !== null && b !== null && b > 0) perRound.push(a / b);
        }
        row.metrics[m] = spread(perRound);
      }
      if (RATIO_METRICS.some((m) => row.metrics[m] !== null)) ratios.push(row);
    }
  }
  return { summary, ratios };
}

/** "median (min–max)" for a table; the median alone for one value; n/a for none. */
export const cell = (s: Spread | null, digits = 3): string =>
  s === null ? "n/a" : s.n > 1 ? `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})` : fmt(s.median, digits);
/** A ratio spread as "1.23× (1.10–1.31)". */
export const ratio = (s: Spread | null): string =>
  s === null ? "n/a" : s.n > 1 ? `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})` : `${s.median.toFixed(2)}×`;

export function markdown(r: Report): string {
  const m = r.meta;
  const out: string[] = [];
  out.push(`# vw bench, ${m.date}`);
  out.push("");
  out.push(
    `${m.rounds} round(s) × ${m.durationSec} s measured (+${m.warmupSec} s warm-up), servers interleaved per round, each started fresh per run. ` +
      `Server CPUs ${m.serverCpus.join(",")}, client CPUs ${m.clientCpus.join(",")}; kernel ${m.kernel}, node ${m.node}, perf: ${m.perf}; took ${Math.round(m.wallSec)} s.`,
  );
  out.push("Values: median (min–max) over rounds. Only ratios within one run mean anything.");
  for (const s of r.skipped) out.push(`- skipped: ${s}`);
  for (const w of r.warnings) out.push(`- warning: ${w}`);

  const headline: string[] = [];
  for (const sc of r.scenarios) {
    const parts = ["floor", "nginx"]
      .map((peer) => ({ peer, x: r.ratios.find((x) => x.scenario === sc.id && x.peer === peer)?.metrics.cpuUsPerReq ?? null }))
      .filter((p) => p.x !== null)
      .map((p) => `${p.x!.median.toFixed(2)}× ${p.peer}`);
    if (parts.length > 0) headline.push(`${sc.id} ${parts.join(", ")}`);
  }
  if (headline.length > 0) out.push("", `**Headline, vw CPU µs/request relative to:** ${headline.join("; ")}.`);

  if (r.ratios.length > 0) {
    out.push("", "## vw / peer, per-round ratios (medianed)", "");
    out.push("CPU µs/request below 1× means vw spends less CPU per request than the peer; req/s above 1× means vw served more.", "");
    out.push("| scenario | vw / peer | CPU µs/req | req/s | syscalls/req | p99 |");
    out.push("|---|---|---|---|---|---|");
    for (const x of r.ratios) {
      const mm = x.metrics;
      out.push(`| ${x.scenario} | ${x.peer} | ${ratio(mm.cpuUsPerReq)} | ${ratio(mm.reqPerSec)} | ${ratio(mm.syscallsPerReq)} | ${ratio(mm.p99Ms)} |`);
    }
  }

  for (const sc of r.scenarios) {
    const cells = r.summary.filter((c) => c.scenario === sc.id);
    if (cells.length === 0) continue;
    out.push("", `## ${sc.id}: ${sc.title}`, "");
    out.push("| server | req/s | p50 ms | p99 ms | CPU µs/req | syscalls/req | ctx sw/req | server CPU % | client CPU % | user % | bound by | runs ok/failed | errors |");
    out.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const c of cells) {
      const x = c.metrics;
      out.push(
        `| ${c.server} | ${cell(x.reqPerSec)} | ${cell(x.p50Ms)} | ${cell(x.p99Ms)} | ${cell(x.cpuUsPerReq)} | ${cell(x.syscallsPerReq)} | ` +
          `${cell(x.ctxSwitchesPerReq)} | ${cell(x.serverCpuPct)} | ${cell(x.clientCpuPct)} | ${cell(x.userSharePct)} | ${c.boundBy} | ${c.runs}/${c.failed} | ${c.errors} |`,
      );
    }
  }
  const failed = r.runs.filter((x) => !x.ok);
  if (failed.length > 0) {
    out.push("", "## failed runs", "");
    for (const f of failed) out.push(`- round ${f.round} ${f.scenario} ${f.server}: ${(f.error ?? "?").replace(/\s+/g, " ").slice(0, 300)}`);
  }
  return out.join("\n") + "\n";
}
