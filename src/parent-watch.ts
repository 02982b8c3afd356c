// parent-watch.ts: started by npm (npx vw, npm exec, npm start), vw stops when the process that
// started it is gone. npm forwards SIGINT/SIGTERM only to its direct child; with npm's default
// script shell (dash, which does not exec its last command) that child is `sh -c 'vw ...'`,
// which dies of the SIGTERM and leaves vw orphaned, still holding its port. Nothing signals an
// orphan, so vw looks: its parent pid changes when the parent exits (reparenting to init or a
// subreaper).
import * as fs from "node:fs";

/**
 * The parent pid as the kernel sees it now (process.ppid is read once at start, not live), or
 * undefined when /proc cannot be read just now (out of file descriptors: EMFILE).
 */
export function currentParentPid(): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync("/proc/self/stat", "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** Whether npm started this process (npm sets npm_lifecycle_event for scripts and `npm exec`). */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.npm_lifecycle_event !== undefined && env.npm_lifecycle_event !== "";
}

/**
 * Calls onGone(parent) once when the parent pid is no longer `parent` (default: the parent at
 * process start, so a parent lost during start-up counts too); checks every `everyMs` ms (one
 * read of /proc/self/stat, on the Node thread, never on a worker). The timer does not keep Node
 * alive. Returns a function that stops watching.
 */
export function watchParent(onGone: (parentPid: number) => void, everyMs = 250, parent = process.ppid): () => void {
  const timer = setInterval(() => {
    const now = currentParentPid();
    if (now === undefined || now === parent) return; // unreadable this time: look again next time
    clearInterval(timer);
    onGone(parent);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
