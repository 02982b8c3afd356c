// --proxy: vw relays to a small raw HTTP/1.1 backend (helpers/http-backend.ts, so every framing
// can be produced on purpose), over real sockets, for each engine that relays: GET/HEAD/POST with
// Content-Length and chunked bodies, chunked/length/close-delimited/bodiless responses, 1xx
// skipped, hop-by-hop fields, pipelined order, 502, 504, a backend closing mid-body,
// --proxy-fresh, the keep-alive pool's bound, counters; blocking refuses --proxy.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";

import { engineSkip } from "./helpers/engines";
import { RawClient, fdCount, freePort, metricValue, runVw, sleep, startVw, waitFor, type VwProcess } from "./helpers/server";
import { SIZED, settledFdCount } from "./helpers/clients";
import { Backend, get, manyClients, pipelined256, parseAny, readResponse, startRelay, stopRelay } from "./helpers/http-backend";

const ENGINES = ["epoll", "poll", "select", "uring"].filter((e) => engineSkip(e) === undefined);

for (const engine of ENGINES) {
  describe(`proxy (--engine ${engine})`, () => {
    const backend = new Backend();
    let vw: VwProcess;
    let metricsPort = 0;
    let baseline = 0;
    const clients: RawClient[] = [];
    const connect = async (port = vw.port) => {
      const c = await RawClient.connect(port);
      clients.push(c);
      return c;
    };

    before(async () => {
      ({ vw, metricsPort, baseline } = await startRelay(engine, backend, ["--proxy-conns", "4"]));
    });
    after(() => stopRelay(vw, backend, clients));

    it("relays GET with Host kept, hop-by-hop fields dropped both ways", async () => {
      const c = await connect();
      c.write(get("/echo?q=1", "Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-End: kept\r\nKeep-Alive: 5\r\n"));
      const r = await readResponse(c);
      assert.equal(r.status, 200);
      assert.match(r.headers, /^HTTP\/1\.1 200 OK\r\n/);
      assert.doesNotMatch(r.headers, /x-backend-hop|keep-alive|^connection:/im);
      const seen = JSON.parse(r.body.toString()) as { method: string; head: string };
      assert.match(seen.head, /^GET \/echo\?q=1 HTTP\/1\.1\r\n/);
      assert.match(seen.head, /^Host: example\.test$/m);
      assert.match(seen.head, /^X-End: kept$/m);
      assert.doesNotMatch(seen.head, /x-hop|connection|keep-alive/i);
      // The connection stays open for the next one.
      c.write(get("/a"));
      assert.equal((await readResponse(c)).body.toString(), "path /a");
    });

    it("forwards an HTTP/1.0 request as HTTP/1.1 (RFC 9110 §2.5), an empty Host added when it had none, its connection kept", async () => {
      const c = await connect();
      c.write("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      const r = await readResponse(c);
      assert.match(r.headers, /^Connection: keep-alive\r?$/m);
      const up = (JSON.parse(r.body.toString()) as { head: string }).head;
      assert.match(up, /^GET \/echo HTTP\/1\.1\r\n/);
      assert.match(up, /\r\nHost: ?$/, up);
      c.write("GET /echo HTTP/1.0\r\nHost: h10\r\nConnection: keep-alive\r\n\r\n");
      const up2 = (JSON.parse((await readResponse(c)).body.toString()) as { head: string }).head;
      assert.match(up2, /^GET \/echo HTTP\/1\.1\r\n/);
      assert.equal(up2.match(/^host:/gim)?.length, 1, up2);
      assert.match(up2, /^Host: h10$/m);
      const [a, b] = backend.seen.slice(-2);
      assert.equal(a.conn, b.conn, "the backend kept its connection for the next request");
    });

    it("relays HEAD without a body, then the next request", async () => {
      const c = await connect();
      c.write(`HEAD /echo HTTP/1.1\r\nHost: h\r\n\r\n`);
      const r = await readResponse(c, true);
      assert.equal(r.status, 200);
      assert.match(r.headers, /Content-Length: \d+/);
      c.write(get("/after-head"));
      const r2 = await readResponse(c);
      assert.equal(r2.body.toString(), "path /after-head");
    });

    it("relays POST bodies with Content-Length and chunked", async () => {
      const c = await connect();
      const body = "a=1&b=" + "z".repeat(100_000);
      c.write(`POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const r = await readResponse(c);
      const seen = JSON.parse(r.body.toString()) as { method: string; body: string };
      assert.equal(seen.method, "POST");
      assert.equal(seen.body, body);
      c.write(`PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n`);
      await sleep(50);
      c.write(`5\r\npedia\r\n0\r\n\r\n`);
      const r2 = await readResponse(c);
      const seen2 = JSON.parse(r2.body.toString()) as { method: string; body: string; head: string };
      assert.equal(seen2.method, "PUT");
      assert.equal(seen2.body, "wikipedia");
      assert.match(seen2.head, /Transfer-Encoding: chunked/);
    });

    it("relays chunked, close-delimited, 204, 304 and 1xx-preceded responses", async () => {
      const c = await connect();
      c.write(get("/chunked"));
      const ch = await readResponse(c);
      assert.equal(ch.body.toString(), "hello world");
      assert.match(ch.headers, /Transfer-Encoding: chunked/);
      c.write(get("/204"));
      const r204 = await readResponse(c);
      assert.equal(r204.status, 204);
      c.write(get("/304"));
      const r304 = await readResponse(c);
      assert.equal(r304.status, 304);
      c.write(get("/1xx"));
      const r1 = await readResponse(c);
      assert.equal(r1.status, 200);
      assert.equal(r1.body.toString(), "after 1xx");
      c.write(get("/close"));
      await c.waitClosed();
      const cl = await readResponse(c);
      assert.equal(cl.status, 200);
      assert.match(cl.headers, /^Connection: close$/m);
      assert.equal(cl.body.toString(), "until the close");
      assert.ok(cl.closeDelimited);
    });

    it("answers HTTP/1.1 for an HTTP/1.0 backend and does not pool its connection", async () => {
      const c = await connect();
      c.write(get("/http10"));
      const r = await readResponse(c);
      assert.match(r.headers, /^HTTP\/1\.1 200/);
      assert.equal(r.body.toString(), "ok");
      c.write(get("/x"));
      assert.equal((await readResponse(c)).body.toString(), "path /x");
    });

    it("keeps the client's pipelined order", async () => {
      const c = await connect();
      const paths = Array.from({ length: 40 }, (_, i) => (i % 5 === 0 ? "/chunked" : i % 7 === 0 ? "/slow" : `/p${i}`));
      c.write(paths.map((p) => get(p)).join(""));
      for (const p of paths) {
        const r = await readResponse(c, false, 5000);
        assert.equal(r.body.toString(), p === "/chunked" ? "hello world" : p === "/slow" ? "slow" : `path ${p}`);
      }
    });

    it("relays a 2 MiB body to a client that reads slowly (backpressure)", async () => {
      const c = await connect();
      c.socket.pause();
      c.write(get("/big"));
      await sleep(300);
      c.socket.resume();
      const r = await readResponse(c, false, 10000);
      assert.equal(r.body.length, 2 * 1024 * 1024);
    });

    it("closes the client when the backend closes mid-body (never a short body that looks whole)", async () => {
      for (const path of ["/midclose", "/midchunk"]) {
        const c = await connect();
        c.write(get(path));
        await c.waitClosed();
        assert.equal(parseAny(c.received, false, false), undefined, `${path}: a complete response was seen`);
      }
    });

    it("holds upstream connections to --proxy-conns and reuses them", async () => {
      const before = backend.conns;
      const cs = await Promise.all(Array.from({ length: 12 }, () => connect()));
      await Promise.all(
        cs.map(async (c, i) => {
          for (let k = 0; k < 3; k++) {
            c.write(get(`/slow`));
            assert.equal((await readResponse(c, false, 10000)).body.toString(), "slow", `client ${i}`);
          }
        }),
      );
      assert.ok(backend.open.size <= 4, `backend sees ${backend.open.size} open connections, --proxy-conns 4`);
      assert.ok(backend.conns - before <= 4, `${backend.conns - before} new backend connections for 36 requests`);
      assert.ok((await metricValue(metricsPort, "vw_proxy_pooled_requests_total")) > 30);
    });

    it("stops reading the backend while a client does not read, and serves others meanwhile", async () => {
      const c = await connect();
      c.socket.pause();
      const conns = backend.open.size;
      c.write(get("/huge"));
      await sleep(700);
      // Most of the 64 MiB sit in the backend's own buffer, not in vw: vw stopped reading it
      // (the kernel's socket buffers on the way hold a few MiB at most).
      const stuck = [...backend.open].some((s) => s.writableLength > 32 * 1024 * 1024);
      assert.ok(stuck, "the backend's writes are held back");
      const other = await connect();
      other.write(get("/meanwhile"));
      assert.equal((await readResponse(other)).body.toString(), "path /meanwhile");
      c.destroy();
      await waitFor(() => backend.open.size <= conns, "the upstream of the dropped client closed");
    });

    it("closes the upstream of a client that leaves while the backend is silent", async () => {
      const c = await connect();
      const seen = backend.seen.length;
      c.write(get("/silent"));
      await waitFor(() => backend.seen.length > seen, "the backend got the request");
      const conns = backend.open.size;
      c.destroy();
      // The relay closes that upstream connection (on uring its posted poll is removed first,
      // or the socket would stay open): the backend sees the close.
      await waitFor(() => backend.open.size < conns, "the backend saw its connection close");
    });

    it("resends a GET once when its pooled connection turns out closed, never a POST", async () => {
      const c = await connect();
      c.write(get("/arm-close"));
      assert.equal((await readResponse(c)).status, 200);
      c.write(get("/retried"));
      assert.equal((await readResponse(c)).body.toString(), "path /retried");
      assert.ok((await metricValue(metricsPort, "vw_proxy_retries_total")) >= 1);
      c.write(get("/arm-close"));
      assert.equal((await readResponse(c)).status, 200);
      c.write(`POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi`);
      assert.equal((await readResponse(c)).status, 502);
    });

    it("counts the relay in /metrics", async () => {
      assert.ok((await metricValue(metricsPort, "vw_proxy_upstream_connections_total")) >= 1);
      assert.ok((await metricValue(metricsPort, "vw_requests_total")) >= 10);
      assert.ok((await metricValue(metricsPort, "vw_proxy_upstream_failures_total")) >= 2); // the mid-body closes
    });

    it("returns to its fd baseline once clients and backend connections are gone", async () => {
      for (const c of clients) c.destroy();
      for (const s of backend.open) s.destroy(); // idle pooled connections: vw sees EOF and closes
      await waitFor(() => fdCount(vw.pid) === baseline, () => `fds ${fdCount(vw.pid)}, baseline ${baseline}`);
    });
  });

  describe(`proxy in front of vw (--engine ${engine})`, () => {
    let origin: VwProcess;
    let vw: VwProcess;
    let originMetrics = 0;
    before(async () => {
      originMetrics = await freePort();
      origin = await startVw(["--workers", "1", "--policy", "other", "-q", "--metrics", `127.0.0.1:${originMetrics}`]);
      vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${origin.port}`, "--proxy-conns", "16"]);
    });
    after(async () => {
      assert.equal((await vw.stop()).code, 0, vw.stderr());
      assert.equal((await origin.stop()).code, 0, origin.stderr());
    });

    it("relays every built-in size whole, GET and HEAD", async () => {
      const c = await RawClient.connect(vw.port);
      const direct = await RawClient.connect(origin.port);
      for (const [path, n] of SIZED) {
        c.write(get(path));
        const r = await readResponse(c, false, 10000);
        assert.equal(r.status, 200, path);
        assert.equal(r.body.length, n, path);
        direct.write(get(path));
        assert.ok(r.body.equals((await readResponse(direct, false, 10000)).body), `${path}: the origin's bytes`);
        c.write(`HEAD ${path} HTTP/1.1\r\nHost: h\r\n\r\n`);
        const h = await readResponse(c, true);
        assert.match(h.headers, new RegExp(`Content-Length: ${n}\r?$`, "m"), path);
      }
      c.destroy();
      direct.destroy();
    });

    it("answers 256 pipelined requests in order", async () => {
      const c = await RawClient.connect(vw.port);
      await pipelined256(c);
      c.destroy();
    });

    it("speaks keep-alive to an HTTP/1.0 client only when asked", async () => {
      const c = await RawClient.connect(vw.port);
      c.write(`GET /1k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`);
      const r = await readResponse(c);
      assert.match(r.headers, /^HTTP\/1\.1 200/);
      assert.match(r.headers, /^Connection: keep-alive\r?$/m);
      c.write(`GET /1b HTTP/1.0\r\n\r\n`);
      const r2 = await readResponse(c);
      assert.match(r2.headers, /^Connection: close\r?$/m);
      await c.waitClosed();
      c.destroy();
    });

    // select: every fd must stay below FD_SETSIZE (1024), so it gets 500.
    const many = engine === "select" ? 500 : 1000;
    it(`serves ${many} client connections over a pool of 16`, async () => {
      const before = await metricValue(originMetrics, "vw_connections_accepted_total");
      await manyClients(vw.port, many);
      const accepted = (await metricValue(originMetrics, "vw_connections_accepted_total")) - before;
      assert.ok(accepted <= 16, `the origin accepted ${accepted} connections from a pool of 16`);
    });
  });

  describe(`proxy failures (--engine ${engine})`, () => {
    it("answers 502 when nothing listens, and skips the backend for a second", async () => {
      const port = await freePort();
      const metricsPort = await freePort();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${port}`, "--metrics", `127.0.0.1:${metricsPort}`]);
      try {
        const t0 = Date.now();
        for (let i = 0; i < 3; i++) {
          const c = await RawClient.connect(vw.port);
          c.write(get("/"));
          const r = await readResponse(c);
          assert.equal(r.status, 502);
          assert.match(r.headers, /^Connection: close$/m);
          await c.waitClosed();
          c.destroy();
        }
        // One connect a second at most: the first, and one more per second this loop took (a
        // stalled machine can stretch three round trips past the second).
        const connects = await metricValue(metricsPort, "vw_syscalls_total", { syscall: "connect" });
        assert.equal(await metricValue(metricsPort, "vw_proxy_errors_total", { code: "502" }), 3);
        assert.ok(connects >= 1 && connects <= 1 + Math.floor((Date.now() - t0) / 1000), `${connects} connects: the failed backend is skipped for a second`);
      } finally {
        assert.equal((await vw.stop()).code, 0);
      }
    });

    it("a 413 reaches a client that keeps sending its 2 MB body (a lingering close, not a reset)", async () => {
      const backend = new Backend();
      await backend.start();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${backend.port}`, "--max-body", "1000"]);
      try {
        for (const pipelined of [false, true]) {
          const c = await RawClient.connect(vw.port);
          c.write(`POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n`);
          c.write(Buffer.alloc(2000000, "b"));
          if (pipelined) c.write(get("/after"));
          const r = await readResponse(c, false, 5000);
          assert.equal(r.status, 413);
          assert.match(r.headers, /^Connection: close\r?$/m);
          await c.waitClosed(5000);
          assert.equal(c.received.length, 0, "nothing after the 413");
          c.destroy();
        }
        assert.equal(backend.seen.length, 0, "nothing reached the backend");
      } finally {
        assert.equal((await vw.stop()).code, 0);
        await backend.stop();
      }
    });

    it("answers 504 when the backend does not answer within --proxy-timeout", async () => {
      const backend = new Backend();
      await backend.start();
      const metricsPort = await freePort();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${backend.port}`, "--proxy-timeout", "1", "--metrics", `127.0.0.1:${metricsPort}`]);
      try {
        const c = await RawClient.connect(vw.port);
        const t0 = Date.now();
        c.write(get("/silent"));
        const r = await readResponse(c, false, 5000);
        const ms = Date.now() - t0;
        assert.equal(r.status, 504);
        assert.ok(ms >= 900 && ms < 3500, `504 after ${ms} ms with --proxy-timeout 1`);
        await c.waitClosed();
        c.destroy();
        assert.equal(await metricValue(metricsPort, "vw_proxy_errors_total", { code: "504" }), 1);
        await waitFor(() => backend.open.size === 0, "the timed-out upstream connection closed");
      } finally {
        assert.equal((await vw.stop()).code, 0);
        await backend.stop();
      }
    });

    it("--proxy-fresh: one backend connection per request, closed after; fds back to baseline", async () => {
      const backend = new Backend();
      await backend.start();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${backend.port}`, "--proxy-fresh"]);
      try {
        const baseline = await settledFdCount(vw.pid);
        const c = await RawClient.connect(vw.port);
        for (let i = 0; i < 5; i++) {
          c.write(get(`/f${i}`));
          assert.equal((await readResponse(c)).body.toString(), `path /f${i}`);
        }
        assert.equal(backend.conns, 5);
        assert.deepEqual(backend.seen.map((s) => s.conn), [1, 2, 3, 4, 5]);
        await waitFor(() => backend.open.size === 0, "upstream connections closed after each response");
        c.destroy();
        await waitFor(() => fdCount(vw.pid) === baseline, () => `fds ${fdCount(vw.pid)}, baseline ${baseline}`);
      } finally {
        assert.equal((await vw.stop()).code, 0);
        await backend.stop();
      }
    });

    it("a graceful stop finishes the exchange in flight, then closes", async () => {
      const backend = new Backend();
      await backend.start();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${backend.port}`]);
      try {
        const c = await RawClient.connect(vw.port);
        const idle = await RawClient.connect(vw.port);
        idle.write("GET /half HTTP/1.1\r\n"); // (bytes sent: accepted even with a deferred accept)
        c.write(get("/hold")); // answered only at backend.release()
        await waitFor(() => backend.seen.some((s) => s.target === "/hold"), "the GET reached the backend");
        vw.child.kill("SIGTERM");
        await idle.waitClosed(); // the stop has begun: a connection with no exchange in flight is closed
        assert.equal(c.received.length, 0);
        backend.release();
        const r = await readResponse(c, false, 5000);
        assert.equal(r.body.toString(), "held");
        await c.waitClosed();
      } finally {
        assert.equal((await vw.stop()).code, 0);
        await backend.stop();
      }
    });

    it("round-robins over two backends", async () => {
      const a = new Backend();
      const b = new Backend();
      await a.start();
      await b.start();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${a.port}`, "--proxy", `localhost:${b.port}`]);
      try {
        const c = await RawClient.connect(vw.port);
        for (let i = 0; i < 6; i++) {
          c.write(get(`/r${i}`));
          await readResponse(c);
        }
        assert.equal(a.seen.length, 3);
        assert.equal(b.seen.length, 3);
        c.destroy();
      } finally {
        assert.equal((await vw.stop()).code, 0);
        await a.stop();
        await b.stop();
      }
    });
  });
}

