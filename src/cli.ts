#!/usr/bin/env node
// cli.ts: argv → a command: `vw [options]` serves, `vw stats` attaches to a running vw,
// `vw cpus` reports what vw would get. Exit codes: 0 clean, 1 the system refused (address in
// use, RT required, ...), 2 bad usage or configuration.
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";

import { parseListen, resolveConfig, type Config, type Options } from "./config";
import { buildTable } from "./content";
import { allowedCpus, formatCpuList, selectCpus } from "./cpu";
import { native } from "./native";
import { dropTarget } from "./privileges";
import { attach, defaultControlPath, requestReload } from "./control";
import { cpusFacts, cpusReport } from "./cpus-report";
import { readConfigFile } from "./config-file";
import { ConfigError, StartError } from "./errors";
import { LEGEND, LiveView } from "./render";
import { serve, type ViewOptions } from "./serve";

const HELP = `Usage: vw [options]          serve
       vw stats [options]    attach to a running vw, show its live figures
       vw cpus [options]     what vw sees: CPUs, real-time privilege, a trial
                             thread per CPU, where NIC interrupts land
       vw reload [options]   reload a running vw's content
       vw check [options]    check flags and content without serving (nginx -t)
       (vw COMMAND --help for each)

A CPU-pinned, real-time HTTP/1.1 server: one SCHED_FIFO worker thread per CPU.

  -p, --port N             port on every address (8085; 0 picks a free one)
  -a, --listen HOST:PORT   listen here instead (repeatable): 127.0.0.1:8085,
                           [::1]:8085, *:8085
  -e, --engine NAME        how workers drive their sockets (same HTTP):
                           epoll (default), uring (io_uring), poll,
                           select (fds below 1024), blocking (a thread per
                           connection)
      --sqpoll             with --engine uring: a kernel thread polls the
                           submission queue (its CPU counts as the worker's)
      --coalesce auto|off|US
                           hold a busy worker's wake-ups back so requests
                           are answered in batches (auto: adaptive, at most
                           250 us; US: a fixed hold in us; off: wake per
                           ready batch) (default: auto)
  -w, --workers N          number of workers (default: one per allowed CPU)
  -c, --cpus LIST          CPUs to pin workers to, e.g. 0-3,6 (default: all)
      --policy P           fifo | rr | other (default fifo)
      --priority N         real-time priority 1-99 (default 50)
      --require-rt         exit if the real-time policy is refused
      --no-keepalive       close the connection after every response
      --header-timeout S   close a connection whose request header is not
                           complete in S seconds (10)
      --idle-timeout S     close a keep-alive connection idle S seconds (60)
      --max-header BYTES   request line + headers limit, 431 above (8192)
      --max-body BYTES     request body limit, 413 above (1048576)
      --max-conns N        connections per worker; more are closed (65536)
      --backlog N          listen backlog per worker socket (4096)
      --defer-accept S     TCP_DEFER_ACCEPT: accept a connection once its
                           request is there and answer it at once; a client
                           that sends nothing is accepted only after about
                           S seconds (default 1; 0 = off)
      --fastopen N         TCP_FASTOPEN queue length: accept requests sent
                           in the SYN (needs sysctl net.ipv4.tcp_fastopen
                           with bit 2 set) (default 0 = off)
      --access-log PATH    a line per request to PATH (- for stdout),
                           written by a separate thread from in-memory
                           rings; SIGUSR1 reopens PATH (default: off)
      --log-format F       common | combined (default combined)
      --stats-interval S   live view interval in seconds (1)
  -q, --quiet              no live view
      --json               the live view as NDJSON on stdout
  -v, --verbose            a machine line and lines per worker
      --locality           count connections whose packets the worker's own
                           CPU handled (one getsockopt per connection)
      --metrics ADDR       Prometheus metrics at http://ADDR/metrics; ADDR is
                           HOST:PORT, or PORT for 127.0.0.1:PORT
      --control PATH       control socket for vw stats (/tmp/vw-PORT.sock)
      --allow CIDR         accept connections only from here (repeatable):
                           10.0.0.0/8, ::1
  -u, --user NAME          started as root, run as NAME after setup (default:
                           the sudo user, else nobody; root stays root)
  -r, --route PATH=TEXT    serve TEXT at PATH (repeatable); PATH=@FILE
                           serves a file's bytes
  -d, --dir DIR            serve every file below DIR from memory
                           (index.html for directories)
  -H, --header 'N: v'      add a header to 2xx and 304 responses
                           (repeatable), e.g. 'Cache-Control: max-age=60'
      --header-always 'N: v'  add a header to every response (repeatable)
      --max-file-size B    largest file --dir/--route may load (67108864)
      --max-total B        all bodies together (1073741824)
      --no-watch           do not reload when a served file changes
      --proxy HOST:PORT    relay every request to this backend, not the table
                           (repeatable: round-robin per worker; engines epoll,
                           poll and select)
      --proxy-conns N      keep-alive upstream connections per backend per
                           worker (16)
      --proxy-fresh        a new upstream connection per request, closed after
      --proxy-timeout S    504 when the backend has not answered in S s (60)
      --config FILE        JSON object with the long flags as keys; flags
                           given here win
  -h, --help               this text
  -V, --version            the version

Routes: / /1b /100b /1k /10k /100k /1m (bodies of that many bytes, k = 1024).
Reload the content with SIGHUP or \`vw reload --port N\` (no request dropped).
Stop with Ctrl-C or SIGTERM (graceful, 5 s at most); a second signal stops at
once.`;

