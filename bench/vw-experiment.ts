// vw-experiment.ts: entry of `npm run bench:vw`: the original VW experiment reproduced, and
// issue 17's target checked. Every server runs on every allowed CPU with the client on the same
// CPUs (the co-located VW setup):
//   weighttp -n N -c 300 -t <cpus> -k http://127.0.0.1:PORT/1b   (or wrk -t<cpus> -c300 -d<s>)
// Servers: vw (defaults: SCHED_FIFO, --coalesce auto), vw --coalesce off, vw --policy other
// --coalesce off, vw --engine uring (when built), nginx (a pinned worker per CPU, reuseport) and
// the original 2012 VW ($VW_ORIGINAL), each started fresh per run, in interleaved rounds whose
// order rotates. Per run: the client's req/s; vmstat-style machine figures from /proc/stat over
// the measured window (cs, in per request, idle %); for vw its own NDJSON live view over the
// same window (syscalls, its workers' context switches, wake-ups, requests per wake-up). The
// report: medians (min–max), the median of per-round req/s ratios against nginx and the
// original VW, issue 17's targets met or not, and the original's published figures beside this
// machine's. See bench/README.md.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { native } from "../src/native";
import { allowedCpus } from "./lib/cpus";
import { log, mdTable, parseFlags, pickById, pinnableVw, runEntry, startPinned, writeResult } from "./lib/harness";
import * as perf from "./lib/perf";
import * as proc from "./lib/proc";
import { cpuBusy, idleAtStart } from "./lib/procstat";
import { cell, ratio } from "./lib/report";
import { URL_PATH } from "./lib/scenarios";
import { childPids, floorDef, nginxDef, ORIGINAL_VW_PORT, originalVwDef, startServer, type ServerDef } from "./lib/servers";
import { fmt, repoRoot, sleep, spread, which, type Spread } from "./lib/util";
import { sampleMachine, type MachineRates } from "./lib/vmstat";
import { runWeighttp, weighttpPath } from "./lib/weighttp";
import { runWrk } from "./lib/wrk";

/** The servers, in their default order; `--servers` names a subset by id. */
interface ServerSpec {
  id: string;
  /** what the tables show: the command's distinguishing flags */
  label: string;
  kind: "vw" | "nginx" | "original" | "floor";
  /** vw only: flags after `--listen … --json --stats-interval 1` */
  vwArgs: readonly string[];
  /** vw only: the engine it needs in the addon */
  engine?: string;
}

const SERVERS: readonly ServerSpec[] = [
  { id: "vw", label: "vw (defaults)", kind: "vw", vwArgs: [] },
  { id: "vw-off", label: "vw --coalesce off", kind: "vw", vwArgs: ["--coalesce", "off"] },
  { id: "vw-other", label: "vw --policy other --coalesce off", kind: "vw", vwArgs: ["--policy", "other", "--coalesce", "off"] },
  { id: "vw-uring", label: "vw --engine uring", kind: "vw", vwArgs: ["--engine", "uring"], engine: "uring" },
  { id: "nginx", label: "nginx", kind: "nginx", vwArgs: [] },
  { id: "original", label: "original VW (2012)", kind: "original", vwArgs: [] },
  // The ceiling: bench/floor.c parses nothing and makes one read and one write per request, so
  // its ratio to nginx in the same round is what the kernel's socket work leaves to be won.
  { id: "floor", label: "floor.c (no HTTP parsing, SCHED_OTHER)", kind: "floor", vwArgs: [] },
];

/** Issue 17's VW-experiment targets, for vw's defaults and for --engine uring. */
const TARGET = { servers: ["vw", "vw-uring"], reqVsNginx: 1.15, csPerReq: 0.07 } as const;

const USAGE = `usage: npm run bench:vw -- [flags]
  --rounds R        interleaved rounds, every server once per round, order rotated (default 5)
  --duration S      seconds measured per run, whole seconds (default 10)
  --warmup S        seconds of unmeasured load after each start (default 2)
  --servers a,b     subset of: ${SERVERS.map((s) => s.id).join(",")} (default all available)
  --connections N   client connections (default 300, as in the original)
  --perf            add a 1 s perf stat window per run (syscalls/req for nginx and the original)
  --quick           1 round, 3 s measured, 1 s warm-up: checks that everything works
  --out DIR         where bench-vw.md and vw-experiment.json go (default bench/results)`;

/** The original experiment's published figures (4 cores, vmstat during weighttp -c 300 -t 4 -k). */
const ORIGINAL = {
  cores: 4,
  rps: 482_888,
  cs: [53_000, 61_000] as const,
  in: [20_000, 24_000] as const,
  us: [9, 10] as const,
  sy: [85, 90] as const,
};

// ---- vw's live view (NDJSON, --json --stats-interval 1) ------------------------------------

/** One worker of one NDJSON interval, the keys this bench reads. */
interface LiveWorker {
  id: number;
  cpu: number;
  requests: number;
  syscalls: number;
  wakeups: number;
  coalesced_waits: number;
  hold_us: number;
  cs_voluntary: number;
  cs_involuntary: number;
}

/** One NDJSON interval of vw's live view, the keys this bench reads. */
interface LiveLine {
  time: string;
  interval_s: number;
  requests: number;
  syscalls: number;
  wakeups: number;
  cs_voluntary: number;
  cs_involuntary: number;
  machine_cs: number;
  machine_intr: number;
  user_pct: number;
  sys_pct: number;
  workers: LiveWorker[];
}

