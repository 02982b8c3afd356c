// config.ts: the flags' values (flag table, flags.ts) → `Config`: the rules between flags and
// the settings several flags make together, then the addon's view of it. Every problem is one
// ConfigError sentence that says how to fix it; nothing here touches the system.
import type { ContentOptions } from "./content/content";
import { ConfigError } from "./errors";
import { flagValues, nativeValues, type FlagValues, type Options } from "./cli/flag-table";
import type { LogFormat, NativeAccessLog, NativeConfig } from "./native";

export type { Options } from "./cli/flag-table";
export { coalesceAutoBoundUs, parseCoalesce, parseListen, parseProxy, policies, type Coalesce, type Policy } from "./cli/flag-values";

/** Flags that only feed a composite setting below, absent from `Config` as themselves. */
type Composed = "accessLog" | "logFormat" | "route" | "dir" | "header" | "headerAlways" | "maxFileSize" | "maxTotal";

/**
 * Validated settings, ready for CPU selection and the addon: every flag's value as the flag table
 * types it (`idleTimeoutMs`, `listen`, `priority`: see FlagValues), with `listen` holding the
 * addresses to bind (from --port when no --listen), `priority` 0 under --policy other, and the
 * flags that work together gathered in `accessLog` and `content`.
 */
export type Config = Omit<FlagValues, Composed> & {
  /** --access-log and --log-format, or undefined for no log. */
  accessLog: AccessLog | undefined;
  /** --route, --dir, --header, --header-always, --max-file-size, --max-total, --max-header. */
  content: ContentOptions;
};

/** --access-log: where (a path, or "-" for stdout) and in which format. */
export interface AccessLog {
  path: string;
  format: LogFormat;
}

/** Settings that are not flags. */
export const defaults = {
  lingerTimeoutMs: 2000,
  drainTimeoutMs: 5000,
};

/**
 * Options (the flags, unchecked) → Config. Each value is checked by its flag table entry, then
 * the rules between flags; every problem is one ConfigError sentence that says how to fix it.
 */
export function resolveConfig(o: Options): Config {
  const v = flagValues(o);
  if (o.port !== undefined && v.listen.length > 0) {
    throw new ConfigError("--port and --listen both given: put the port in each --listen HOST:PORT instead");
  }
  const listen = v.listen.length > 0 ? v.listen : [{ family: 6 as const, host: "::", port: v.port, dualStack: true }];
  const seen = new Set<string>();
  for (const l of listen) {
    const key = `${l.host}|${l.port}`;
    if (l.port !== 0 && seen.has(key)) throw new ConfigError(`--listen: ${l.host}:${l.port} is given twice`);
    seen.add(key);
  }
  if (v.sqpoll && v.engine !== "uring") {
    throw new ConfigError(`--sqpoll works with --engine uring only (not ${v.engine}); add --engine uring or drop --sqpoll`);
  }
  if (v.proxy.length > 0 && v.engine === "blocking") {
    throw new ConfigError("--proxy works with --engine epoll, poll, select or uring; the blocking engine cannot relay (it blocks a thread on each connection)");
  }
  if (v.proxy.length === 0 && (o.proxyConns !== undefined || v.proxyFresh || o.proxyTimeout !== undefined || o.proxyPipeline !== undefined)) {
    throw new ConfigError("--proxy-conns, --proxy-fresh, --proxy-pipeline and --proxy-timeout need --proxy HOST:PORT");
  }
  if (v.proxyFresh && v.proxyPipeline > 1) {
    throw new ConfigError("--proxy-pipeline needs connections that stay open: drop --proxy-fresh or --proxy-pipeline");
  }
  if (o.accessLog === undefined && o.logFormat !== undefined) throw new ConfigError("--log-format needs --access-log PATH (or - for stdout)");
  if (v.accessLog === "-" && v.json) {
    throw new ConfigError("--access-log - and --json both want stdout: give --access-log a file, or drop --json");
  }
  const { accessLog, logFormat, route, dir, header, headerAlways, maxFileSize, maxTotal, ...rest } = v;
  // --proxy-fresh keeps its worker ~96 % busy with connection set-up and teardown; at SCHED_FIFO
  // that holds ksoftirqd on its CPU (the TCP work the kernel defers) off for seconds per run:
  // p99 30 ms against 1.8 ms under SCHED_OTHER (README, Proxy mode). An explicit --policy wins.
  const policy = v.proxyFresh && o.policy === undefined ? "other" : v.policy;
  return {
    ...rest,
    policy,
    // A relay waits on two hops per request (client, then backend): holding each wake-up back
    // delays both and halved vw's relay rate in bench:proxy for no CPU saved, so --proxy turns
    // the default `auto` off. An explicit --coalesce still applies.
    coalesce: v.proxy.length > 0 && o.coalesce === undefined ? { mode: "off", boundUs: 0 } : v.coalesce,
    listen,
    priority: policy === "other" ? 0 : v.priority,
    accessLog: accessLog === undefined ? undefined : { path: accessLog, format: logFormat },
    content: { routes: route, dirs: dir, headers: header, headersAlways: headerAlways, maxFileSize, maxTotal, maxHeader: v.maxHeader },
  };
}

/**
 * The addon's view of a config once the CPUs are chosen: every `native` flag under its
 * native/worker/config.h name (derived from the flag table), plus the CPUs, the access log's fd and
 * the settings that are not flags.
 */
export function toNative(c: Config, cpus: number[], accessLog: NativeAccessLog | null = null): NativeConfig {
  return {
    ...nativeValues(c),
    cpus,
    access_log: accessLog,
    linger_timeout_ms: defaults.lingerTimeoutMs,
    drain_timeout_ms: defaults.drainTimeoutMs,
  };
}
