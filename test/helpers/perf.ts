// perf.ts (test helper): the kernel's own count of a thread's system calls, from `perf stat -e
// raw_syscalls:sys_enter`, counting from a known moment rather than from whenever perf attached.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";

/** A running count; stop() ends it and gives the number of system calls entered. */
export interface SyscallCount {
  stop(): Promise<number>;
}

/**
 * Starts `perf stat -e raw_syscalls:sys_enter -t tid` with its events disabled (-D -1) and
 * resolves once perf has answered `enable` on its control pipe (perf-stat(1) --control), so
 * nothing done after the await is missed however slowly perf starts. For a thread that creates
 * threads, perf's counters are inherited by those created after it attached (attr.inherit).
 * Rejects when perf exits or does not answer within `timeoutMs`.
 */
export async function countSyscalls(perf: string, tid: number, timeoutMs = 10000): Promise<SyscallCount> {
  const out = path.join(os.tmpdir(), `vw-perf-${process.pid}-${tid}.txt`);
  const p = spawn(perf, ["stat", "-D", "-1", "--control", "fd:3,4", "-e", "raw_syscalls:sys_enter", "-x,", "-o", out, "-t", String(tid)], {
    stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
  let stderr = "";
  p.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const ctl = p.stdio[3] as Writable;
  const ack = p.stdio[4] as Readable;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`perf did not acknowledge 'enable' within ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
      ack.on("data", (d: Buffer) => {
        if (d.toString().startsWith("ack")) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`perf exited before counting: ${stderr.trim()}`));
      });
      ctl.write("enable\n");
    });
  } catch (e) {
    p.kill("SIGKILL");
    fs.rmSync(out, { force: true });
    throw e;
  }
  return {
    async stop(): Promise<number> {
      p.kill("SIGINT");
      await exited;
      const text = fs.readFileSync(out, "utf8");
      fs.rmSync(out, { force: true });
      const n = /^(\d+),/m.exec(text)?.[1];
      if (n === undefined) throw new Error(`no count in perf's output: ${text.trim()}`);
      return Number(n);
    },
  };
}
