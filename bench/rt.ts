// rt.ts: entry of `npm run bench:rt`: the real-time claim. One vw worker on one CPU
// (--workers 1 --cpus S), SCHED_FIFO against SCHED_OTHER, each alone and with a SCHED_OTHER
// busy loop (the hog) pinned to the same CPU; the client runs on another CPU.
//   Regime A, below saturation: bench/rate-client.c sends at a constant rate (open loop) and
//     measures each request's latency from when it was *scheduled* (no coordinated omission).
//   Regime B, at saturation: closed-loop wrk with many connections.
// See bench/README.md for how to read it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { planCpus } from "./lib/cpus";
import { fmtUs, log, mdTable, parseFlags, pinnableVw, pinSelf, procNumber, runEntry, startPinned, writeResult } from "./lib/harness";
import * as proc from "./lib/proc";
import { cpuBusy, delta, readCpu } from "./lib/procstat";
import { URL_PATH } from "./lib/scenarios";
import { compiledC } from "./lib/servers";
import { fmt, sleep, which } from "./lib/util";
import { runWrk } from "./lib/wrk";

const USAGE = `usage: npm run bench:rt -- [flags]
  --rate R          regime A: requests/s in total, constant schedule (default 20000)
  --conns N         regime A: keep-alive connections of the rate client (default 16)
  --duration S      regime A: seconds measured per config (default 15)
  --warmup S        regime A: seconds sent before measuring (default 2)
  --wrk-conns N     regime B: wrk connections (default 200)
  --wrk-duration S  regime B: seconds measured per config, whole seconds (default 10)
  --only A|B        run one regime
  --quick           2 s per config: checks that everything works, measures nothing worth keeping
  --out DIR         where rt.json goes (default bench/results)`;

interface ConfigDef {
  id: string;
  policy: "fifo" | "other";
  hog: boolean;
}

const CONFIGS: readonly ConfigDef[] = [
  { id: "fifo quiet", policy: "fifo", hog: false },
  { id: "other quiet", policy: "other", hog: false },
  { id: "fifo + hog", policy: "fifo", hog: true },
  { id: "other + hog", policy: "other", hog: true },
];

interface Row {
  config: string;
  policy: string;
  hog: boolean;
  /** the policy the worker actually got, from vw's start line */
  granted: string | null;
  ok: boolean;
  error: string | null;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  maxUs: number | null;
  achievedRps: number | null;
  targetRps: number | null;
  requests: number | null;
  errors: number;
  /** regime A: requests still unanswered at the end (their age is in the percentiles) */
  incomplete: number | null;
  /** share of one CPU the hog / vw (all threads) got during the measured window */
  hogCpuPct: number | null;
  vwCpuPct: number | null;
  serverCpuBusyBeforePct: number | null;
  raw: string;
}

interface Throttle {
  rtRuntimeUs: number | null;
  rtPeriodUs: number | null;
  /** what SCHED_OTHER keeps per period on a CPU an RT task would hog, ms */
  gapMs: number | null;
  /** Linux >= 6.12 deadline server for normal tasks, when debugfs shows it */
  fairServer: string | null;
}

function readThrottle(cpu: number): Throttle {
  const rt = procNumber("/proc/sys/kernel/sched_rt_runtime_us", /(-?\d+)/);
  const period = procNumber("/proc/sys/kernel/sched_rt_period_us", /(\d+)/);
  const gapMs = rt !== null && period !== null && rt >= 0 ? (period - rt) / 1000 : null;
  const dir = `/sys/kernel/debug/sched/fair_server/cpu${cpu}`;
  const fsRuntime = procNumber(`${dir}/runtime`, /(\d+)/);
  const fsPeriod = procNumber(`${dir}/period`, /(\d+)/);
  const fairServer =
    fsRuntime !== null && fsPeriod !== null ? `cpu${cpu} runtime ${fsRuntime / 1e6} ms of every ${fsPeriod / 1e6} ms` : null;
  return { rtRuntimeUs: rt, rtPeriodUs: period, gapMs, fairServer };
}

