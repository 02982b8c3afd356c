// The instrument: counters match the traffic, agree with the kernel's own syscall count, and
// reach users as NDJSON, through `vw stats`, as Prometheus text, and in `vw cpus`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import { RawClient, cli, metricSum, runVw, sleep, startVw, waitFor, which, type VwProcess } from "./helpers/server";
import { countSyscalls } from "./helpers/perf";

const run = promisify(execFile);

async function metrics(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The sum of a family's series of one worker (all syscall kinds, all status classes, ...). */
function metric(text: string, name: string, worker = 0): number {
  return metricSum(text, name, worker);
}

async function freePort(): Promise<number> {
  const net = await import("node:net");
  const s = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  const port = (s.address() as import("node:net").AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe("counters match the traffic", () => {
  let vw: VwProcess;
  let mport: number;
  before(async () => {
    mport = await freePort();
    vw = await startVw(["--workers", "1", "--metrics", `127.0.0.1:${mport}`, "--json", "--stats-interval", "0.2"]);
  });
  after(async () => {
    await vw.stop();
  });

  it("requests, connections and bytes out are exact", async () => {
    const before = await metrics(mport);
    const M = 7;
    const N = 5; // per connection
    let bytes = 0;
    const clients = await Promise.all(Array.from({ length: M }, () => RawClient.connect(vw.port)));
    for (const c of clients) {
      for (let i = 0; i < N; i++) bytes += (await c.request(`GET /${i % 2 ? "100b" : "1b"} HTTP/1.1\r\nHost: x\r\n\r\n`)).length;
    }
    const mid = await metrics(mport);
    assert.equal(metric(mid, "vw_requests_total") - metric(before, "vw_requests_total"), M * N);
    assert.equal(metric(mid, "vw_connections_accepted_total") - metric(before, "vw_connections_accepted_total"), M);
    assert.equal(metric(mid, "vw_sent_bytes_total") - metric(before, "vw_sent_bytes_total"), bytes);
    assert.equal(metric(mid, "vw_connections_open"), M);
    clients.forEach((c) => c.destroy());
    let after = mid;
    for (let i = 0; i < 250 && metric(after, "vw_connections_open") !== 0; i++) {
      await sleep(20);
      after = await metrics(mport);
    }
    assert.equal(metric(after, "vw_connections_open"), 0, "open connections back to 0");
    assert.equal(metric(after, "vw_connections_closed_total") - metric(before, "vw_connections_closed_total"), M);
  });

  it("--json writes only NDJSON on stdout, per-interval counts that sum to the totals", async () => {
    const c = await RawClient.connect(vw.port);
    for (let i = 0; i < 20; i++) await c.request("GET /1b HTTP/1.1\r\nHost: x\r\n\r\n");
    c.destroy();
    await sleep(500);
    const m = await metrics(mport);
    const lines = vw.stdout().trim().split("\n");
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const keys = ["time", "interval_s", "requests", "rps", "bytes_out", "conns", "syscalls", "syscalls_per_req", "cs_voluntary", "cs_involuntary", "cs_per_req", "user_pct", "sys_pct", "machine_cs", "machine_intr", "workers"];
    const wkeys = ["id", "cpu", "tid", "requests", "conns", "syscalls", "events_per_wait", "cs_voluntary", "cs_involuntary", "user_pct", "sys_pct"];
    const skeys = ["total", "epoll_wait", "accept", "read", "write", "close", "epoll_ctl", "other"];
    for (const o of objs) {
      for (const k of keys) assert.ok(k in o, `key ${k}`);
      const w = (o.workers as Record<string, unknown>[])[0];
      for (const k of wkeys) assert.ok(k in w, `worker key ${k}`);
      for (const k of skeys) assert.equal(typeof (w.syscalls as Record<string, unknown>)[k], "number", `syscalls.${k}`);
    }
    const summed = objs.reduce((s, o) => s + (o.requests as number), 0);
    // The lines cover the run up to the last interval; the metrics include everything so far.
    assert.ok(summed <= metric(m, "vw_requests_total") && summed >= metric(m, "vw_requests_total") - 20, `summed ${summed}`);
    assert.ok(objs.some((o) => (o.requests as number) > 0));
    assert.doesNotMatch(vw.stdout(), /listening on/);
    assert.match(vw.stderr(), /listening on/);
  });
});

describe("the kernel agrees", () => {
  const perf = which("perf");
  const ab = which("ab");
  const skip = !perf ? "perf not installed (apt-get install linux-perf)" : !ab ? "ab not installed" : false;

  it("worker syscall count = perf stat raw_syscalls:sys_enter within 2 % over 100k requests", { skip, timeout: 60000 }, async (t) => {
    const probe = await run(perf!, ["stat", "-e", "raw_syscalls:sys_enter", "-x,", "true"]).catch((e: Error) => e);
    if (probe instanceof Error) {
      t.skip(`perf cannot count raw_syscalls here: ${probe.message.split("\n")[0]}`);
      return;
    }
    const mport = await freePort();
    const vw = await startVw(["--workers", "1", "--metrics", `127.0.0.1:${mport}`, "--quiet"]);
    try {
      const tid = vw.tids[0];
      await run(ab!, ["-k", "-q", "-n", "2000", "-c", "20", `http://127.0.0.1:${vw.port}/1b`]); // warm-up
      const before = metric(await metrics(mport), "vw_syscalls_total");
      const count = await countSyscalls(perf!, tid);
      await run(ab!, ["-k", "-q", "-n", "100000", "-c", "50", `http://127.0.0.1:${vw.port}/1b`], { timeout: 50000 });
      const kernel = await count.stop();
      const after = metric(await metrics(mport), "vw_syscalls_total");
      const ours = after - before;
      assert.ok(kernel > 100000, `perf counted ${kernel}`);
      const diff = Math.abs(ours - kernel) / kernel;
      assert.ok(diff <= 0.02, `vw counted ${ours} system calls, the kernel ${kernel} (${(diff * 100).toFixed(2)} %)`);
    } finally {
      await vw.stop();
    }
  });
});

describe("vw stats attaches over the control socket", () => {
  it("streams intervals, detaches, 0600, one socket per instance", async () => {
    const a = await startVw(["--workers", "1", "--quiet", "--stats-interval", "0.2"]);
    const b = await startVw(["--workers", "1", "--quiet", "--stats-interval", "0.2"]);
    try {
      const sockA = path.join(os.tmpdir(), `vw-${a.port}.sock`);
      const sockB = path.join(os.tmpdir(), `vw-${b.port}.sock`);
      assert.equal(fs.statSync(sockA).mode & 0o777, 0o600);
      assert.ok(fs.statSync(sockB).isSocket());
      const c = await RawClient.connect(a.port);
      const attachOne = (): Promise<string> =>
        new Promise((resolve) => {
          const p = spawn(process.execPath, [cli, "stats", "--port", String(a.port), "--json"], { stdio: ["ignore", "pipe", "pipe"] });
          let out = "";
          p.stdout.on("data", (d: Buffer) => {
            out += d.toString();
            if (out.split("\n").length > 3) p.kill("SIGINT");
          });
          p.on("exit", () => resolve(out));
        });
      const pending = [attachOne(), attachOne()]; // several at once
      for (let i = 0; i < 10; i++) await c.request("GET /1b HTTP/1.1\r\nHost: x\r\n\r\n");
      const outs = await Promise.all(pending);
      for (const out of outs) {
        const objs = out.trim().split("\n").map((l) => JSON.parse(l) as { workers: unknown[]; requests: number });
        assert.ok(objs.length >= 3);
        assert.equal(objs[0].workers.length, 1);
      }
      // The table form, and a clear error when nothing runs on a port.
      const none = await runVw(["stats", "--port", "1"]);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /no vw is running with control socket/);
      c.destroy();
    } finally {
      await a.stop();
      await b.stop();
    }
    assert.ok(!fs.existsSync(path.join(os.tmpdir(), `vw-${a.port}.sock`)), "socket removed at stop");
  });
});

describe("live view and summary", () => {
  it("prints a header, repeats it, and a summary with per-request ratios", async () => {
    const vw = await startVw(["--workers", "1", "--stats-interval", "0.1", "-v"]);
    const c = await RawClient.connect(vw.port);
    for (let i = 0; i < 30; i++) await c.request("GET /1b HTTP/1.1\r\nHost: x\r\n\r\n");
    c.destroy();
    const header = /^time\s+req\/s\s+MB\/s\s+conns\s+sys\/req/;
    const headers = (): number => vw.stdout().split("\n").filter((l) => header.test(l)).length;
    // Every 20 intervals: about 2 s at 0.1 s, later when this machine delays vw's timers.
    await waitFor(() => headers() >= 2, () => `the header repeats (${headers()} so far)`, 10000);
    await vw.stop();
    const out = vw.stdout();
    assert.match(out, /^ {2}w0 cpu \d+ {2}req\/s/m);
    assert.match(out, /^vw: \d+ requests in /m);
    assert.match(out, /^ {2}all: up [\d.]+ s, \d+ connections/m);
    assert.match(out, /^ {4}\d+ syscalls \([\d.]+\/req\), \d+ context switches/m);
    assert.match(out, /^ {2}worker 0 cpu \d+: 30 requests/m);
    for (const line of out.split("\n")) assert.ok([...line].length <= 80, `${[...line].length} columns: ${line}`);
  });
});

describe("vw cpus", () => {
  it("under taskset -c LAST shows only that CPU allowed, and a trial thread on it", async () => {
    const last = os.availableParallelism() - 1;
    const r = await runVw(["cpus"], { wrap: ["taskset", "-c", String(last)] });
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^allowed cpus: ${last} `, "m"));
    assert.match(r.stdout, new RegExp(`^thread 0 -> cpu ${last} \\(getcpu ${last}\\)`, "m"));
    assert.doesNotMatch(r.stdout, /^thread 1 /m);
    assert.match(r.stdout, /^rt throttling: /m);
  });
});
