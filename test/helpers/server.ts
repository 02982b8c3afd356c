// server.ts (test helper): spawns the real vw process on a free loopback port, waits for its
// ready lines, speaks raw bytes to it, and stops it by PID.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

export const root = path.resolve(__dirname, "..", "..", "..");
export const cli = path.join(root, "dist", "src", "cli.js");

export interface VwProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  stdout: () => string;
  stderr: () => string;
  /** Worker thread ids as printed in the "worker N ... tid T" lines. */
  tids: number[];
  /** Sends SIGTERM and resolves with the exit code (and signal). */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /** Prefix command, e.g. ["setpriv", "--reuid=65534", ...] or ["taskset", "-c", "1"]. */
  wrap?: string[];
  timeoutMs?: number;
  /** Another copy of the CLI to run (e.g. one any user can read). */
  cli?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as root without --user as a user would (vw then becomes nobody); off: --user root is added. */
  defaultUser?: boolean;
}

/**
 * Started as root without sudo, vw becomes nobody after start; the tests (CI runs them as root)
 * keep root unless they say whom to be (--user, or SUDO_UID in their env), so temporary files
 * they serve and reload stay readable. test/privileges.test.ts checks the default itself.
 */
function keepRoot(args: string[], opts: SpawnOptions): string[] {
  if (process.getuid?.() !== 0 || opts.defaultUser) return [];
  if ((opts.wrap ?? []).some((w) => w.startsWith("--reuid"))) return []; // runs as another user already
  const chosen = args.some((a) => a === "--user" || a === "-u" || a.startsWith("--user=")) || (opts.env ?? process.env).SUDO_UID !== undefined;
  return chosen ? [] : ["--user", "root"];
}