/** wrk's done() hook: exact p99.9 and max from wrk's own histogram (µs), one parseable line. */
function writeLatencyScript(dir: string): string {
  const file = path.join(dir, "rt-latency.lua");
  fs.writeFileSync(
    file,
    [
      "-- written by bench/rt.ts: percentiles wrk's --latency report does not print",
      "done = function(summary, latency, requests)",
      '  io.write(string.format("VWRT p50=%d p99=%d p999=%d max=%d\\n",',
      "    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))",
      "end",
      "",
    ].join("\n"),
  );
  return file;
}

interface Plan {
  cli: string;
  rateBin: string;
  workerCpu: number;
  clientCpus: number[];
  rate: number;
  conns: number;
  durationSec: number;
  warmupSec: number;
  wrkConns: number;
  wrkDurationSec: number;
  wrkWarmupSec: number;
  luaScript: string;
}

const emptyRow = (c: ConfigDef): Row => ({
  config: c.id,
  policy: c.policy,
  hog: c.hog,
  granted: null,
  ok: false,
  error: null,
  p50Us: null,
  p99Us: null,
  p999Us: null,
  maxUs: null,
  achievedRps: null,
  targetRps: null,
  requests: null,
  errors: 0,
  incomplete: null,
  hogCpuPct: null,
  vwCpuPct: null,
  serverCpuBusyBeforePct: null,
  raw: "",
});

