// conns.ts: entry of `npm run bench:conns`: memory per idle keep-alive connection. Starts the
// server (vw --workers 1 --quiet; nginx single process when installed), reads its VmRSS, has a
// separate client process open N connections in batches of 500 with one request on each, reads
// VmRSS again: (growth) / N is what the server's own memory costs per idle connection. The
// kernel's socket memory is not in RSS; /proc/net/sockstat and /proc/meminfo show it apart.
// See bench/README.md.
import { execFileSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { planCpus } from "./lib/cpus";
import { log, mdTable, parseFlags, pinnableVw, pinSelf, procNumber, runEntry, startPinned, writeResult } from "./lib/harness";
import * as proc from "./lib/proc";
import { RoundTripper } from "./lib/rawhttp";
import { nginxDef, startServer } from "./lib/servers";
import { sleep, which } from "./lib/util";

const USAGE = `usage: npm run bench:conns -- [flags]
  --conns N     idle connections to hold (default 10000)
  --batch N     connections opened at a time, each with one request (default 500)
  --quick       1,000 connections: checks that everything works
  --out DIR     where conns.json goes (default bench/results)`;

const TARGET_BYTES = 1024;
/** /proc/net/sockstat counts TCP memory in pages. */
function pageBytes(): number {
  try {
    const n = Number(execFileSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).trim());
    return Number.isFinite(n) && n > 0 ? n : 4096;
  } catch {
    return 4096;
  }
}
const PAGE = pageBytes();

interface KernelSample {
  tcpInuse: number | null;
  tcpMemPages: number | null;
  slabKb: number | null;
}

function kernelSample(): KernelSample {
  return {
    tcpInuse: procNumber("/proc/net/sockstat", /^TCP: inuse (\d+)/m),
    tcpMemPages: procNumber("/proc/net/sockstat", /^TCP:.* mem (\d+)/m),
    slabKb: procNumber("/proc/meminfo", /^Slab:\s+(\d+) kB/m),
  };
}

const rssKb = (pid: number): number | null => procNumber(`/proc/${pid}/status`, /^VmRSS:\s+(\d+) kB/m);

/**
 * VmRSS once it has settled: read every 250 ms until it moved at most 16 kB over the last
 * second (or `limitMs` passed). Returns that reading and how much it moved in its last second.
 */
async function settledRss(pid: number, limitMs = 8000): Promise<{ kb: number | null; driftKb: number | null }> {
  const seen: number[] = [];
  const deadline = Date.now() + limitMs;
  for (;;) {
    const kb = rssKb(pid);
    if (kb === null) return { kb: null, driftKb: null };
    seen.push(kb);
    const window = seen.slice(-5); // five readings = one second
    const drift = window.length === 5 ? Math.max(...window) - Math.min(...window) : null;
    if ((drift !== null && drift <= 16) || Date.now() >= deadline) return { kb, driftKb: drift };
    await sleep(250);
  }
}

interface Measurement {
  server: string;
  ok: boolean;
  error: string | null;
  connections: number;
  failed: number;
  rssBeforeKb: number | null;
  rssAfterKb: number | null;
  /** RSS movement over the last second of each reading (before, after): the noise floor */
  rssDriftKb: [number | null, number | null];
  bytesPerConn: number | null;
  kernelBefore: KernelSample;
  kernelAfter: KernelSample;
  tcpSocketsAdded: number | null;
  tcpMemBytesPerConn: number | null;
  slabBytesPerConn: number | null;
}