describe("proxy: the instrument", () => {
  it("--json carries the relay's figures, the exit summary a proxy line", async () => {
    const backend = new Backend();
    await backend.start();
    const vw = await startVw(["--workers", "1", "--policy", "other", "--json", "--stats-interval", "0.2", "--proxy", `127.0.0.1:${backend.port}`]);
    try {
      assert.match(vw.stderr(), new RegExp(`relaying to 127\\.0\\.0\\.1:${backend.port} \\(round-robin`));
      const c = await RawClient.connect(vw.port);
      for (let i = 0; i < 5; i++) {
        c.write(get(`/j${i}`));
        await readResponse(c);
      }
      c.destroy();
      await sleep(500);
    } finally {
      assert.equal((await vw.stop()).code, 0);
      await backend.stop();
    }
    type Up = { read: number; write: number; close: number; connect: number };
    type Relayed = { up_opened: number; up_reused: number; up_syscalls: Up };
    const lines = vw.stdout().trim().split("\n").map((l) => JSON.parse(l) as { proxy?: Relayed; workers: { syscalls: Record<string, number>; proxy?: Relayed }[] });
    const sum = (f: (l: (typeof lines)[number]) => number) => lines.reduce((n, l) => n + f(l), 0);
    assert.equal(sum((l) => l.proxy?.up_opened ?? 0), 1);
    assert.equal(sum((l) => l.proxy?.up_reused ?? 0), 4);
    assert.equal(sum((l) => l.workers[0].syscalls.connect), 1);
    // The worker's own relay figures: one write and at least one read upstream per request, a part
    // of its read and write calls; the all-workers object is their sum. A request written at once
    // behind a connect still in progress may take one more write (EAGAIN, then writable).
    const up = (k: keyof Up) => sum((l) => l.workers[0].proxy?.up_syscalls[k] ?? 0);
    assert.ok(up("write") >= 5 && up("write") <= 5 + up("connect"), `${up("write")} upstream writes for 5 requests`);
    assert.ok(up("read") >= 5, `${up("read")} upstream reads`);
    assert.equal(up("connect"), 1);
    assert.equal(up("close"), 1, "the pooled connection closed at the stop");
    assert.ok(up("read") < sum((l) => l.workers[0].syscalls.read) && up("write") < sum((l) => l.workers[0].syscalls.write));
    assert.equal(sum((l) => l.proxy?.up_syscalls.write ?? 0), up("write"));
    assert.match(vw.stderr(), /proxy: 1 connections opened, 4 requests on pooled ones\n\s+0 pipelined, 0 resent, 0 upstream failures/);
  });
});

