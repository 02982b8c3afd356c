// native.ts: the only file that loads the addon, and the exact shape of what native/vw.cc exports.
import * as path from "node:path";

import type { NativeFlagValues } from "./cli/flag-table";

export interface NativeListen {
  family: 4 | 6;
  host: string;
  port: number;
  dualStack: boolean;
}

/** --access-log as the addon takes it: an fd the launcher opened (owned: the vw-log thread closes it). */
export interface NativeAccessLog {
  fd: number;
  owned: boolean;
  format: LogFormat;
}

/**
 * The config `start()` reads (native/worker/config.h, `VW_CONFIG_FIELDS` and `VW_LIMITS_FIELDS`): every
 * flag marked `native` in the flag table under its snake_case name (`idle_timeout_ms`: ms,
 * `defer_accept_s`: s), plus the fields that are not flags.
 */
export type NativeConfig = NativeFlagValues & {
  cpus: number[]; // one worker per entry, pinned to that CPU
  access_log: NativeAccessLog | null;
  linger_timeout_ms: number; // draining unread input after a closing response
  drain_timeout_ms: number; // graceful stop: in-flight responses get this long
};

export type LogFormat = "common" | "combined";

export interface ResponseSpec {
  path: string | Buffer; // "" for an error page; bytes: the percent-decoded request path
  status: number;
  headers: string; // extra header lines, each ending in CRLF
  body: Buffer;
  etag?: string; // strong validator, quotes included
  lastModified?: number; // seconds since the epoch
  notModifiedHeaders?: string; // header lines of the precomputed 304
}

export interface NativeTable {
  routes: ResponseSpec[];
  errors: ResponseSpec[];
}

export interface NativeWorker {
  id: number;
  cpu: number;
  getcpu: number;
  tid: number;
  policy: "SCHED_FIFO" | "SCHED_RR" | "SCHED_OTHER";
  priority: number;
  rtErrno: number;
  rtMessage: string;
}

export interface NativeBound {
  host: string;
  port: number;
  family: 4 | 6;
  address: string; // "[::]:8085", "127.0.0.1:8085"
}

/** What failed (native/worker/config.h `Failure`): a listener step, the thread, pinning, the engine, the table. */
export type FailureStep =
  | "address"
  | "socket"
  | "setsockopt"
  | "bind"
  | "listen"
  | "getsockname"
  | "thread"
  | "pin"
  | "engine"
  | "engine_setup"
  | "uring_setup"
  | "table"
  | "affinity";

/** A start, reload or allowedCpus failure, in fields (src/start-failure.ts words it). */
export interface NativeFailure {
  ok: false;
  errno: number;
  message: string; // strerror(errno)
  step: FailureStep;
  worker: number | null; // the worker that failed; null before the workers (probe, table)
  target: string; // what the step worked on: "[::]:80", a CPU number, an engine name; "" if none
  port: number | null; // a listener's port
  detail: string; // the socket option, the engine's own step, the table's fault; "" if none
}

declare const handleBrand: unique symbol;
export type ServerHandle = { readonly [handleBrand]: true };

export interface NativeStarted {
  ok: true;
  handle: ServerHandle;
  workers: NativeWorker[];
  listen: NativeBound[];
  stats: ArrayBuffer;
}

/**
 * One counter of a worker's stats slot, as native/worker/stats.h declares it: `kind` counter (only
 * grows), gauge (a value now) or internal (feeds other figures only); `unit` count, bytes, us
 * (µs: exported in seconds) or id; `metric` its Prometheus family ("" when internal); `label`
 * "key=value" telling it from the family's other series, or "".
 */
export interface StatsCounter {
  name: string;
  offset: number;
  kind: "counter" | "gauge" | "internal";
  unit: "count" | "bytes" | "us" | "id";
  metric: string;
  label: string;
  help: string;
}

/**
 * Where the server-side latency histogram sits in a slot: `buckets` counts of 8 bytes from
 * byte `offset`, bucket i holding requests that took at most 2^(firstLog2 + i) ns (the last
 * one: everything slower), and the sum of their latencies in ns at `sumOffset`.
 */
export interface LatencyLayout {
  offset: number;
  buckets: number;
  firstLog2: number;
  sumOffset: number;
}

/** The stats slot's layout: byte offsets by counter name, each counter described, the histogram. */
export interface StatsLayout {
  slotBytes: number;
  fields: Record<string, number>;
  counters: StatsCounter[];
  latency: LatencyLayout;
}

export interface CpuTrial {
  cpu: number;
  pinErrno: number;
  getcpu: number;
  rtErrno: number;
  policy: NativeWorker["policy"];
  priority: number;
  tid: number;
}

export interface NativeAddon {
  allowedCpus(): number[] | NativeFailure;
  /** The engines this build has: uring only when liburing was found at build time. */
  engines(): string[];
  /** Every engine vw knows, built or not, in its order (native/engine/engines.cc). */
  allEngines(): string[];
  /** The fields `start()` reads from its config (native/worker/config.h's X-macro lists), in order. */
  configFields(): string[];
  trialCpus(cpus: number[], policy: "fifo" | "rr" | "other", priority: number): CpuTrial[];
  statsLayout(): StatsLayout;
  start(config: NativeConfig, table: NativeTable): NativeStarted | NativeFailure;
  reload(handle: ServerHandle, table: NativeTable): { ok: true } | NativeFailure;
  reclaim(handle: ServerHandle): number;
  /** --access-log reopened (SIGUSR1): vw-log finishes the old fd, closes it, writes to `fd`. */
  reopenAccessLog(handle: ServerHandle, fd: number): void;
  requestStop(handle: ServerHandle, immediate: boolean): void;
  join(handle: ServerHandle): Promise<void>;
}

const root = path.resolve(__dirname, "..", "..");
// VW_ADDON=debug prefers the sanitizer build (npm run test:asan).
const order = process.env.VW_ADDON === "debug" ? ["Debug", "Release"] : ["Release", "Debug"];
const candidates = order.map((b) => path.join(root, "build", b, "vw.node"));

function load(): NativeAddon {
  const tried: string[] = [];
  for (const file of candidates) {
    try {
      return require(file) as NativeAddon;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      tried.push(`${file} (${code === "MODULE_NOT_FOUND" ? "not built" : (err as Error).message})`);
    }
  }
  throw new Error(
    `the native addon is not built; tried ${tried.join(", ")}. Run \`npm install\` (or \`npm run build:native\`) in ${root}.`,
  );
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  addon ??= load();
  return addon;
}
