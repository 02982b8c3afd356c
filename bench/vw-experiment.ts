// vw-experiment.ts: entry of `npm run bench:vw`: the original VW experiment reproduced. Workers
// on every CPU (vw without --workers), the client on the same CPUs,
//   weighttp -n N -c 300 -t <cpus> -k http://127.0.0.1:PORT/1b   (or wrk -t<cpus> -c300 -d<s>)
// with vw's own live view recorded (--json --stats-interval 1) and vmstat-style machine figures
// from /proc/stat; nginx (worker_processes = CPUs) run the same way beside it. Prints the
// original's published figures next to this machine's. See bench/README.md.
import * as os from "node:os";
import { allowedCpus } from "./lib/cpus";
import { log, mdTable, parseFlags, pinnableVw, runEntry, startPinned, writeResult } from "./lib/harness";
import * as perf from "./lib/perf";
import * as proc from "./lib/proc";
import { URL_PATH } from "./lib/scenarios";
import { childPids, nginxDef, startServer } from "./lib/servers";
import { fmt, sleep, which } from "./lib/util";
import { sampleMachine, type MachineRates } from "./lib/vmstat";
import { runWeighttp, weighttpPath } from "./lib/weighttp";
import { runWrk } from "./lib/wrk";

const USAGE = `usage: npm run bench:vw -- [flags]
  --duration S      seconds measured per server, whole seconds (default 15)
  --warmup S        seconds of unmeasured load after start (default 2)
  --connections N   client connections (default 300, as in the original)
  --quick           3 s measured, 1 s warm-up: checks that everything works
  --out DIR         where vw-experiment.json goes (default bench/results)`;

/** The original experiment's published figures (4 cores, vmstat during weighttp -c 300 -t 4 -k). */
const ORIGINAL = {
  cores: 4,
  rps: 482_888,
  cs: [53_000, 61_000] as const,
  in: [20_000, 24_000] as const,
  us: [9, 10] as const,
  sy: [85, 90] as const,
};

/** One NDJSON object of vw's live view, the keys this bench reads. */
interface LiveLine {
  time: string;
  interval_s: number;
  requests: number;
  rps: number;
  syscalls_per_req: number | null;
  cs_voluntary: number;
  cs_involuntary: number;
  machine_cs: number;
  machine_intr: number;
  user_pct: number;
  sys_pct: number;
}

const LIVE_KEYS = ["interval_s", "requests", "rps", "cs_voluntary", "cs_involuntary", "machine_cs", "machine_intr", "user_pct", "sys_pct"] as const;

function parseLive(text: string): LiveLine[] {
  const out: LiveLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    const o = v as Record<string, unknown>;
    if (typeof o["time"] !== "string" || !LIVE_KEYS.every((k) => typeof o[k] === "number")) continue;
    const spr = o["syscalls_per_req"];
    out.push({
      time: o["time"],
      interval_s: o["interval_s"] as number,
      requests: o["requests"] as number,
      rps: o["rps"] as number,
      syscalls_per_req: typeof spr === "number" ? spr : null,
      cs_voluntary: o["cs_voluntary"] as number,
      cs_involuntary: o["cs_involuntary"] as number,
      machine_cs: o["machine_cs"] as number,
      machine_intr: o["machine_intr"] as number,
      user_pct: o["user_pct"] as number,
      sys_pct: o["sys_pct"] as number,
    });
  }
  return out;
}

/** vw's own view of the measured window: the intervals that lie inside it, summed. */
interface LiveSummary {
  intervals: number;
  seconds: number;
  requests: number;
  rps: number;
  syscallsPerReq: number | null;
  csPerSec: number; // vw's worker threads, voluntary + involuntary
  csPerReq: number | null;
  machineCsPerSec: number;
  machineInPerSec: number;
  userPct: number; // of the workers' CPUs
  sysPct: number;
}

