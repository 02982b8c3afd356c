// flag-values.ts: the value parsers the flag table (flags.ts) names: one flag's text or number
// in, its checked value out, or one ConfigError sentence that says how to fix it.
import * as net from "node:net";

import { ConfigError } from "../errors";
import type { NativeListen } from "../native";

/** What a user gives a value flag: text from argv or --config, or a number from the API. */
export type Raw = string | number;

/** Parses one flag value; `flag` is how the user wrote the flag ("--idle-timeout"). */
export type Parser<T> = (raw: Raw, flag: string) => T;

/** A flag's number, written in decimal only (no hex, no exponent, no blank): 8085, -1, 0.5. */
export function decimal(raw: Raw, flag: string): number {
  if (typeof raw === "number") return raw;
  if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(raw.trim())) {
    throw new ConfigError(`${flag} ${raw}: not a number (write it in decimal, e.g. 8085 or 0.5)`);
  }
  return Number(raw);
}

/** A whole number from `lo` to `hi`, both included. */
export function whole(lo: number, hi: number): Parser<number> {
  return (raw, flag) => {
    const v = decimal(raw, flag);
    if (!Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(`${flag} ${v}: must be a whole number from ${lo} to ${hi}`);
    return v;
  };
}

/**
 * A count: a whole number from `lo` (said alone when the value is below it, as "from 1"), at
 * most `hi` ("from 1 to 4096" when above).
 */
export function count(lo: number, hi: number): Parser<number> {
  return (raw, flag) => {
    const v = decimal(raw, flag);
    if (!Number.isInteger(v) || v < lo) throw new ConfigError(`${flag} ${v}: must be a whole number from ${lo}`);
    if (v > hi) throw new ConfigError(`${flag} ${v}: must be a whole number from ${lo} to ${hi}`);
    return v;
  };
}

/** Seconds above 0, at most a day → whole milliseconds. */
export const secondsToMs: Parser<number> = (raw, flag) => {
  const v = decimal(raw, flag);
  if (!Number.isFinite(v) || v <= 0 || v > 86400) {
    throw new ConfigError(`${flag} ${v}: must be a number of seconds above 0 (e.g. 0.5, 10), at most 86400`);
  }
  return Math.round(v * 1000);
};

/** Seconds from `lo` to `hi` → whole milliseconds (--stats-interval). */
export function secondsBetween(lo: number, hi: number): Parser<number> {
  return (raw, flag) => {
    const v = decimal(raw, flag);
    if (!(v >= lo && v <= hi)) throw new ConfigError(`${flag} ${v}: must be from ${lo} to ${hi} seconds`);
    return Math.round(v * 1000);
  };
}

/** Text as given. */
export const text: Parser<string> = (raw) => String(raw);

/** One of `names` ("--policy batch: choose fifo, rr or other"). */
export function choice<const N extends readonly string[]>(names: N): Parser<N[number]> {
  return (raw, flag) => {
    const v = String(raw);
    if (!names.includes(v)) {
      const list = names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}` : names[0];
      throw new ConfigError(`${flag} ${v}: choose ${list}`);
    }
    return v as N[number];
  };
}

/** The scheduling policies a worker can ask for (native/worker/config.h VW_POLICIES holds the same). */
export const policies = ["fifo", "rr", "other"] as const;
export type Policy = (typeof policies)[number];

/** "HOST:PORT", "[IPv6]:PORT", "*:PORT" or ":PORT" → a listen address (numeric hosts only). */
export function parseListen(raw: string, flag = "--listen"): NativeListen {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(raw.trim());
  if (!m) {
    throw new ConfigError(`${flag} ${raw}: write HOST:PORT, e.g. 127.0.0.1:8085, [::1]:8085 or *:8085`);
  }
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${flag} ${raw}: port ${port} is above 65535`);
  const host = m[1] ?? m[2];
  if (m[1] === undefined && (host === "" || host === "*")) {
    return { family: 6, host: "::", port, dualStack: true };
  }
  if (host === "localhost") return { family: 4, host: "127.0.0.1", port, dualStack: false };
  const family = net.isIP(host);
  if (family === 4 && m[1] === undefined) return { family: 4, host, port, dualStack: false };
  if (family === 6 && m[1] !== undefined) return { family: 6, host, port, dualStack: false };
  if (family === 6) throw new ConfigError(`${flag} ${raw}: put an IPv6 address in brackets, e.g. [${host}]:${port}`);
  throw new ConfigError(`${flag} ${raw}: "${host}" is not a numeric IP address (vw does not resolve names)`);
}

/** --proxy HOST:PORT: a backend, numeric (or localhost) with a real port, like --listen. */
export function parseProxy(raw: Raw, flag = "--proxy"): NativeListen {
  const a = parseListen(String(raw), flag);
  if (a.dualStack || a.port === 0) {
    throw new ConfigError(`${flag} ${raw}: name the backend's address and port, e.g. 127.0.0.1:8080 or [::1]:8080`);
  }
  return a;
}

/** --metrics: HOST:PORT, :PORT or PORT (those two on 127.0.0.1). */
export function parseMetrics(raw: Raw, flag = "--metrics"): NativeListen {
  const t = String(raw).trim();
  return parseListen(/^\d+$/.test(t) ? `127.0.0.1:${t}` : t.replace(/^(?=:)/, "127.0.0.1"), flag);
}

/**
 * --coalesce: how long a worker may hold a wake-up back so requests that arrive close together
 * are answered in one pass. `auto` adapts the hold between 0 and `boundUs` µs by the batches it
 * yields; `fixed` always holds `boundUs` µs between busy passes; `off` wakes per ready batch.
 */
export interface Coalesce {
  mode: "auto" | "fixed" | "off";
  boundUs: number; // the most a wake-up is held back, µs
}

/** The ceiling `--coalesce auto` adapts within, µs: the most latency it can add to a request. */
export const coalesceAutoBoundUs = 250;
const coalesceMaxUs = 100_000;

/** "auto" | "off" | a whole number of microseconds (1 to 100000) → the setting. */
export function parseCoalesce(raw: Raw, flag = "--coalesce"): Coalesce {
  const t = String(raw);
  if (t === "auto") return { mode: "auto", boundUs: coalesceAutoBoundUs };
  if (t === "off") return { mode: "off", boundUs: 0 };
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > coalesceMaxUs) {
    throw new ConfigError(`${flag} ${t}: write auto, off, or a hold in microseconds from 1 to ${coalesceMaxUs} (e.g. --coalesce 200)`);
  }
  return { mode: "fixed", boundUs: Number(t) };
}