const LINE_KEYS = ["interval_s", "requests", "syscalls", "wakeups", "cs_voluntary", "cs_involuntary", "machine_cs", "machine_intr", "user_pct", "sys_pct"] as const;
const WORKER_KEYS = ["id", "cpu", "requests", "wakeups", "coalesced_waits", "hold_us", "cs_voluntary", "cs_involuntary"] as const;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (o: Record<string, unknown>, k: string): number => o[k] as number;

function parseWorker(v: unknown): LiveWorker | null {
  if (!isRecord(v) || !WORKER_KEYS.every((k) => typeof v[k] === "number")) return null;
  const sc = v["syscalls"];
  if (!isRecord(sc) || typeof sc["total"] !== "number") return null;
  return {
    id: num(v, "id"),
    cpu: num(v, "cpu"),
    requests: num(v, "requests"),
    syscalls: sc["total"],
    wakeups: num(v, "wakeups"),
    coalesced_waits: num(v, "coalesced_waits"),
    hold_us: num(v, "hold_us"),
    cs_voluntary: num(v, "cs_voluntary"),
    cs_involuntary: num(v, "cs_involuntary"),
  };
}

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
    if (!isRecord(v) || typeof v["time"] !== "string" || !LINE_KEYS.every((k) => typeof v[k] === "number")) continue;
    const ws = Array.isArray(v["workers"]) ? v["workers"].map(parseWorker) : [];
    const workers = ws.filter((w): w is LiveWorker => w !== null);
    out.push({
      time: v["time"],
      interval_s: num(v, "interval_s"),
      requests: num(v, "requests"),
      syscalls: num(v, "syscalls"),
      wakeups: num(v, "wakeups"),
      cs_voluntary: num(v, "cs_voluntary"),
      cs_involuntary: num(v, "cs_involuntary"),
      machine_cs: num(v, "machine_cs"),
      machine_intr: num(v, "machine_intr"),
      user_pct: num(v, "user_pct"),
      sys_pct: num(v, "sys_pct"),
      workers,
    });
  }
  return out;
}

/** One vw worker over the measured window. */
interface VwWorkerWindow {
  id: number;
  cpu: number;
  requests: number;
  rps: number;
  syscallsPerReq: number | null;
  wakeupsPerSec: number;
  reqPerWakeup: number | null;
  /** waits whose wake-up --coalesce held back, per second */
  heldPerSec: number;
  /** the hold the worker's next wait used, µs: median over the intervals */
  holdUs: number | null;
  csPerReq: number | null;
}

/** vw's own view of the measured window: the NDJSON intervals that lie inside it, summed. */
interface VwWindow {
  intervals: number;
  seconds: number;
  requests: number;
  rps: number;
  syscallsPerReq: number | null;
  /** vw's worker threads, voluntary + involuntary */
  workersCsPerSec: number;
  workersCsPerReq: number | null;
  wakeupsPerSec: number;
  reqPerWakeup: number | null;
  /** of the workers' CPUs */
  userPct: number;
  sysPct: number;
  workers: VwWorkerWindow[];
}

const per = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b <= 0 ? null : a / b;

/** The intervals that lie inside [startMs, endMs] (150 ms slack each side), summed. */
function summariseLive(lines: readonly LiveLine[], startMs: number, endMs: number): { used: LiveLine[]; sum: VwWindow | null } {
  const slackMs = 150;
  const used = lines.filter((l) => {
    const t = Date.parse(l.time);
    return t - l.interval_s * 1000 >= startMs - slackMs && t <= endMs + slackMs;
  });
  if (used.length === 0) return { used, sum: null };
  const total = (f: (l: LiveLine) => number): number => used.reduce((s, l) => s + f(l), 0);
  const seconds = total((l) => l.interval_s);
  const requests = total((l) => l.requests);
  const cs = total((l) => l.cs_voluntary + l.cs_involuntary);
  const wakeups = total((l) => l.wakeups);
  const weighted = (f: (l: LiveLine) => number): number => total((l) => f(l) * l.interval_s) / seconds;
  const ids = [...new Set(used.flatMap((l) => l.workers.map((w) => w.id)))].sort((a, b) => a - b);
  const workers = ids.map((id): VwWorkerWindow => {
    const ws = used.flatMap((l) => l.workers.filter((w) => w.id === id));
    const wsum = (f: (w: LiveWorker) => number): number => ws.reduce((s, w) => s + f(w), 0);
    const req = wsum((w) => w.requests);
    const wake = wsum((w) => w.wakeups);
    return {
      id,
      cpu: ws[ws.length - 1]?.cpu ?? -1,
      requests: req,
      rps: req / seconds,
      syscallsPerReq: per(wsum((w) => w.syscalls), req),
      wakeupsPerSec: wake / seconds,
      reqPerWakeup: per(req, wake),
      heldPerSec: wsum((w) => w.coalesced_waits) / seconds,
      holdUs: spread(ws.map((w) => w.hold_us))?.median ?? null,
      csPerReq: per(wsum((w) => w.cs_voluntary + w.cs_involuntary), req),
    };
  });
  return {
    used,
    sum: {
      intervals: used.length,
      seconds,
      requests,
      rps: requests / seconds,
      syscallsPerReq: per(total((l) => l.syscalls), requests),
      workersCsPerSec: cs / seconds,
      workersCsPerReq: per(cs, requests),
      wakeupsPerSec: wakeups / seconds,
      reqPerWakeup: per(requests, wakeups),
      userPct: weighted((l) => l.user_pct),
      sysPct: weighted((l) => l.sys_pct),
      workers,
    },
  };
}

