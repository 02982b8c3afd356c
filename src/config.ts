// config.ts: vw's settings, their defaults, and their validation. Every problem is one
// ConfigError sentence that says how to fix it; nothing here touches the system.
import * as net from "node:net";

import { parseCidr, type NativeCidr } from "./cidr";
import { defaultContent, type ContentOptions } from "./content";
import { ConfigError } from "./errors";
import type { LogFormat, NativeConfig, NativeListen } from "./native";

export type Policy = "fifo" | "rr" | "other";

/**
 * The I/O strategies a worker can use; HTTP, the table and the stats are the same under each.
 * `uring` exists only when the addon was built with liburing (native().engines() says).
 */
export const engines = ["epoll", "uring", "poll", "select", "blocking"] as const;
export type Engine = (typeof engines)[number];

/** What a user can set (flags today, a config file later): strings and numbers, unchecked. */
export interface Options {
  engine?: string;
  sqpoll?: boolean; // --engine uring only: a kernel thread polls the submission queue
  coalesce?: string; // "auto" | "off" | microseconds
  port?: number;
  listen?: string[];
  workers?: number;
  cpus?: string;
  policy?: string;
  priority?: number;
  requireRt?: boolean;
  keepalive?: boolean;
  backlog?: number;
  deferAccept?: number; // seconds, 0 = off
  fastopen?: number; // TCP_FASTOPEN queue length, 0 = off
  accessLog?: string; // a file, or "-" for stdout
  logFormat?: string; // "common" | "combined"
  headerTimeout?: number; // seconds
  idleTimeout?: number; // seconds
  maxHeader?: number; // bytes
  maxBody?: number; // bytes
  maxConns?: number; // per worker
  locality?: boolean;
  allow?: string[]; // CIDRs
  user?: string; // drop to this user after start (root only)
  route?: string[]; // "PATH=TEXT" | "PATH=@FILE"
  dir?: string[];
  header?: string[]; // "Name: value" on 2xx and 304 responses
  headerAlways?: string[]; // "Name: value" on every response
  maxFileSize?: number;
  maxTotal?: number;
  watch?: boolean; // reload when a served file changes (default on when there is content)
  proxy?: string[]; // "HOST:PORT" backends: relay every request instead of the table
  proxyConns?: number; // per backend per worker
  proxyFresh?: boolean; // a new upstream connection per request, closed after
  proxyTimeout?: number; // seconds
}

/** Validated settings, ready for cpu selection and the addon. */
export interface Config {
  engine: Engine;
  sqpoll: boolean;
  coalesce: Coalesce;
  listen: NativeListen[];
  workers: number | undefined;
  cpus: string | undefined;
  policy: Policy;
  priority: number;
  requireRt: boolean;
  keepalive: boolean;
  backlog: number;
  deferAcceptS: number; // TCP_DEFER_ACCEPT on listeners, 0 off
  fastopen: number; // TCP_FASTOPEN queue length on listeners, 0 off
  accessLog: AccessLog | undefined;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeader: number;
  maxBody: number;
  maxConns: number;
  locality: boolean;
  allow: NativeCidr[];
  user: string | undefined;
  content: ContentOptions;
  watch: boolean;
  /** --proxy: the backends requests are relayed to (empty: serve the table). */
  proxy: NativeListen[];
  proxyConns: number;
  proxyFresh: boolean;
  proxyTimeoutMs: number;
}

/**
 * --coalesce: how long a worker may hold a wake-up back so requests that arrive close together
 * are answered in one pass. `auto` adapts the hold between 0 and `boundUs` µs by the batches it
 * yields; `fixed` always holds `boundUs` µs between busy passes; `off` wakes per ready batch.
 */
export interface Coalesce {
  mode: "auto" | "fixed" | "off";
  boundUs: number; // the most a wake-up is held back, µs
}

/** --access-log: where (a path, or "-" for stdout) and in which format. */
export interface AccessLog {
  path: string;
  format: LogFormat;
}

function accessLog(o: Options): AccessLog | undefined {
  const format = o.logFormat ?? "combined";
  if (format !== "common" && format !== "combined") {
    throw new ConfigError(`--log-format ${format}: choose common or combined`);
  }
  if (o.accessLog === undefined) {
    if (o.logFormat !== undefined) throw new ConfigError("--log-format needs --access-log PATH (or - for stdout)");
    return undefined;
  }
  if (o.accessLog.trim() === "") throw new ConfigError("--access-log: give a file path, or - for stdout");
  return { path: o.accessLog, format };
}

