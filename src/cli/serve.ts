// serve.ts: the `vw` command itself: start the workers, say what started, show the live view,
// open the control socket and metrics, and stop on signals.
import * as util from "node:util";
import type { Config } from "../config";
import { buildContent } from "../content/content";
import { ControlServer, defaultControlPath } from "./control";
import { watchContent, watchedPaths } from "../content/watch";
import { start, type Server } from "../index";
import { MetricsSource, serveMetrics } from "../stats/metrics";
import type { NativeListen } from "../native";
import { LiveView, summary } from "../stats/render";
import { fdLimitNotice } from "../limits";
import { startedByNpm, watchParent } from "./parent-watch";
import { dropTarget, dropTo } from "./privileges";
import { ActivityWindow } from "../stats/activity";
import { Sampler } from "../stats/sampler";
import { errnoName } from "../errors";

export interface ViewOptions {
  intervalMs: number;
  quiet: boolean;
  json: boolean;
  verbose: boolean;
  metrics: NativeListen | undefined;
  control: string | undefined;
  /** --max-conns was given (flag or config file), not left at its default. */
  maxConnsGiven: boolean;
}

function rtAdvice(code: string): string {
  if (code === "EPERM") return "needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO at least the priority (ulimit -r)";
  return "the kernel refused it";
}

/** What the io_uring ring got (IORING_SETUP_* flags), and what it fell back from. */
function uringLine(flags: number, sqpoll: boolean): string {
  const names: [number, string][] = [
    [1 << 1, "SQPOLL"],
    [1 << 8, "COOP_TASKRUN"],
    [1 << 12, "SINGLE_ISSUER"],
    [1 << 13, "DEFER_TASKRUN"],
  ];
  const got = names.filter(([bit]) => flags & bit).map(([, n]) => n);
  const text = got.length > 0 ? got.join(" | ") : "no setup flags";
  const wanted = sqpoll ? (1 << 1) | (1 << 12) : (1 << 12) | (1 << 13);
  if ((flags & wanted) === wanted) return `io_uring: ${text}`;
  const missing = names.filter(([bit]) => wanted & bit & ~flags).map(([, n]) => n).join(" | ");
  return `io_uring: ${text} (the kernel refused ${missing}; fell back)`;
}

const IORING_FEAT_MIN_TIMEOUT = 1 << 15; // Linux 6.12: the kernel holds a wait's wake-up back itself

/** One line when --coalesce cannot work the way it does best under this engine or kernel. */
function coalesceLine(config: Config, uringFeatures: number): string | undefined {
  if (config.coalesce.mode === "off") return undefined;
  if (config.engine === "blocking") {
    return "vw: --coalesce does not apply to --engine blocking (each connection's thread wakes on its own read)";
  }
  if (config.engine === "uring" && !(uringFeatures & IORING_FEAT_MIN_TIMEOUT)) {
    return "vw: this kernel's io_uring has no min-wait timeout (Linux 6.12+); --coalesce pauses before a held wait instead";
  }
  return undefined;
}

/**
 * Prints the start lines; false when a refused real-time policy is fatal, and then nothing but
 * that one error (no "listening on" for a server that is about to exit).
 */