// ---- the client ------------------------------------------------------------------------------

interface Client {
  tool: "weighttp" | "wrk";
  bin: string;
  cpus: number[];
  connections: number;
}

interface LoadResult {
  /** weighttp's -n (null: wrk, which runs for a time) */
  asked: number | null;
  requests: number;
  reqPerSec: number;
  errors: number;
  raw: string;
}

/** A rate to size weighttp's first count by when nothing was measured yet. */
const GUESS_RPS = 100_000;

/** `seconds` of load from every CPU; weighttp runs a count sized from `rate`. */
async function drive(c: Client, port: number, seconds: number, rate: number | null): Promise<LoadResult> {
  const url = `http://127.0.0.1:${port}${URL_PATH}`;
  const clientCpus = c.cpus.join(",");
  if (c.tool === "wrk") {
    const w = await runWrk({ url, connections: c.connections, durationSec: seconds, clientCpus, threads: c.cpus.length });
    return { asked: null, requests: w.requests, reqPerSec: w.reqPerSec, errors: w.errors, raw: w.raw };
  }
  const n = Math.min(100_000_000, Math.max(20_000, Math.round((rate ?? GUESS_RPS) * seconds)));
  const w = await runWeighttp({ bin: c.bin, url, requests: n, connections: c.connections, clientCpus, limitSec: seconds * 3 + 10, threads: c.cpus.length });
  // The raw report without its "progress: N% done" lines, for auditing a figure in the JSON.
  const raw = w.raw.split("\n").filter((l) => !l.startsWith("progress:")).join("\n");
  return { asked: n, requests: w.requests, reqPerSec: w.reqPerSec, errors: w.errors, raw };
}

// ---- one run ---------------------------------------------------------------------------------

interface Run {
  round: number;
  /** position within the round, from 1 */
  slot: number;
  server: string;
  ok: boolean;
  error: string | null;
  /** busy share (%) of the CPUs in the 0.3 s before the server started */
  busyBeforePct: number | null;
  load: LoadResult | null;
  /** /proc/stat over the measured window, client included */
  machine: MachineRates | null;
  machineRows: MachineRates[];
  /** machine context switches and interrupts over the window ÷ the client's requests */
  csPerReq: number | null;
  inPerReq: number | null;
  /** --perf: syscalls and context switches of every server process over a 1 s window ÷ requests */
  perfSyscallsPerReq: number | null;
  perfCsPerReq: number | null;
  /** vw only: its own live view during the measured window */
  vw: VwWindow | null;
  /** vw only: its NDJSON intervals inside the window, totals only (per worker: vw.workers) */
  liveLines: Omit<LiveLine, "workers">[];
}

/** A started server: its PIDs (perf), how to stop it, and vw's live view so far (null: not vw). */
interface Started {
  pids: () => number[];
  stop: () => Promise<void>;
  live: () => LiveLine[] | null;
}

interface RunOptions {
  warmupSec: number;
  durationSec: number;
  perf: boolean;
  /** this server's rate in an earlier round, to size the warm-up count */
  knownRate: number | null;
}

async function measure(spec: ServerSpec, start: () => Promise<{ started: Started; port: number }>, round: number, slot: number, c: Client, o: RunOptions): Promise<Run> {
  const busy = await cpuBusy(c.cpus, 300);
  const r: Run = {
    round,
    slot,
    server: spec.id,
    ok: false,
    error: null,
    busyBeforePct: busy === null ? null : busy * 100,
    load: null,
    machine: null,
    machineRows: [],
    csPerReq: null,
    inPerReq: null,
    perfSyscallsPerReq: null,
    perfCsPerReq: null,
    vw: null,
    liveLines: [],
  };
  let s: Started | null = null;
  try {
    const { started, port } = await start();
    s = started;
    let rate = o.knownRate;
    if (o.warmupSec > 0) rate = (await drive(c, port, o.warmupSec, rate)).reqPerSec;
    if (o.perf) {
      const session = await perf.attach(s.pids(), c.cpus.join(","));
      let n = 0;
      try {
        n = (await drive(c, port, 1, rate)).requests;
      } finally {
        const counts = await session.finish();
        r.perfSyscallsPerReq = per(counts.syscalls, n);
        r.perfCsPerReq = per(counts.contextSwitches, n);
      }
    }
    const sampler = sampleMachine(1000);
    const startMs = Date.now();
    try {
      r.load = await drive(c, port, o.durationSec, rate);
    } finally {
      const m = sampler.stop();
      r.machine = m.total;
      r.machineRows = m.rows;
    }
    const endMs = Date.now();
    r.csPerReq = per(r.machine?.csTotal, r.load.requests);
    r.inPerReq = per(r.machine?.inTotal, r.load.requests);
    if (s.live() !== null) {
      await sleep(250); // an interval that ended right at the end of the load reaches the pipe
      const w = summariseLive(s.live() ?? [], startMs, endMs);
      r.vw = w.sum;
      r.liveLines = w.used.map(({ workers: _w, ...totals }) => totals);
    }
    r.ok = r.load.requests > 0;
    if (!r.ok) r.error = "no requests completed";
  } catch (e) {
    r.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (s !== null) await s.stop();
  }
  return r;
}

