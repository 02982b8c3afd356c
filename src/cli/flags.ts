// flags.ts: THE flag table of `vw` (serve and check). Every flag is one entry here; the
// parseArgs spec, the --help lines, the --config keys, the typed values (`FlagValues`) and the
// native config fields are derived from it (flag-table.ts), so a new flag is one entry here,
// one X(...) line in native/worker/config.h if the workers need it, and the code that uses it.
//
// Names travel unchanged, by rule: the entry's key is the flag ("idle-timeout"); with its `unit`
// the value is `idleTimeoutMs` in TS and the field `idle_timeout_ms` in native/worker/config.h.
import { parseCidr } from "../cidr";
import { defaultContent } from "../content/content";
import { ConfigError } from "../errors";
import {
  choice,
  count,
  parseCoalesce,
  parseListen,
  parseMetrics,
  parseProxy,
  policies,
  secondsBetween,
  secondsToMs,
  whole,
  type Parser,
  type Raw,
} from "./flag-values";
import { native } from "../native";

/**
 * One flag. A flag with `arg` takes a value, else it is a switch (true when given).
 * - `list`: repeatable; each value is parsed; the value is an array (default []).
 * - `off`: a switch that turns the setting off, written `--no-KEY` (default true).
 * - `unit`: the parsed value's unit, appended to its TS and native names.
 * - `def`: the default, as a user would write it: parsed like a given value, shown in --help.
 * - `show`: what --help says for a default that is not a plain value ("one per allowed CPU").
 * - `parse`: checks one value and converts it (text when absent); throws ConfigError.
 * - `native`: the workers read it: native/worker/config.h has an X(...) line with its snake_case name.
 * - `file: false`: not accepted as a --config key.
 */
export interface FlagDef {
  short?: string;
  arg?: string;
  list?: true;
  off?: true;
  unit?: "ms" | "s";
  def?: Raw;
  show?: string;
  help: string;
  parse?: Parser<unknown>;
  native?: true;
  file?: false;
}

const engine: Parser<string> = (raw, flag) => {
  const known = native().allEngines();
  const v = String(raw);
  if (!known.includes(v)) throw new ConfigError(`${flag} ${v}: choose ${known.join(", ")}`);
  return v;
};

const nonEmpty: Parser<string> = (raw, flag) => {
  if (String(raw).trim() === "") throw new ConfigError(`${flag}: give a file path, or - for stdout`);
  return String(raw);
};

