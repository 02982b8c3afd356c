// harness.ts: what the single-purpose bench entries (rt, vw-experiment, micro, conns) share:
// the entry wrapper (temp dir, Ctrl-C stops every child by PID, exit codes), starting a pinned
// server and waiting for its port, flags, tables, and writing results/*.json.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as proc from "./proc";
import { repoRoot } from "./util";

export const log = (s: string): void => void process.stderr.write(`${s}\n`);

export interface EntryContext {
  tmpDir: string;
}

/**
 * Runs `main` with a private temp dir. Ctrl-C/SIGTERM stop every child by its PID; the temp
 * dir goes in every case. The exit code is what main returns (1 on a throw).
 */
export function runEntry(name: string, main: (ctx: EntryContext) => Promise<number>): void {
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `vw-${name}-`));
  const cleanup = (): void => {
    proc.killAllSync();
    fs.rmSync(tmpDir, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    log("interrupted: stopping children");
    void proc.stopAll().finally(() => {
      cleanup();
      process.exit(130);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.on("exit", () => proc.killAllSync());
  main({ tmpDir }).then(
    (code) => {
      cleanup();
      process.exitCode = code;
    },
    (e: unknown) => {
      log(e instanceof Error ? (e.stack ?? e.message) : String(e));
      cleanup();
      process.exitCode = 1;
    },
  );
}

/** Moves every thread of this process onto `cpus` (so its timers and children stay off the server's). */
export async function pinSelf(cpus: readonly number[]): Promise<void> {
  await proc.run("taskset", ["-a", "-p", "-c", cpus.join(","), String(process.pid)], 5000);
}

/** dist/src/cli.js when built, else null. */
export function vwCli(): string | null {
  const cli = path.join(repoRoot(), "dist", "src", "cli.js");
  return fs.existsSync(cli) ? cli : null;
}

/**
 * `taskset -c cpus cmd args…`, waits (≤ 10 s) until 127.0.0.1:port accepts. taskset execs the
 * command, so the child's PID is the server's. Stopped by PID on failure.
 */
export async function startPinned(
  cmd: string,
  args: readonly string[],
  cpus: readonly number[],
  port: number,
  keepStdout = false,
): Promise<proc.Child> {
  const child = proc.start("taskset", ["-c", cpus.join(","), cmd, ...args], { keepStdout });
  try {
    await proc.waitForPort(port, child, 10_000);
  } catch (e) {
    await proc.stop(child);
    throw e;
  }
  return child;
}

/** `--flag V` / `--flag=V` / `--switch` parsing for the small entries. */
export class Flags {
  private readonly values = new Map<string, string | true>();
  /** "number": above 0; "count": 0 or more; "string"; "switch": no value. */
  constructor(argv: readonly string[], known: Record<string, "number" | "count" | "string" | "switch">, usage: string) {
    for (let i = 0; i < argv.length; i++) {
      const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
      if (flag === "-h" || flag === "--help") throw new UsageError(usage, 0);
      const kind = known[flag];
      if (kind === undefined) throw new UsageError(`unknown flag ${flag}\n${usage}`, 2);
      if (kind === "switch") {
        this.values.set(flag, true);
        continue;
      }
      const v = inline ?? argv[++i];
      if (v === undefined || v === "") throw new UsageError(`${flag} needs a value\n${usage}`, 2);
      const n = Number(v);
      if (kind === "number" && !(Number.isFinite(n) && n > 0)) throw new UsageError(`${flag} needs a number above 0\n${usage}`, 2);
      if (kind === "count" && !(Number.isFinite(n) && n >= 0)) throw new UsageError(`${flag} needs a number, 0 or more\n${usage}`, 2);
      this.values.set(flag, v);
    }
  }
  has(flag: string): boolean {
    return this.values.has(flag);
  }
  num(flag: string, dflt: number): number {
    const v = this.values.get(flag);
    return typeof v === "string" ? Number(v) : dflt;
  }
  str(flag: string, dflt: string): string {
    const v = this.values.get(flag);
    return typeof v === "string" ? v : dflt;
  }
}

export class UsageError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** Flags for an entry, or the exit code after the usage problem was logged. */
/**
 * The entries of `all` that `--FLAG a,b` names by id (all of them without the flag), or null
 * after logging the unknown ids with `usage` (the caller exits 2).
 */
export function pickById<T extends { id: string }>(f: Flags, flag: string, all: readonly T[], usage: string): T[] | null {
  if (!f.has(flag)) return [...all];
  const ids = f.str(flag, "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  const unknown = ids.filter((id) => !all.some((x) => x.id === id));
  if (unknown.length > 0 || ids.length === 0) {
    log(`${flag}: unknown ${unknown.join(",") || "(empty)"} (known: ${all.map((x) => x.id).join(",")})\n${usage}`);
    return null;
  }
  return all.filter((x) => ids.includes(x.id));
}

export function parseFlags(known: Record<string, "number" | "count" | "string" | "switch">, usage: string): Flags | number {
  try {
    return new Flags(process.argv.slice(2), known, usage);
  } catch (e) {
    if (e instanceof UsageError) {
      log(e.message);
      return e.code;
    }
    throw e;
  }
}

/** dist/src/cli.js when it is built and taskset is there to pin it, else null after saying why. */
export function pinnableVw(which: (tool: string) => string | null): string | null {
  const cli = vwCli();
  if (cli === null) {
    log("dist/src/cli.js not built (run `npm run build`)");
    return null;
  }
  if (which("taskset") === null) {
    log("taskset not found (util-linux): cannot pin anything");
    return null;
  }
  return cli;
}

/** A markdown table with padded columns (readable as plain text too). */
export function mdTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(" | ")} |`;
  return [line(head), `|${w.map((n) => "-".repeat(n + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** Microseconds for a table: "87 µs", "1.24 ms", "52.1 ms", "1.88 s"; n/a for null. */
export function fmtUs(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us) || us < 0) return "n/a";
  if (us < 1000) return `${us.toFixed(us < 10 ? 1 : 0)} µs`;
  const ms = us / 1000;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** results/<file> (or --out DIR) as pretty JSON; returns the path. */
export function writeResult(outDir: string | null, file: string, data: unknown): string {
  const dir = outDir ?? path.join(repoRoot(), "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  const f = path.join(dir, file);
  fs.writeFileSync(f, `${JSON.stringify(data, null, 2)}\n`);
  return f;
}

/** One number from a /proc text file, by a regex with one capture group; null if absent. */
export function procNumber(file: string, re: RegExp): number | null {
  try {
    const m = re.exec(fs.readFileSync(file, "utf8"));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}
