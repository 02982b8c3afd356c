// load.ts: entry of `npm run bench`. Starts each server fresh per run, pinned
// to the server CPUs, loads it from the client CPUs with wrk (and weighttp when
// present), and reports medians and per-round vw/peer ratios.
// See bench/README.md for what is measured and how to read it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs, USAGE, type BenchArgs } from "./lib/args";
import { planCpus } from "./lib/cpus";
import * as perf from "./lib/perf";
import * as proc from "./lib/proc";
import { clockTicks } from "./lib/procstat";
import { writeLatestChart } from "./lib/charts";
import { markdown, summarise, type Report } from "./lib/report";
import { PERF_WINDOW_SEC, runOne, type RunResult } from "./lib/run";
import { ALL_SCENARIOS, URL_PATH, type Scenario } from "./lib/scenarios";
import { ALL_SERVERS, type ServerDef } from "./lib/servers";
import { weighttpPath } from "./lib/weighttp";
import { writePipelineScript } from "./lib/wrk";
import { fmt, repoRoot, which } from "./lib/util";

const BUDGET_SEC = 540; // default run must end well inside 10 minutes
const log = (s: string): void => void process.stderr.write(`${s}\n`);

function pick<T>(
  all: readonly T[],
  wanted: string[] | null,
  key: (t: T) => string,
  what: string,
): T[] {
  if (wanted === null) return [...all];
  const unknown = wanted.filter((w) => !all.some((t) => key(t) === w));
  if (unknown.length > 0) throw new Error(`unknown ${what}: ${unknown.join(",")} (known: ${all.map(key).join(",")})`);
  return wanted.filter((w, i) => wanted.indexOf(w) === i).map((w) => all.find((t) => key(t) === w)!);
}

function perRunSec(def: ServerDef, a: BenchArgs): number {
  // idle check + startup + warm-up + perf window (with attach) + measured + stop and slack
  const perfSec = a.perf ? PERF_WINDOW_SEC + 0.25 + 0.15 : 0;
  return 0.5 + def.startupSec + (a.warmupSec > 0 ? a.warmupSec + 0.1 : 0) + perfSec + a.durationSec + 0.3;
}

function estimate(servers: readonly ServerDef[], scenarios: readonly Scenario[], a: BenchArgs): number {
  return a.rounds * scenarios.length * servers.reduce((s, d) => s + perRunSec(d, a), 0);
}