/** The flags, in --help order. */
export const FLAGS = {
  port: { short: "p", arg: "N", def: 8085, help: "port on every address (0 picks a free one)", parse: whole(0, 65535) },
  listen: {
    short: "a",
    arg: "HOST:PORT",
    list: true,
    help: "listen here instead: 127.0.0.1:8085, [::1]:8085, *:8085",
    parse: (raw: Raw, flag: string) => parseListen(String(raw), flag),
    native: true,
  },
  engine: {
    short: "e",
    arg: "NAME",
    def: "epoll",
    help:
      "how workers drive their sockets (same HTTP): epoll, uring (io_uring), poll, select (fds below 1024), " +
      "blocking (a thread per connection)",
    parse: engine,
    native: true,
  },
  sqpoll: { help: "with --engine uring: a kernel thread polls the submission queue (its CPU counts as the worker's)", native: true },
  coalesce: {
    arg: "auto|off|US",
    def: "auto",
    help:
      "hold a busy worker's wake-ups back so requests are answered in batches (auto: adaptive, at most 250 us; " +
      "US: a fixed hold in us; off: wake per ready batch)",
    parse: parseCoalesce,
    native: true,
  },
  workers: { short: "w", arg: "N", show: "one per allowed CPU", help: "number of workers", parse: count(1, 4096) },
  cpus: { short: "c", arg: "LIST", show: "all", help: "CPUs to pin workers to, e.g. 0-3,6" },
  policy: { arg: "P", def: "fifo", help: "scheduling policy: fifo | rr | other", parse: choice(policies), native: true },
  priority: { arg: "N", def: 50, help: "real-time priority 1-99", parse: whole(1, 99), native: true },
  "require-rt": { help: "exit if the real-time policy is refused" },
  keepalive: { off: true, help: "close the connection after every response", native: true },
  "header-timeout": {
    arg: "S",
    def: 10,
    unit: "ms",
    help: "close a connection whose request header is not complete in S seconds",
    parse: secondsToMs,
    native: true,
  },
  "idle-timeout": { arg: "S", def: 60, unit: "ms", help: "close a keep-alive connection idle S seconds", parse: secondsToMs, native: true },
  "max-header": { arg: "BYTES", def: 8192, help: "request line + headers limit, 431 above", parse: whole(256, 1 << 20), native: true },
  "max-body": { arg: "BYTES", def: 1048576, help: "request body limit, 413 above", parse: whole(0, 2 ** 32 - 1), native: true },
  "max-conns": { arg: "N", def: 65536, help: "connections per worker; more are closed", parse: whole(1, 1 << 24), native: true },
  backlog: { arg: "N", def: 4096, help: "listen backlog per worker socket", parse: whole(1, 1 << 20), native: true },
  "defer-accept": {
    arg: "S",
    def: 1,
    unit: "s",
    show: "1; 0 = off",
    help:
      "TCP_DEFER_ACCEPT: accept a connection once its request is there and answer it at once; a client that " +
      "sends nothing is accepted only after about S seconds",
    parse: whole(0, 3600),
    native: true,
  },
  fastopen: {
    arg: "N",
    def: 0,
    show: "0 = off",
    help: "TCP_FASTOPEN queue length: accept requests sent in the SYN (needs sysctl net.ipv4.tcp_fastopen with bit 2 set)",
    parse: whole(0, 1 << 20),
    native: true,
  },
  "access-log": {
    arg: "PATH",
    show: "off",
    help: "a line per request to PATH (- for stdout), written by a separate thread from in-memory rings; SIGUSR1 reopens PATH",
    parse: nonEmpty,
  },
  "log-format": { arg: "F", def: "combined", help: "access log format: common | combined", parse: choice(["common", "combined"] as const) },
  "stats-interval": { arg: "S", def: 1, unit: "ms", help: "live view interval in seconds", parse: secondsBetween(0.1, 3600) },
  quiet: { short: "q", help: "no live view" },
  json: { help: "the live view as NDJSON on stdout" },
  verbose: { short: "v", help: "a machine line and lines per worker" },
  locality: { help: "count connections whose packets the worker's own CPU handled (one getsockopt per connection)", native: true },
  metrics: { arg: "ADDR", help: "Prometheus metrics at http://ADDR/metrics; ADDR is HOST:PORT, or PORT for 127.0.0.1:PORT", parse: parseMetrics },
  control: { arg: "PATH", show: "/tmp/vw-PORT.sock", help: "control socket for vw stats" },
  allow: { arg: "CIDR", list: true, help: "accept connections only from here: 10.0.0.0/8, ::1", parse: (raw: Raw) => parseCidr(String(raw)), native: true },
  user: { short: "u", arg: "NAME", show: "the sudo user, else nobody; root stays root", help: "started as root, run as NAME after setup" },
  route: { short: "r", arg: "PATH=TEXT", list: true, help: "serve TEXT at PATH; PATH=@FILE serves a file's bytes" },
  dir: { short: "d", arg: "DIR", list: true, help: "serve every file below DIR from memory (index.html for directories)" },
  header: { short: "H", arg: "'N: v'", list: true, help: "add a header to 2xx and 304 responses, e.g. 'Cache-Control: max-age=60'" },
  "header-always": { arg: "'N: v'", list: true, help: "add a header to every response" },
  "max-file-size": { arg: "B", def: defaultContent.maxFileSize, help: "largest file --dir/--route may load", parse: whole(0, 2 ** 32 - 1) },
  "max-total": { arg: "B", def: defaultContent.maxTotal, help: "all bodies together", parse: whole(0, 2 ** 40) },
  watch: { off: true, help: "do not reload when a served file changes" },
  proxy: {
    arg: "HOST:PORT",
    list: true,
    help: "relay every request to this backend, not the table (several: round-robin per worker; engines epoll, poll, select and uring)",
    parse: parseProxy,
    native: true,
  },
  "proxy-conns": { arg: "N", def: 16, help: "keep-alive upstream connections per backend per worker", parse: whole(1, 65536), native: true },
  "proxy-fresh": { help: "a new upstream connection per request, closed after", native: true },
  "proxy-pipeline": { arg: "N", def: 1, help: "whole GET/HEAD requests of any clients in flight per upstream connection (HTTP/1.1 pipelining)", parse: whole(1, 256), native: true },
  "proxy-timeout": { arg: "S", def: 60, unit: "ms", help: "504 when the backend has not answered in S s", parse: secondsToMs, native: true },
  config: { arg: "FILE", help: "JSON object with the long flags as keys; flags given here win", file: false },
  help: { short: "h", help: "this text", file: false },
  version: { short: "V", help: "the version", file: false },
} as const satisfies Record<string, FlagDef>;

export type Flags = typeof FLAGS;
export type FlagKey = keyof Flags & string;
