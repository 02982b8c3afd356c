// servers.ts: how to start each server under test, pinned with `taskset -c` to
// the server CPUs, and which PID to measure. A peer whose binary is missing is
// skipped with a reason, never an error.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as proc from "./proc";
import { repoRoot, which } from "./util";

export interface LaunchContext {
  port: number;
  serverCpus: readonly number[];
  tmpDir: string;
}

export interface ServerDef {
  readonly name: string;
  /** seconds from spawn to accepting, for the time estimate only */
  readonly startupSec: number;
  /** null when the server can run here, else the reason it is skipped */
  prepare(): string | null;
  /** command line to run (before the taskset prefix) */
  command(ctx: LaunchContext): { cmd: string; args: string[] };
}

export interface RunningServer {
  readonly name: string;
  /** the PID whose /proc/PID/stat and perf counts are the server's cost */
  readonly pid: number;
  stop(): Promise<void>;
}

const root = repoRoot();

function vwDef(name: string, quiet: boolean): ServerDef {
  return {
    name,
    startupSec: 0.6,
    prepare() {
      const cli = path.join(root, "dist", "src", "cli.js");
      return fs.existsSync(cli) ? null : "dist/src/cli.js not built (run `npm run build`)";
    },
    command(ctx) {
      // One worker thread, pinned by vw itself to the first server CPU; the node
      // process (main thread + worker) is what we measure.
      const cli = path.join(root, "dist", "src", "cli.js");
      const args = [cli, "--port", String(ctx.port), "--workers", "1", "--cpus", String(ctx.serverCpus[0])];
      return { cmd: process.execPath, args: quiet ? [...args, "--quiet"] : args };
    },
  };
}

const vw = vwDef("vw", true);
/** vw with its live view on (printed once a second into a pipe proc.ts drains): the stats' cost. Opt-in. */
const vwLive = vwDef("vw-live", false);

/**
 * bench/<source> compiled with `cc -O2` once into a cache dir, and again whenever the
 * source is newer. `error` is why it cannot be used here (no cc, compile failure).
 */
export function compiledC(source: string): { bin: string; error: string | null } {
  const src = path.join(root, "bench", source);
  const bin = path.join(os.tmpdir(), "vw-bench-cache", path.basename(source, ".c"));
  if (!fs.existsSync(src)) return { bin, error: `bench/${source} not found` };
  const cc = which("cc");
  if (cc === null) return { bin, error: "no C compiler (cc) on PATH" };
  try {
    if (!fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs) {
      fs.mkdirSync(path.dirname(bin), { recursive: true });
      execFileSync(cc, ["-O2", "-o", bin, src, "-lpthread"], { stdio: "pipe", timeout: 60_000 });
    }
  } catch (e) {
    return { bin, error: `cc failed: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}` };
  }
  return { bin, error: null };
}

const floorBinary = (): { bin: string; error: string | null } => compiledC("floor.c");

/**
 * bench/floor.c with `threads` threads, each with its own SO_REUSEPORT listener, unpinned and
 * SCHED_OTHER: the cheapest responder, whose figures are the kernel's socket work alone.
 */
export function floorDef(threads: number): ServerDef {
  return {
    name: "floor",
    startupSec: 0.05,
    prepare: () => floorBinary().error,
    command: (ctx) => ({ cmd: floorBinary().bin, args: [String(ctx.port), String(threads)] }),
  };
}

const floor = floorDef(1);

const node: ServerDef = {
  name: "node",
  startupSec: 0.4,
  prepare() {
    return fs.existsSync(path.join(__dirname, "node-http-server.js")) ? null : "node-http-server.js not compiled";
  },
  command: (ctx) => ({ cmd: process.execPath, args: [path.join(__dirname, "node-http-server.js"), String(ctx.port)] }),
};

/**
 * nginx answering 200 "x" on every path. workers = 1 (the load bench): a single process
 * (master_process off), so the PID we spawn is the one serving. workers > 1: a master and that
 * many workers, each pinned to its own CPU (worker_cpu_affinity auto); the spawned PID is the
 * master, the workers are its children (see childPids). `connections` is worker_connections.
 * `reuseport`: one listening socket per worker (`listen … reuseport`), the kernel spreading
 * connections between them, as vw's workers do.
 */
