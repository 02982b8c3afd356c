// A raw HTTP/1.1 backend for the --proxy tests (node:net, so every framing can be produced on
// purpose), and a client-side reader for any response framing.
import * as net from "node:net";

import assert from "node:assert/strict";

import { SIZED, settledFdCount } from "./clients";
import { freePort, RawClient, startVw, type VwProcess } from "./server";

export interface SeenRequest {
  method: string;
  target: string;
  head: string; // request line and fields as the backend received them
  body: Buffer;
  conn: number; // which backend connection carried it
}

/** A raw HTTP/1.1 backend: answers by path, records requests and connections. */
export class Backend {
  server!: net.Server;
  port = 0;
  conns = 0;
  open = new Set<net.Socket>();
  seen: SeenRequest[] = [];
  private held: (() => void)[] = [];

  async start(): Promise<void> {
    this.server = net.createServer((s) => this.serve(s));
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise((r) => this.server.close(r));
  }

  /** Answers every /hold request received so far ("held"), and what each held back. */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const answer of held) answer();
  }

  private serve(s: net.Socket): void {
    const id = ++this.conns;
    this.open.add(s);
    s.on("close", () => this.open.delete(s));
    s.on("error", () => {});
    s.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let turn: Promise<void> = Promise.resolve(); // the answer being given on this connection
    let armed = false; // /arm-close: the next request on this connection finds it closed
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = takeRequest(buf);
        if (!r) return;
        buf = buf.subarray(r.used);
        if (armed) {
          s.destroy(); // as if its keep-alive timeout had struck just before the request
          return;
        }
        const req: SeenRequest = { ...r.req, conn: id };
        this.seen.push(req);
        armed = req.target === "/arm-close";
        turn = turn.then(() => this.answer(s, req)); // in request order, as HTTP/1.1 must
      }
    });
  }

  /** Answers req; a promise holds the connection's later answers back until it settles. */
  private answer(s: net.Socket, req: SeenRequest): Promise<void> | void {
    const path = req.target.split("?")[0];
    const ok = (body: string | Buffer, extra = "") =>
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`) &&
      (req.method === "HEAD" || s.write(body));
    switch (path) {
      case "/echo":
        ok(JSON.stringify({ method: req.method, head: req.head, body: req.body.toString("latin1") }), "Content-Type: application/json\r\nConnection: keep-alive, X-Backend-Hop\r\nX-Backend-Hop: 1\r\nKeep-Alive: timeout=5\r\n");
        return;
      case "/chunked":
        s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n");
        return;
      case "/close":
        s.end("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close");
        return;
      case "/http10":
        s.end("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        return;
      case "/midclose":
        s.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + "x".repeat(100));
        setTimeout(() => s.destroy(), 50);
        return;
      case "/midchunk":
        s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        setTimeout(() => s.destroy(), 50);
        return;
      case "/silent":
        return new Promise(() => {}); // never: nothing after it on this connection is answered
      case "/204":
        s.write("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
        return;
      case "/304":
        s.write("HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 99\r\n\r\n");
        return;
      case "/1xx":
        s.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
        ok("after 1xx");
        return;
      case "/big":
        ok(Buffer.alloc(2 * 1024 * 1024, 0x61));
        return;
      case "/huge":
        ok(Buffer.alloc(64 * 1024 * 1024, 0x62));
        return;
      case "/hold": // until release(): an exchange in flight for as long as a test needs
        return new Promise((r) => this.held.push(() => {
          ok("held");
          r();
        }));
      case "/slow":
        return new Promise((r) => setTimeout(() => {
          ok("slow");
          r();
        }, 200));
      default:
        ok(`path ${req.target}`);
    }
  }
}

/** One request off the front of buf (Content-Length or chunked body), or undefined. */
function takeRequest(buf: Buffer): { req: Omit<SeenRequest, "conn">; used: number } | undefined {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = buf.subarray(0, end).toString("latin1");
  const [line, ...fields] = head.split("\r\n");
  const [method, target] = line.split(" ");
  const field = (n: string) => fields.find((f) => f.toLowerCase().startsWith(`${n}:`))?.slice(n.length + 1).trim();
  let at = end + 4;
  const cl = field("content-length");
  if (field("transfer-encoding")?.toLowerCase() === "chunked") {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = buf.indexOf("\r\n", at);
      if (eol < 0) return undefined;
      const size = parseInt(buf.subarray(at, eol).toString("latin1"), 16);
      if (size === 0) {
        const fin = buf.indexOf("\r\n\r\n", eol);
        if (fin < 0) return undefined;
        at = fin + 4;
        break;
      }
      if (buf.length < eol + 2 + size + 2) return undefined;
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    return { req: { method, target, head, body: Buffer.concat(parts) }, used: at };
  }
  const n = cl ? Number(cl) : 0;
  if (buf.length < at + n) return undefined;
  return { req: { method, target, head, body: Buffer.from(buf.subarray(at, at + n)) }, used: at + n };
}

/** Reads one response from c: Content-Length, chunked (decoded) or until close. */
export async function readResponse(c: RawClient, head = false, timeoutMs = 3000): Promise<{ status: number; headers: string; body: Buffer; closeDelimited: boolean }> {
  let parsed: { status: number; headers: string; body: Buffer; closeDelimited: boolean; used: number } | undefined;
  await c.until((b) => (parsed = parseAny(b, head, false)) !== undefined, timeoutMs);
  if (!parsed && c.isClosed) parsed = parseAny(c.received, head, true);
  if (!parsed) throw new Error(`no complete response; got ${JSON.stringify(c.received.toString("latin1").slice(0, 200))}`);
  const r = { ...parsed, body: Buffer.from(parsed.body) };
  c.consume(parsed.used);
  return r;
}

export function parseAny(b: Buffer, head: boolean, closed: boolean) {
  const end = b.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const headers = b.subarray(0, end).toString("latin1");
  const status = Number(headers.slice(9, 12));
  const get = (n: string) => new RegExp(`^${n}:\\s*(.*)$`, "im").exec(headers)?.[1]?.trim();
  const start = end + 4;
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { status, headers, body: Buffer.alloc(0), closeDelimited: false, used: start };
  }
  if (get("transfer-encoding")?.toLowerCase() === "chunked") {
    const parts: Buffer[] = [];
    let at = start;
    for (;;) {
      const eol = b.indexOf("\r\n", at);
      if (eol < 0) return undefined;
      const size = parseInt(b.subarray(at, eol).toString("latin1"), 16);
      if (size === 0) {
        const fin = b.indexOf("\r\n\r\n", eol);
        if (fin < 0) return undefined;
        return { status, headers, body: Buffer.concat(parts), closeDelimited: false, used: fin + 4 };
      }
      if (b.length < eol + 2 + size + 2) return undefined;
      parts.push(Buffer.from(b.subarray(eol + 2, eol + 2 + size)));
      at = eol + 2 + size + 2;
    }
  }
  const cl = get("content-length");
  if (cl !== undefined) {
    const n = Number(cl);
    if (b.length < start + n) return undefined;
    return { status, headers, body: Buffer.from(b.subarray(start, start + n)), closeDelimited: false, used: start + n };
  }
  if (!closed) return undefined;
  return { status, headers, body: Buffer.from(b.subarray(start)), closeDelimited: true, used: b.length };
}

export const get = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: example.test\r\n${extra}\r\n`;

/**
 * vw relaying to `backend` (started here) with `flags`, under --engine `engine`, one worker at
 * SCHED_OTHER, /metrics on a free port; `baseline` is its fd count once settled.
 */
export async function startRelay(engine: string, backend: Backend, flags: string[]): Promise<{ vw: VwProcess; metricsPort: number; baseline: number }> {
  await backend.start();
  const metricsPort = await freePort();
  const vw = await startVw(["--engine", engine, "--workers", "1", "--policy", "other", "-q", "--proxy", `127.0.0.1:${backend.port}`, ...flags, "--metrics", `127.0.0.1:${metricsPort}`]);
  return { vw, metricsPort, baseline: await settledFdCount(vw.pid) };
}

/** Ends what startRelay started, after `clients`: vw must exit 0. */
export async function stopRelay(vw: VwProcess, backend: Backend, clients: readonly RawClient[]): Promise<void> {
  for (const c of clients) c.destroy();
  const r = await vw.stop();
  assert.equal(r.code, 0, vw.stderr());
  await backend.stop();
}

/**
 * `many` clients at once through vw at `port`, each asking GET /10k: every body whole (10,240
 * bytes). With `stoppedPid`, that process is held stopped (SIGSTOP) until every request is in
 * the kernel, so they all wait for its next pass together, however fast or slow this machine is.
 */
export async function manyClients(port: number, many: number, stoppedPid?: number): Promise<void> {
  const cs = await Promise.all(Array.from({ length: many }, () => RawClient.connect(port)));
  try {
    if (stoppedPid !== undefined) process.kill(stoppedPid, "SIGSTOP");
    try {
      await Promise.all(cs.map((c) => new Promise<void>((sent) => c.socket.write(get("/10k"), () => sent()))));
    } finally {
      if (stoppedPid !== undefined) process.kill(stoppedPid, "SIGCONT");
    }
    const rs = await Promise.all(cs.map((c) => readResponse(c, false, 20000)));
    for (const r of rs) assert.equal(r.body.length, 10240);
  } finally {
    for (const c of cs) c.destroy();
  }
}

/** 256 requests for the built-in sizes pipelined on client `c` in one write: answered in order, each whole. */
export async function pipelined256(c: RawClient): Promise<void> {
  const paths = Array.from({ length: 256 }, (_, i) => SIZED[i % SIZED.length][0]);
  c.write(paths.map((p) => get(p)).join(""));
  for (const [i, p] of paths.entries()) {
    const r = await readResponse(c, false, 10000);
    assert.equal(r.body.length, SIZED.find(([q]) => q === p)![1], `response ${i} (${p})`);
  }
}