// ---- the summary -----------------------------------------------------------------------------

interface WorkerSummary {
  id: number;
  cpu: number;
  wakeupsPerSec: Spread | null;
  reqPerWakeup: Spread | null;
  heldPerSec: Spread | null;
  holdUs: Spread | null;
  csPerReq: Spread | null;
}

interface ServerSummary {
  server: string;
  label: string;
  runs: number;
  failed: number;
  reqPerSec: Spread | null;
  csPerReq: Spread | null;
  inPerReq: Spread | null;
  idlePct: Spread | null;
  usPct: Spread | null;
  syPct: Spread | null;
  csPerSec: Spread | null;
  inPerSec: Spread | null;
  perfSyscallsPerReq: Spread | null;
  vwSyscallsPerReq: Spread | null;
  vwWorkersCsPerReq: Spread | null;
  vwWakeupsPerSec: Spread | null;
  vwReqPerWakeup: Spread | null;
  /** median over rounds of this server's req/s ÷ the peer's in the same round */
  reqVsNginx: Spread | null;
  reqVsOriginal: Spread | null;
  /** req/s ÷ floor.c's in the same round: how much of the reachable ceiling a server reaches */
  reqVsFloor: Spread | null;
  /** the same for machine cs/req (below 1: fewer context switches per request than the peer) */
  csVsNginx: Spread | null;
  workers: WorkerSummary[];
}

/** Per round, this server's figure ÷ the peer's (both ok), medianed. */
function perRoundRatio(runs: readonly Run[], server: string, peer: string, f: (r: Run) => number | null): Spread | null {
  if (server === peer) return null;
  const xs: number[] = [];
  for (const r of runs) {
    if (r.server !== server || !r.ok) continue;
    const p = runs.find((x) => x.server === peer && x.round === r.round && x.ok);
    const q = p === undefined ? null : per(f(r), f(p));
    if (q !== null) xs.push(q);
  }
  return spread(xs);
}

function summarise(runs: readonly Run[], specs: readonly ServerSpec[]): ServerSummary[] {
  const rps = (r: Run): number | null => r.load?.reqPerSec ?? null;
  return specs.map((spec): ServerSummary => {
    const mine = runs.filter((r) => r.server === spec.id);
    const ok = mine.filter((r) => r.ok);
    const sp = (f: (r: Run) => number | null | undefined): Spread | null => spread(ok.map((r) => f(r) ?? null));
    const ids = [...new Set(ok.flatMap((r) => r.vw?.workers.map((w) => w.id) ?? []))].sort((a, b) => a - b);
    const workers = ids.map((id): WorkerSummary => {
      const ws = ok.flatMap((r) => r.vw?.workers.filter((w) => w.id === id) ?? []);
      const wsp = (f: (w: VwWorkerWindow) => number | null): Spread | null => spread(ws.map(f));
      return {
        id,
        cpu: ws[ws.length - 1]?.cpu ?? -1,
        wakeupsPerSec: wsp((w) => w.wakeupsPerSec),
        reqPerWakeup: wsp((w) => w.reqPerWakeup),
        heldPerSec: wsp((w) => w.heldPerSec),
        holdUs: wsp((w) => w.holdUs),
        csPerReq: wsp((w) => w.csPerReq),
      };
    });
    return {
      server: spec.id,
      label: spec.label,
      runs: ok.length,
      failed: mine.length - ok.length,
      reqPerSec: sp(rps),
      csPerReq: sp((r) => r.csPerReq),
      inPerReq: sp((r) => r.inPerReq),
      idlePct: sp((r) => r.machine?.id),
      usPct: sp((r) => r.machine?.us),
      syPct: sp((r) => r.machine?.sy),
      csPerSec: sp((r) => r.machine?.cs),
      inPerSec: sp((r) => r.machine?.in),
      perfSyscallsPerReq: sp((r) => r.perfSyscallsPerReq),
      vwSyscallsPerReq: sp((r) => r.vw?.syscallsPerReq),
      vwWorkersCsPerReq: sp((r) => r.vw?.workersCsPerReq),
      vwWakeupsPerSec: sp((r) => r.vw?.wakeupsPerSec),
      vwReqPerWakeup: sp((r) => r.vw?.reqPerWakeup),
      reqVsNginx: perRoundRatio(runs, spec.id, "nginx", rps),
      reqVsOriginal: perRoundRatio(runs, spec.id, "original", rps),
      reqVsFloor: perRoundRatio(runs, spec.id, "floor", rps),
      csVsNginx: perRoundRatio(runs, spec.id, "nginx", (r) => r.csPerReq),
      workers,
    };
  });
}

interface TargetCheck {
  server: string;
  label: string;
  ran: boolean;
  reqVsNginx: Spread | null;
  reqMet: boolean | null;
  csPerReq: Spread | null;
  csMet: boolean | null;
}

