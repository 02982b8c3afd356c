// Abuse: many connections, clients that stop reading, resets mid-pipeline, fd exhaustion,
// slowloris. After each, the server still answers promptly and its fds return to baseline.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";

import { settledFdCount } from "./helpers/clients";
import { RawClient, fdCount, freePort, metricValue, sleep, startVw, waitFor, type VwProcess } from "./helpers/server";

const GET = "GET /1b HTTP/1.1\r\nHost: x\r\n\r\n";

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

function cpuTicks(pid: number, tid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function promptAnswer(port: number, withinMs = 1000): Promise<void> {
  const t0 = Date.now();
  const c = await RawClient.connect(port);
  const r = await c.request(GET, { timeoutMs: withinMs });
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 < withinMs, `answered in ${Date.now() - t0} ms`);
  c.destroy();
}

describe("abuse on one worker", () => {
  let vw: VwProcess;
  let mport: number;
  let base: number;
  before(async () => {
    mport = await freePort();
    // --defer-accept 0: the 10,000 connections are opened idle and must be vw's at once.
    vw = await startVw(["--workers", "1", "--quiet", "--defer-accept", "0", "--metrics", `127.0.0.1:${mport}`]);
    base = await settledFdCount(vw.pid);
  });
  after(async () => {
    await vw.stop();
  });
  const backToBaseline = (): Promise<void> =>
    waitFor(() => fdCount(vw.pid) === base, () => `fds back to ${base} (now ${fdCount(vw.pid)})`, 5000);

  it("holds 10,000 concurrent keep-alive connections and serves every one", { timeout: 60000 }, async () => {
    const N = 10000;
    const clients: RawClient[] = [];
    for (let i = 0; i < N; i += 500) {
      clients.push(...(await Promise.all(Array.from({ length: Math.min(500, N - i) }, () => RawClient.connect(vw.port)))));
    }
    for (let i = 0; i < N; i += 1000) {
      const batch = clients.slice(i, i + 1000);
      const rs = await Promise.all(batch.map((c) => c.request(GET, { timeoutMs: 10000 })));
      assert.ok(rs.every((r) => r.status === 200));
    }
    assert.equal(await metricValue(mport, "vw_connections_open"), N);
    await promptAnswer(vw.port);
    clients.forEach((c) => c.destroy());
    await backToBaseline();
  });

  it("a client that never reads: output stays bounded, others are not slowed", { timeout: 20000 }, async () => {
    const hog = await RawClient.connect(vw.port);
    hog.socket.pause();
    const rss0 = rssKiB(vw.pid);
    // 64 MiB asked for, never read: the server may hold one batch, not all of it.
    for (let i = 0; i < 64; i++) hog.write("GET /1m HTTP/1.1\r\nHost: x\r\n\r\n");
    await sleep(1000);
    await promptAnswer(vw.port);
    const grown = rssKiB(vw.pid) - rss0;
    assert.ok(grown < 16 * 1024, `RSS grew ${grown} KiB`);
    hog.destroy();
    await backToBaseline();
  });

  it("a reset in the middle of a pipelined burst", async () => {
    for (let k = 0; k < 20; k++) {
      const c = await RawClient.connect(vw.port);
      c.write(GET.repeat(200) + "GET /100k HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20));
      await sleep(2);
      c.socket.resetAndDestroy();
    }
    await promptAnswer(vw.port);
    await backToBaseline();
  });

});

describe("slowloris", () => {
  it("an unfinished header is closed after --header-timeout; others are served meanwhile", async () => {
    const mport = await freePort();
    const vw = await startVw(["--workers", "1", "--quiet", "--header-timeout", "1", "--metrics", `127.0.0.1:${mport}`]);
    try {
      const base = await settledFdCount(vw.pid);
      const slow = await Promise.all(Array.from({ length: 50 }, () => RawClient.connect(vw.port)));
      slow.forEach((c) => c.write("GET /1b HTTP/1.1\r\nHost: x\r\n"));
      await promptAnswer(vw.port);
      await Promise.all(slow.map((c) => c.waitClosed(3500)));
      assert.equal(await metricValue(mport, "vw_timeouts_total"), 50);
      await promptAnswer(vw.port);
      await waitFor(() => fdCount(vw.pid) === base, () => `fds back to ${base} (now ${fdCount(vw.pid)})`, 3000);
    } finally {
      await vw.stop();
    }
  });
});

describe("fd exhaustion", () => {
  it("says once when the open-file limit cannot hold --max-conns × workers", async () => {
    const low = await startVw(["--workers", "1", "--quiet", "--max-conns", "1000"], { wrap: ["prlimit", "--nofile=200:200"] });
    const fits = await startVw(["--workers", "1", "--quiet", "--max-conns", "100"], { wrap: ["prlimit", "--nofile=200:200"] });
    try {
      await waitFor(() => low.stderr().includes("open-file limit"), "the notice");
      assert.match(low.stderr(), /^vw: open-file limit 200 holds about 136 connections per worker, below --max-conns 1000; .*ulimit -Hn/m);
      assert.equal(low.stderr().split("open-file limit").length - 1, 1);
      assert.doesNotMatch(fits.stderr(), /open-file limit/);
    } finally {
      await low.stop();
      await fits.stop();
    }
  });

  it("the default --max-conns says nothing unless a worker would get under 1024 connections", async () => {
    const roomy = await startVw(["--workers", "1", "--quiet"], { wrap: ["prlimit", "--nofile=2000:2000"] });
    const tight = await startVw(["--workers", "1", "--quiet"], { wrap: ["prlimit", "--nofile=500:500"] });
    try {
      await waitFor(() => tight.stderr().includes("open-file limit"), "the notice");
      assert.match(tight.stderr(), /^vw: open-file limit 500 holds about 436 connections per worker, below 1024 per worker; /m);
      assert.doesNotMatch(roomy.stderr(), /open-file limit/);
    } finally {
      await roomy.stop();
      await tight.stop();
    }
  });

  it("EMFILE: excess connections are closed, the accept loop does not spin, service resumes", { timeout: 30000 }, async () => {
    const mport = await freePort();
    // A process limit of 96 fds: Node itself holds about 30, so the worker runs out quickly.
    // The clients send nothing: --defer-accept 0, or the kernel would hold them from accept.
    const vw = await startVw(["--workers", "1", "--quiet", "--defer-accept", "0", "--metrics", `127.0.0.1:${mport}`], {
      wrap: ["prlimit", "--nofile=96:96"],
    });
    try {
      const clients = await Promise.all(Array.from({ length: 150 }, () => RawClient.connect(vw.port)));
      const t0 = cpuTicks(vw.pid, vw.tids[0]);
      await sleep(1500);
      const spent = cpuTicks(vw.pid, vw.tids[0]) - t0;
      assert.ok(spent < 20, `the worker used ${spent} ticks in 1.5 s while out of fds`);
      const closed = clients.filter((c) => c.isClosed).length;
      assert.ok(closed > 0, "excess connections were closed, not left hanging");
      clients.forEach((c) => c.destroy());
      await sleep(300);
      await promptAnswer(vw.port, 1500);
      // Asked only now: while out of fds, the metrics listener cannot accept either.
      assert.ok((await metricValue(mport, "vw_accept_errors_total")) > 0, "EMFILE was met and counted");
      assert.ok((await metricValue(mport, "vw_connections_rejected_total", { worker: "0", reason: "limit" })) > 0, "excess connections closed at accept");
    } finally {
      await vw.stop();
    }
  });
});
