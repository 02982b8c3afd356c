// The network path below HTTP: TCP_DEFER_ACCEPT on the listeners (a connection reaches vw with
// its request, and the readiness engines answer it straight after accept, watching it only when
// it stays open) and TCP Fast Open (a request carried in the SYN).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { promisify } from "node:util";

import { engineList, engineSkip } from "./helpers/engines";
import { settledFdCount } from "./helpers/clients";
import { RawClient, fdCount, freePort, metricValue, parseResponse, sleep, startVw, waitFor, which, type VwProcess } from "./helpers/server";

const run = promisify(execFile);

const GET = "GET /1b HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_CLOSE = "GET /1b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/** Polls an async condition every 25 ms; throws with `what()` after timeoutMs. */
async function until(cond: () => Promise<boolean>, what: () => string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await sleep(25);
  }
}

/** The wait call each readiness engine makes (the counter that says how often it slept). */
const WAIT: Record<string, string> = { epoll: "epoll_wait", poll: "poll", select: "select" };

/** Worker 0's system calls of one kind, from /metrics. */
const syscalls = (mport: number, kind: string): Promise<number> => metricValue(mport, "vw_syscalls_total", { worker: "0", syscall: kind });

describe("--defer-accept", () => {
  it("default 1 s: a silent connection reaches vw only after about a second; one that sends is answered at once", { timeout: 20000 }, async () => {
    const mport = await freePort();
    const vw = await startVw(["--workers", "1", "--quiet", "--metrics", `127.0.0.1:${mport}`]);
    const clients: RawClient[] = [];
    try {
      const t0 = Date.now();
      const silent = await RawClient.connect(vw.port);
      clients.push(silent);
      await sleep(400);
      assert.equal(await metricValue(mport, "vw_connections_accepted_total"), 0, "the silent connection is still the kernel's");
      const talker = await RawClient.connect(vw.port);
      clients.push(talker);
      const t1 = Date.now();
      // Held by the kernel, it would wait for the SYN-ACK retransmit (1 s); the margin is this machine's.
      const r = await talker.request(GET, { timeoutMs: 900 });
      assert.equal(r.status, 200);
      assert.ok(Date.now() - t1 < 900, `a connection with its request waited ${Date.now() - t1} ms`);
      assert.equal(await metricValue(mport, "vw_connections_accepted_total"), 1);
      // The defer timeout passes, the kernel retransmits its SYN-ACK, the client's ACK completes
      // the accept: the silent connection is vw's now, watched, and answered when it speaks.
      let accepted = 0;
      await until(async () => (accepted = await metricValue(mport, "vw_connections_accepted_total")) === 2, () => `accepted ${accepted}, want 2`, 5000);
      assert.ok(Date.now() - t0 >= 800, `the silent connection was accepted after ${Date.now() - t0} ms`);
      assert.equal(await metricValue(mport, "vw_connections_open"), 2);
      assert.equal((await silent.request(GET, { timeoutMs: 1000 })).status, 200);
    } finally {
      clients.forEach((c) => c.destroy());
      await vw.stop();
    }
  });

  it("--defer-accept 0: a silent connection is accepted at once", { timeout: 10000 }, async () => {
    const mport = await freePort();
    const vw = await startVw(["--workers", "1", "--quiet", "--defer-accept", "0", "--metrics", `127.0.0.1:${mport}`]);
    const c = await RawClient.connect(vw.port);
    try {
      const t0 = Date.now();
      let open = 0;
      await until(async () => (open = await metricValue(mport, "vw_connections_open")) === 1, () => `open ${open}`, 1000);
      assert.ok(Date.now() - t0 < 500, `accepted after ${Date.now() - t0} ms`);
      assert.equal((await c.request(GET, { timeoutMs: 1000 })).status, 200);
    } finally {
      c.destroy();
      await vw.stop();
    }
  });

  for (const engine of engineList()) {
    describe(`--engine ${engine}: a deferred connection is read and answered straight after accept`, { skip: engineSkip(engine) }, () => {
      let vw: VwProcess;
      let mport: number;
      let base = 0;
      const readiness = engine in WAIT;
      before(async () => {
        mport = await freePort();
        vw = await startVw(["--engine", engine, "--workers", "1", "--quiet", "--coalesce", "off", "--metrics", `127.0.0.1:${mport}`]);
        base = await settledFdCount(vw.pid);
      });
      after(() => vw.stop());

      it(`Connection: close on 100 fresh connections: every one answered${readiness ? ", never watched, one wait each" : ""}`, { timeout: 20000 }, async () => {
        const ctl0 = await syscalls(mport, "epoll_ctl");
        const wait0 = readiness ? await syscalls(mport, WAIT[engine]) : 0;
        const N = 100;
        for (let i = 0; i < N; i++) {
          const c = await RawClient.connect(vw.port);
          c.write(GET_CLOSE);
          await c.waitClosed(2000);
          const r = parseResponse(c.received);
          assert.ok(r, `connection ${i}: a whole response before the close`);
          assert.equal(r.status, 200);
          assert.equal(r.header("connection"), "close");
          assert.equal(r.length, c.received.length, "nothing after the response");
        }
        if (!readiness) return;
        // Watching a connection costs epoll an epoll_ctl, and its request a second wait.
        if (engine === "epoll") assert.equal((await syscalls(mport, "epoll_ctl")) - ctl0, 0, "epoll_ctl calls");
        const waits = (await syscalls(mport, WAIT[engine])) - wait0;
        assert.ok(waits <= N * 1.2 + 5, `${waits} waits for ${N} sequential connections (two each when every one is watched)`);
      });

      it("keep-alive after the first answer: the connection is watched and its next requests answered", async () => {
        const c = await RawClient.connect(vw.port);
        try {
          assert.equal((await c.request(GET, { timeoutMs: 1000 })).status, 200);
          assert.equal((await c.request(GET, { timeoutMs: 1000 })).status, 200);
          c.write(GET + GET);
          const rs = await c.responses(2, { timeoutMs: 1000 });
          assert.deepEqual(rs.map((r) => r.status), [200, 200]);
        } finally {
          c.destroy();
        }
      });

      it("a header split across reads: the first read keeps the start, the rest completes it", async () => {
        const c = await RawClient.connect(vw.port);
        try {
          c.write("GET /1b HTTP/1.1\r\nHo");
          await sleep(150);
          c.write("st: x\r\n\r\n");
          const [r] = await c.responses(1, { timeoutMs: 1000 });
          assert.equal(r.status, 200);
        } finally {
          c.destroy();
        }
      });

      it("output owed after the first read: four /1m pipelined, then close, all whole", { timeout: 10000 }, async () => {
        const c = await RawClient.connect(vw.port);
        try {
          c.write("GET /1m HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3) + "GET /1m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
          await c.waitClosed(8000);
          let off = 0;
          for (let i = 0; i < 4; i++) {
            const r = parseResponse(c.received, off);
            assert.ok(r, `response ${i} whole`);
            assert.equal(r.body.length, 1024 * 1024);
            off += r.length;
          }
          assert.equal(off, c.received.length);
        } finally {
          c.destroy();
        }
      });

      it("a closing answer with input left over: the connection lingers until the client closes", async () => {
        const c = await RawClient.connect(vw.port);
        c.write(GET_CLOSE + GET);
        await c.until((b) => parseResponse(b) !== undefined, 1000);
        c.socket.end();
        await c.waitClosed(3000);
        assert.equal(parseResponse(c.received)?.status, 200);
        assert.equal(parseResponse(c.received)?.length, c.received.length, "the second request is not answered");
      });

      it("open connections and fds back to the baseline", async () => {
        let open = -1;
        await until(async () => (open = await metricValue(mport, "vw_connections_open")) === 0, () => `open ${open}`);
        await waitFor(() => fdCount(vw.pid) === base, () => `fds back to ${base} (now ${fdCount(vw.pid)})`, 3000);
      });
    });
  }
});

const TFO_SYSCTL = "/proc/sys/net/ipv4/tcp_fastopen";

/** One TcpExt counter of /proc/net/netstat (the header line names the fields, the next holds them). */
function tcpExt(name: string): number {
  const lines = fs.readFileSync("/proc/net/netstat", "utf8").split("\n").filter((l) => l.startsWith("TcpExt:"));
  const keys = lines[0].split(/\s+/);
  const values = lines[1].split(/\s+/);
  const i = keys.indexOf(name);
  if (i < 0) throw new Error(`${name} not in /proc/net/netstat`);
  return Number(values[i]);
}

/** Why the TCP Fast Open test cannot run here, or undefined. */
function tfoSkip(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root: the test sets net.ipv4.tcp_fastopen (and restores it)";
  const curl = which("curl");
  if (!curl) return "curl not installed (apt-get install curl)";
  try {
    fs.accessSync(TFO_SYSCTL, fs.constants.W_OK);
    tcpExt("TCPFastOpenPassive");
  } catch (e) {
    return `cannot use ${TFO_SYSCTL} or /proc/net/netstat here: ${(e as Error).message}`;
  }
  return undefined;
}

describe("--fastopen", () => {
  it("a request carried in the SYN is answered, and TcpExtTCPFastOpenPassive rises", { skip: tfoSkip(), timeout: 20000 }, async (t) => {
    const before = fs.readFileSync(TFO_SYSCTL, "utf8").trim();
    // Bit 1: clients may send data in the SYN (curl), bit 2: listeners that ask may take it.
    fs.writeFileSync(TFO_SYSCTL, String(Number(before) | 3));
    const mport = await freePort();
    const vw = await startVw(["--workers", "1", "--quiet", "--fastopen", "16", "--metrics", `127.0.0.1:${mport}`]);
    try {
      const curl = (): Promise<{ stdout: string }> =>
        run("curl", ["--tcp-fastopen", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", `http://127.0.0.1:${vw.port}/1b`]);
      // The first connection only fetches a cookie (the kernel caches it per server address);
      // the next ones put their request in the SYN.
      const passive0 = tcpExt("TCPFastOpenPassive");
      for (let i = 0; i < 3; i++) assert.equal((await curl()).stdout, "200");
      const rose = tcpExt("TCPFastOpenPassive") - passive0;
      t.diagnostic(`TCPFastOpenPassive rose by ${rose} over 3 requests (the first one fetches the cookie)`);
      assert.ok(rose >= 1, `TCPFastOpenPassive rose by ${rose} over 3 curl --tcp-fastopen requests`);
      assert.equal(await metricValue(mport, "vw_requests_total"), 3);
      // Without --fastopen the listener refuses data in the SYN: the client falls back.
      const plain = await startVw(["--workers", "1", "--quiet"]);
      try {
        const p0 = tcpExt("TCPFastOpenPassive");
        for (let i = 0; i < 2; i++) {
          const r = await run("curl", ["--tcp-fastopen", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", `http://127.0.0.1:${plain.port}/1b`]);
          assert.equal(r.stdout, "200");
        }
        assert.equal(tcpExt("TCPFastOpenPassive") - p0, 0, "no fast open on a listener without --fastopen");
      } finally {
        await plain.stop();
      }
    } finally {
      await vw.stop();
      fs.writeFileSync(TFO_SYSCTL, before);
    }
  });
});
