// engines.ts (test helper): the engines vw knows, and for each one this machine cannot run, why:
// uring needs liburing at build time and a kernel that lets this process set up a ring.
import { spawnSync } from "node:child_process";
import * as path from "node:path";

import { engines } from "../../src/config";
import { native } from "../../src/native";
import { root } from "./server";

export function engineList(): string[] {
  return [...engines];
}

const reasons = new Map<string, string | undefined>();

/** undefined when `engine` can run here, else one line saying why not. */
export function engineSkip(engine: string): string | undefined {
  if (!reasons.has(engine)) reasons.set(engine, probe(engine));
  return reasons.get(engine);
}

function probe(engine: string): string | undefined {
  if (!native().engines().includes(engine)) {
    return `this build has no ${engine} engine (liburing-dev missing at build time: apt-get install liburing-dev, then npm rebuild)`;
  }
  if (engine !== "uring") return undefined;
  // Start and stop a one-worker server in a child: the kernel may refuse io_uring (sysctl
  // kernel.io_uring_disabled, a seccomp filter) even when the addon has it.
  const index = path.join(root, "dist", "src", "index.js");
  const script = `const vw = require(${JSON.stringify(index)});
    try {
      const s = vw.start(vw.resolveConfig({ engine: "uring", listen: ["127.0.0.1:0"], workers: 1, policy: "other" }));
      s.stop().then(() => process.exit(0));
    } catch (e) { console.error(e.message); process.exit(1); }`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 10000 });
  if (r.status === 0) return undefined;
  return `the kernel refuses io_uring here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split("\n")[0]}`;
}
