// --proxy-pipeline: whole GET/HEAD requests of several clients share an upstream connection, in
// flight together, answered in order. Over real sockets, per engine: each client gets its own
// answer; a POST never joins a pipeline and is not held up by one; a backend that closes with
// answers owed has each request sent again on a connection of its own; a client that leaves
// before its answer costs the others nothing (the answer is read and dropped, the connection
// kept); a silent answer gets 504 and the ones behind it are sent again; in front of vw: every
// size whole, 256 pipelined by one client in order, 1,000 clients over 4 connections; fds back
// to baseline; the flag's refusals.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { engineSkip } from "./helpers/engines";
import { RawClient, fdCount, freePort, metricValue, runVw, sleep, startVw, waitFor, type VwProcess } from "./helpers/server";
import { SIZED } from "./helpers/clients";
import { Backend, get, manyClients, pipelined256, readResponse, startRelay, stopRelay } from "./helpers/http-backend";

const ENGINES = ["epoll", "poll", "select", "uring"].filter((e) => engineSkip(e) === undefined);
const PIPELINED = "vw_proxy_pipelined_requests_total";
const OPENED = "vw_proxy_upstream_connections_total";

for (const engine of ENGINES) {
  describe(`--proxy-pipeline (--engine ${engine})`, () => {
    const backend = new Backend();
    let vw: VwProcess;
    let metricsPort = 0;
    let baseline = 0;
    const clients: RawClient[] = [];
    const connect = async () => {
      const c = await RawClient.connect(vw.port);
      clients.push(c);
      return c;
    };
    const metric = (name: string, labels: Record<string, string> | number = 0) => metricValue(metricsPort, name, labels);

    before(async () => {
      ({ vw, metricsPort, baseline } = await startRelay(engine, backend, ["--proxy-conns", "2", "--proxy-pipeline", "8"]));
    });
    after(() => stopRelay(vw, backend, clients));

    it("gives each of 40 clients its own answer over at most 2 connections, pipelined", async () => {
      const pipelinedBefore = await metric(PIPELINED);
      const slow = await connect();
      slow.write(get("/slow")); // holds its connection's answers back 200 ms: the others pile up
      await sleep(30);
      const cs = await Promise.all(Array.from({ length: 40 }, () => connect()));
      cs.forEach((c, i) => c.write(i % 4 === 3 ? `HEAD /p?c=${i} HTTP/1.1\r\nHost: h\r\n\r\n` : get(`/p?c=${i}`)));
      const rs = await Promise.all(cs.map((c, i) => readResponse(c, i % 4 === 3, 5000)));
      rs.forEach((r, i) => {
        assert.equal(r.status, 200, `client ${i}`);
        if (i % 4 === 3) {
          assert.equal(r.body.length, 0, `client ${i}: HEAD`);
          assert.match(r.headers, new RegExp(`^Content-Length: ${`path /p?c=${i}`.length}\r?$`, "m"), `client ${i}`);
        } else {
          assert.equal(r.body.toString(), `path /p?c=${i}`, `client ${i}`);
        }
      });
      assert.equal((await readResponse(slow)).body.toString(), "slow");
      assert.ok((await metric(OPENED)) <= 2, `${await metric(OPENED)} upstream connections for --proxy-conns 2`);
      assert.ok((await metric(PIPELINED)) - pipelinedBefore >= 10, "requests went out behind others on a connection");
      const seen = backend.seen.filter((r) => r.target.startsWith("/p?c="));
      assert.equal(seen.length, 40);
      assert.ok(new Set(seen.map((r) => r.conn)).size <= 2);
    });

    it("never pipelines a POST, and a POST is not held up by a pipeline", async () => {
      const a = await connect();
      a.write(get("/hold")); // answered only at backend.release(): a pipeline that stays busy
      await waitFor(() => backend.seen.some((s) => s.target === "/hold"), "the held GET reached the backend");
      const b = await connect();
      b.write(`POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello`);
      const r = await readResponse(b, false, 5000);
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body.toString()) as { body: string }).body, "hello");
      assert.equal(a.received.length, 0, "the POST was answered while the GET was held");
      backend.release();
      assert.equal((await readResponse(a)).body.toString(), "held");
      const heldConn = backend.seen.filter((s) => s.target === "/hold").at(-1)!.conn;
      const postConn = backend.seen.filter((s) => s.method === "POST").at(-1)!.conn;
      assert.notEqual(postConn, heldConn, "the POST had a connection of its own");
    });

    it("sends again, each on its own connection, what a closing backend left unanswered", async () => {
      const retriedBefore = await metric("vw_proxy_retries_total");
      const a = await connect();
      a.write(get("/slow")); // so the next ones queue behind it on the same connection
      await sleep(30);
      const armer = await connect();
      armer.write(get("/arm-close")); // the backend closes at the request after this one
      const rest = await Promise.all(Array.from({ length: 4 }, () => connect()));
      rest.forEach((c, i) => c.write(get(`/after?i=${i}`)));
      assert.equal((await readResponse(a, false, 5000)).body.toString(), "slow");
      assert.equal((await readResponse(armer, false, 5000)).status, 200);
      const rs = await Promise.all(rest.map((c) => readResponse(c, false, 5000)));
      rs.forEach((r, i) => assert.equal(r.body.toString(), `path /after?i=${i}`, `client ${i}`));
      assert.ok((await metric("vw_proxy_retries_total")) > retriedBefore, "requests were sent again");
      assert.equal(await metric("vw_proxy_errors_total", { code: "502" }), 0);
    });

    it("reads and drops the answer of a client that left; the others and the connection carry on", async () => {
      // Both pipelines exist now and stay open; nothing below needs a new connection.
      const a = await connect();
      a.write(get("/slow"));
      await sleep(30);
      const gone = await connect();
      gone.write(get("/gone"));
      const c = await connect();
      c.write(get("/stays"));
      await sleep(30);
      const opened = await metric(OPENED);
      gone.destroy();
      a.destroy(); // the answer being given now loses its client too
      assert.equal((await readResponse(c, false, 5000)).body.toString(), "path /stays");
      c.write(get("/again"));
      assert.equal((await readResponse(c, false, 5000)).body.toString(), "path /again");
      assert.equal(await metric(OPENED), opened, "no connection was given up for the clients that left");
      assert.equal(await metric("vw_proxy_upstream_failures_total"), 0);
    });

    it("returns to its fd baseline once clients and backend connections are gone", async () => {
      for (const c of clients) c.destroy();
      for (const s of backend.open) s.destroy(); // pooled connections: vw sees EOF and closes
      await waitFor(() => fdCount(vw.pid) === baseline, () => `fds ${fdCount(vw.pid)}, baseline ${baseline}`);
    });
  });

  describe(`--proxy-pipeline failures (--engine ${engine})`, () => {
    it("answers 504 for a silent answer and sends the ones queued behind it again", async () => {
      const backend = new Backend();
      await backend.start();
      const metricsPort = await freePort();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${backend.port}`, "--proxy-conns", "1", "--proxy-pipeline", "4", "--proxy-timeout", "1", "--metrics", `127.0.0.1:${metricsPort}`]);
      try {
        const a = await RawClient.connect(vw.port);
        a.write(get("/silent")); // the backend answers nothing more on that connection
        await sleep(30);
        const b = await RawClient.connect(vw.port);
        b.write(get("/behind"));
        const ra = await readResponse(a, false, 5000);
        assert.equal(ra.status, 504);
        const rb = await readResponse(b, false, 5000);
        assert.equal(rb.body.toString(), "path /behind");
        assert.equal(await metricValue(metricsPort, "vw_proxy_errors_total", { code: "504" }), 1);
        assert.ok((await metricValue(metricsPort, "vw_proxy_retries_total")) >= 1);
        a.destroy();
        b.destroy();
      } finally {
        assert.equal((await vw.stop()).code, 0);
        await backend.stop();
      }
    });
  });

  describe(`--proxy-pipeline in front of vw (--engine ${engine})`, () => {
    let origin: VwProcess;
    let vw: VwProcess;
    let originMetrics = 0;
    let metricsPort = 0;
    before(async () => {
      originMetrics = await freePort();
      origin = await startVw(["--workers", "1", "--policy", "other", "-q", "--metrics", `127.0.0.1:${originMetrics}`]);
      metricsPort = await freePort();
      vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${origin.port}`, "--proxy-conns", "4", "--proxy-pipeline", "16", "--metrics", `127.0.0.1:${metricsPort}`]);
    });
    after(async () => {
      assert.equal((await vw.stop()).code, 0, vw.stderr());
      assert.equal((await origin.stop()).code, 0, origin.stderr());
    });

    it("relays every built-in size whole, and 256 pipelined by one client in order", async () => {
      const c = await RawClient.connect(vw.port);
      for (const [path, n] of SIZED) {
        c.write(get(path));
        assert.equal((await readResponse(c, false, 10000)).body.length, n, path);
      }
      await pipelined256(c);
      c.destroy();
    });

    // select: every fd must stay below FD_SETSIZE (1024), so it gets 500.
    const many = engine === "select" ? 500 : 1000;
    it(`serves ${many} clients over 4 connections`, async () => {
      const before = await metricValue(originMetrics, "vw_connections_accepted_total");
      const writesBefore = await metricValue(metricsPort, "vw_proxy_upstream_syscalls_total", { syscall: "write" });
      // The relay is held stopped while the clients send: requests that arrive together must go
      // up together, and how many arrive together is then not left to the machine's speed.
      await manyClients(vw.port, many, vw.pid);
      const accepted = (await metricValue(originMetrics, "vw_connections_accepted_total")) - before;
      assert.ok(accepted <= 4, `the origin accepted ${accepted} connections for --proxy-conns 4`);
      // Requests that arrive together go up together: far fewer writes than requests.
      const writes = (await metricValue(metricsPort, "vw_proxy_upstream_syscalls_total", { syscall: "write" })) - writesBefore;
      assert.ok(writes > 0 && writes < many / 2, `${writes} upstream writes for ${many} requests`);
    });
  });
}

describe("--proxy-pipeline: refusals", () => {
  const cases: [string[], RegExp][] = [
    [["--proxy", "127.0.0.1:9", "--proxy-pipeline", "4", "--proxy-fresh"], /--proxy-pipeline needs connections that stay open/],
    [["--proxy", "127.0.0.1:9", "--proxy-pipeline", "0"], /--proxy-pipeline/],
    [["--proxy-pipeline", "4"], /need --proxy HOST:PORT/],
  ];
  for (const [args, want] of cases) {
    it(`${args.join(" ")}: one line, exit 2`, async () => {
      const r = await runVw([...args, "--listen", "127.0.0.1:0"]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, want);
    });
  }
});
