// Lifecycle: graceful stop under load, the second signal, fds back to baseline, start errors,
// and running without the privilege for SCHED_FIFO.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import * as fs from "node:fs";

import { settledFdCount } from "./helpers/clients";
import { RawClient, cli, fdCount, parseResponse, runVw, sleep, startVw, vwEnv, waitFor, type VwProcess } from "./helpers/server";
import { asNobody, isRoot, worldReadableCopy } from "./helpers/proc";

const GET_1B = "GET /1b HTTP/1.1\r\nHost: x\r\n\r\n";
// More than loopback socket buffers hold (several MB), so the server must wait on the reader.
const MANY_1M = "GET /1m HTTP/1.1\r\nHost: x\r\n\r\n".repeat(16);

/** A keep-alive client that loops requests and checks every response is whole. */
async function hammer(port: number, until: () => boolean): Promise<{ ok: number; torn: number; err?: string }> {
  const c = await RawClient.connect(port);
  let ok = 0;
  try {
    while (!until()) {
      c.write(GET_1B + GET_1B);
      await c.responses(2, { timeoutMs: 3000 });
      ok += 2;
    }
  } catch (e) {
    // The server may close between responses when it stops: allowed. A partial response is not.
    const rest = c.received;
    const torn = rest.length > 0 && parseResponse(rest) === undefined ? 1 : 0;
    c.destroy();
    return { ok, torn, err: (e as Error).message };
  }
  c.destroy();
  return { ok, torn: 0 };
}

/** Resolves once a connect to `port` is refused (vw closed its listener); fails after 3 s. */
async function refused(port: number): Promise<void> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const c = await RawClient.connect(port).catch((e: Error) => e);
    if (c instanceof Error) {
      assert.match(c.message, /ECONNREFUSED/);
      return;
    }
    c.destroy();
    assert.ok(Date.now() < deadline, "new connections still accepted 3 s after SIGTERM");
    await sleep(25);
  }
}