/** One config: fresh vw, optional hog, the regime's load, everything stopped by PID. */
async function runConfig(c: ConfigDef, regime: "A" | "B", p: Plan): Promise<Row> {
  const row = emptyRow(c);
  const busy = await cpuBusy([p.workerCpu], 300);
  row.serverCpuBusyBeforePct = busy === null ? null : busy * 100;
  let vw: proc.Child | null = null;
  let hog: proc.Child | null = null;
  try {
    const port = await proc.freePort();
    const args = [p.cli, "--listen", `127.0.0.1:${port}`, "--workers", "1", "--cpus", String(p.workerCpu), "--policy", c.policy, "--quiet"];
    vw = await startPinned(process.execPath, args, [p.workerCpu], port, true);
    for (let i = 0; i < 40 && !/listening on/.test(vw.output()); i++) await sleep(50);
    row.granted = /\b(SCHED_(?:FIFO|RR|OTHER))\b/.exec(vw.output())?.[1] ?? null;
    const loadSec = regime === "A" ? p.warmupSec + p.durationSec + 1 : p.wrkWarmupSec + p.wrkDurationSec;
    if (c.hog) {
      // A normal (SCHED_OTHER) busy loop on the worker's CPU; it ends by itself after its bound.
      hog = proc.start("taskset", ["-c", String(p.workerCpu), p.rateBin, "--spin", String(Math.ceil(loadSec + 10))]);
      await sleep(200);
    }
    const url = `http://127.0.0.1:${port}${URL_PATH}`;
    let hog0 = hog === null ? null : readCpu(hog.pid);
    let vw0 = readCpu(vw.pid);
    if (regime === "A") {
      const cmd = [p.rateBin, "-p", String(port), "-r", String(p.rate), "-c", String(p.conns), "-d", String(p.durationSec), "-w", String(p.warmupSec)];
      const client = proc.start("taskset", ["-c", p.clientCpus.join(","), ...cmd], { keepStdout: true });
      // The warm-up is inside the client's run: take the CPU readings when it ends.
      await sleep(p.warmupSec * 1000);
      hog0 = hog === null ? null : readCpu(hog.pid);
      vw0 = readCpu(vw.pid);
      const { code, timedOut } = await proc.waitBounded(client, (p.durationSec + 5) * 1000);
      row.raw = client.stdout().trim();
      const line = row.raw.split("\n").filter((l) => l.startsWith("{")).pop();
      if (timedOut || code !== 0 || line === undefined) throw new Error(`rate-client ${timedOut ? "timed out" : `exit ${code}`}: ${client.output().trim().slice(-300)}`);
      const j = JSON.parse(line) as Record<string, number>;
      const num = (k: string): number | null => (typeof j[k] === "number" && j[k]! >= 0 ? j[k]! : null);
      row.p50Us = num("p50_us");
      row.p99Us = num("p99_us");
      row.p999Us = num("p999_us");
      row.maxUs = num("max_us");
      row.achievedRps = num("achieved_rps");
      row.targetRps = num("target_rps");
      row.requests = num("completed");
      row.errors = num("errors") ?? 0;
      row.incomplete = num("incomplete");
    } else {
      if (p.wrkWarmupSec > 0) {
        await runWrk({ url, connections: p.wrkConns, durationSec: p.wrkWarmupSec, clientCpus: p.clientCpus.join(",") });
      }
      hog0 = hog === null ? null : readCpu(hog.pid);
      vw0 = readCpu(vw.pid);
      const w = await runWrk({ url, connections: p.wrkConns, durationSec: p.wrkDurationSec, clientCpus: p.clientCpus.join(","), luaScript: p.luaScript });
      row.raw = w.raw;
      const m = /VWRT p50=(\d+) p99=(\d+) p999=(\d+) max=(\d+)/.exec(w.raw);
      row.p50Us = m === null ? (w.p50Ms === null ? null : w.p50Ms * 1000) : Number(m[1]);
      row.p99Us = m === null ? (w.p99Ms === null ? null : w.p99Ms * 1000) : Number(m[2]);
      row.p999Us = m === null ? null : Number(m[3]);
      row.maxUs = m === null ? null : Number(m[4]);
      row.achievedRps = w.reqPerSec;
      row.requests = w.requests;
      row.errors = w.errors;
    }
    const share = (pid: number, a: ReturnType<typeof readCpu>): number | null => {
      const b = readCpu(pid);
      if (a === null || b === null) return null;
      const d = delta(a, b);
      return d.wallSec > 0 ? ((d.user + d.sys) / d.wallSec) * 100 : null;
    };
    row.vwCpuPct = share(vw.pid, vw0);
    row.hogCpuPct = hog === null ? null : share(hog.pid, hog0);
    row.ok = (row.requests ?? 0) > 0;
    if (!row.ok) row.error = "no requests completed";
  } catch (e) {
    row.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (hog !== null) await proc.stop(hog);
    if (vw !== null) await proc.stop(vw);
  }
  return row;
}

function table(rows: readonly Row[], regime: "A" | "B"): string {
  const head = ["config", "policy got", "p50", "p99", "p99.9", "max", regime === "A" ? "achieved req/s (target)" : "req/s", "vw CPU %", "hog CPU %", "errors"];
  return mdTable(
    head,
    rows.map((r) => [
      r.config,
      r.granted ?? "n/a",
      r.ok ? fmtUs(r.p50Us) : `FAILED: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 80)}`,
      fmtUs(r.p99Us),
      fmtUs(r.p999Us),
      fmtUs(r.maxUs),
      regime === "A" ? `${fmt(r.achievedRps)} (${fmt(r.targetRps)})` : fmt(r.achievedRps),
      fmt(r.vwCpuPct),
      r.hog ? fmt(r.hogCpuPct) : "-",
      `${r.errors}${r.incomplete ? ` (+${r.incomplete} unanswered)` : ""}`,
    ]),
  );
}

