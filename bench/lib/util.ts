// util.ts: small helpers shared by the bench modules (no I/O policy here).
import * as fs from "node:fs";
import * as path from "node:path";

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A time bound for Promise.race: unref'd, so a bound that lost the race does not keep the process alive. */
export function bound(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Median of the finite values; null when there are none. */
export function median(xs: readonly number[]): number | null {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(xs: readonly (number | null)[]): Spread | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  const m = median(v);
  if (m === null) return null;
  return { median: m, min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/**
 * The repo root: the nearest parent holding package.json. Works from bench/ (ts-node)
 * and from dist/bench/lib (compiled) alike, so no module hard-codes its depth.
 */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
}

/** True when `cmd` is an executable on PATH (or an explicit path that is executable). */
export function which(cmd: string): string | null {
  const candidates = cmd.includes("/")
    ? [cmd]
    : (process.env["PATH"] ?? "").split(":").filter(Boolean).map((d) => path.join(d, cmd));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // not here
    }
  }
  return null;
}

/** Format a number for a table: significant digits that fit a narrow column. */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "n/a";
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  if (a >= 100) return x.toFixed(0);
  return x.toPrecision(digits);
}