/** Measures one running server: idle RSS, N held connections, RSS again; the client stopped by PID. */
async function measure(name: string, pid: number, port: number, o: { conns: number; batch: number; clientCpus: number[] }): Promise<Measurement> {
  const m: Measurement = {
    server: name,
    ok: false,
    error: null,
    connections: 0,
    failed: 0,
    rssBeforeKb: null,
    rssAfterKb: null,
    rssDriftKb: [null, null],
    bytesPerConn: null,
    kernelBefore: kernelSample(),
    kernelAfter: kernelSample(),
    tcpSocketsAdded: null,
    tcpMemBytesPerConn: null,
    slabBytesPerConn: null,
  };
  let client: proc.Child | null = null;
  try {
    // One connection first: whatever is allocated once, on first use, is in "before".
    const warm = await RoundTripper.open(port, "/1b");
    await warm.rt();
    warm.close();
    const before = await settledRss(pid);
    m.rssBeforeKb = before.kb;
    m.kernelBefore = kernelSample();
    const script = path.join(__dirname, "lib", "conns-client.js");
    const holdSec = 120;
    client = proc.start("taskset", ["-c", o.clientCpus.join(","), process.execPath, script, String(port), String(o.conns), String(o.batch), String(holdSec)], { keepStdout: true });
    const deadline = Date.now() + 90_000;
    let ready: RegExpExecArray | null = null;
    while (Date.now() < deadline && !client.hasExited()) {
      ready = /READY (\d+) (\d+)(.*)/.exec(client.stdout());
      if (ready !== null) break;
      await sleep(100);
    }
    if (ready === null) throw new Error(`client did not get ready: ${client.output().trim().slice(-300)}`);
    m.connections = Number(ready[1]);
    m.failed = Number(ready[2]);
    if (m.failed > 0) log(`${name}: ${m.failed} of ${o.conns} connections failed${ready[3] ?? ""}`);
    const after = await settledRss(pid); // idle: every request answered, nothing in flight
    m.rssAfterKb = after.kb;
    m.rssDriftKb = [before.driftKb, after.driftKb];
    m.kernelAfter = kernelSample();
    const n = m.connections;
    if (n > 0 && m.rssBeforeKb !== null && m.rssAfterKb !== null) m.bytesPerConn = ((m.rssAfterKb - m.rssBeforeKb) * 1024) / n;
    const kb = m.kernelBefore;
    const ka = m.kernelAfter;
    if (kb.tcpInuse !== null && ka.tcpInuse !== null) m.tcpSocketsAdded = ka.tcpInuse - kb.tcpInuse;
    if (n > 0 && kb.tcpMemPages !== null && ka.tcpMemPages !== null) m.tcpMemBytesPerConn = ((ka.tcpMemPages - kb.tcpMemPages) * PAGE) / n;
    if (n > 0 && kb.slabKb !== null && ka.slabKb !== null) m.slabBytesPerConn = ((ka.slabKb - kb.slabKb) * 1024) / n;
    m.ok = n > 0;
    if (!m.ok) m.error = "no connection was served";
  } catch (e) {
    m.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (client !== null) await proc.stop(client);
  }
  return m;
}

