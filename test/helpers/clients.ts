// clients.ts (test helper): what the HTTP test files share: the two server modes every HTTP
// suite runs in, a connection pool closed after each test, and the standard checks (a response
// is well-formed, the server still answers, an error closes the connection, fds are back).
import assert from "node:assert/strict";
import { describe } from "node:test";

import { engineSkip, engineList } from "./engines";
import { RawClient, fdCount, sleep, startVw, waitFor, type Response, type VwProcess } from "./server";

/**
 * Every HTTP suite runs once per mode: each engine with one worker, and epoll (the default) with
 * one worker per allowed CPU. An engine this machine cannot run (uring without liburing at build
 * time, or a kernel that refuses io_uring) is left out, with a skipped suite saying why.
 */
export const MODES: ReadonlyArray<{ name: string; args: string[] }> = [
  ...engineList()
    .filter((e) => engineSkip(e) === undefined)
    .map((e) => ({ name: `--engine ${e} --workers 1`, args: ["--engine", e, "--workers", "1"] })),
  { name: "--engine epoll, all CPUs", args: [] },
];
for (const e of engineList()) {
  const why = engineSkip(e);
  if (why !== undefined) describe(`HTTP suites with --engine ${e}`, { skip: why }, () => {});
}

/** Sized routes and their exact body lengths (k = 1024). */
export const SIZED: ReadonlyArray<[string, number]> = [
  ["/1b", 1],
  ["/100b", 100],
  ["/1k", 1024],
  ["/10k", 10 * 1024],
  ["/100k", 100 * 1024],
  ["/1m", 1024 * 1024],
];

export const TEXT_PLAIN = "text/plain; charset=utf-8";

/** A minimal request with a Host header. */
export function req(method: string, target: string, extra = "", version = "HTTP/1.1"): string {
  return `${method} ${target} ${version}\r\nHost: x\r\n${extra}\r\n`;
}

export const GET_1B = req("GET", "/1b");

/** A server started in before() and stopped in after(), with its fd count right after start. */
export class Server {
  vw!: VwProcess;
  baseline = 0;
  constructor(readonly args: string[]) {}

  async start(): Promise<void> {
    this.vw = await startVw(this.args);
    this.baseline = await settledFdCount(this.vw.pid);
  }

  get port(): number {
    return this.vw.port;
  }

  async stop(): Promise<void> {
    if (!this.vw) return;
    const { code, signal } = await this.vw.stop();
    assert.equal(signal, null, `vw ${this.args.join(" ")} died of ${signal}; stderr: ${this.vw.stderr()}`);
    assert.equal(code, 0, `vw ${this.args.join(" ")} exited ${code}; stderr: ${this.vw.stderr()}`);
  }

  /** The process is alive and its open fds are back to the count right after start. */
  async assertFdsAtBaseline(timeoutMs = 2000): Promise<void> {
    assert.equal(this.vw.child.exitCode, null, `vw exited: ${this.vw.stderr()}`);
    let now = -1;
    await waitFor(() => (now = fdCount(this.vw.pid)) === this.baseline, "fds back to baseline", timeoutMs).catch(() => {
      assert.equal(now, this.baseline, `open fds of vw ${this.args.join(" ")}: ${now}, baseline ${this.baseline}`);
    });
  }
}

/**
 * The fd count once start-up is over: Node opens and closes a few fds of its own for a moment
 * after "listening on" is printed, so wait until the count holds still for 300 ms.
 */
export async function settledFdCount(pid: number, timeoutMs = 3000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = fdCount(pid);
  let same = 0;
  while (same < 6 && Date.now() < deadline) {
    await sleep(50);
    const n = fdCount(pid);
    same = n === last ? same + 1 : 0;
    last = n;
  }
  return last;
}

/** Connections opened by a test, destroyed after it. */
export class Pool {
  private open: RawClient[] = [];

  async connect(port: number): Promise<RawClient> {
    const c = await RawClient.connect(port);
    this.open.push(c);
    return c;
  }

  closeAll(): void {
    for (const c of this.open) c.destroy();
    this.open = [];
  }
}

/** The invariants of every vw response: HTTP/1.1, Server, a valid Date, a Content-Length. */
export function assertWellFormed(r: Response, what = ""): void {
  assert.equal(r.version, "HTTP/1.1", `${what} status line: ${r.raw.split("\r\n")[0]}`);
  assert.equal(r.header("server"), "vw", `${what} Server header`);
  assertImfDate(r.header("date"), what);
  assert.equal(r.headers.get("content-length")?.length, 1, `${what} exactly one Content-Length`);
  assert.match(r.header("content-length")!, /^\d+$/, `${what} Content-Length`);
}

export function assertImfDate(date: string | undefined, what = ""): void {
  assert.ok(date, `${what} Date header present`);
  assert.match(date, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/, `${what} Date`);
  assert.equal(new Date(date).toUTCString(), date, `${what} Date is a valid IMF-fixdate`);
  assert.ok(Math.abs(new Date(date).getTime() - Date.now()) < 5000, `${what} Date ${date} is now`);
}

/** A fresh connection gets GET /1b answered promptly (the server is still healthy). */
export async function assertAnswers(port: number, timeoutMs = 1000): Promise<void> {
  const c = await RawClient.connect(port);
  try {
    const r = await c.request(GET_1B, { timeoutMs });
    assertWellFormed(r, "GET /1b on a fresh connection");
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), "x");
  } finally {
    c.destroy();
  }
}

/** Waits a little and asserts that nothing more arrived and the connection is still open. */
export async function assertQuietAndOpen(c: RawClient, ms = 150): Promise<void> {
  await sleep(ms);
  assert.equal(c.received.length, 0, `unexpected bytes: ${JSON.stringify(c.received.toString("latin1").slice(0, 200))}`);
  assert.equal(c.isClosed, false, "the server closed a connection it should keep");
}

/**
 * Sends raw bytes on a fresh connection and asserts the one error response: its status,
 * `Connection: close`, then EOF with nothing after the response.
 */
export async function expectErrorClose(pool: Pool, port: number, raw: string | Buffer | (string | Buffer)[], status: number): Promise<Response> {
  const c = await pool.connect(port);
  for (const part of Array.isArray(raw) ? raw : [raw]) c.write(part);
  const [r] = await c.responses(1, { timeoutMs: 2000 });
  assertWellFormed(r, `${status} response`);
  assert.equal(r.status, status, `status for ${JSON.stringify(String(Array.isArray(raw) ? raw.join("") : raw).slice(0, 80))}: got ${r.raw.split("\r\n")[0]}`);
  assert.equal(r.header("connection"), "close", "an error response says Connection: close");
  assert.equal(r.body.length, Number(r.header("content-length")));
  await c.waitClosed(2000);
  assert.equal(c.received.length, 0, `bytes after the error response: ${JSON.stringify(c.received.toString("latin1").slice(0, 200))}`);
  return r;
}
