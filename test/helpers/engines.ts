// engines.ts (test helper): the engines vw knows, and for each one this machine cannot run, why:
// uring needs liburing at build time and a kernel that lets this process set up a ring.
import { spawnSync } from "node:child_process";
import * as path from "node:path";

import { root, vwEnv } from "./server";

/** Every engine vw knows (native/engine/engines.cc), built here or not. */
export function engineList(): string[] {
  return addonEngines().known;
}

let engines: { built: string[]; known: string[] } | undefined;

/**
 * The engines the addon knows and was built with. Asked of a child process that runs with vw's
 * own environment, so the addon (under `npm run test:asan` the sanitizer build, which needs its
 * runtime preloaded) never loads into the test runner itself.
 */
function addonEngines(): { built: string[]; known: string[] } {
  if (engines === undefined) {
    const nativeJs = path.join(root, "dist", "src", "native.js");
    const script = `const a = require(${JSON.stringify(nativeJs)}).native(); process.stdout.write(JSON.stringify({ built: a.engines(), known: a.allEngines() }))`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: vwEnv(), timeout: 10000 });
    if (r.status !== 0) throw new Error(`cannot ask the addon which engines it has: ${(r.stderr || r.error?.message || "").trim()}`);
    engines = JSON.parse(r.stdout) as { built: string[]; known: string[] };
  }
  return engines;
}

/** The engines the addon was built with. */
export function builtEngines(): string[] {
  return addonEngines().built;
}

const reasons = new Map<string, string | undefined>();

/** undefined when `engine` can run here, else one line saying why not. */
export function engineSkip(engine: string): string | undefined {
  if (!reasons.has(engine)) reasons.set(engine, probe(engine));
  return reasons.get(engine);
}

function probe(engine: string): string | undefined {
  if (!builtEngines().includes(engine)) {
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
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 10000, env: vwEnv() });
  if (r.status === 0) return undefined;
  return `the kernel refuses io_uring here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split("\n")[0]}`;
}