function checkTargets(summary: readonly ServerSummary[]): TargetCheck[] {
  return TARGET.servers.map((id): TargetCheck => {
    const s = summary.find((x) => x.server === id);
    const label = SERVERS.find((x) => x.id === id)?.label ?? id;
    if (s === undefined || s.runs === 0) return { server: id, label, ran: false, reqVsNginx: null, reqMet: null, csPerReq: null, csMet: null };
    return {
      server: id,
      label,
      ran: true,
      reqVsNginx: s.reqVsNginx,
      reqMet: s.reqVsNginx === null ? null : s.reqVsNginx.median >= TARGET.reqVsNginx,
      csPerReq: s.csPerReq,
      csMet: s.csPerReq === null ? null : s.csPerReq.median <= TARGET.csPerReq,
    };
  });
}

// ---- the report ------------------------------------------------------------------------------

const range = (a: readonly [number, number], f: (x: number) => string): string => `${f(a[0])}–${f(a[1])}`;
const pct = (x: number | null | undefined): string => (x === null || x === undefined ? "n/a" : `${x.toFixed(1)} %`);
const med = (s: Spread | null): number | null => s?.median ?? null;
const verdict = (met: boolean | null): string => (met === null ? "n/a" : met ? "**met**" : "**NOT met**");

function targetTable(checks: readonly TargetCheck[], summary: readonly ServerSummary[]): string {
  const col = (c: TargetCheck, v: string): string => (c.ran ? v : "not run");
  const floor = summary.find((s) => s.server === "floor" && s.runs > 0);
  const vsFloor = (c: TargetCheck): string => ratio(summary.find((s) => s.server === c.server)?.reqVsFloor ?? null);
  const ceiling =
    floor === undefined
      ? []
      : [
          [`the ceiling: floor.c's req/s ÷ nginx in the same rounds`, ...checks.map(() => ratio(floor.reqVsNginx))],
          [`req/s ÷ floor.c (median of per-round ratios)`, ...checks.map((c) => col(c, vsFloor(c)))],
        ];
  return mdTable(
    ["issue 17 target (co-located, medians over rounds)", ...checks.map((c) => c.label)],
    [
      ...ceiling,
      [`req/s ≥ ${TARGET.reqVsNginx.toFixed(2)}× nginx (median of per-round ratios)`, ...checks.map((c) => col(c, `${ratio(c.reqVsNginx)}: ${verdict(c.reqMet)}`))],
      [`≤ ${TARGET.csPerReq} context switches per request (machine, vmstat cs)`, ...checks.map((c) => col(c, `${cell(c.csPerReq)}: ${verdict(c.csMet)}`))],
    ],
  );
}

function serverTable(summary: readonly ServerSummary[]): string {
  return mdTable(
    ["server", "runs ok/failed", "req/s", "cs/req (machine)", "in/req (machine)", "idle %", "syscalls/req (vw)", "workers' cs/req (vw)", "wake-ups/s (vw)", "req/wake-up (vw)"],
    summary.map((s) => [
      s.label,
      `${s.runs}/${s.failed}`,
      cell(s.reqPerSec),
      cell(s.csPerReq),
      cell(s.inPerReq),
      cell(s.idlePct, 2),
      cell(s.vwSyscallsPerReq),
      cell(s.vwWorkersCsPerReq),
      cell(s.vwWakeupsPerSec),
      cell(s.vwReqPerWakeup),
    ]),
  );
}

function ratioTable(summary: readonly ServerSummary[], withOriginal: boolean): string {
  const head = ["server", "req/s ÷ nginx", "cs/req ÷ nginx", ...(withOriginal ? ["req/s ÷ original VW"] : [])];
  return mdTable(
    head,
    summary
      .filter((s) => s.server !== "nginx" || withOriginal)
      .map((s) => [s.label, s.server === "nginx" ? "—" : ratio(s.reqVsNginx), s.server === "nginx" ? "—" : ratio(s.csVsNginx), ...(withOriginal ? [s.server === "original" ? "—" : ratio(s.reqVsOriginal)] : [])]),
  );
}

function runsTable(runs: readonly Run[], specs: readonly ServerSpec[]): string {
  const label = (id: string): string => specs.find((s) => s.id === id)?.label ?? id;
  const f = (x: number | null | undefined, d = 3): string => fmt(x ?? null, d);
  return mdTable(
    ["round", "#", "server", "req/s", "cs/req", "in/req", "idle %", "syscalls/req (vw)", "workers' cs/req (vw)", "wake-ups/s (vw)", "req/wake-up (vw)", "busy before"],
    runs.map((r) =>
      r.ok
        ? [
            String(r.round),
            String(r.slot),
            label(r.server),
            f(r.load?.reqPerSec),
            f(r.csPerReq),
            f(r.inPerReq),
            f(r.machine?.id, 2),
            f(r.vw?.syscallsPerReq),
            f(r.vw?.workersCsPerReq),
            f(r.vw?.wakeupsPerSec),
            f(r.vw?.reqPerWakeup),
            pct(r.busyBeforePct),
          ]
        : [String(r.round), String(r.slot), label(r.server), "failed", "", "", "", "", "", "", "", pct(r.busyBeforePct)],
    ),
  );
}

