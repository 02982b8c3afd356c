// Server-side latency (issue 12): every request a worker answers lands in its histogram, under
// every engine, whatever path answered it (pipelined batches, a request split across reads, an
// error response); /metrics shows it as a Prometheus histogram in seconds and the NDJSON
// interval as p50/p99 in µs. Behaviour only: what the figures are worth is bench/'s business.
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { engineList, engineSkip } from "./helpers/engines";
import { RawClient, freePort, parseMetrics, sleep, startVw, type VwProcess } from "./helpers/server";

const GET = "GET /1b HTTP/1.1\r\nHost: x\r\n\r\n";

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

interface Histogram {
  /** [le, cumulative count] in exposition order */
  buckets: [number, number][];
  sum: number;
  count: number;
}

/** worker 0's vw_request_duration_seconds series from one scrape. */
function histogram(text: string): Histogram {
  const samples = parseMetrics(text).filter((s) => s.labels.worker === "0");
  const one = (name: string): number => {
    const s = samples.find((x) => x.name === name);
    assert.ok(s, `${name}{worker="0"} missing`);
    return s.value;
  };
  const buckets = samples
    .filter((s) => s.name === "vw_request_duration_seconds_bucket")
    .map((s): [number, number] => [s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), s.value]);
  return { buckets, sum: one("vw_request_duration_seconds_sum"), count: one("vw_request_duration_seconds_count") };
}

function requests(text: string): number {
  return parseMetrics(text)
    .filter((s) => s.name === "vw_requests_total" && s.labels.worker === "0")
    .reduce((n, s) => n + s.value, 0);
}

/** Every request a test sends: pipelined bursts on several connections, a split one, a 400. */
async function traffic(port: number): Promise<number> {
  const conns = await Promise.all(Array.from({ length: 6 }, () => RawClient.connect(port)));
  try {
    for (const c of conns) c.write(GET.repeat(40));
    await Promise.all(conns.map((c) => c.responses(40, { timeoutMs: 5000 })));
    const split = conns[0];
    split.write("GET /1b HTTP/1.1\r\nHo");
    await sleep(30);
    split.write("st: x\r\n\r\n");
    assert.equal((await split.responses(1, { timeoutMs: 3000 }))[0].status, 200);
    const bad = conns[1];
    bad.write("GET /1b HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    assert.equal((await bad.responses(1, { timeoutMs: 3000 }))[0].status, 400);
  } finally {
    for (const c of conns) c.destroy();
  }
  return 6 * 40 + 2;
}

/**
 * Scrapes until the worker has counted `want` requests and as many latencies (the blocking engine
 * folds its threads' counts a little later; a latency is recorded after its response's write).
 */
async function settled(mport: number, want: number): Promise<string> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const text = await scrape(mport);
    if ((requests(text) >= want && histogram(text).count >= want) || Date.now() > deadline) return text;
    await sleep(25);
  }
}

for (const engine of engineList()) {
  describe(`server-side latency under --engine ${engine}`, { skip: engineSkip(engine) ?? false }, () => {
    it("counts every request answered, in cumulative buckets, in seconds", { timeout: 30000 }, async () => {
      const mport = await freePort();
      const vw: VwProcess = await startVw(["--engine", engine, "--workers", "1", "--quiet", "--metrics", `127.0.0.1:${mport}`]);
      try {
        const idle = histogram(await scrape(mport));
        assert.equal(idle.count, 0, "nothing counted before any request");
        const sent = await traffic(vw.port);
        const text = await settled(mport, sent);
        const h = histogram(text);
        assert.equal(requests(text), sent);
        assert.equal(h.count, sent, "the histogram counts exactly the requests served");
        assert.equal(h.buckets.at(-1)?.[0], Infinity, "the last bucket is +Inf");
        assert.equal(h.buckets.at(-1)?.[1], h.count, "+Inf holds every request");
        for (let i = 1; i < h.buckets.length; i++) {
          assert.ok(h.buckets[i][0] > h.buckets[i - 1][0], "bounds ascend");
          assert.ok(h.buckets[i][1] >= h.buckets[i - 1][1], "counts are cumulative");
        }
        assert.ok(h.buckets[0][0] < 1e-6, `the first bound is under a µs (${h.buckets[0][0]} s)`);
        assert.ok(h.sum > 0 && h.sum / h.count < 0.5, `the mean is a plausible time in seconds (${h.sum / h.count})`);
      } finally {
        await vw.stop();
      }
    });
  });
}

describe("server-side latency in the NDJSON intervals", () => {
  it("gives p50 <= p99 in µs while requests flow, null when none came", { timeout: 30000 }, async () => {
    const vw = await startVw(["--workers", "1", "--json", "--stats-interval", "0.2"]);
    try {
      await traffic(vw.port);
      await sleep(700);
      const lines = vw
        .stdout()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { requests: number; latency_p50_us: number | null; latency_p99_us: number | null; workers: { requests: number; latency_p50_us: number | null; latency_p99_us: number | null }[] });
      const busy = lines.filter((l) => l.requests > 0);
      assert.ok(busy.length > 0, "an interval with requests");
      for (const l of busy) {
        for (const x of [l, l.workers[0]]) {
          assert.ok(x.latency_p50_us !== null && x.latency_p99_us !== null, "figures while busy");
          assert.ok(x.latency_p50_us > 0 && x.latency_p50_us <= x.latency_p99_us, `0 < p50 ${x.latency_p50_us} <= p99 ${x.latency_p99_us}`);
        }
      }
      const quiet = lines.filter((l) => l.requests === 0);
      assert.ok(quiet.length > 0, "an interval without requests");
      for (const l of quiet) assert.equal(l.latency_p50_us, null);
    } finally {
      await vw.stop();
    }
  });
});

describe("server-side latency under --proxy", () => {
  for (const engine of ["epoll", "uring"]) {
    it(`--engine ${engine}: counts every relayed request, the backend's round trip included`, { skip: engineSkip(engine) ?? false, timeout: 30000 }, async () => {
      const backend = await startVw(["--workers", "1", "--quiet"]);
      const mport = await freePort();
      const proxy = await startVw(["--workers", "1", "--quiet", "--engine", engine, "--proxy", `127.0.0.1:${backend.port}`, "--metrics", `127.0.0.1:${mport}`]);
      try {
        const sent = await traffic(proxy.port);
        const text = await settled(mport, sent);
        assert.equal(requests(text), sent);
        assert.equal(histogram(text).count, sent, "the histogram counts exactly the requests relayed");
      } finally {
        await proxy.stop();
        await backend.stop();
      }
    });
  }
});
