// --coalesce: a busy worker holds its wake-ups back so requests are answered in batches, a lone
// request on an idle worker is still answered at once, `off` never holds, and the figures that
// show it (wake-ups, requests per wake-up, held waits, the hold) reach the live view's NDJSON.
// Behaviour only: speed is proven in bench/ (npm run bench:vw).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

import { engineSkip } from "./helpers/engines";
import { RawClient, runVw, sleep, startVw, which, type VwProcess } from "./helpers/server";

const run = promisify(execFile);
const GET = "GET /1b HTTP/1.1\r\nHost: x\r\n\r\n";
/** The engines that coalesce (blocking has no shared wait to hold back). */
const ENGINES = ["epoll", "poll", "select", "uring"];

interface WorkerFigures {
  requests: number;
  wakeups: number;
  coalesced_waits: number;
  hold_us: number;
  syscalls: Record<string, number>;
}

/** The worker-0 figures of every NDJSON line printed so far, summed (hold_us: the largest seen). */
function figures(vw: VwProcess): WorkerFigures {
  const sum: WorkerFigures = { requests: 0, wakeups: 0, coalesced_waits: 0, hold_us: 0, syscalls: { nanosleep: 0 } };
  for (const line of vw.stdout().split("\n")) {
    if (!line.startsWith("{")) continue;
    const w = (JSON.parse(line) as { workers: WorkerFigures[] }).workers[0];
    sum.requests += w.requests;
    sum.wakeups += w.wakeups;
    sum.coalesced_waits += w.coalesced_waits;
    sum.hold_us = Math.max(sum.hold_us, w.hold_us);
    sum.syscalls.nanosleep += w.syscalls.nanosleep;
  }
  return sum;
}

/** Waits for the NDJSON interval after now, so the figures include what just happened. */
async function flushed(vw: VwProcess): Promise<void> {
  const lines = vw.stdout().split("\n").length;
  const deadline = Date.now() + 3000;
  while (vw.stdout().split("\n").length < lines + 2 && Date.now() < deadline) await sleep(25);
}

/** `n` requests pipelined in one write on each of `conns` connections, all at once, answered. */
async function burst(port: number, conns: number, n: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: conns }, () => RawClient.connect(port)));
  try {
    for (const c of clients) c.write(GET.repeat(n));
    await Promise.all(clients.map((c) => c.responses(n, { timeoutMs: 5000 })));
  } finally {
    for (const c of clients) c.destroy();
  }
}

function start(engine: string, coalesce: string): Promise<VwProcess> {
  return startVw(["--engine", engine, "--workers", "1", "--coalesce", coalesce, "--json", "--stats-interval", "0.2"]);
}

