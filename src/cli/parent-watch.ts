// parent-watch.ts: started by npm (npx vw, npm exec, npm start), vw stops when the process that
// started it is gone. npm forwards SIGINT/SIGTERM only to its direct child; with npm's default
// script shell (dash, which does not exec its last command) that child is `sh -c 'vw ...'`,
// which dies of the SIGTERM and leaves vw orphaned, still holding its port. Nothing signals an
// orphan, so vw looks: its parent pid changes when the parent exits (reparenting to init or a
// subreaper).
import * as fs from "node:fs";

/** The ppid field of a /proc/PID/stat line ("pid (comm) state ppid ..."; comm may hold spaces and parentheses). */
function ppidOf(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/**
 * The parent pid as the kernel sees it now (process.ppid is read once at start, not live), or
 * undefined when /proc cannot be read just now (out of file descriptors: EMFILE).
 */
export function currentParentPid(): number | undefined {
  try {
    return ppidOf(fs.readFileSync("/proc/self/stat", "utf8"));
  } catch {
    return undefined;
  }
}

/** Whether npm started this process (npm sets npm_lifecycle_event for scripts and `npm exec`). */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.npm_lifecycle_event !== undefined && env.npm_lifecycle_event !== "";
}

/**
 * Calls onGone(parent) once when the parent pid is no longer `parent` (default: the parent at
 * process start, so a parent lost during start-up counts too); checks every `everyMs` ms on the
 * Node thread, never on a worker. /proc/self/stat is opened once and re-read in place (pread at
 * offset 0), so the check opens no descriptor (the process's fd count stays put, and it works
 * while out of fds). The timer does not keep Node alive. Returns a function that stops watching.
 */
export function watchParent(onGone: (parentPid: number) => void, everyMs = 250, parent = process.ppid): () => void {
  let fd: number | undefined;
  try {
    fd = fs.openSync("/proc/self/stat", "r");
  } catch {
    fd = undefined; // fall back to opening it at each check
  }
  const buf = Buffer.alloc(4096);
  const read = (): number | undefined => {
    if (fd === undefined) return currentParentPid();
    try {
      return ppidOf(buf.toString("latin1", 0, fs.readSync(fd, buf, 0, buf.length, 0)));
    } catch {
      return undefined;
    }
  };
  const stop = (): void => {
    clearInterval(timer);
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined;
  };
  const timer = setInterval(() => {
    const now = read();
    if (now === undefined || now === parent) return; // unreadable this time: look again next time
    stop();
    onGone(parent);
  }, everyMs);
  timer.unref();
  return stop;
}
