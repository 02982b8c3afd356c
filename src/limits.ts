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

/** One line when --max-conns × workers cannot be met, else undefined. */
export function fdLimitNotice(maxConns: number, workers: number, limit = openFileLimit()): string | undefined {
  const reserve = 64; // Node's own fds, listeners, epoll, timers, the control socket
  if (limit === undefined || maxConns * workers + reserve <= limit) return undefined;
  const each = Math.max(0, Math.floor((limit - reserve) / workers));
  return (
    `open-file limit ${limit} (ulimit -n, already raised to the hard limit) holds about ${each} connections per worker, ` +
    `below --max-conns ${maxConns}; beyond it connections are accepted and closed at once (raise the hard limit, e.g. LimitNOFILE= or ulimit -Hn)`
  );
}