function summariseLive(lines: readonly LiveLine[], startMs: number, endMs: number): { used: LiveLine[]; sum: LiveSummary | null } {
  const inside = (l: LiveLine, slackMs: number): boolean => {
    const t = Date.parse(l.time);
    return t - l.interval_s * 1000 >= startMs - slackMs && t <= endMs + slackMs;
  };
  let used = lines.filter((l) => inside(l, 150));
  if (used.length === 0) used = lines.filter((l) => Date.parse(l.time) > startMs && Date.parse(l.time) - l.interval_s * 1000 < endMs);
  if (used.length === 0) return { used, sum: null };
  const seconds = used.reduce((s, l) => s + l.interval_s, 0);
  const requests = used.reduce((s, l) => s + l.requests, 0);
  const withSys = used.filter((l) => l.syscalls_per_req !== null);
  const sysReq = withSys.reduce((s, l) => s + l.requests, 0);
  const cs = used.reduce((s, l) => s + l.cs_voluntary + l.cs_involuntary, 0);
  const w = (f: (l: LiveLine) => number): number => used.reduce((s, l) => s + f(l) * l.interval_s, 0) / seconds;
  return {
    used,
    sum: {
      intervals: used.length,
      seconds,
      requests,
      rps: requests / seconds,
      syscallsPerReq: sysReq > 0 ? withSys.reduce((s, l) => s + (l.syscalls_per_req ?? 0) * l.requests, 0) / sysReq : null,
      csPerSec: cs / seconds,
      csPerReq: requests > 0 ? cs / requests : null,
      machineCsPerSec: used.reduce((s, l) => s + l.machine_cs, 0) / seconds,
      machineInPerSec: used.reduce((s, l) => s + l.machine_intr, 0) / seconds,
      userPct: w((l) => l.user_pct),
      sysPct: w((l) => l.sys_pct),
    },
  };
}

interface Client {
  tool: "weighttp" | "wrk";
  bin: string;
  cpus: number[];
  connections: number;
}

interface LoadResult {
  requests: number;
  reqPerSec: number;
  errors: number;
  raw: string;
}

/** `seconds` of load from every CPU; weighttp runs a count sized from `rate`. */
async function drive(c: Client, port: number, seconds: number, rate: number | null): Promise<LoadResult> {
  const url = `http://127.0.0.1:${port}${URL_PATH}`;
  const clientCpus = c.cpus.join(",");
  if (c.tool === "wrk") {
    return runWrk({ url, connections: c.connections, durationSec: seconds, clientCpus, threads: c.cpus.length });
  }
  const requests = Math.min(100_000_000, Math.max(20_000, Math.round((rate ?? 100_000) * seconds)));
  return runWeighttp({ bin: c.bin, url, requests, connections: c.connections, clientCpus, limitSec: seconds * 3 + 10, threads: c.cpus.length });
}

interface ServerRun {
  server: string;
  ok: boolean;
  error: string | null;
  load: LoadResult | null;
  machine: MachineRates | null;
  machineRows: MachineRates[];
  /** perf window: syscalls and context switches of every server process ÷ requests */
  perfSyscallsPerReq: number | null;
  perfCsPerReq: number | null;
  /** vw only: its live view during the measured window */
  live: LiveSummary | null;
  liveLines: LiveLine[];
  pids: number[];
}