describe("graceful stop", () => {
  it("SIGTERM under load: exit 0, summary line, no response cut short", async () => {
    const vw = await startVw([]);
    let stop = false;
    const clients = Array.from({ length: 8 }, () => hammer(vw.port, () => stop));
    await sleep(500);
    const exit = vw.stop("SIGTERM");
    const { code } = await exit;
    stop = true;
    const results = await Promise.all(clients);
    assert.equal(code, 0);
    assert.match(vw.stdout(), /^vw: \d+ requests in \d+\.\d s, \d+ req\/s$/m);
    const served = Number(/vw: (\d+) requests/.exec(vw.stdout())![1]);
    const ok = results.reduce((s, r) => s + r.ok, 0);
    assert.ok(ok > 0, "clients got responses before the stop");
    assert.ok(served >= ok, `summary counts ${served} requests, clients saw ${ok}`);
    assert.equal(results.reduce((s, r) => s + r.torn, 0), 0, "a response was cut short");
  });

  it("finishes in-flight /1m responses to a slow reader before exiting", async () => {
    const vw = await startVw([]);
    const c = await RawClient.connect(vw.port);
    c.socket.pause();
    c.write(MANY_1M);
    await sleep(200); // the server has written what the socket buffers take, and waits
    const exit = vw.stop("SIGTERM");
    await sleep(300);
    c.socket.resume();
    // Responses already being written are finished; requests not yet answered may be dropped.
    await c.waitClosed(4500);
    let off = 0;
    let whole = 0;
    for (let r = parseResponse(c.received); r; r = parseResponse(c.received, off)) {
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 1024 * 1024);
      off += r.length;
      whole++;
    }
    assert.ok(whole >= 1, "at least the first /1m arrived whole");
    assert.equal(off, c.received.length, `a response was cut short after ${whole} whole ones`);
    assert.equal((await exit).code, 0);
  });

  it("a second signal stops at once, even with a client that never reads", async () => {
    const vw = await startVw([]);
    const c = await RawClient.connect(vw.port);
    c.socket.pause();
    c.write(MANY_1M);
    await sleep(200);
    vw.child.kill("SIGTERM");
    await refused(vw.port); // the first signal has taken effect
    await sleep(300); // past the window in which a repeat counts as the same signal
    assert.equal(vw.child.exitCode, null, "still draining after the first signal");
    const t0 = Date.now();
    vw.child.kill("SIGTERM");
    const { code } = await vw.exited;
    assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms after the second signal`);
    assert.equal(code, 0);
    c.destroy();
  });

  it("one signal with a client that never reads: stops within the 5 s drain bound", async () => {
    const vw = await startVw([]);
    const c = await RawClient.connect(vw.port);
    c.socket.pause();
    c.write(MANY_1M);
    await sleep(200);
    const t0 = Date.now();
    const { code } = await vw.stop("SIGINT");
    const took = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(took > 3000 && took < 7500, `drain took ${took} ms`);
    c.destroy();
  });

  it("stops listening first: new connections are refused once stopping", async () => {
    const vw = await startVw([]);
    const c = await RawClient.connect(vw.port);
    c.socket.pause();
    c.write(MANY_1M); // keeps the server draining
    await sleep(200);
    vw.child.kill("SIGTERM");
    await refused(vw.port);
    assert.equal(vw.child.exitCode, null, "refused while still draining");
    c.destroy();
    await vw.exited;
  });
});

describe("a signal as soon as vw says it listens", () => {
  // "listening on" promises that everything is up, the signal handlers included: a script that
  // stops vw the moment it sees the line gets the graceful stop and its summary, not death by
  // the signal's default action.
  it("SIGTERM sent on reading 'listening on': exit 0 with the summary, five times in a row", async () => {
    for (let i = 0; i < 5; i++) {
      const asRoot = isRoot() ? ["--user", "root"] : [];
      const child = spawn(process.execPath, [cli, "--listen", "127.0.0.1:0", "--workers", "1", ...asRoot], { stdio: ["ignore", "pipe", "pipe"], env: vwEnv() });
      let out = "";
      let sent = false;
      const look = (d: Buffer): void => {
        out += d.toString();
        if (!sent && /listening on/.test(out)) {
          sent = true;
          child.kill("SIGTERM");
        }
      };
      child.stdout.on("data", look);
      child.stderr.on("data", look);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on("exit", (c, s) => resolve([c, s])));
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, `start ${i + 1}: ${out}`);
      assert.match(out, /^vw: \d+ requests in /m, `start ${i + 1}: the summary`);
    }
  });
});

describe("resources", () => {
  let vw: VwProcess;
  before(async () => {
    vw = await startVw([]);
  });
  after(async () => {
    await vw.stop();
  });

  it("returns to its fd baseline after 200 clients come and go", async () => {
    const base = await settledFdCount(vw.pid);
    const clients = await Promise.all(Array.from({ length: 200 }, () => RawClient.connect(vw.port)));
    await Promise.all(clients.map((c) => c.request(GET_1B)));
    assert.ok(fdCount(vw.pid) >= base + 200);
    // Half leave politely, half half-way through a request.
    clients.forEach((c, i) => (i % 2 ? c.destroy() : (c.write("GET /1b HT"), c.socket.end())));
    await waitFor(() => fdCount(vw.pid) === base, () => `fds back to ${base} (now ${fdCount(vw.pid)})`, 3000);
  });
});

describe("start errors: one line, no stack trace", () => {
  const noStack = (s: string): void => assert.doesNotMatch(s, /^\s+at /m);

  it("address in use", async () => {
    const other = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => other.once("listening", r));
    const port = (other.address() as net.AddressInfo).port;
    const r = await runVw(["--listen", `127.0.0.1:${port}`]);
    other.close();
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.match(r.stderr, new RegExp(`vw: bind 127\\.0\\.0\\.1:${port}: address already in use`));
    noStack(r.stderr);
  });

  it("a low port without root", { skip: isRoot() ? false : "needs root to become nobody" }, async () => {
    const dir = worldReadableCopy();
    try {
      const r = await runVw(["--port", "81", "--workers", "1"], { wrap: asNobody, cli: path.join(dir, "dist/src/cli.js") });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /permission denied; ports below 1024 need root/);
      assert.equal(r.stderr.trim().split("\n").length, 1);
      noStack(r.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("without the privilege for SCHED_FIFO", { skip: isRoot() ? false : "needs root to become nobody" }, () => {
  let dir: string;
  before(() => {
    dir = worldReadableCopy();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("says so once and serves with normal scheduling", async () => {
    const vw = await startVw(["--workers", "1"], { wrap: asNobody, cli: path.join(dir, "dist/src/cli.js") });
    try {
      await waitFor(() => vw.stderr().includes("not granted"), "the notice on stderr");
      const notices = vw.stderr().split("\n").filter((l) => l.includes("not granted"));
      assert.equal(notices.length, 1);
      assert.match(notices[0], /SCHED_FIFO was not granted \(EPERM.*running with normal scheduling/);
      assert.match(vw.stdout(), /worker 0  cpu \d+ \(getcpu \d+\)  SCHED_OTHER  tid/);
      const c = await RawClient.connect(vw.port);
      assert.equal((await c.request(GET_1B)).status, 200);
      c.destroy();
    } finally {
      assert.deepEqual(await vw.stop(), { code: 0, signal: null });
    }
  });

  it("--require-rt makes it fatal, with the reason", async () => {
    const r = await runVw(["--listen", "127.0.0.1:0", "--workers", "1", "--require-rt"], {
      wrap: asNobody,
      cli: path.join(dir, "dist/src/cli.js"),
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /SCHED_FIFO was not granted \(EPERM.*--require-rt makes this fatal/);
  });
});