async function main(): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log(msg);
    return msg === USAGE ? 0 : 2;
  }
  const t0 = Date.now();
  const cpus = planCpus();
  const clientArg = cpus.client.join(",");
  const skipped: string[] = [];
  const warnings: string[] = [];
  if (cpus.allowed.length < 2) warnings.push("only one CPU available: server and client share it");

  if (which("taskset") === null) {
    log("taskset not found (util-linux): cannot pin anything");
    return 1;
  }
  // This script (its sampling timers, perf, wrk) lives on the client CPUs.
  await proc.run("taskset", ["-a", "-p", "-c", clientArg, String(process.pid)], 5000);

  let serverDefs: ServerDef[];
  let scenarioDefs: Scenario[];
  try {
    serverDefs = pick(ALL_SERVERS, args.servers, (s) => s.name, "server");
    scenarioDefs = pick(ALL_SCENARIOS, args.scenarios, (s) => s.id, "scenario");
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    return 2;
  }
  const servers = serverDefs.filter((s) => {
    const why = s.prepare();
    if (why !== null) skipped.push(`${s.name}: ${why}`);
    return why === null;
  });
  const weighttp = weighttpPath();
  const wrkOk = which("wrk") !== null;
  const scenarios = scenarioDefs.filter((s) => {
    if (s.tool === "weighttp") {
      if (weighttp === null) skipped.push(`scenario ${s.id}: weighttp not on PATH and $WEIGHTTP unset`);
      if (!wrkOk) skipped.push(`scenario ${s.id}: wrk (needed for its warm-up) not on PATH`);
      return weighttp !== null && wrkOk;
    }
    if (!wrkOk) skipped.push(`scenario ${s.id}: wrk not on PATH (apt-get install wrk)`);
    return wrkOk;
  });

  let perfState = "off (--no-perf)";
  if (args.perf) {
    const why = await perf.perfProblem();
    perfState = why ?? "ok";
    if (why !== null) {
      skipped.push(`perf (syscalls, context switches → n/a): ${why}`);
      args.perf = false;
    }
  }

  if (args.defaults && estimate(servers, scenarios, args) > BUDGET_SEC) {
    // More peers or scenarios than the defaults were sized for (h2o, weighttp):
    // shrink duration first, then rounds, to stay inside the budget.
    const was = `${args.rounds}×${args.durationSec} s`;
    while (estimate(servers, scenarios, args) > BUDGET_SEC && args.durationSec > 2) args.durationSec--;
    while (estimate(servers, scenarios, args) > BUDGET_SEC && args.rounds > 3) args.rounds--;
    log(`defaults shrunk from ${was} to ${args.rounds}×${args.durationSec} s to fit ${BUDGET_SEC / 60} min; pass --rounds/--duration to override`);
  }
  const est = estimate(servers, scenarios, args);
  const total = args.rounds * scenarios.length * servers.length;
  log(
    `vw bench: ${servers.map((s) => s.name).join(",") || "no servers"} × ${scenarios.map((s) => s.id).join(",") || "no scenarios"}, ` +
      `${args.rounds} round(s) × ${args.durationSec} s (+${args.warmupSec} s warm-up); server CPUs ${cpus.server.join(",")}, client CPUs ${clientArg}`,
  );
  log(`estimated total: ${Math.ceil(est)} s (~${(est / 60).toFixed(1)} min), ${total} runs`);
  for (const s of skipped) log(`skipped: ${s}`);

  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-bench-"));
  const cleanup = (): void => {
    proc.killAllSync();
    fs.rmSync(tmpDir, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    log("interrupted: stopping children");
    void proc.stopAll().finally(() => {
      cleanup();
      process.exit(130);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const runs: RunResult[] = [];
  try {
    const scripts = new Map<number, string>();
    const env = {
      serverCpus: cpus.server,
      clientCpus: cpus.client,
      tmpDir,
      warmupSec: args.warmupSec,
      durationSec: args.durationSec,
      perf: perfState === "ok",
      weighttpBin: weighttp,
      pipelineScript: (depth: number): string => {
        let f = scripts.get(depth);
        if (f === undefined) scripts.set(depth, (f = writePipelineScript(tmpDir, depth, URL_PATH)));
        return f;
      },
    };
    let n = 0;
    for (let round = 1; round <= args.rounds; round++) {
      for (const sc of scenarios) {
        for (const def of servers) {
          n++;
          const r = await runOne(def, sc, round, env);
          runs.push(r);
          const b = r.busyBeforePct;
          if (b.client !== null && b.client > 20)
            warnings.push(`round ${round} ${sc.id} ${def.name}: client CPU(s) ${clientArg} were ${b.client.toFixed(0)}% busy before the run`);
          if (b.server !== null && b.server > 20)
            warnings.push(`round ${round} ${sc.id} ${def.name}: server CPU(s) ${cpus.server.join(",")} were ${b.server.toFixed(0)}% busy before the run`);
          const v = r.values;
          log(
            `[${n}/${total}] round ${round} ${sc.id} ${def.name}: ` +
              (r.ok
                ? `${fmt(v.reqPerSec)} req/s, p99 ${fmt(v.p99Ms)} ms, ${fmt(v.cpuUsPerReq)} µs/req, ${fmt(v.syscallsPerReq)} syscalls/req, ` +
                  `server ${fmt(v.serverCpuPct)}% client ${fmt(v.clientCpuPct)}% CPU${r.errors > 0 ? `, ${r.errors} errors` : ""}`
                : `FAILED: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 200)}`),
          );
        }
      }
    }
  } finally {
    cleanup();
  }

  const { summary, ratios } = summarise(runs, scenarios, servers.map((s) => s.name));
  const report: Report = {
    meta: {
      date: new Date().toISOString(),
      rounds: args.rounds,
      durationSec: args.durationSec,
      warmupSec: args.warmupSec,
      serverCpus: cpus.server,
      clientCpus: cpus.client,
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      clkTck: clockTicks(),
      perf: perfState,
      wallSec: (Date.now() - t0) / 1000,
    },
    skipped,
    warnings: warnings.length > 20 ? [...warnings.slice(0, 20), `… and ${warnings.length - 20} more (see JSON)`] : warnings,
    scenarios: scenarios.map((s) => ({ id: s.id, title: s.title })),
    servers: servers.map((s) => s.name),
    summary,
    ratios,
    runs,
  };
  const outDir = args.outDir ?? path.join(repoRoot(), "bench", "results");
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, "latest.json"), JSON.stringify({ ...report, warnings }, null, 2) + "\n");
  const chart = await writeLatestChart(outDir, report);
  process.stdout.write(markdown(report));
  log(`wrote ${path.join(outDir, "latest.json")} and ${chart}`);
  return 0;
}

process.on("exit", () => proc.killAllSync());
main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    log(e instanceof Error ? (e.stack ?? e.message) : String(e));
    proc.killAllSync();
    process.exitCode = 1;
  },
);
