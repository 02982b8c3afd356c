// native.ts: the only file that loads the addon, and the exact shape of what native/vw.cc exports.
import * as path from "node:path";

export interface NativeListen {
  family: 4 | 6;
  host: string;
  port: number;
  dualStack: boolean;
}

export interface NativeLimits {
  maxHeader: number;
  maxBody: number;
  maxConns: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  lingerTimeoutMs: number;
  drainTimeoutMs: number;
}

export interface NativeConfig {
  engine: string;
  sqpoll: boolean;
  coalesce: "auto" | "fixed" | "off";
  coalesceUs: number; // the most a wake-up is held back, µs
  cpus: number[];
  listen: NativeListen[];
  policy: "fifo" | "rr" | "other";
  priority: number;
  keepalive: boolean;
  locality: boolean;
  allow: { bytes: Buffer; prefix: number }[];
  backlog: number;
  proxy: NativeListen[]; // backends (empty: serve the table)
  proxyConns: number; // upstream connections per backend per worker
  proxyFresh: boolean;
  proxyTimeoutMs: number;
  deferAccept: number; // TCP_DEFER_ACCEPT seconds on each listener, 0 off
  fastopen: number; // TCP_FASTOPEN queue length on each listener, 0 off
  /** --access-log: an fd the launcher opened (owned: the addon's vw-log thread closes it). */
  accessLog: { fd: number; owned: boolean; format: LogFormat } | null;
  limits: NativeLimits;
}

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

export interface NativeFailure {
  ok: false;
  errno: number;
  message: string;
  what: string;
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
 * One counter of a worker's stats slot, as native/stats.h declares it: `kind` counter (only
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