export function nginxDef(o: { workers?: number; connections?: number; reuseport?: boolean } = {}): ServerDef {
  const workers = o.workers ?? 1;
  const connections = o.connections ?? 4096;
  const reuseport = o.reuseport === true ? " reuseport" : "";
  return {
    name: "nginx",
    startupSec: 0.1,
    prepare: () => (which("nginx") === null ? "nginx not on PATH (apt-get install nginx-light)" : null),
    command(ctx) {
      const dir = path.join(ctx.tmpDir, `nginx-${ctx.port}`);
      fs.mkdirSync(dir, { recursive: true });
      const conf = path.join(dir, "nginx.conf");
      const procs =
        workers === 1
          ? "worker_processes 1;\ndaemon off;\nmaster_process off;"
          : `worker_processes ${workers};\nworker_cpu_affinity auto;\ndaemon off;\nmaster_process on;`;
      const nofile = connections > 4096 ? `worker_rlimit_nofile ${connections * 2 + 64};\n` : "";
      fs.writeFileSync(
        conf,
        `${procs}
${nofile}pid ${dir}/nginx.pid;
error_log /dev/null;
events { worker_connections ${connections}; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  server {
    listen 127.0.0.1:${ctx.port}${reuseport};
    location / { default_type text/plain; return 200 "x"; }
  }
}
`,
      );
      return { cmd: "nginx", args: ["-p", dir, "-c", conf, "-e", "/dev/null"] };
    },
  };
}

const nginx = nginxDef();

/** Where the original 2012 VW listens: hard-coded in its source, no flag changes it. */
export const ORIGINAL_VW_PORT = 8085;

/**
 * The original 2012 VW (weongyo/vw), a binary the user built, at $VW_ORIGINAL. It takes no
 * arguments, listens on 127.0.0.1:8085 (ORIGINAL_VW_PORT: start it with that port), pins its
 * threads to CPUs 0, 1, … itself, runs them SCHED_RR 99 (root only) and never exits by itself:
 * it is stopped by its PID like every other server.
 */
export function originalVwDef(): ServerDef {
  const bin = (): string | null => {
    const env = process.env["VW_ORIGINAL"];
    return env === undefined || env === "" ? null : which(env);
  };
  return {
    name: "original",
    startupSec: 0.05,
    prepare() {
      const env = process.env["VW_ORIGINAL"];
      if (env === undefined || env === "") return "$VW_ORIGINAL unset (the path of an original VW binary you built)";
      return bin() === null ? `$VW_ORIGINAL=${env} is not an executable file` : null;
    },
    command(ctx) {
      if (ctx.port !== ORIGINAL_VW_PORT) throw new Error(`the original VW listens on ${ORIGINAL_VW_PORT} only, not ${ctx.port}`);
      const b = bin();
      if (b === null) throw new Error("$VW_ORIGINAL is not an executable file");
      return { cmd: b, args: [] };
    },
  };
}

const h2o: ServerDef = {
  name: "h2o",
  startupSec: 0.2,
  prepare: () => (which("h2o") === null ? "h2o not on PATH" : null),
  command(ctx) {
    // One thread; a file named "1b" holding "x" serves /1b (the only path wrk asks for).
    // As root h2o would switch to nobody, who cannot read our 0700 temp dir.
    const dir = path.join(ctx.tmpDir, `h2o-${ctx.port}`);
    fs.mkdirSync(path.join(dir, "www"), { recursive: true });
    fs.writeFileSync(path.join(dir, "www", "1b"), "x");
    const conf = path.join(dir, "h2o.conf");
    fs.writeFileSync(
      conf,
      `listen:
  host: 127.0.0.1
  port: ${ctx.port}
num-threads: 1
error-log: /dev/null
${process.getuid?.() === 0 ? "user: root\n" : ""}http1-request-timeout: 60
hosts:
  default:
    paths:
      /:
        file.dir: ${dir}/www
`,
    );
    return { cmd: "h2o", args: ["-c", conf] };
  },
};

/** Every server `--servers` may name; vw-live is opt-in (not in args.ts DEFAULT_SERVERS). */
export const ALL_SERVERS: readonly ServerDef[] = [vw, vwLive, floor, node, nginx, h2o];

/** PIDs of the direct children of `pid` (e.g. nginx's workers under its master), from /proc. */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      for (const c of text.split(/\s+/)) if (c !== "") out.add(Number(c));
    }
    return [...out];
  } catch {
    // no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN off): scan every /proc/N/stat
  }
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      if (Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.add(Number(d));
    } catch {
      // gone
    }
  }
  return [...out];
}

export async function startServer(def: ServerDef, ctx: LaunchContext): Promise<RunningServer> {
  const { cmd, args } = def.command(ctx);
  const child = proc.start("taskset", ["-c", ctx.serverCpus.join(","), cmd, ...args]);
  try {
    await proc.waitForPort(ctx.port, child, 10_000);
  } catch (e) {
    await proc.stop(child);
    throw e;
  }
  // taskset execs the server, so the spawned PID is the server process itself.
  return { name: def.name, pid: child.pid, stop: () => proc.stop(child) };
}
