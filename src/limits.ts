// limits.ts: whether the process may open as many descriptors as --max-conns promises. Node
// raises the soft RLIMIT_NOFILE to the hard limit when it starts, so what is left is to say so
// when even the hard limit is too low.
import * as fs from "node:fs";

export function openFileLimit(): number | undefined {
  try {
    const line = fs.readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = line?.trim().split(/\s+/)[3];
    return soft === undefined || soft === "unlimited" ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** Descriptors vw needs besides connections: Node's own, listeners, epoll, timers, the control socket. */
const RESERVE = 64;
/** With the default --max-conns, the fewest connections per worker worth no notice. */
export const MIN_CONNS_PER_WORKER = 1024;

/**
 * One line when the open-file limit cannot hold what was asked, else undefined. With an explicit
 * --max-conns (`explicit`), that many per worker; with the default (65536, a ceiling rather than
 * a request), only when the limit leaves a worker fewer than MIN_CONNS_PER_WORKER connections.
 */
export function fdLimitNotice(maxConns: number, workers: number, explicit: boolean, limit = openFileLimit()): string | undefined {
  if (limit === undefined) return undefined;
  const each = Math.max(0, Math.floor((limit - RESERVE) / workers));
  if (explicit ? each >= maxConns : each >= Math.min(maxConns, MIN_CONNS_PER_WORKER)) return undefined;
  const asked = explicit ? `--max-conns ${maxConns}` : `${MIN_CONNS_PER_WORKER} per worker`;
  return (
    `open-file limit ${limit} holds about ${each} connections per worker, below ${asked}; more are closed at accept ` +
    `(raise the hard limit: ulimit -Hn, or LimitNOFILE= under systemd)`
  );
}