/** The one-line explanation, when the FIFO+hog max sits at the throttling gap. */
function throttleNote(rows: readonly Row[], regime: string, t: Throttle): string | null {
  const r = rows.find((x) => x.policy === "fifo" && x.hog && x.ok);
  if (r === undefined || r.maxUs === null || t.gapMs === null || t.rtRuntimeUs === null || t.rtPeriodUs === null) return null;
  const maxMs = r.maxUs / 1000;
  if (maxMs < t.gapMs * 0.8 || maxMs > t.gapMs * 1.1) return null;
  return (
    `note (regime ${regime}): fifo + hog max ${maxMs.toFixed(1)} ms ≈ the RT throttling gap: with sched_rt_runtime_us ${t.rtRuntimeUs} of sched_rt_period_us ${t.rtPeriodUs}, ` +
    `the kernel stops SCHED_FIFO tasks for the remaining ${t.gapMs} ms of each ${t.rtPeriodUs / 1000} ms so the starved SCHED_OTHER hog runs; requests arriving then wait it out.`
  );
}

async function main(ctx: { tmpDir: string }): Promise<number> {
  const f = parseFlags({ "--rate": "number", "--conns": "number", "--duration": "number", "--warmup": "count", "--wrk-conns": "number", "--wrk-duration": "number", "--only": "string", "--quick": "switch", "--out": "string" }, USAGE);
  if (typeof f === "number") return f;
  const quick = f.has("--quick");
  const only = f.str("--only", "AB").toUpperCase();
  if (!["A", "B", "AB"].includes(only)) {
    log(`--only ${only}: choose A or B\n${USAGE}`);
    return 2;
  }
  const t0 = Date.now();
  const cpus = planCpus();
  const skipped: string[] = [];
  const warnings: string[] = [];
  if (cpus.allowed.length < 2) warnings.push("only one CPU available: client, server and hog share it; these numbers mean nothing");
  const cli = pinnableVw(which);
  if (cli === null) return 1;
  const rc = compiledC("rate-client.c");
  if (rc.error !== null) {
    log(`bench/rate-client.c: ${rc.error}`);
    return 1;
  }
  let regimes = [...only] as ("A" | "B")[];
  if (regimes.includes("B") && which("wrk") === null) {
    skipped.push("regime B: wrk not on PATH (apt-get install wrk)");
    regimes = regimes.filter((r) => r !== "B");
  }
  const workerCpu = cpus.server[0]!;
  const plan: Plan = {
    cli,
    rateBin: rc.bin,
    workerCpu,
    clientCpus: cpus.client,
    rate: f.num("--rate", 20_000),
    conns: Math.floor(f.num("--conns", 16)),
    durationSec: f.num("--duration", quick ? 2 : 15),
    warmupSec: f.num("--warmup", quick ? 0.5 : 2),
    wrkConns: Math.floor(f.num("--wrk-conns", 200)),
    wrkDurationSec: Math.max(1, Math.round(f.num("--wrk-duration", quick ? 2 : 10))),
    wrkWarmupSec: quick ? 0 : 1,
    luaScript: writeLatencyScript(ctx.tmpDir),
  };
  const throttle = readThrottle(workerCpu);
  await pinSelf(cpus.client);

  const perConfig = { A: 0.3 + 0.8 + 0.2 + plan.warmupSec + plan.durationSec + 0.5, B: 0.3 + 0.8 + 0.2 + plan.wrkWarmupSec + plan.wrkDurationSec + 0.3 };
  const est = regimes.reduce((s, r) => s + CONFIGS.length * perConfig[r], 0);
  log(
    `vw bench:rt: worker on CPU ${workerCpu}, client on CPU ${cpus.client.join(",")}, hog (SCHED_OTHER busy loop) on CPU ${workerCpu}; ` +
      `regime A ${plan.rate} req/s over ${plan.conns} connections, ${plan.durationSec} s (+${plan.warmupSec} s warm-up); ` +
      `regime B wrk -c${plan.wrkConns} ${plan.wrkDurationSec} s; estimated ${Math.ceil(est)} s`,
  );
  for (const s of skipped) log(`skipped: ${s}`);

  const results: Record<"A" | "B", Row[]> = { A: [], B: [] };
  for (const regime of regimes) {
    for (const c of CONFIGS) {
      const r = await runConfig(c, regime, plan);
      results[regime].push(r);
      if (r.serverCpuBusyBeforePct !== null && r.serverCpuBusyBeforePct > 20) {
        warnings.push(`regime ${regime} ${c.id}: CPU ${workerCpu} was ${r.serverCpuBusyBeforePct.toFixed(0)}% busy before the run (something else is running)`);
      }
      if (r.granted !== null && c.policy === "fifo" && r.granted !== "SCHED_FIFO") {
        warnings.push(`regime ${regime} ${c.id}: SCHED_FIFO was refused (got ${r.granted}): run as root or with CAP_SYS_NICE`);
      }
      log(
        `regime ${regime} ${c.id}: ` +
          (r.ok
            ? `p50 ${fmtUs(r.p50Us)} p99 ${fmtUs(r.p99Us)} p99.9 ${fmtUs(r.p999Us)} max ${fmtUs(r.maxUs)}, ${fmt(r.achievedRps)} req/s${c.hog ? `, hog ${fmt(r.hogCpuPct)}% CPU` : ""}`
            : `FAILED: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 200)}`),
      );
    }
  }

  const out: string[] = [];
  out.push(`# vw real-time latency, ${new Date().toISOString()}`, "");
  out.push(`vw --workers 1 --cpus ${workerCpu} --policy fifo|other; client on CPU ${cpus.client.join(",")}; hog: a SCHED_OTHER busy loop pinned to CPU ${workerCpu}. Kernel ${os.release()}, took ${Math.round((Date.now() - t0) / 1000)} s.`);
  out.push(
    `RT throttling: sched_rt_runtime_us ${throttle.rtRuntimeUs ?? "n/a"}, sched_rt_period_us ${throttle.rtPeriodUs ?? "n/a"}` +
      (throttle.gapMs !== null ? ` (SCHED_OTHER keeps ${throttle.gapMs} ms of every ${(throttle.rtPeriodUs ?? 0) / 1000} ms on a CPU an RT task would fill)` : throttle.rtRuntimeUs === -1 ? " (throttling off: an RT task can starve the CPU)" : "") +
      (throttle.fairServer !== null ? `; fair server ${throttle.fairServer}` : ""),
  );
  for (const s of skipped) out.push(`- skipped: ${s}`);
  for (const w of warnings) out.push(`- warning: ${w}`);
  const notes: string[] = [];
  if (results.A.length > 0) {
    out.push("", `## Regime A: below saturation, open loop, ${plan.rate} req/s over ${plan.conns} connections, latency from the scheduled send time`, "");
    out.push(table(results.A, "A"));
    const n = throttleNote(results.A, "A", throttle);
    if (n !== null) notes.push(n);
  }
  if (results.B.length > 0) {
    out.push("", `## Regime B: at saturation, closed loop, wrk -t1 -c${plan.wrkConns} (latency as wrk sees it)`, "");
    out.push(table(results.B, "B"));
    const n = throttleNote(results.B, "B", throttle);
    if (n !== null) notes.push(n);
  }
  if (notes.length > 0) out.push("", ...notes);
  out.push("");
  process.stdout.write(`${out.join("\n")}\n`);

  const file = writeResult(f.has("--out") ? f.str("--out", "") : null, "rt.json", {
    meta: {
      date: new Date().toISOString(),
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      workerCpu,
      clientCpus: cpus.client,
      quick,
      wallSec: (Date.now() - t0) / 1000,
      regimeA: { rate: plan.rate, connections: plan.conns, durationSec: plan.durationSec, warmupSec: plan.warmupSec },
      regimeB: { tool: "wrk -t1", connections: plan.wrkConns, durationSec: plan.wrkDurationSec, warmupSec: plan.wrkWarmupSec },
    },
    throttling: throttle,
    skipped,
    warnings,
    notes,
    regimeA: results.A,
    regimeB: results.B,
  });
  log(`wrote ${file}`);
  return 0;
}

runEntry("rt", main);