function report(server: Server, config: Config, say: (line: string) => void): boolean {
  const refused = server.workers.find((w) => w.rtErrno !== 0);
  let why: string | undefined;
  if (refused) {
    const code = errnoName(refused.rtErrno);
    const wanted = config.policy === "rr" ? "SCHED_RR" : "SCHED_FIFO";
    why = `${wanted} was not granted (${code}: ${refused.rtMessage}): ${rtAdvice(code)}`;
    if (config.requireRt) {
      console.error(`vw: ${why}; --require-rt makes this fatal`);
      return false;
    }
  }
  for (const w of server.workers) {
    const prio = w.policy === "SCHED_OTHER" ? "" : ` ${w.priority}`;
    say(`worker ${w.id}  cpu ${w.cpu} (getcpu ${w.getcpu})  ${w.policy}${prio}  tid ${w.tid}`);
  }
  const first = server.stats.snapshot()[0];
  if (config.engine === "uring") say(uringLine(first?.uring_setup_flags ?? 0, config.sqpoll));
  const coalesce = coalesceLine(config, first?.uring_features ?? 0);
  if (coalesce) console.error(coalesce);
  if (config.proxy.length > 0) {
    const to = config.proxy.map((b) => (b.family === 6 ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`)).join(", ");
    const pipeline = config.proxyPipeline > 1 ? `, GET/HEAD pipelined ${config.proxyPipeline} deep` : "";
    const pool = config.proxyFresh ? "a new connection per request" : `up to ${config.proxyConns} keep-alive connections per backend per worker${pipeline}`;
    say(`relaying to ${to} (round-robin; ${pool}; 504 after ${config.proxyTimeoutMs / 1000} s)`);
  }
  for (const l of server.listen) {
    say(`listening on ${l.address}${l.family === 6 && l.host === "::" ? " (IPv4 and IPv6)" : ""}`);
  }
  if (why) console.error(`vw: ${why}; running with normal scheduling (SCHED_OTHER)`);
  return true;
}

/**
 * A worker whose wait failed with an error that retrying cannot cure (it stopped itself rather
 * than spin at real-time priority): one sentence naming it and the errno, or undefined.
 */
function failedWorker(server: Server): string | undefined {
  const snap = server.stats.snapshot();
  for (let i = 0; i < snap.length; i++) {
    const errno = snap[i].wait_errno ?? 0;
    if (errno === 0) continue;
    const w = server.workers[i];
    let name = `errno ${errno}`;
    try {
      name = util.getSystemErrorName(-errno);
    } catch {
      // an errno Node has no name for: keep the number
    }
    return `worker ${w.id} (cpu ${w.cpu}) stopped: its wait for events failed with ${name}, which retrying cannot cure`;
  }
  return undefined;
}

/** Runs until a signal; resolves with the exit code. Throws ConfigError/StartError at start. */
export async function serve(config: Config, view: ViewOptions): Promise<number> {
  const target = dropTarget(config.user); // checked before anything starts
  const content = buildContent(config.content);
  for (const line of content.unservable) console.error(`vw: ${line}`);
  const server = start(config, content.table);
  // With --json, stdout carries NDJSON only, and with --access-log - the log lines only:
  // everything else goes to stderr.
  const logToStdout = config.accessLog?.path === "-";
  const say = view.json || logToStdout ? (l: string) => console.error(l) : (l: string) => console.log(l);
  const identities = server.workers.map((w) => ({ id: w.id, cpu: w.cpu, tid: w.tid }));
  const activity = new ActivityWindow(() => server.stats.sum("requests")).start();
  const sampler = new Sampler(server.stats, identities, process.pid, activity, config.proxy.length > 0);
  const live = new LiveView(view.verbose);
  // Built in TS off the hot path, checked by the addon, then swapped in whole; a broken new
  // table is refused and the old one keeps serving.
  const reload = (why: string): { ok: boolean; message: string } => {
    try {
      const { table, unservable } = buildContent(config.content);
      for (const line of unservable) console.error(`vw: ${line}`);
      server.reload(table);
      const message = `reloaded (${why}): ${table.routes.length} routes`;
      console.error(`vw: ${message}`);
      return { ok: true, message };
    } catch (err) {
      const message = `reload (${why}) refused: ${(err as Error).message}; still serving the previous content`;
      console.error(`vw: ${message}`);
      return { ok: false, message };
    }
  };
  let control: ControlServer | undefined;
  let unwatch = (): void => undefined;
  try {
    control = await ControlServer.open(view.control ?? defaultControlPath(server.listen[0].port), { reload: () => reload("vw reload") });
    const paths = watchedPaths(config.content);
    if (config.watch && paths.length > 0) unwatch = watchContent(paths, () => reload("a served file changed"));
    if (view.metrics) {
      const source = new MetricsSource(server.stats, identities, () => ({
        response_tables_retired: { help: "Response tables replaced by a reload and not freed yet (a worker may still read them).", value: server.retired() },
      }));
      await serveMetrics(view.metrics, source);
    }
  } catch (err) {
    server.stopNow();
    control?.close();
    throw err;
  }
  if (target) {
    control.chown(target);
    dropTo(target);
  }
  let onWorkerFailed = (): void => undefined;
  // The interval timer also keeps Node's loop alive: the workers are native threads.
  const tick = setInterval(() => {
    const iv = sampler.next();
    control?.publish(iv);
    if (view.json) process.stdout.write(`${JSON.stringify(iv)}\n`);
    else if (!view.quiet) say(live.render(iv));
    const failed = failedWorker(server);
    if (failed) {
      console.error(`vw: ${failed}; stopping (exit 1)`);
      onWorkerFailed();
    }
  }, view.intervalMs);

  return new Promise((resolve) => {
    // A Ctrl-C under npm exec reaches vw twice at once (from the terminal, and forwarded by npm):
    // a repeat within SAME_STOP_MS is that same stop, not the "second signal" that stops at once.
    const SAME_STOP_MS = 200;
    let firstStop: number | undefined;
    let unwatchParent = (): void => undefined;
    const finish = (code: number): void => {
      unwatch();
      unwatchParent();
      void server.stop().then(() => {
        clearInterval(tick);
        control?.close();
        activity.poll();
        activity.stop();
        // NDJSON: the partial last interval too, so the lines sum to the whole run.
        if (view.json) process.stdout.write(`${JSON.stringify(sampler.next())}\n`);
        const text = summary(sampler.total());
        say(text);
        resolve(code);
      });
    };
    onWorkerFailed = (): void => {
      if (firstStop !== undefined) return;
      firstStop = performance.now();
      finish(1);
    };
    const onSignal = (): void => {
      const now = performance.now();
      if (firstStop !== undefined) {
        if (now - firstStop >= SAME_STOP_MS) server.stopNow();
        return;
      }
      firstStop = now;
      finish(0);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    if (startedByNpm()) {
      // npm signals only its own child; when that child is a shell it dies and vw is orphaned.
      unwatchParent = watchParent((parent) => {
        console.error(`vw: the process that started vw (pid ${parent}, under npm) has exited; stopping`);
        onSignal();
      });
    }
    process.on("SIGHUP", () => reload("SIGHUP"));
    // logrotate's convention: the log was moved away; write to a new file at the same path.
    // (Node would otherwise start its inspector on SIGUSR1.)
    if (config.accessLog && config.accessLog.path !== "-") {
      process.on("SIGUSR1", () => {
        const failed = server.reopenAccessLog();
        if (failed) console.error(`vw: SIGUSR1: ${failed}; still writing to the previous file`);
      });
    }
    // Printed last: "listening on" means everything is up, the control socket and the signal
    // handlers included (a SIGTERM sent on seeing it gets the graceful stop, not the default death).
    if (target) {
      const why = target.byDefault ? " (started as root without sudo; --user root keeps root, --user NAME picks the user)" : "";
      say(`running as ${target.name} (uid ${target.uid}, gid ${target.gid}) after binding and real-time setup${why}`);
    }
    if (!report(server, config, say)) {
      clearInterval(tick);
      unwatch();
      unwatchParent();
      server.stopNow();
      control?.close();
      resolve(1);
      return;
    }
    const fdNotice = fdLimitNotice(config.maxConns, server.workers.length, view.maxConnsGiven);
    if (fdNotice) console.error(`vw: ${fdNotice}`);
  });
}
