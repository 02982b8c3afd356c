// proc.ts: every child the bench starts goes through here, so every one of them
// is stopped by its own PID (SIGTERM, then SIGKILL after 2 s), even on Ctrl-C.
import { spawn, type ChildProcess } from "node:child_process";
import * as net from "node:net";
import { bound, sleep } from "./util";

const live = new Set<Child>();
let stopping = false; // set by stopAll(): no new children after an interrupt

export interface Child {
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Resolves with the exit code (or the signal name) once the child is gone. */
  readonly exited: Promise<number | string>;
  /** stdout+stderr, last 8 KiB (for error messages; wrk output is read in full). */
  output(): string;
  stdout(): string;
  hasExited(): boolean;
}

const TAIL = 8192;

export function start(cmd: string, args: readonly string[], opts: { keepStdout?: boolean } = {}): Child {
  if (stopping) throw new Error("interrupted");
  const proc = spawn(cmd, [...args], { stdio: ["ignore", "pipe", "pipe"] });
  if (proc.pid === undefined) throw new Error(`cannot spawn ${cmd}`);
  const pid = proc.pid;
  let tail = "";
  let out = "";
  let done = false;
  const add = (chunk: Buffer, isStdout: boolean): void => {
    const s = chunk.toString("utf8");
    if (isStdout && opts.keepStdout === true) out += s;
    tail = (tail + s).slice(-TAIL);
  };
  proc.stdout?.on("data", (c: Buffer) => add(c, true));
  proc.stderr?.on("data", (c: Buffer) => add(c, false));
  const exited = new Promise<number | string>((resolve) => {
    proc.on("error", (e) => {
      tail += `\n${e.message}`;
    });
    proc.on("close", (code, signal) => {
      done = true;
      live.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
  });
  const child: Child = { pid, proc, exited, output: () => tail, stdout: () => out, hasExited: () => done };
  live.add(child);
  return child;
}

/** SIGTERM by PID, SIGKILL by PID if still there after `graceMs`. */
export async function stop(child: Child, graceMs = 2000): Promise<void> {
  if (child.hasExited()) return;
  signal(child.pid, "SIGTERM");
  const gone = await Promise.race([child.exited.then(() => true), bound(graceMs).then(() => false)]);
  if (!gone) {
    signal(child.pid, "SIGKILL");
    await Promise.race([child.exited, bound(2000)]);
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Waits for a child with a hard time bound; SIGTERM/SIGKILL it when the bound passes. */
export async function waitBounded(child: Child, limitMs: number): Promise<{ code: number | string; timedOut: boolean }> {
  const r = await Promise.race([child.exited.then((code) => ({ code, timedOut: false })), bound(limitMs).then(() => null)]);
  if (r !== null) return r;
  await stop(child);
  return { code: "timeout", timedOut: true };
}

/** On Ctrl-C/SIGTERM: stop every child we still know of, each by its PID, and wait for them. */
export async function stopAll(): Promise<void> {
  stopping = true;
  await Promise.all([...live].map((c) => stop(c)));
}

/** Last resort when the process exits: SIGKILL each child we still know of, by PID. */
export function killAllSync(): void {
  for (const c of live) signal(c.pid, "SIGKILL");
  live.clear();
}

/** Run a command to completion (bounded) and return its stdout+stderr and exit code. */
export async function run(cmd: string, args: readonly string[], limitMs = 30_000): Promise<{ code: number | string; out: string }> {
  const c = start(cmd, args, { keepStdout: true });
  const { code } = await waitBounded(c, limitMs);
  return { code, out: c.stdout() + c.output() };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** True when 127.0.0.1:port can be bound right now (for a server whose port is fixed). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.unref();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const finish = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => finish(false));
    sock.once("connect", () => finish(true));
    sock.once("error", () => finish(false));
  });
}

/** Poll connect() until the port accepts, the child dies, or `limitMs` passes. */
export async function waitForPort(port: number, child: Child, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (child.hasExited()) throw new Error(`exited before listening: ${child.output().trim().slice(-400)}`);
    if (await tryConnect(port)) return;
    await sleep(25);
  }
  throw new Error(`port ${port} not accepting after ${limitMs} ms: ${child.output().trim().slice(-400)}`);
}