/** The ceiling `--coalesce auto` adapts within, µs: the most latency it can add to a request. */
export const coalesceAutoBoundUs = 250;
const coalesceMaxUs = 100_000;

/** "auto" | "off" | a whole number of microseconds (1 to 100000) → the setting. */
export function parseCoalesce(text: string): Coalesce {
  if (text === "auto") return { mode: "auto", boundUs: coalesceAutoBoundUs };
  if (text === "off") return { mode: "off", boundUs: 0 };
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > coalesceMaxUs) {
    throw new ConfigError(
      `--coalesce ${text}: write auto, off, or a hold in microseconds from 1 to ${coalesceMaxUs} (e.g. --coalesce 200)`,
    );
  }
  return { mode: "fixed", boundUs: Number(text) };
}

export const defaults = {
  port: 8085,
  policy: "fifo" as Policy,
  priority: 50,
  backlog: 4096,
  deferAccept: 1,
  fastopen: 0,
  headerTimeout: 10,
  idleTimeout: 60,
  maxHeader: 8 * 1024,
  maxBody: 1024 * 1024,
  maxConns: 65536,
  proxyConns: 16,
  proxyTimeout: 60,
  lingerTimeoutMs: 2000,
  drainTimeoutMs: 5000,
};

function integer(flag: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new ConfigError(`${flag} ${v}: must be a whole number from ${lo} to ${hi}`);
  }
  return v;
}

function seconds(flag: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0 || v > 86400) {
    throw new ConfigError(`${flag} ${v}: must be a number of seconds above 0 (e.g. 0.5, 10), at most 86400`);
  }
  return Math.round(v * 1000);
}