describe("proxy: the engine that cannot relay, and bad flags", () => {
  it("--engine blocking refuses --proxy in one line, exit 2", async () => {
    const r = await runVw(["--engine", "blocking", "--proxy", "127.0.0.1:9", "--listen", "127.0.0.1:0"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /--proxy works with --engine epoll, poll, select or uring; the blocking engine cannot relay/);
  });
  for (const bad of ["example.com:80", "127.0.0.1", "*:80", "127.0.0.1:0", "[::1]:99999", "::1:80"]) {
    it(`--proxy ${bad} is refused`, async () => {
      const r = await runVw(["--proxy", bad, "--listen", "127.0.0.1:0"]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^vw: --proxy /);
    });
  }
  it("--proxy-fresh without --proxy is refused", async () => {
    const r = await runVw(["--proxy-fresh", "--listen", "127.0.0.1:0"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /need --proxy/);
  });
});

/**
 * TIME_WAIT sockets on 127.0.0.1 from /proc/net/tcp that are not in `old`: [local port, remote
 * port, the line's own "local remote" addresses] each.
 */
function timeWaits(old: ReadonlySet<string> = new Set()): [number, number, string][] {
  const out: [number, number, string][] = [];
  for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== "06") continue; // st 06: TIME_WAIT
    const pair = `${f[1]} ${f[2]}`;
    if (!old.has(pair)) out.push([parseInt(f[1].split(":")[1], 16), parseInt(f[2].split(":")[1], 16), pair]);
  }
  return out;
}

describe("--proxy-fresh leaves the TIME_WAIT to the backend", () => {
  it("asks the backend to close, and closes only after the backend's FIN", { timeout: 30000 }, async () => {
    const backend = await startVw(["--workers", "1", "--policy", "other", "-q"]);
    const proxy = await startVw(["--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${backend.port}`, "--proxy-fresh"]);
    try {
      // Only the TIME_WAITs of these 40 exchanges: earlier tests may have left some on a port
      // this backend now has again.
      const earlier = new Set(timeWaits().map(([, , pair]) => pair));
      const c = await RawClient.connect(proxy.port);
      for (let i = 0; i < 40; i++) {
        c.write(get("/1b"));
        assert.equal((await readResponse(c)).status, 200);
      }
      c.destroy();
      await sleep(200);
      const tw = timeWaits(earlier);
      const backendHeld = tw.filter(([local]) => local === backend.port).length;
      const proxyHeld = tw.filter(([, remote]) => remote === backend.port).length;
      assert.ok(backendHeld >= 38, `the backend closed first: ${backendHeld} TIME_WAIT on its port`);
      assert.ok(proxyHeld <= 2, `the proxy closed first ${proxyHeld} times`);
    } finally {
      await proxy.stop();
      await backend.stop();
    }
  });
});