for (const engine of ENGINES) {
  const skip = engineSkip(engine) ?? false;
  describe(`--coalesce under --engine ${engine}`, { skip }, () => {
    it("a lone request on an idle worker is answered long before a 50 ms hold", { timeout: 30000 }, async () => {
      const vw = await start(engine, "50000");
      try {
        const c = await RawClient.connect(vw.port);
        // Busy first, so the worker's next wait holds 50 ms; each lone request comes after it.
        await burst(vw.port, 4, 8);
        const took: number[] = [];
        for (let i = 0; i < 5; i++) {
          await sleep(120);
          const t0 = performance.now();
          const r = await c.request(GET, { timeoutMs: 2000 });
          took.push(performance.now() - t0);
          assert.equal(r.status, 200);
        }
        // A held lone request would take the whole 50 ms every time; the median is immune to one
        // slow round trip on a busy machine.
        const median = [...took].sort((a, b) => a - b)[2];
        assert.ok(median < 25, `lone requests took ${took.map((t) => t.toFixed(1)).join(", ")} ms with a 50 ms hold`);
        c.destroy();
        await flushed(vw);
        assert.ok(figures(vw).coalesced_waits > 0, "the 50 ms hold was never applied, so this test proved nothing");
      } finally {
        await vw.stop();
      }
    });

    it("a fixed hold turns concurrent requests into batches (requests per wake-up well above 1)", { timeout: 30000 }, async () => {
      const vw = await start(engine, "3000");
      try {
        // 40 connections, each sending its next request when its answer came: while the worker
        // holds 3 ms, every connection's request is waiting.
        const clients = await Promise.all(Array.from({ length: 40 }, () => RawClient.connect(vw.port)));
        await Promise.all(clients.map(async (c) => {
          for (let i = 0; i < 25; i++) assert.equal((await c.request(GET, { timeoutMs: 3000 })).status, 200);
        }));
        for (const c of clients) c.destroy();
        await flushed(vw);
        const f = figures(vw);
        assert.equal(f.requests, 1000, "requests counted");
        assert.ok(f.coalesced_waits > 0, "no wait was held");
        assert.ok(f.requests / f.wakeups > 5, `${f.requests} requests in ${f.wakeups} wake-ups`);
      } finally {
        await vw.stop();
      }
    });

    it("a pipelined burst shows more than one request per wake-up", { timeout: 30000 }, async () => {
      const vw = await start(engine, "auto");
      try {
        await burst(vw.port, 8, 64);
        await flushed(vw);
        const f = figures(vw);
        assert.equal(f.requests, 8 * 64);
        assert.ok(f.requests / f.wakeups > 1, `${f.requests} requests in ${f.wakeups} wake-ups`);
        // Idle again, with the hold the burst left: the worker sleeps (the 1 s tick at most).
        await sleep(700);
        await flushed(vw);
        const idle = figures(vw).wakeups - f.wakeups;
        assert.ok(idle <= 5, `${idle} wake-ups in 0.7 s of idleness after the burst`);
      } finally {
        await vw.stop();
      }
    });

    it("off never holds: no held wait, no pause, hold 0", { timeout: 30000 }, async () => {
      const vw = await start(engine, "off");
      try {
        await burst(vw.port, 8, 64);
        const c = await RawClient.connect(vw.port);
        for (let i = 0; i < 200; i++) await c.request(GET);
        c.destroy();
        await flushed(vw);
        const f = figures(vw);
        assert.equal(f.requests, 8 * 64 + 200);
        assert.equal(f.coalesced_waits, 0);
        assert.equal(f.syscalls.nanosleep, 0);
        assert.equal(f.hold_us, 0);
        assert.ok(f.wakeups > 0);
      } finally {
        await vw.stop();
      }
    });

    it("auto drops a hold that buys no batch: one client's requests are not held", { timeout: 30000 }, async (t) => {
      const vw = await start(engine, "auto");
      try {
        const c = await RawClient.connect(vw.port);
        for (let i = 0; i < 2000; i++) await c.request(GET);
        c.destroy();
        await flushed(vw);
        const f = figures(vw);
        assert.equal(f.requests, 2000);
        // It may try a hold now and then (a handful of passes per back-off period), no more.
        t.diagnostic(`${f.coalesced_waits} held waits of ${f.wakeups} for 2000 sequential requests`);
        assert.ok(f.coalesced_waits < 200, `${f.coalesced_waits} of ${f.wakeups} waits held for one sequential client`);
      } finally {
        await vw.stop();
      }
    });
  });
}

describe("--coalesce auto engages when the load shares the worker's CPU", () => {
  const wrk = which("wrk");
  const taskset = which("taskset");
  it("wrk on the worker's own CPU: waits are held and requests per wake-up rise", { skip: !wrk || !taskset ? "wrk or taskset missing" : false, timeout: 30000 }, async () => {
    const vw = await startVw(["--cpus", "0", "--coalesce", "auto", "--json", "--stats-interval", "0.2"]);
    try {
      await run(taskset!, ["-c", "0", wrk!, "-t1", "-c200", "-d3s", `http://127.0.0.1:${vw.port}/1b`], { timeout: 20000 });
      await flushed(vw);
      const f = figures(vw);
      assert.ok(f.requests > 1000, `${f.requests} requests`);
      assert.ok(f.coalesced_waits > 0, "auto never held a wait under co-located load");
      assert.ok(f.requests / f.wakeups > 3, `${f.requests} requests in ${f.wakeups} wake-ups`);
    } finally {
      await vw.stop();
    }
  });
});

describe("--coalesce flag", () => {
  for (const bad of ["0", "100001", "1.5", "fast", ""]) {
    it(`--coalesce '${bad}' is refused in one line, exit 2`, async () => {
      const r = await runVw(["--coalesce", bad]);
      assert.equal(r.code, 2);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /--coalesce/);
      assert.match(lines[0], /auto, off/);
    });
  }
  it("--help lists it with its default", async () => {
    const r = await runVw(["--help"]);
    assert.match(r.stdout, /--coalesce auto\|off\|US/);
  });
  it("blocking says once that it does not apply", { timeout: 15000 }, async () => {
    const vw = await startVw(["--engine", "blocking", "--workers", "1"]);
    try {
      await sleep(100);
      assert.equal(vw.stderr().match(/--coalesce does not apply to --engine blocking/g)?.length, 1, vw.stderr());
    } finally {
      await vw.stop();
    }
  });
});
