// report.ts: medians, per-round ratios, and the three outputs: a markdown table
// (stdout), latest.json, latest.svg (bars for the keep-alive c=100 scenario).
import type { Metric, RunResult } from "./run";
import { METRICS } from "./run";
import { CHART_SCENARIO, type Scenario } from "./scenarios";
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

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** One bar panel: median bars with min–max whiskers. */
function panel(x0: number, title: string, bars: { name: string; s: Spread | null }[]): string {
  const W = 360;
  const H = 300;
  const top = 50;
  const base = H - 40;
  const max = Math.max(1e-9, ...bars.map((b) => b.s?.max ?? 0));
  const slot = (W - 40) / Math.max(1, bars.length);
  const bw = Math.min(50, slot * 0.6);
  const y = (v: number): number => base - ((base - top) * v) / max;
  const parts: string[] = [
    `<text x="${x0 + W / 2}" y="24" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${x0 + 20}" y1="${base}" x2="${x0 + W - 20}" y2="${base}" stroke="#444"/>`,
  ];
  bars.forEach((b, i) => {
    const cx = x0 + 20 + slot * (i + 0.5);
    parts.push(`<text x="${cx}" y="${base + 18}" text-anchor="middle" font-size="12">${esc(b.name)}</text>`);
    if (b.s === null) {
      parts.push(`<text x="${cx}" y="${base - 6}" text-anchor="middle" font-size="11" fill="#888">n/a</text>`);
      return;
    }
    const fill = b.name === SUBJECT ? "#d9480f" : "#868e96";
    const yt = y(b.s.median);
    parts.push(`<rect x="${(cx - bw / 2).toFixed(1)}" y="${yt.toFixed(1)}" width="${bw.toFixed(1)}" height="${(base - yt).toFixed(1)}" fill="${fill}"/>`);
    if (b.s.n > 1) {
      const y1 = y(b.s.min).toFixed(1);
      const y2 = y(b.s.max).toFixed(1);
      parts.push(`<line x1="${cx}" y1="${y1}" x2="${cx}" y2="${y2}" stroke="#000"/>`);
      parts.push(`<line x1="${cx - 6}" y1="${y2}" x2="${cx + 6}" y2="${y2}" stroke="#000"/>`);
      parts.push(`<line x1="${cx - 6}" y1="${y1}" x2="${cx + 6}" y2="${y1}" stroke="#000"/>`);
    }
    parts.push(`<text x="${cx}" y="${(y(b.s.max) - 6).toFixed(1)}" text-anchor="middle" font-size="11">${esc(fmt(b.s.median))}</text>`);
  });
  return parts.join("\n");
}

export function svg(r: Report): string {
  const cells = r.summary.filter((c) => c.scenario === CHART_SCENARIO);
  const title = r.scenarios.find((s) => s.id === CHART_SCENARIO)?.title ?? CHART_SCENARIO;
  const body =
    cells.length === 0
      ? `<text x="370" y="150" text-anchor="middle" font-size="14">no ${CHART_SCENARIO} results in this run</text>`
      : [
          panel(10, "requests/s (median, min–max)", cells.map((c) => ({ name: c.server, s: c.metrics.reqPerSec }))),
          panel(380, "syscalls / request", cells.map((c) => ({ name: c.server, s: c.metrics.syscallsPerReq }))),
        ].join("\n");
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="750" height="330" viewBox="0 0 750 330" font-family="sans-serif">
<rect width="750" height="330" fill="#fff"/>
${body}
<text x="375" y="322" text-anchor="middle" font-size="11" fill="#555">${esc(`${CHART_SCENARIO}: ${title}; ${r.meta.date}, ${r.meta.rounds}×${r.meta.durationSec} s; only ratios within one run mean anything`)}</text>
</svg>
`;
}