async function measure(
  name: string,
  started: { pids: () => number[]; stop: () => Promise<void>; live: () => LiveLine[] | null },
  port: number,
  c: Client,
  o: { warmupSec: number; durationSec: number; perf: boolean },
): Promise<ServerRun> {
  const r: ServerRun = { server: name, ok: false, error: null, load: null, machine: null, machineRows: [], perfSyscallsPerReq: null, perfCsPerReq: null, live: null, liveLines: [], pids: [] };
  try {
    let rate: number | null = null;
    if (o.warmupSec > 0) rate = (await drive(c, port, o.warmupSec, null)).reqPerSec;
    r.pids = started.pids();
    if (o.perf) {
      const session = await perf.attach(r.pids, c.cpus.join(","));
      let n = 0;
      try {
        n = (await drive(c, port, 1, rate)).requests;
      } finally {
        const counts = await session.finish();
        if (n > 0) {
          r.perfSyscallsPerReq = counts.syscalls === null ? null : counts.syscalls / n;
          r.perfCsPerReq = counts.contextSwitches === null ? null : counts.contextSwitches / n;
        }
      }
    }
    const sampler = sampleMachine(1000);
    const startMs = Date.now();
    r.load = await drive(c, port, o.durationSec, rate);
    const endMs = Date.now();
    const m = sampler.stop();
    r.machine = m.total;
    r.machineRows = m.rows;
    if (started.live() !== null) await sleep(1100); // the interval that ends after the load
    const lines = started.live();
    if (lines !== null) {
      const s = summariseLive(lines, startMs, endMs);
      r.live = s.sum;
      r.liveLines = s.used;
    }
    r.ok = r.load.requests > 0;
    if (!r.ok) r.error = "no requests completed";
  } catch (e) {
    r.error = e instanceof Error ? e.message : String(e);
  } finally {
    await started.stop();
  }
  return r;
}

const range = (a: readonly [number, number], f: (x: number) => string): string => `${f(a[0])}–${f(a[1])}`;
const pct = (x: number | null | undefined): string => (x === null || x === undefined ? "n/a" : `${x.toFixed(1)} %`);
const per = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b <= 0 ? null : a / b;

function sideBySide(runs: readonly ServerRun[], ncpu: number): string {
  const cols = runs.map((r) => `${r.server} here (${ncpu} CPUs)`);
  const o = ORIGINAL;
  const rows: string[][] = [];
  const add = (label: string, orig: string, f: (r: ServerRun) => string): void => void rows.push([label, orig, ...runs.map((r) => (r.ok ? f(r) : "failed"))]);
  add("req/s", fmt(o.rps), (r) => fmt(r.load?.reqPerSec));
  add("req/s per core", fmt(o.rps / o.cores), (r) => fmt(per(r.load?.reqPerSec, ncpu)));
  add("cs/s (machine)", range(o.cs, fmt), (r) => fmt(r.machine?.cs));
  add("in/s (machine)", range(o.in, fmt), (r) => fmt(r.machine?.in));
  add("cs/req", range([o.cs[0] / o.rps, o.cs[1] / o.rps], (x) => x.toFixed(3)), (r) => per(r.machine?.cs, r.load?.reqPerSec)?.toFixed(3) ?? "n/a");
  add("in/req", range([o.in[0] / o.rps, o.in[1] / o.rps], (x) => x.toFixed(3)), (r) => per(r.machine?.in, r.load?.reqPerSec)?.toFixed(3) ?? "n/a");
  add("syscalls/req", "n/a (not published)", (r) => {
    const p = r.perfSyscallsPerReq === null ? null : r.perfSyscallsPerReq.toFixed(2);
    if (r.live?.syscallsPerReq !== undefined && r.live.syscallsPerReq !== null) {
      return `${r.live.syscallsPerReq.toFixed(2)} (own count)${p !== null ? `, ${p} (perf)` : ""}`;
    }
    return p !== null ? `${p} (perf)` : "n/a";
  });
  add("us % (machine)", range(o.us, (x) => `${x}`) + " %", (r) => pct(r.machine?.us));
  add("sy % (machine, incl. irq+softirq)", range(o.sy, (x) => `${x}`) + " %", (r) => pct(r.machine?.sy));
  return mdTable(["", `original (${o.cores} cores, published)`, ...cols], rows);
}

