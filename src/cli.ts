#!/usr/bin/env node
// cli.ts: argv → a command: `vw [options]` serves, `vw stats` attaches to a running vw,
// `vw cpus` reports what vw would get. Exit codes: 0 clean, 1 the system refused (address in
// use, RT required, ...), 2 bad usage or configuration.
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";

import { resolveConfig, type Config } from "./config";
import { buildTable } from "./content/content";
import { allowedCpus, formatCpuList, selectCpus } from "./cpu";
import { native } from "./native";
import { dropTarget } from "./cli/privileges";
import { attach, defaultControlPath, requestReload } from "./cli/control";
import { cpusFacts, cpusReport } from "./cli/cpus-report";
import { readConfigFile } from "./cli/config-file";
import { ConfigError, StartError } from "./errors";
import { argSpec, fileSpec, flagValues, helpLines, optionsFromArgs, shownDefault, type ArgValues } from "./cli/flag-table";
import { decimal } from "./cli/flag-values";
import { FLAGS } from "./cli/flags";
import { LEGEND, LiveView } from "./stats/render";
import { serve, type ViewOptions } from "./cli/serve";

const HELP = `Usage: vw [options]          serve
       vw stats [options]    attach to a running vw, show its live figures
       vw cpus [options]     what vw sees: CPUs, real-time privilege, a trial
                             thread per CPU, where NIC interrupts land
       vw reload [options]   reload a running vw's content
       vw check [options]    check flags and content without serving (nginx -t)
       (vw COMMAND --help for each)

A CPU-pinned, real-time HTTP/1.1 server: one SCHED_FIFO worker thread per CPU.

${helpLines()}

Routes: / /1b /100b /1k /10k /100k /1m (bodies of that many bytes, k = 1024).
Reload the content with SIGHUP or \`vw reload --port N\` (no request dropped).
Stop with Ctrl-C or SIGTERM (graceful, 5 s at most); a second signal stops at
once.`;

const serveSpec = argSpec();

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

/** vw cpus takes these flags of the table, with the same checks and defaults. */
const cpusKeys = ["policy", "priority", "cpus", "workers", "json", "help"] as const;
const cpusSpec = argSpec(cpusKeys);

const STATS_HELP = `Usage: vw stats [--port N | --socket PATH] [--json] [-v]

Attaches to a running vw through its control socket and shows its live view,
one interval a line, until Ctrl-C (exit 0). When the server stops, says so and
exits 1.

  -p, --port N        the running vw's port (default ${shownDefault(FLAGS.port)}): its socket is
                      /tmp/vw-N.sock
      --socket PATH   the control socket itself (vw --control PATH)
      --json          one JSON object per interval (the keys of vw --json)
  -v, --verbose       a machine line and four lines per worker
  -h, --help          this text`;

const RELOAD_HELP = `Usage: vw reload [--port N | --socket PATH]

Asks a running vw to rebuild its content (--route, --dir) and swap it in; no
request is dropped. Prints the server's answer; exit 0 when reloaded, 1 when
refused or no vw answers.

  -p, --port N        the running vw's port (default ${shownDefault(FLAGS.port)}): its socket is
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

${helpLines(cpusKeys, {
  policy: "the policy to try: fifo | rr | other",
  priority: "the real-time priority to try, 1-99",
  cpus: "the workers' CPUs to compare with (as vw would pick)",
  workers: "... the first N of them",
  json: "the facts (without the network part) as one JSON object",
})}`;

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
  const file = typeof cli.config === "string" ? readConfigFile(cli.config, fileSpec()) : {};
  const v: ArgValues = { ...file, ...cli };
  if (v.help) {
    console.log(`${HELP}\n\n${LEGEND}`);
    return 0;
  }
  if (v.version) {
    console.log(version());
    return 0;
  }
  const options = optionsFromArgs(v);
  const config = resolveConfig(options);
  const view: ViewOptions = {
    intervalMs: config.statsIntervalMs,
    quiet: config.quiet,
    json: config.json,
    verbose: config.verbose,
    metrics: config.metrics,
    control: config.control,
    maxConnsGiven: options.maxConns !== undefined,
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

/** --port of a subcommand: the running vw's port, 1 to 65535 (default: vw's --port default). */
function port(text: string | undefined): number {
  const p = text === undefined ? FLAGS.port.def : decimal(text, "--port");
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
  const { policy, priority, cpus, workers, json } = flagValues(optionsFromArgs(v));
  console.log(json ? JSON.stringify(cpusFacts(policy, priority)) : cpusReport(policy, priority, cpus, workers));
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
