#!/usr/bin/env node
// cli.ts: argv → config → a running server; prints what started, stops on signals.
// Exit codes: 0 stopped cleanly, 1 the system refused (address in use, RT required, ...),
// 2 bad usage or configuration.
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";

import { resolveConfig, type Options } from "./config";
import { ConfigError, StartError } from "./errors";
import { start, type Server } from "./index";

const HELP = `Usage: vw [options]

A CPU-pinned, real-time HTTP/1.1 server: one SCHED_FIFO worker thread per CPU.

  -p, --port N            port on every address (default 8085; 0 picks a free one)
  -a, --listen HOST:PORT  listen here instead (repeatable): 127.0.0.1:8085, [::1]:8085, *:8085
  -w, --workers N         number of workers (default: one per allowed CPU)
  -c, --cpus LIST         CPUs to pin workers to, e.g. 0-3,6 (default: all allowed)
      --policy P          fifo | rr | other (default fifo)
      --priority N        real-time priority 1-99 (default 50)
      --require-rt        exit if the real-time policy is refused
      --no-keepalive      close the connection after every response
      --header-timeout S  close a connection whose request header is not complete in S seconds (10)
      --idle-timeout S    close a keep-alive connection idle for S seconds (60)
      --max-header BYTES  request line + headers limit, 431 above (8192)
      --max-body BYTES    request body limit, 413 above (1048576)
      --max-conns N       open connections per worker; more are closed at accept (65536)
      --backlog N         listen backlog per worker socket (4096)
  -h, --help              this text
  -V, --version           the version

Routes: / /1b /100b /1k /10k /100k /1m (bodies of exactly that many bytes, k = 1024).
Stop with Ctrl-C or SIGTERM (graceful, 5 s at most); a second signal stops at once.`;

const optionSpec = {
  port: { type: "string", short: "p" },
  listen: { type: "string", short: "a", multiple: true },
  workers: { type: "string", short: "w" },
  cpus: { type: "string", short: "c" },
  policy: { type: "string" },
  priority: { type: "string" },
  "require-rt": { type: "boolean" },
  "no-keepalive": { type: "boolean" },
  "header-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  "max-header": { type: "string" },
  "max-body": { type: "string" },
  "max-conns": { type: "string" },
  backlog: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new ConfigError(`--${flag} ${v}: not a number`);
  return n;
}

function parseCli(argv: string[]): Options | "help" | "version" {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: optionSpec, strict: true, allowPositionals: false }));
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0].replace(/\.$/, "");
    throw new ConfigError(`${msg}; see vw --help`);
  }
  if (values.help) return "help";
  if (values.version) return "version";
  return {
    port: num("port", values.port),
    listen: values.listen,
    workers: num("workers", values.workers),
    cpus: values.cpus,
    policy: values.policy,
    priority: num("priority", values.priority),
    requireRt: values["require-rt"],
    keepalive: values["no-keepalive"] ? false : undefined,
    headerTimeout: num("header-timeout", values["header-timeout"]),
    idleTimeout: num("idle-timeout", values["idle-timeout"]),
    maxHeader: num("max-header", values["max-header"]),
    maxBody: num("max-body", values["max-body"]),
    maxConns: num("max-conns", values["max-conns"]),
    backlog: num("backlog", values.backlog),
  };
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

function rtAdvice(errno: string): string {
  if (errno === "EPERM") {
    return "needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO at least the priority (ulimit -r)";
  }
  return "the kernel refused it";
}

function report(server: Server, requireRt: boolean, wanted: string): boolean {
  for (const w of server.workers) {
    const prio = w.policy === "SCHED_OTHER" ? "" : ` ${w.priority}`;
    console.log(`worker ${w.id}  cpu ${w.cpu} (getcpu ${w.getcpu})  ${w.policy}${prio}  tid ${w.tid}`);
  }
  for (const l of server.listen) {
    const dual = l.family === 6 && l.host === "::" ? " (IPv4 and IPv6)" : "";
    console.log(`listening on ${l.address}${dual}`);
  }
  const refused = server.workers.find((w) => w.rtErrno !== 0);
  if (refused) {
    const code = refused.rtErrno === 1 ? "EPERM" : `errno ${refused.rtErrno}`;
    const why = `${wanted} was not granted (${code}: ${refused.rtMessage}): ${rtAdvice(code)}`;
    if (requireRt) {
      console.error(`vw: ${why}; --require-rt makes this fatal`);
      return false;
    }
    console.error(`vw: ${why}; running with normal scheduling (SCHED_OTHER)`);
  }
  return true;
}

function summary(server: Server): string {
  const t = server.stats.totals();
  const secs = (performance.now() - server.startedAt) / 1000;
  const rps = secs > 0 ? Math.round(t.requests / secs) : 0;
  return `vw: ${t.requests} requests in ${secs.toFixed(1)} s, ${rps} req/s`;
}

function main(): number | undefined {
  let parsed: Options | "help" | "version";
  let server: Server;
  try {
    parsed = parseCli(process.argv.slice(2));
    if (parsed === "help") {
      console.log(HELP);
      return 0;
    }
    if (parsed === "version") {
      console.log(version());
      return 0;
    }
    const config = resolveConfig(parsed);
    server = start(config);
    const wanted = config.policy === "rr" ? "SCHED_RR" : "SCHED_FIFO";
    if (!report(server, config.requireRt && config.policy !== "other", wanted)) {
      server.stopNow();
      return 1;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`vw: ${err.message}`);
      return 2;
    }
    if (err instanceof StartError || err instanceof Error) {
      console.error(`vw: ${err.message}`);
      return 1;
    }
    throw err;
  }

  // Workers are native threads: this timer is what keeps Node's loop (and signals) alive.
  const alive = setInterval(() => undefined, 1 << 30);
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    if (signals === 1) {
      void server.stop().then(() => {
        clearInterval(alive);
        console.log(summary(server));
        process.exit(0);
      });
    } else {
      server.stopNow();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return undefined;
}

const code = main();
if (code !== undefined) process.exitCode = code;