function liveTable(lines: readonly LiveLine[]): string {
  return mdTable(
    ["time", "req/s", "syscalls/req", "cs vol/s", "cs invol/s", "machine cs/s", "machine in/s", "us %", "sy %"],
    lines.map((l) => [
      l.time.slice(11, 19),
      fmt(l.rps),
      l.syscalls_per_req === null ? "n/a" : l.syscalls_per_req.toFixed(2),
      fmt(l.cs_voluntary / l.interval_s),
      fmt(l.cs_involuntary / l.interval_s),
      fmt(l.machine_cs / l.interval_s),
      fmt(l.machine_intr / l.interval_s),
      l.user_pct.toFixed(1),
      l.sys_pct.toFixed(1),
    ]),
  );
}

function vmstatTable(rows: readonly MachineRates[]): string {
  return mdTable(
    ["s", "in/s", "cs/s", "us", "sy", "id", "wa", "st"],
    rows.map((m, i) => [String(i + 1), fmt(m.in), fmt(m.cs), m.us.toFixed(0), m.sy.toFixed(0), m.id.toFixed(0), m.wa.toFixed(0), m.st.toFixed(0)]),
  );
}

async function main(ctx: { tmpDir: string }): Promise<number> {
  const f = parseFlags({ "--duration": "number", "--warmup": "count", "--connections": "number", "--quick": "switch", "--out": "string" }, USAGE);
  if (typeof f === "number") return f;
  const quick = f.has("--quick");
  const durationSec = Math.max(1, Math.round(f.num("--duration", quick ? 3 : 15)));
  const warmupSec = Math.round(f.num("--warmup", quick ? 1 : 2));
  const t0 = Date.now();
  const cpus = allowedCpus();
  const ncpu = cpus.length;
  const cli = pinnableVw(which);
  if (cli === null) return 1;
  const skipped: string[] = [];
  const notes: string[] = [];
  const connections = Math.floor(f.num("--connections", 300));
  const wt = weighttpPath();
  let client: Client;
  if (wt !== null) {
    client = { tool: "weighttp", bin: wt, cpus, connections };
  } else if (which("wrk") !== null) {
    client = { tool: "wrk", bin: "wrk", cpus, connections };
    notes.push(`weighttp not on PATH and $WEIGHTTP unset: using wrk -t${ncpu} -c${connections} -d${durationSec}s instead (same connections and threads, closed loop for a time instead of a count)`);
  } else {
    log("neither weighttp nor wrk found: no client to run (apt-get install wrk)");
    return 1;
  }
  const nginx = nginxDef({ workers: ncpu });
  const nginxWhy = nginx.prepare();
  if (nginxWhy !== null) skipped.push(`nginx: ${nginxWhy}`);
  const perfWhy = await perf.perfProblem();
  if (perfWhy !== null) skipped.push(`perf (syscalls/req for nginx, the perf cross-check for vw → n/a): ${perfWhy}`);
  const cmdLine =
    client.tool === "weighttp"
      ? `weighttp -n N -c ${connections} -t ${ncpu} -k http://127.0.0.1:PORT${URL_PATH}`
      : `wrk -t${ncpu} -c${connections} -d${durationSec}s http://127.0.0.1:PORT${URL_PATH}`;
  const est = (nginxWhy === null ? 2 : 1) * (1.5 + warmupSec + (perfWhy === null ? 1.5 : 0) + durationSec + 1.5);
  log(`vw bench:vw: ${ncpu} CPUs (${cpus.join(",")}), server and client on all of them; ${cmdLine}; ${durationSec} s measured (+${warmupSec} s warm-up); estimated ${Math.ceil(est)} s`);
  for (const n of notes) log(n);
  for (const s of skipped) log(`skipped: ${s}`);
  const o = { warmupSec, durationSec, perf: perfWhy === null };

  const runs: ServerRun[] = [];
  {
    const port = await proc.freePort();
    const child = await startPinned(process.execPath, [cli, "--listen", `127.0.0.1:${port}`, "--json", "--stats-interval", "1"], cpus, port, true);
    const r = await measure(
      "vw",
      { pids: () => [child.pid], stop: () => proc.stop(child), live: () => parseLive(child.stdout()) },
      port,
      client,
      o,
    );
    runs.push(r);
  }
  if (nginxWhy === null) {
    const port = await proc.freePort();
    const srv = await startServer(nginx, { port, serverCpus: cpus, tmpDir: ctx.tmpDir });
    for (let i = 0; i < 40 && childPids(srv.pid).length < ncpu; i++) await sleep(50);
    const r = await measure("nginx", { pids: () => [srv.pid, ...childPids(srv.pid)], stop: () => srv.stop(), live: () => null }, port, client, o);
    runs.push(r);
  }
  for (const r of runs) {
    log(r.ok ? `${r.server}: ${fmt(r.load?.reqPerSec)} req/s, machine cs ${fmt(r.machine?.cs)}/s in ${fmt(r.machine?.in)}/s, us ${pct(r.machine?.us)} sy ${pct(r.machine?.sy)}` : `${r.server}: FAILED: ${r.error}`);
  }

  const out: string[] = [];
  out.push(`# The VW experiment, reproduced, ${new Date().toISOString()}`, "");
  out.push(`Server workers on every CPU (${ncpu}: ${cpus.join(",")}), the client on the same CPUs: \`${cmdLine}\`, ${durationSec} s measured after ${warmupSec} s of warm-up. Kernel ${os.release()}, took ${Math.round((Date.now() - t0) / 1000)} s.`);
  out.push(`vw: \`vw --listen 127.0.0.1:PORT --json --stats-interval 1\` (one SCHED_FIFO worker per CPU). nginx: worker_processes ${ncpu}, worker_cpu_affinity auto, return 200 "x".`);
  for (const n of notes) out.push(`- ${n}`);
  for (const s of skipped) out.push(`- skipped: ${s}`);
  for (const r of runs) if (!r.ok) out.push(`- failed: ${r.server}: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 300)}`);
  out.push("", "## Original vs this machine", "");
  out.push(sideBySide(runs, ncpu));
  out.push("", "Machine figures (cs, in, us, sy) are /proc/stat deltas over the measured window, like vmstat: client included, as in the original. req/s is the client's count.");
  const vw = runs.find((r) => r.server === "vw");
  if (vw?.live !== null && vw?.live !== undefined) {
    const l = vw.live;
    out.push("", `## vw's own live view, ${l.intervals} interval(s) inside the measured window`, "");
    out.push(
      `vw counted ${fmt(l.rps)} req/s, ${l.syscallsPerReq === null ? "n/a" : l.syscallsPerReq.toFixed(2)} syscalls/req, its workers ${fmt(l.csPerSec)} cs/s (${l.csPerReq === null ? "n/a" : l.csPerReq.toFixed(4)}/req), ` +
        `workers' CPUs us ${pct(l.userPct)} sy ${pct(l.sysPct)}; machine cs ${fmt(l.machineCsPerSec)}/s, in ${fmt(l.machineInPerSec)}/s.`,
      "",
    );
    out.push(liveTable(vw.liveLines));
  }
  for (const r of runs) {
    if (r.machineRows.length === 0) continue;
    out.push("", `## vmstat-style machine samples, ${r.server}`, "");
    out.push(vmstatTable(r.machineRows));
  }
  out.push("");
  process.stdout.write(`${out.join("\n")}\n`);
  const file = writeResult(f.has("--out") ? f.str("--out", "") : null, "vw-experiment.json", {
    meta: { date: new Date().toISOString(), kernel: `${os.type()} ${os.release()}`, node: process.version, cpus, client: client.tool, command: cmdLine, connections, durationSec, warmupSec, quick, wallSec: (Date.now() - t0) / 1000 },
    original: ORIGINAL,
    notes,
    skipped,
    runs,
  });
  log(`wrote ${file}`);
  return 0;
}

runEntry("vw-experiment", main);