async function main(ctx: { tmpDir: string }): Promise<number> {
  const f = parseFlags({ "--conns": "number", "--batch": "number", "--quick": "switch", "--out": "string" }, USAGE);
  if (typeof f === "number") return f;
  const quick = f.has("--quick");
  let conns = Math.floor(f.num("--conns", quick ? 1000 : 10_000));
  const batch = Math.floor(f.num("--batch", 500));
  const t0 = Date.now();
  const cpus = planCpus();
  const cli = pinnableVw(which);
  if (cli === null) return 1;
  const notes: string[] = [];
  const skipped: string[] = [];
  // The client holds every connection in one process, the server too: both inherit our limit.
  const nofile = procNumber("/proc/self/limits", /^Max open files\s+(\d+)/m);
  if (nofile !== null && nofile < conns + 200) {
    const was = conns;
    conns = Math.max(batch, Math.floor((nofile - 200) / batch) * batch);
    notes.push(`open-file limit ${nofile} (ulimit -n): ${conns} connections instead of ${was}; raise it for the full count`);
  }
  await pinSelf(cpus.client);
  log(`vw bench:conns: ${conns} idle keep-alive connections in batches of ${batch}, server on CPU ${cpus.server[0]}, client on CPU ${cpus.client.join(",")}`);
  for (const n of notes) log(n);

  const results: Measurement[] = [];
  const o = { conns, batch, clientCpus: cpus.client };
  {
    const port = await proc.freePort();
    const args = [cli, "--listen", `127.0.0.1:${port}`, "--workers", "1", "--cpus", String(cpus.server[0]), "--quiet"];
    const vw = await startPinned(process.execPath, args, [cpus.server[0]!], port);
    try {
      results.push(await measure("vw", vw.pid, port, o));
    } finally {
      await proc.stop(vw);
    }
  }
  const nginx = nginxDef({ connections: conns + 1024 });
  const why = nginx.prepare();
  if (why !== null) skipped.push(`nginx: ${why}`);
  else {
    await sleep(500); // the closed connections of the previous server leave the counters
    const port = await proc.freePort();
    const srv = await startServer(nginx, { port, serverCpus: [cpus.server[0]!], tmpDir: ctx.tmpDir });
    try {
      results.push(await measure("nginx", srv.pid, port, o));
    } finally {
      await srv.stop();
    }
  }
  for (const s of skipped) log(`skipped: ${s}`);

  const kib = (kb: number | null): string => (kb === null ? "n/a" : `${(kb / 1024).toFixed(1)} MiB`);
  const bytes = (b: number | null): string => (b === null ? "n/a" : `${b.toFixed(0)} B`);
  const out: string[] = [];
  out.push(`# Memory per idle keep-alive connection, ${new Date().toISOString()}`, "");
  out.push(
    `${conns} connections opened in batches of ${batch} from a separate process, one GET /1b answered on each, then held idle; ` +
      `server RSS (VmRSS) read before and after, each once it moved ≤ 16 kB in a second (drift column; over 16 kB means it never settled). Kernel ${os.release()}, took ${Math.round((Date.now() - t0) / 1000)} s.`,
  );
  for (const n of notes) out.push(`- ${n}`);
  for (const s of skipped) out.push(`- skipped: ${s}`);
  for (const m of results) if (!m.ok) out.push(`- failed: ${m.server}: ${(m.error ?? "").replace(/\s+/g, " ").slice(0, 300)}`);
  out.push("");
  out.push(
    mdTable(
      ["server", "connections", "RSS before", "RSS after", "RSS growth / connection", "RSS drift in 1 s (before, after)"],
      results.map((m) => [
        m.server,
        `${m.connections}${m.failed > 0 ? ` (${m.failed} failed)` : ""}`,
        kib(m.rssBeforeKb),
        kib(m.rssAfterKb),
        bytes(m.bytesPerConn),
        m.rssDriftKb.map((d) => (d === null ? "n/a" : `${d} kB`)).join(", "),
      ]),
    ),
  );
  out.push("");
  const vw = results.find((m) => m.server === "vw");
  if (vw?.bytesPerConn !== null && vw?.bytesPerConn !== undefined) {
    out.push(
      `target ≤ ${TARGET_BYTES} B (1 KiB) of server memory per idle connection: vw ${bytes(vw.bytesPerConn)} → ${vw.bytesPerConn <= TARGET_BYTES ? "met" : "NOT met"}`,
    );
  }
  for (const m of results) {
    out.push(
      `kernel, not in RSS (${m.server} run, both ends are on this machine): /proc/net/sockstat TCP inuse +${m.tcpSocketsAdded ?? "n/a"} sockets, ` +
        `TCP mem ${m.kernelBefore.tcpMemPages ?? "n/a"} → ${m.kernelAfter.tcpMemPages ?? "n/a"} pages (${bytes(m.tcpMemBytesPerConn)}/connection, queued buffers only); ` +
        `Slab ${bytes(m.slabBytesPerConn)}/connection (machine-wide /proc/meminfo, both sockets of each connection, noisy)`,
    );
  }
  if (results.some((m) => m.server === "nginx")) {
    out.push("nginx allocates its connection and event arrays for worker_connections at start: that part is in its RSS before, not in the growth.");
  }
  out.push("");
  process.stdout.write(`${out.join("\n")}\n`);
  const file = writeResult(f.has("--out") ? f.str("--out", "") : null, "conns.json", {
    meta: { date: new Date().toISOString(), kernel: `${os.type()} ${os.release()}`, node: process.version, connections: conns, batch, serverCpu: cpus.server[0], clientCpus: cpus.client, quick, wallSec: (Date.now() - t0) / 1000, pageBytes: PAGE },
    targetBytesPerConn: TARGET_BYTES,
    notes,
    skipped,
    results,
  });
  log(`wrote ${file}`);
  return 0;
}

runEntry("conns", main);