/** Runs vw with args; when no --port/--listen is given, --port 0 on --listen 127.0.0.1. */
export async function startVw(args: string[] = [], opts: SpawnOptions = {}): Promise<VwProcess> {
  const hasAddr = args.some((a) => a === "--port" || a === "-p" || a === "--listen" || a === "-a");
  const full = [opts.cli ?? cli, ...(hasAddr ? [] : ["--listen", "127.0.0.1:0"]), ...keepRoot(args, opts), ...args];
  const wrap = opts.wrap ?? [];
  const cmd = wrap.length > 0 ? wrap[0] : process.execPath;
  const cmdArgs = wrap.length > 0 ? [...wrap.slice(1), process.execPath, ...full] : full;
  const child = spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"], env: vwEnv(opts.env) });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const deadline = Date.now() + (opts.timeoutMs ?? 10000);
  let done = false;
  void exited.then(() => (done = true));
  // With --json the start lines go to stderr: look in both.
  while (!/listening on .*:(\d+)/.test(out + err)) {
    if (done) throw new Error(`vw exited before listening: ${err || out}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`vw did not listen within ${opts.timeoutMs ?? 10000} ms: ${err || out}`);
    }
    await sleep(20);
  }
  const port = Number(/listening on .*:(\d+)/.exec(out + err)![1]);
  const tids = [...(out + err).matchAll(/^worker \d+ .* tid (\d+)$/gm)].map((m) => Number(m[1]));
  return {
    child,
    pid: child.pid!,
    port,
    tids,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (!done) child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), 8000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** Runs vw to completion (for config errors): exit code and output. */
export function runVw(args: string[], opts: SpawnOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const wrap = opts.wrap ?? [];
  const cmd = wrap.length > 0 ? wrap[0] : process.execPath;
  const script = opts.cli ?? cli;
  const cmdArgs = wrap.length > 0 ? [...wrap.slice(1), process.execPath, script, ...args] : [script, ...args];
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"], env: vwEnv(opts.env) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 10000);
    child.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The environment vw runs with: VW_TEST_PRELOAD (set by `npm run test:asan`) becomes vw's
 * LD_PRELOAD only, so the sanitizer runtime loads into vw and not into curl, ab or wrk.
 */
export function vwEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  // vw runs as if started directly, even under `npm test`: npm's variables would switch on its
  // parent watch (src/cli/parent-watch.ts), whose /proc fd would then move the fd baselines.
  const env: NodeJS.ProcessEnv = { ...base };
  delete env.npm_lifecycle_event;
  const preload = base.VW_TEST_PRELOAD;
  return preload ? { ...env, LD_PRELOAD: preload } : env;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Open fds of a process (for leak checks). */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Waits until fn() is true, polling; throws with `what` after timeoutMs. */
export async function waitFor(fn: () => boolean, what: string | (() => string), timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(20);
  }
}

/** A raw TCP client that collects everything the server sends until it closes. */
export class RawClient {
  readonly socket: net.Socket;
  private store = Buffer.alloc(64 * 1024); // grows by doubling: appends stay O(n) overall
  private len = 0;
  private closedFlag = false;
  private waiters: (() => void)[] = [];
  readonly closed: Promise<void>;
  error: Error | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (d: Buffer) => {
      if (this.len + d.length > this.store.length) {
        const bigger = Buffer.alloc(Math.max(this.store.length * 2, this.len + d.length));
        this.store.copy(bigger, 0, 0, this.len);
        this.store = bigger;
      }
      d.copy(this.store, this.len);
      this.len += d.length;
      this.wake();
    });
    socket.on("error", (e) => (this.error = e));
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.closedFlag = true;
        this.wake();
        resolve();
      }),
    );
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, noDelay: true });
      s.once("connect", () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** Everything received so far (not consumed). */
  get received(): Buffer {
    return this.store.subarray(0, this.len);
  }

  /** Drops the first n bytes received (a caller that parsed them itself). */
  consume(n: number): void {
    this.store.copy(this.store, 0, n, this.len);
    this.len -= n;
  }

  /** Waits until pred(received) is true, the socket closes, or timeoutMs passes. */
  async until(pred: (b: Buffer) => boolean, timeoutMs = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.received) && !this.closedFlag) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far (${this.len} bytes): ${JSON.stringify(this.received.toString("latin1").slice(0, 300))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.received;
  }

  /** Waits for n complete responses and removes them from the buffer. */
  async responses(n: number, opts: { head?: boolean[]; timeoutMs?: number } = {}): Promise<Response[]> {
    const out: Response[] = [];
    await this.until((b) => {
      out.length = 0;
      let off = 0;
      for (let i = 0; i < n; i++) {
        const r = parseResponse(b, off, opts.head?.[i] ?? false);
        if (!r) return false;
        out.push(r);
        off += r.length;
      }
      return true;
    }, opts.timeoutMs);
    if (out.length < n) throw new Error(`connection closed after ${out.length} of ${n} responses`);
    const used = out.reduce((s, r) => s + r.length, 0);
    for (const r of out) r.body = Buffer.from(r.body); // own the bytes: consume() reuses the store
    this.consume(used);
    return out;
  }

  /** One request, one response. */
  async request(raw: string, opts: { head?: boolean; timeoutMs?: number } = {}): Promise<Response> {
    this.write(raw);
    const [r] = await this.responses(1, { head: [opts.head ?? false], timeoutMs: opts.timeoutMs });
    return r;
  }

  /** Resolves when the server has closed the connection (EOF), or rejects after timeoutMs. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    await this.until(() => false, timeoutMs).catch((e: Error) => {
      if (!this.closedFlag) throw e;
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface Response {
  version: string;
  status: number;
  reason: string;
  headers: Map<string, string[]>; // lower-case names
  header(name: string): string | undefined;
  body: Buffer;
  length: number; // bytes this response took on the wire
  raw: string; // the head, as text
}

/** Parses one complete response at buf[off...], or undefined if it is not all there yet. */
export function parseResponse(buf: Buffer, off = 0, head = false): Response | undefined {
  const end = buf.indexOf("\r\n\r\n", off, "latin1");
  if (end < 0) return undefined;
  const text = buf.subarray(off, end).toString("latin1");
  const [statusLine, ...lines] = text.split("\r\n");
  const m = /^(HTTP\/\d\.\d) (\d{3}) (.*)$/.exec(statusLine);
  if (!m) throw new Error(`malformed status line: ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const i = line.indexOf(":");
    if (i <= 0) throw new Error(`malformed header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, i).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(i + 1).trim()]);
  }
  const cl = headers.get("content-length");
  const bodyLen = head ? 0 : cl ? Number(cl[0]) : 0;
  const bodyStart = end + 4;
  if (buf.length < bodyStart + bodyLen) return undefined;
  return {
    version: m[1],
    status: Number(m[2]),
    reason: m[3],
    headers,
    header: (n: string) => headers.get(n.toLowerCase())?.[0],
    body: buf.subarray(bodyStart, bodyStart + bodyLen),
    length: bodyStart + bodyLen - off,
    raw: text,
  };
}

/** Installed command-line tool, or undefined. */
export function which(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = path.join(dir, tool);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** One series of Prometheus text: `name{labels} value`. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of a Prometheus text exposition (comments skipped). */
export function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * The sum of the series of `name` whose labels include `labels` (a number n means
 * {worker: "n"}): vw_syscalls_total of worker 0 is all its system calls, whatever the kind.
 * Throws when no series matches.
 */
export function metricSum(text: string, name: string, labels: Record<string, string> | number = 0): number {
  const want = typeof labels === "number" ? { worker: String(labels) } : labels;
  const hits = parseMetrics(text).filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  if (hits.length === 0) throw new Error(`${name}${JSON.stringify(want)} missing from /metrics`);
  return hits.reduce((n, s) => n + s.value, 0);
}

/** metricSum over a fresh scrape of a vw started with --metrics 127.0.0.1:PORT. */
export async function metricValue(port: number, name: string, labels: Record<string, string> | number = 0): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return metricSum(text, name, labels);
}