function workerTable(summary: readonly ServerSummary[]): string {
  const rows: string[][] = [];
  for (const s of summary) {
    for (const w of s.workers) {
      rows.push([s.label, String(w.id), String(w.cpu), cell(w.wakeupsPerSec), cell(w.reqPerWakeup), cell(w.heldPerSec), cell(w.holdUs), cell(w.csPerReq)]);
    }
  }
  return mdTable(["server", "worker", "CPU", "wake-ups/s", "req/wake-up", "held waits/s", "hold µs", "cs/req (worker)"], rows);
}

/** The original's published figures beside this machine's medians, one column per server. */
function sideBySide(summary: readonly ServerSummary[], ncpu: number): string {
  const shown = summary.filter((s) => s.runs > 0);
  const o = ORIGINAL;
  const rows: string[][] = [];
  const add = (label: string, orig: string, f: (s: ServerSummary) => string): void => void rows.push([label, orig, ...shown.map(f)]);
  add("req/s", fmt(o.rps), (s) => fmt(med(s.reqPerSec)));
  add("req/s per core", fmt(o.rps / o.cores), (s) => fmt(per(med(s.reqPerSec), ncpu)));
  add("cs/s (machine)", range(o.cs, fmt), (s) => fmt(med(s.csPerSec)));
  add("in/s (machine)", range(o.in, fmt), (s) => fmt(med(s.inPerSec)));
  add("cs/req", range([o.cs[0] / o.rps, o.cs[1] / o.rps], (x) => x.toFixed(3)), (s) => med(s.csPerReq)?.toFixed(3) ?? "n/a");
  add("in/req", range([o.in[0] / o.rps, o.in[1] / o.rps], (x) => x.toFixed(3)), (s) => med(s.inPerReq)?.toFixed(3) ?? "n/a");
  add("syscalls/req", "n/a (not published)", (s) => {
    const own = med(s.vwSyscallsPerReq);
    const p = med(s.perfSyscallsPerReq);
    const parts = [...(own !== null ? [`${own.toFixed(2)} (own count)`] : []), ...(p !== null ? [`${p.toFixed(2)} (perf)`] : [])];
    return parts.length > 0 ? parts.join(", ") : "n/a";
  });
  add("us % (machine)", `${range(o.us, String)} %`, (s) => pct(med(s.usPct)));
  add("sy % (machine, incl. irq+softirq)", `${range(o.sy, String)} %`, (s) => pct(med(s.syPct)));
  return mdTable(["", `original (${o.cores} cores, published)`, ...shown.map((s) => `${s.label} here (${ncpu} CPUs)`)], rows);
}

// ---- main ------------------------------------------------------------------------------------

/** `v` with every fractional number cut to 6 significant digits (a readable, smaller JSON). */
function rounded(v: unknown): unknown {
  if (typeof v === "number") return Number.isInteger(v) || !Number.isFinite(v) ? v : Number(v.toPrecision(6));
  if (Array.isArray(v)) return v.map(rounded);
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rounded(x)]));
  return v;
}

/** The addon's engines, or null (with the reason) when it cannot be asked. */
function builtEngines(): { engines: string[] | null; why: string | null } {
  try {
    return { engines: native().engines(), why: null };
  } catch (e) {
    return { engines: null, why: e instanceof Error ? e.message.split("\n")[0]! : String(e) };
  }
}