const serveSpec = {
  engine: { type: "string", short: "e" },
  sqpoll: { type: "boolean" },
  coalesce: { type: "string" },
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
  "defer-accept": { type: "string" },
  fastopen: { type: "string" },
  "access-log": { type: "string" },
  "log-format": { type: "string" },
  "stats-interval": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  locality: { type: "boolean" },
  metrics: { type: "string" },
  control: { type: "string" },
  allow: { type: "string", multiple: true },
  user: { type: "string", short: "u" },
  route: { type: "string", short: "r", multiple: true },
  dir: { type: "string", short: "d", multiple: true },
  header: { type: "string", short: "H", multiple: true },
  "header-always": { type: "string", multiple: true },
  "max-file-size": { type: "string" },
  "max-total": { type: "string" },
  "no-watch": { type: "boolean" },
  proxy: { type: "string", multiple: true },
  "proxy-conns": { type: "string" },
  "proxy-fresh": { type: "boolean" },
  "proxy-timeout": { type: "string" },
  config: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

const statsSpec = {
  port: { type: "string", short: "p" },
  socket: { type: "string" },
  json: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const;

const reloadSpec = {
  port: statsSpec.port,
  socket: statsSpec.socket,
  help: statsSpec.help,
} as const;

const cpusSpec = {
  policy: { type: "string" },
  priority: { type: "string" },
  cpus: { type: "string", short: "c" },
  workers: { type: "string", short: "w" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const STATS_HELP = `Usage: vw stats [--port N | --socket PATH] [--json] [-v]

Attaches to a running vw through its control socket and shows its live view,
one interval a line, until Ctrl-C (exit 0). When the server stops, says so and
exits 1.

  -p, --port N        the running vw's port (default 8085): its socket is
                      /tmp/vw-N.sock
      --socket PATH   the control socket itself (vw --control PATH)
      --json          one JSON object per interval (the keys of vw --json)
  -v, --verbose       a machine line and four lines per worker
  -h, --help          this text`;

const RELOAD_HELP = `Usage: vw reload [--port N | --socket PATH]

Asks a running vw to rebuild its content (--route, --dir) and swap it in; no
request is dropped. Prints the server's answer; exit 0 when reloaded, 1 when
refused or no vw answers.

  -p, --port N        the running vw's port (default 8085): its socket is
                      /tmp/vw-N.sock
      --socket PATH   the control socket itself (vw --control PATH)
  -h, --help          this text`;

const CPUS_HELP = `Usage: vw cpus [--policy fifo|rr|other] [--priority N] [--cpus LIST]
               [--workers N] [--json]

What vw would get here, without serving: allowed and online CPUs, topology,
the real-time privilege (uid, CAP_SYS_NICE, RLIMIT_RTPRIO), RT throttling,
cgroup quota, isolated CPUs, a trial thread pinned on each allowed CPU with
the policy asked for, and per network interface the CPUs taking its
interrupts and its RPS/XPS masks against the workers' CPUs.

      --policy P      the policy to try (default fifo)
      --priority N    the real-time priority to try, 1-99 (default 50)
  -c, --cpus LIST     the workers' CPUs to compare with (as vw would pick)
  -w, --workers N     ... the first N of them
      --json          the facts (without the network part) as one JSON object
  -h, --help          this text`;

/** A flag's number, written in decimal only (no hex, no exponent, no blank): 8085, -1, 0.5. */
function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(v.trim())) throw new ConfigError(`--${flag} ${v}: not a number (write it in decimal, e.g. 8085 or 0.5)`);
  return Number(v);
}

/**
 * Joins a value-taking flag with a value that starts with "-" and is a number (`--port -1`
 * becomes `--port=-1`), so the range check says what is wrong instead of parseArgs calling the
 * value "ambiguous".
 */
function joinNegative(args: string[], spec: Record<string, { type: string; short?: string }>): string[] {
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(spec)) {
    if (o.type !== "string") continue;
    takesValue.add(`--${name}`);
    if (o.short) takesValue.add(`-${o.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (takesValue.has(args[i]) && i + 1 < args.length && /^-\d/.test(args[i + 1])) {
      out.push(`${args[i]}=${args[i + 1]}`.replace(/^-(\w)=/, "-$1"));
      i++;
    } else out.push(args[i]);
  }
  return out;
}

/** Runs parseArgs, turning its complaint into one ConfigError line that points at `help`. */
function parse<R>(run: () => R, help = "vw --help"): R {
  try {
    return run();
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0].replace(/\.$/, "");
    throw new ConfigError(`${msg}; see ${help}`);
  }
}

/** --metrics: HOST:PORT, :PORT or PORT (those two on 127.0.0.1). */
function metricsAddress(text: string): ReturnType<typeof parseListen> {
  const t = text.trim();
  return parseListen(/^\d+$/.test(t) ? `127.0.0.1:${t}` : t.replace(/^(?=:)/, "127.0.0.1"), "--metrics");
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

/**
 * The serve flags (and --config) → what `vw` would run, or an exit code when --help/--version
 * answered. Throws ConfigError for anything wrong.
 */
function serveSetup(args: string[], help = "vw --help"): { config: Config; view: ViewOptions } | number {
  const cli = parse(() => parseArgs({ args: joinNegative(args, serveSpec), options: serveSpec, strict: true, allowPositionals: false }).values, help);
  // Flags override the file: each given flag replaces the file's value (lists included).
  const file = cli.config === undefined ? {} : readConfigFile(cli.config, serveSpec, ["config", "help", "version"]);
  const v = { ...file, ...cli } as typeof cli;
  if (v.help) {
    console.log(`${HELP}\n\n${LEGEND}`);
    return 0;
  }
  if (v.version) {
    console.log(version());
    return 0;
  }
  const options: Options = {
    engine: v.engine,
    sqpoll: v.sqpoll,
    coalesce: v.coalesce,
    port: num("port", v.port),
    listen: v.listen,
    workers: num("workers", v.workers),
    cpus: v.cpus,
    policy: v.policy,
    priority: num("priority", v.priority),
    requireRt: v["require-rt"],
    keepalive: v["no-keepalive"] ? false : undefined,
    headerTimeout: num("header-timeout", v["header-timeout"]),
    idleTimeout: num("idle-timeout", v["idle-timeout"]),
    maxHeader: num("max-header", v["max-header"]),
    maxBody: num("max-body", v["max-body"]),
    maxConns: num("max-conns", v["max-conns"]),
    backlog: num("backlog", v.backlog),
    deferAccept: num("defer-accept", v["defer-accept"]),
    fastopen: num("fastopen", v.fastopen),
    accessLog: v["access-log"],
    logFormat: v["log-format"],
    locality: v.locality,
    allow: v.allow,
    user: v.user,
    route: v.route,
    dir: v.dir,
    header: v.header,
    headerAlways: v["header-always"],
    maxFileSize: num("max-file-size", v["max-file-size"]),
    maxTotal: num("max-total", v["max-total"]),
    watch: v["no-watch"] ? false : undefined,
    proxy: v.proxy,
    proxyConns: num("proxy-conns", v["proxy-conns"]),
    proxyFresh: v["proxy-fresh"],
    proxyTimeout: num("proxy-timeout", v["proxy-timeout"]),
  };
  const config = resolveConfig(options);
  if (config.accessLog?.path === "-" && v.json) {
    throw new ConfigError("--access-log - and --json both want stdout: give --access-log a file, or drop --json");
  }
  const interval = num("stats-interval", v["stats-interval"]) ?? 1;
  if (!(interval >= 0.1 && interval <= 3600)) {
    throw new ConfigError(`--stats-interval ${interval}: must be from 0.1 to 3600 seconds`);
  }
  const view: ViewOptions = {
    intervalMs: Math.round(interval * 1000),
    quiet: v.quiet ?? false,
    json: v.json ?? false,
    verbose: v.verbose ?? false,
    metrics: v.metrics === undefined ? undefined : metricsAddress(v.metrics),
    control: v.control,
    maxConnsGiven: v["max-conns"] !== undefined,
  };
  return { config, view };
}

async function serveCommand(args: string[]): Promise<number> {
  const setup = serveSetup(args);
  return typeof setup === "number" ? setup : serve(setup.config, setup.view);
}

const CHECK_HELP = `Usage: vw check [the flags of vw]

Checks a configuration without serving (like nginx -t): parses the flags and
--config, builds the response table from --route and --dir (every file is
read), selects the CPUs, checks the engine is built and --user exists, then
prints one line and exits: 0 when vw would start with these flags, 2 (one line
saying what is wrong) when not. Binds nothing, starts no thread; a port in use
or a refused real-time policy only shows when vw starts.`;

/** vw check: everything vw does before it binds, then one line. */
function checkCommand(args: string[]): number {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(CHECK_HELP);
    return 0;
  }
  const setup = serveSetup(args, "vw check --help");
  if (typeof setup === "number") return setup;
  const { config, view } = setup;
  if (!native().engines().includes(config.engine)) {
    throw new ConfigError(`--engine ${config.engine}: not in this build (it has ${native().engines().join(", ")}); npm rebuild`);
  }
  const table = buildTable(config.content);
  const cpus = selectCpus(allowedCpus(), config.cpus, config.workers);
  const user = dropTarget(config.user);
  const where = config.listen.map((l) => (l.family === 6 ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`)).join(", ");
  const metrics = view.metrics ? `, metrics on ${view.metrics.host}:${view.metrics.port}` : "";
  const as = user ? `, then as ${user.name}` : "";
  console.log(
    `vw: configuration OK: ${table.routes.length} routes, ${cpus.length} ${config.engine} worker(s) on CPU ${formatCpuList(cpus)}, listening on ${where}${metrics}${as}`,
  );
  return 0;
}

async function statsCommand(args: string[]): Promise<number> {
  const v = parse(() => parseArgs({ args: joinNegative(args, statsSpec), options: statsSpec, strict: true, allowPositionals: false }).values, "vw stats --help");
  if (v.help) {
    console.log(STATS_HELP);
    return 0;
  }
  const file = v.socket ?? defaultControlPath(port(v.port));
  const live = new LiveView(v.verbose ?? false);
  process.on("SIGINT", () => process.exit(0));
  await attach(file, (iv) => {
    if (v.json) process.stdout.write(`${JSON.stringify(iv)}\n`);
    else console.log(live.render(iv));
  });
  // Only Ctrl-C ends an attached `vw stats` well: the socket closing means the server went away.
  console.error(`vw: server stopped (control socket ${file} closed)`);
  return 1;
}

/** --port of a subcommand: the running vw's port, 1 to 65535 (default 8085). */
function port(text: string | undefined): number {
  const p = num("port", text) ?? 8085;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new ConfigError(`--port ${text}: must be a whole number from 1 to 65535 (the running vw's port)`);
  return p;
}

async function reloadCommand(args: string[]): Promise<number> {
  const v = parse(() => parseArgs({ args: joinNegative(args, reloadSpec), options: reloadSpec, strict: true, allowPositionals: false }).values, "vw reload --help");
  if (v.help) {
    console.log(RELOAD_HELP);
    return 0;
  }
  const answer = await requestReload(v.socket ?? defaultControlPath(port(v.port)));
  (answer.ok ? console.log : console.error)(`vw: ${answer.message}`);
  return answer.ok ? 0 : 1;
}

function cpusCommand(args: string[]): number {
  const v = parse(() => parseArgs({ args: joinNegative(args, cpusSpec), options: cpusSpec, strict: true, allowPositionals: false }).values, "vw cpus --help");
  if (v.help) {
    console.log(CPUS_HELP);
    return 0;
  }
  const policy = v.policy ?? "fifo";
  if (policy !== "fifo" && policy !== "rr" && policy !== "other") {
    throw new ConfigError(`--policy ${policy}: choose fifo, rr or other`);
  }
  const priority = num("priority", v.priority) ?? 50;
  if (!Number.isInteger(priority) || priority < 1 || priority > 99) throw new ConfigError(`--priority ${v.priority}: must be a whole number from 1 to 99`);
  const workers = num("workers", v.workers);
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 1)) throw new ConfigError(`--workers ${workers}: must be a whole number from 1`);
  console.log(v.json ? JSON.stringify(cpusFacts(policy, priority)) : cpusReport(policy, priority, v.cpus, workers));
  return 0;
}

async function main(argv: string[]): Promise<number> {
  try {
    if (argv[0] === "stats") return await statsCommand(argv.slice(1));
    if (argv[0] === "cpus") return cpusCommand(argv.slice(1));
    if (argv[0] === "reload") return await reloadCommand(argv.slice(1));
    if (argv[0] === "check" || argv[0] === "-t") return checkCommand(argv.slice(1));
    return await serveCommand(argv[0] === "serve" ? argv.slice(1) : argv);
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
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