/** "HOST:PORT", "[IPv6]:PORT", "*:PORT" or ":PORT" → a listen address (numeric hosts only). */
export function parseListen(text: string, flag = "--listen"): NativeListen {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(text.trim());
  if (!m) {
    throw new ConfigError(`${flag} ${text}: write HOST:PORT, e.g. 127.0.0.1:8085, [::1]:8085 or *:8085`);
  }
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${flag} ${text}: port ${port} is above 65535`);
  const host = m[1] ?? m[2];
  if (m[1] === undefined && (host === "" || host === "*")) {
    return { family: 6, host: "::", port, dualStack: true };
  }
  if (host === "localhost") return { family: 4, host: "127.0.0.1", port, dualStack: false };
  const family = net.isIP(host);
  if (family === 4 && m[1] === undefined) return { family: 4, host, port, dualStack: false };
  if (family === 6 && m[1] !== undefined) return { family: 6, host, port, dualStack: false };
  if (family === 6) throw new ConfigError(`${flag} ${text}: put an IPv6 address in brackets, e.g. [${host}]:${port}`);
  throw new ConfigError(`${flag} ${text}: "${host}" is not a numeric IP address (vw does not resolve names)`);
}

export function resolveConfig(o: Options): Config {
  const policy = o.policy ?? defaults.policy;
  if (policy !== "fifo" && policy !== "rr" && policy !== "other") {
    throw new ConfigError(`--policy ${policy}: choose fifo, rr or other`);
  }
  if (o.port !== undefined && o.listen !== undefined && o.listen.length > 0) {
    throw new ConfigError("--port and --listen both given: put the port in each --listen HOST:PORT instead");
  }
  const port = integer("--port", o.port ?? defaults.port, 0, 65535);
  const listen =
    o.listen !== undefined && o.listen.length > 0
      ? o.listen.map((t) => parseListen(t))
      : [{ family: 6 as const, host: "::", port, dualStack: true }];
  const seen = new Set<string>();
  for (const l of listen) {
    const key = `${l.host}|${l.port}`;
    if (l.port !== 0 && seen.has(key)) throw new ConfigError(`--listen: ${l.host}:${l.port} is given twice`);
    seen.add(key);
  }
  const engine = o.engine ?? "epoll";
  if (!(engines as readonly string[]).includes(engine)) {
    throw new ConfigError(`--engine ${engine}: choose ${engines.join(", ")}`);
  }
  if (o.sqpoll && engine !== "uring") {
    throw new ConfigError(`--sqpoll works with --engine uring only (not ${engine}); add --engine uring or drop --sqpoll`);
  }
  const proxy = (o.proxy ?? []).map(parseProxy);
  if (proxy.length > 0 && (engine === "uring" || engine === "blocking")) {
    throw new ConfigError(`--proxy works with --engine epoll, poll or select; the ${engine} engine cannot relay yet`);
  }
  if (proxy.length === 0 && (o.proxyConns !== undefined || o.proxyFresh || o.proxyTimeout !== undefined)) {
    throw new ConfigError("--proxy-conns, --proxy-fresh and --proxy-timeout need --proxy HOST:PORT");
  }
  return {
    engine: engine as Engine,
    sqpoll: o.sqpoll ?? false,
    coalesce: parseCoalesce(o.coalesce ?? "auto"),
    listen,
    workers: o.workers === undefined ? undefined : integer("--workers", o.workers, 1, 4096),
    cpus: o.cpus,
    policy,
    priority: policy === "other" ? 0 : integer("--priority", o.priority ?? defaults.priority, 1, 99),
    requireRt: o.requireRt ?? false,
    keepalive: o.keepalive ?? true,
    backlog: integer("--backlog", o.backlog ?? defaults.backlog, 1, 1 << 20),
    deferAcceptS: integer("--defer-accept", o.deferAccept ?? defaults.deferAccept, 0, 3600),
    fastopen: integer("--fastopen", o.fastopen ?? defaults.fastopen, 0, 1 << 20),
    accessLog: accessLog(o),
    headerTimeoutMs: seconds("--header-timeout", o.headerTimeout ?? defaults.headerTimeout),
    idleTimeoutMs: seconds("--idle-timeout", o.idleTimeout ?? defaults.idleTimeout),
    maxHeader: integer("--max-header", o.maxHeader ?? defaults.maxHeader, 256, 1 << 20),
    maxBody: integer("--max-body", o.maxBody ?? defaults.maxBody, 0, 2 ** 32 - 1),
    maxConns: integer("--max-conns", o.maxConns ?? defaults.maxConns, 1, 1 << 24),
    locality: o.locality ?? false,
    allow: (o.allow ?? []).map(parseCidr),
    user: o.user,
    content: {
      routes: o.route ?? [],
      dirs: o.dir ?? [],
      headers: o.header ?? [],
      headersAlways: o.headerAlways ?? [],
      maxFileSize: integer("--max-file-size", o.maxFileSize ?? defaultContent.maxFileSize, 0, 2 ** 32 - 1),
      maxTotal: integer("--max-total", o.maxTotal ?? defaultContent.maxTotal, 0, 2 ** 40),
      maxHeader: integer("--max-header", o.maxHeader ?? defaults.maxHeader, 256, 1 << 20),
    },
    watch: o.watch ?? true,
    proxy,
    proxyConns: integer("--proxy-conns", o.proxyConns ?? defaults.proxyConns, 1, 65536),
    proxyFresh: o.proxyFresh ?? false,
    proxyTimeoutMs: seconds("--proxy-timeout", o.proxyTimeout ?? defaults.proxyTimeout),
  };
}

/** --proxy HOST:PORT: a backend, numeric (or localhost) with a real port, like --listen. */
export function parseProxy(text: string): NativeListen {
  const a = parseListen(text, "--proxy");
  if (a.dualStack || a.port === 0) {
    throw new ConfigError(`--proxy ${text}: name the backend's address and port, e.g. 127.0.0.1:8080 or [::1]:8080`);
  }
  return a;
}

/** The addon's view of a config, once the CPUs are chosen. */
export function toNative(c: Config, cpus: number[], accessLog: NativeConfig["accessLog"] = null): NativeConfig {
  return {
    engine: c.engine,
    sqpoll: c.sqpoll,
    coalesce: c.coalesce.mode,
    coalesceUs: c.coalesce.boundUs,
    cpus,
    listen: c.listen,
    policy: c.policy,
    priority: c.priority,
    keepalive: c.keepalive,
    locality: c.locality,
    allow: c.allow,
    backlog: c.backlog,
    proxy: c.proxy,
    proxyConns: c.proxyConns,
    proxyFresh: c.proxyFresh,
    proxyTimeoutMs: c.proxyTimeoutMs,
    deferAccept: c.deferAcceptS,
    fastopen: c.fastopen,
    accessLog,
    limits: {
      maxHeader: c.maxHeader,
      maxBody: c.maxBody,
      maxConns: c.maxConns,
      headerTimeoutMs: c.headerTimeoutMs,
      idleTimeoutMs: c.idleTimeoutMs,
      lingerTimeoutMs: defaults.lingerTimeoutMs,
      drainTimeoutMs: defaults.drainTimeoutMs,
    },
  };
}
