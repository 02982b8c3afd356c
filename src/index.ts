// index.ts: the public API: start a server from a config, read its stats, stop it.
import * as fs from "node:fs";

import { buildTable } from "./content/content";
import type { Config } from "./config";
import { toNative } from "./config";
import { allowedCpus, selectCpus } from "./cpu";
import { StartError } from "./errors";
import { native, type NativeBound, type NativeAccessLog, type NativeTable, type NativeWorker, type ServerHandle } from "./native";
import { describeFailure } from "./start-failure";
import { StatsReader } from "./stats/stats";

export type { Config, Options } from "./config";
export { resolveConfig, parseListen } from "./config";
export { ConfigError, StartError } from "./errors";

export interface Server {
  readonly workers: NativeWorker[];
  readonly listen: NativeBound[];
  readonly stats: StatsReader;
  readonly startedAt: number; // performance.now() at start, ms
  /** Stops accepting, lets in-flight responses finish (5 s at most), joins the workers. */
  stop(): Promise<void>;
  /** Closes everything at once; the pending stop() promise resolves when workers have exited. */
  stopNow(): void;
  /**
   * Swaps in a new table atomically; open connections keep going. The old table is freed once
   * no worker can still read it. Throws StartError when the addon refuses the table.
   */
  reload(table: NativeTable): void;
  /** Retired tables not freed yet (0 once every worker has moved on). */
  retired(): number;
  /**
   * --access-log: opens the file again (after logrotate moved it) and switches the log to it.
   * undefined when done (or there is nothing to reopen), else why not (the old file stays).
   */
  reopenAccessLog(): string | undefined;
}

/** Opens --access-log's file for appending (created 0644), or throws with what went wrong. */
function openLogFile(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o644); // libuv adds O_CLOEXEC
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOENT" ? "its directory does not exist" : e.code === "EACCES" ? "permission denied" : e.code === "EISDIR" ? "it is a directory" : e.message;
    throw new StartError(`--access-log ${file}: cannot open it for appending: ${why}`, e.code ?? "EIO");
  }
}

/**
 * Starts the workers. Synchronous: returns once every worker has pinned itself, bound its
 * sockets and is serving (a few milliseconds), or throws StartError with a one-line reason.
 */
export function start(config: Config, table: NativeTable = buildTable(config.content)): Server {
  if (!native().engines().includes(config.engine)) {
    throw new StartError(
      config.engine === "uring"
        ? "--engine uring: this build has no io_uring support (liburing was missing when the addon was built); apt-get install liburing-dev, then npm rebuild"
        : `--engine ${config.engine}: not in this build (it has ${native().engines().join(", ")}); npm rebuild`,
      "ENOENGINE",
    );
  }
  const cpus = selectCpus(allowedCpus(), config.cpus, config.workers);
  const log = config.accessLog;
  let accessLog: NativeAccessLog | null = null;
  if (log) {
    accessLog = log.path === "-" ? { fd: 1, owned: false, format: log.format } : { fd: openLogFile(log.path), owned: true, format: log.format };
  }
  const r = native().start(toNative(config, cpus, accessLog), table);
  if (!r.ok) {
    const f = describeFailure(r);
    throw new StartError(f.text, f.code);
  }
  const handle: ServerHandle = r.handle;
  const stats = new StatsReader(r.stats, r.workers.length);
  let joined: Promise<void> | undefined;
  const join = (): Promise<void> => (joined ??= native().join(handle));
  let reclaimTimer: NodeJS.Timeout | undefined;
  const reclaimSoon = (): void => {
    // Workers pass a quiescent point within microseconds of the wake-up; a pending write to a
    // slow reader can hold an old table longer, so keep trying, unobtrusively.
    clearTimeout(reclaimTimer);
    if (joined || native().reclaim(handle) === 0) return;
    reclaimTimer = setTimeout(reclaimSoon, 20);
    reclaimTimer.unref();
  };
  return {
    workers: r.workers,
    listen: r.listen,
    stats,
    startedAt: performance.now(),
    stop() {
      native().requestStop(handle, false);
      return join();
    },
    stopNow() {
      native().requestStop(handle, true);
      void join();
    },
    reload(table: NativeTable) {
      const r = native().reload(handle, table);
      if (!r.ok) {
        const f = describeFailure(r);
        throw new StartError(f.text, f.code);
      }
      setImmediate(reclaimSoon);
    },
    retired() {
      return joined ? 0 : native().reclaim(handle);
    },
    reopenAccessLog() {
      if (!log || log.path === "-" || joined) return undefined;
      try {
        native().reopenAccessLog(handle, openLogFile(log.path));
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  };
}