async function main(ctx: { tmpDir: string }): Promise<number> {
  const f = parseFlags(
    { "--rounds": "number", "--duration": "number", "--warmup": "count", "--servers": "string", "--connections": "number", "--perf": "switch", "--quick": "switch", "--out": "string" },
    USAGE,
  );
  if (typeof f === "number") return f;
  const quick = f.has("--quick");
  const rounds = Math.max(1, Math.floor(f.num("--rounds", quick ? 1 : 5)));
  const durationSec = Math.max(1, Math.round(f.num("--duration", quick ? 3 : 10)));
  const warmupSec = Math.round(f.num("--warmup", quick ? 1 : 2));
  const connections = Math.floor(f.num("--connections", 300));
  const wanted = pickById(f, "--servers", SERVERS, USAGE);
  if (wanted === null) return 2;
  const t0 = Date.now();
  const cpus = allowedCpus();
  const ncpu = cpus.length;
  const cli = pinnableVw(which);
  if (cli === null) return 1;
  const skipped: string[] = [];
  const notes: string[] = [];
  const warnings: string[] = [];

  const wt = weighttpPath();
  let client: Client;
  if (wt !== null) {
    client = { tool: "weighttp", bin: wt, cpus, connections };
  } else if (which("wrk") !== null) {
    client = { tool: "wrk", bin: "wrk", cpus, connections };
    notes.push(`weighttp not on PATH and $WEIGHTTP unset: using wrk -t${ncpu} -c${connections} -d${durationSec}s instead (same connections and threads, closed loop for a time instead of a count)`);
  } else {
    log("neither weighttp nor wrk found: no client to run (apt-get install wrk, or build weighttp and set $WEIGHTTP)");
    return 1;
  }

  // Which of the wanted servers can run here; each one that cannot says why, in one line.
  const nginx = nginxDef({ workers: ncpu, reuseport: true });
  const original = originalVwDef();
  const floor = floorDef(ncpu);
  const { engines, why: enginesWhy } = builtEngines();
  const specs = wanted.filter((s) => {
    let why: string | null = null;
    if (s.kind === "nginx") why = nginx.prepare();
    else if (s.kind === "original") why = original.prepare();
    else if (s.kind === "floor") why = floor.prepare();
    else if (s.engine !== undefined) {
      if (engines === null) why = `cannot ask the addon for its engines: ${enginesWhy ?? "?"}`;
      else if (!engines.includes(s.engine)) why = `this build has no ${s.engine} engine (liburing-dev missing at build time: apt-get install liburing-dev, then npm rebuild)`;
    }
    if (why !== null) skipped.push(`${s.id} (${s.label}): ${why}`);
    return why === null;
  });
  if (specs.length === 0) {
    for (const s of skipped) log(`skipped: ${s}`);
    log("no server can run");
    return 1;
  }
  if (!specs.some((s) => s.id === "nginx")) notes.push("nginx not run: no ratios against nginx, issue 17's req/s target cannot be judged");
  if (specs.some((s) => s.id === "original") && cpus.some((c, i) => c !== i)) {
    notes.push(`the original VW pins its threads to CPUs 0, 1, … itself, while this process may use ${cpus.join(",")}`);
  }
  if (process.getuid?.() !== 0) notes.push("not root: vw's SCHED_FIFO is refused and vw runs its workers under SCHED_OTHER (it says so); the original VW needs root for SCHED_RR");

  let perfOk = false;
  if (f.has("--perf")) {
    const why = await perf.perfProblem();
    perfOk = why === null;
    if (why !== null) skipped.push(`perf (--perf: syscalls/req by perf → n/a): ${why}`);
  }

  const cmdLine =
    client.tool === "weighttp"
      ? `weighttp -n N -c ${connections} -t ${ncpu} -k http://127.0.0.1:PORT${URL_PATH}`
      : `wrk -t${ncpu} -c${connections} -d${durationSec}s http://127.0.0.1:PORT${URL_PATH}`;
  // idle check, start, warm-up, perf window, measured window, stop (vw's graceful stop takes ~0.9 s)
  const perRunSec = (s: ServerSpec): number => 0.3 + (s.kind === "vw" ? 0.8 : 0.2) + warmupSec + (perfOk ? 1.5 : 0) + durationSec + (s.kind === "vw" ? 1.2 : 0.2);
  const est = rounds * specs.reduce((sum, s) => sum + perRunSec(s), 0);
  log(
    `vw bench:vw: ${specs.map((s) => s.id).join(",")} on ${ncpu} CPUs (${cpus.join(",")}), client on the same CPUs: ${cmdLine}; ` +
      `${rounds} round(s) × ${durationSec} s measured (+${warmupSec} s warm-up) per server; estimated ${Math.ceil(est)} s (~${(est / 60).toFixed(1)} min)`,
  );
  for (const n of notes) log(n);
  for (const s of skipped) log(`skipped: ${s}`);

  // Were the CPUs idle before we began? Everything here shares them, so anything else running
  // shows up in every figure.
  const { busy: busyStart, line: idleLine } = await idleAtStart(cpus);
  log(idleLine);

  const vwStart = (spec: ServerSpec) => async (): Promise<{ started: Started; port: number }> => {
    const port = await proc.freePort();
    const child = await startPinned(process.execPath, [cli, "--listen", `127.0.0.1:${port}`, "--json", "--stats-interval", "1", ...spec.vwArgs], cpus, port, true);
    return { port, started: { pids: () => [child.pid], stop: () => proc.stop(child), live: () => parseLive(child.stdout()) } };
  };
  const defStart = (def: ServerDef, fixedPort: number | null, wantChildren: number) => async (): Promise<{ started: Started; port: number }> => {
    const port = fixedPort ?? (await proc.freePort());
    if (fixedPort !== null && !(await proc.portFree(fixedPort))) throw new Error(`127.0.0.1:${fixedPort} is in use by another process`);
    const srv = await startServer(def, { port, serverCpus: cpus, tmpDir: ctx.tmpDir });
    for (let i = 0; i < 40 && childPids(srv.pid).length < wantChildren; i++) await sleep(50);
    return { port, started: { pids: () => [srv.pid, ...childPids(srv.pid)], stop: () => srv.stop(), live: () => null } };
  };
  const starter = (s: ServerSpec): (() => Promise<{ started: Started; port: number }>) =>
    s.kind === "vw"
      ? vwStart(s)
      : s.kind === "nginx"
        ? defStart(nginx, null, ncpu)
        : s.kind === "floor"
          ? defStart(floor, null, 0)
          : defStart(original, ORIGINAL_VW_PORT, 0);

  const runs: Run[] = [];
  const lastRate = new Map<string, number>();
  const total = rounds * specs.length;
  for (let round = 1; round <= rounds; round++) {
    // Rotated order: round 1 A B C, round 2 B C A, …, so no server always follows the same one.
    const k = (round - 1) % specs.length;
    const order = [...specs.slice(k), ...specs.slice(0, k)];
    for (const [i, spec] of order.entries()) {
      const r = await measure(spec, starter(spec), round, i + 1, client, { warmupSec, durationSec, perf: perfOk, knownRate: lastRate.get(spec.id) ?? null });
      runs.push(r);
      if (r.ok && r.load !== null) lastRate.set(spec.id, r.load.reqPerSec);
      if (r.busyBeforePct !== null && r.busyBeforePct > 20) {
        warnings.push(`round ${round} ${spec.id}: CPUs ${cpus.join(",")} were ${r.busyBeforePct.toFixed(0)} % busy just before the run (something else is running)`);
      }
      const v = r.vw;
      log(
        `[${runs.length}/${total}] round ${round} ${spec.label}: ` +
          (r.ok
            ? `${fmt(r.load?.reqPerSec)} req/s, ${fmt(r.csPerReq)} cs/req, ${fmt(r.inPerReq)} in/req, idle ${pct(r.machine?.id)}` +
              (v !== null ? `; vw: ${fmt(v.syscallsPerReq)} syscalls/req, workers ${fmt(v.workersCsPerReq)} cs/req, ${fmt(v.wakeupsPerSec)} wake-ups/s, ${fmt(v.reqPerWakeup)} req/wake-up` : "") +
              (r.load !== null && r.load.errors > 0 ? `, ${r.load.errors} errors` : "")
            : `FAILED: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 200)}`),
      );
    }
  }

  const summary = summarise(runs, specs);
  const checks = checkTargets(summary);
  const wallSec = (Date.now() - t0) / 1000;
  const withOriginal = summary.some((s) => s.server === "original" && s.runs > 0);
  const out: string[] = [];
  out.push(`# The VW experiment, reproduced, ${new Date().toISOString()}`, "");
  out.push(
    `Server workers on every CPU (${ncpu}: ${cpus.join(",")}), the client on the same CPUs: \`${cmdLine}\`` +
      `${client.tool === "weighttp" ? ` (N = the warm-up rate × ${durationSec} s)` : ""}. ` +
      `${rounds} round(s); in each, every server once, started fresh, ${warmupSec} s of warm-up then ${durationSec} s measured; the order rotates by one server per round (round 1 A B C, round 2 B C A, …). ` +
      `Kernel ${os.release()}, node ${process.version}, took ${Math.round(wallSec)} s.`,
  );
  out.push(
    `vw: \`vw --listen 127.0.0.1:PORT --json --stats-interval 1 [flags]\` (one worker per CPU; SCHED_FIFO unless --policy other). ` +
      `nginx: worker_processes ${ncpu}, worker_cpu_affinity auto, listen … reuseport, return 200 "x". ` +
      `Original VW: \`$VW_ORIGINAL\` on 127.0.0.1:${ORIGINAL_VW_PORT} (its own threads and pinning), stopped by PID.`,
  );
  out.push("", `- ${idleLine}`);
  for (const n of notes) out.push(`- ${n}`);
  for (const s of skipped) out.push(`- skipped: ${s}`);
  for (const w of warnings.slice(0, 20)) out.push(`- warning: ${w}`);
  if (warnings.length > 20) out.push(`- … and ${warnings.length - 20} more warnings (see the JSON)`);
  for (const r of runs) if (!r.ok) out.push(`- failed: round ${r.round} ${r.server}: ${(r.error ?? "").replace(/\s+/g, " ").slice(0, 300)}`);
  out.push("", "## Issue 17's target", "");
  out.push(targetTable(checks, summary));
  out.push("", "## Per server (median (min–max) over rounds)", "");
  out.push(serverTable(summary));
  out.push(
    "",
    "cs/req and in/req: the machine's context switches and interrupts (/proc/stat `ctxt`, `intr`, as vmstat's cs and in) over the measured window ÷ the requests the client completed, client included, as in the original. " +
      "idle %: of all CPUs over the window. (vw) columns: vw's own NDJSON intervals that lie inside the window: its system calls, its worker threads' context switches, their wake-ups (returns from the blocking wait) and requests per wake-up.",
  );
  out.push("", "## Ratios (median (min–max) of per-round ratios)", "");
  out.push(ratioTable(summary, withOriginal));
  if (summary.some((s) => s.workers.length > 0)) {
    out.push("", "## vw per worker (median (min–max) over rounds)", "");
    out.push(workerTable(summary));
    out.push("", "held waits/s: waits whose wake-up `--coalesce` held back; hold µs: the hold the worker's next wait used (median over the intervals of a run).");
  }
  out.push("", "## Every run", "");
  out.push(runsTable(runs, specs));
  out.push("", "## Original vs this machine (medians)", "");
  out.push(sideBySide(summary, ncpu));
  out.push("", "Machine figures (cs, in, us, sy) are /proc/stat deltas over the measured window, like vmstat: client included, as in the original. req/s is the client's count.");
  out.push("");
  const md = `${out.join("\n")}\n`;
  process.stdout.write(md);
  const outDir = f.has("--out") ? f.str("--out", "") : path.join(repoRoot(), "bench", "results");
  const file = writeResult(outDir, "vw-experiment.json", rounded({
    meta: { date: new Date().toISOString(), kernel: `${os.type()} ${os.release()}`, node: process.version, cpus, client: client.tool, command: cmdLine, connections, rounds, durationSec, warmupSec, quick, perf: perfOk, order: "rotated", wallSec },
    idleAtStart: { busyPct: busyStart === null ? null : busyStart * 100, line: idleLine },
    target: TARGET,
    original: ORIGINAL,
    notes,
    skipped,
    warnings,
    targets: checks,
    summary,
    runs,
  }));
  fs.writeFileSync(path.join(outDir, "bench-vw.md"), md);
  log(`wrote ${file} and ${path.join(outDir, "bench-vw.md")}`);
  return 0;
}

runEntry("vw-experiment", main);
