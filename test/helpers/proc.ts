// proc.ts (test helper): what the kernel says about a process and its threads.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { root } from "./server";

export function taskStatus(pid: number, tid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of fs.readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8").split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/** Scheduling policy of a thread from /proc/PID/task/TID/stat (field 41): 0 other, 1 fifo, 2 rr. */
export function taskPolicy(pid: number, tid: number): { policy: number; rtPriority: number } {
  const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3
  return { policy: Number(fields[41 - 3]), rtPriority: Number(fields[40 - 3]) };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * A copy of what vw needs at run time (dist/, the addon, package.json) in a directory any user
 * can read, so a test can run vw as `nobody` even when the checkout sits under /root.
 */
export function worldReadableCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-copy-"));
  fs.cpSync(path.join(root, "dist"), path.join(dir, "dist"), { recursive: true });
  // The runtime dependencies, and theirs (mime-types → mime-db), nothing from devDependencies.
  const copyDep = (name: string): void => {
    const to = path.join(dir, "node_modules", name);
    if (fs.existsSync(to)) return;
    const from = path.join(root, "node_modules", name);
    fs.cpSync(from, to, { recursive: true });
    const pkg = JSON.parse(fs.readFileSync(path.join(from, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) copyDep(dep);
  };
  const own = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(own.dependencies ?? {})) copyDep(dep);
  fs.mkdirSync(path.join(dir, "build", "Release"), { recursive: true });
  fs.copyFileSync(path.join(root, "build", "Release", "vw.node"), path.join(dir, "build", "Release", "vw.node"));
  fs.copyFileSync(path.join(root, "package.json"), path.join(dir, "package.json"));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
