// wrk.ts: run wrk pinned to the client CPUs and parse its --latency report.
// wrk's own CPU use (from /proc/PID/stat) tells whether the client or the
// server was the bottleneck.
import * as fs from "node:fs";
import * as path from "node:path";
import * as proc from "./proc";
import { sampleCpu } from "./procstat";

export interface WrkResult {
  requests: number;
  reqPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** socket errors (connect+read+write+timeout) plus non-2xx/3xx responses */
  errors: number;
  /** wrk's CPU use as a share of one CPU, 0..n */
  clientCpu: number | null;
  raw: string;
}

export interface WrkOptions {
  url: string;
  connections: number;
  durationSec: number;
  clientCpus: string;
  /** wrk -t (default 1) */
  threads?: number;
  headers?: readonly string[];
  luaScript?: string;
  /** a command wrk (with its taskset) runs under, e.g. ["ip", "netns", "exec", NS]; it must exec */
  prefix?: readonly string[];
}

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

// A percentile of 0.00us is wrk saying "no data" (it happens with pipelining,
// where wrk loses track of per-request latency): report it as n/a.
function timeMs(s: string | undefined): number | null {
  if (s === undefined) return null;
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s.trim());
  const v = m === null ? 0 : Number(m[1]) * UNIT_MS[m[2]!]!;
  return v > 0 ? v : null;
}

export function parseWrk(text: string): Omit<WrkResult, "clientCpu" | "raw"> | null {
  const total = /(\d+) requests in ([\d.]+\w+)/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (total === null || rps === null) return null;
  const pct = (p: string): number | null => timeMs(new RegExp(`^\\s+${p}%\\s+(\\S+)\\s*$`, "m").exec(text)?.[1]);
  let errors = 0;
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (se !== null) errors += se.slice(1).reduce((s, x) => s + Number(x), 0);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (non2xx !== null) errors += Number(non2xx[1]);
  return { requests: Number(total[1]), reqPerSec: Number(rps[1]), p50Ms: pct("50"), p99Ms: pct("99"), errors };
}

/** A wrk Lua script that sends `depth` requests for `urlPath` in each write. */
export function writePipelineScript(dir: string, depth: number, urlPath: string): string {
  const file = path.join(dir, `pipeline-${depth}.lua`);
  fs.writeFileSync(
    file,
    [
      "-- written by bench/lib/wrk.ts: HTTP/1.1 pipelining, one write per batch",
      "init = function(args)",
      "  local r = {}",
      `  for i = 1, ${depth} do r[i] = wrk.format(nil, ${JSON.stringify(urlPath)}) end`,
      "  req = table.concat(r)",
      "end",
      "request = function() return req end",
      "",
    ].join("\n"),
  );
  return file;
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = ["-c", o.clientCpus, "wrk", `-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${o.durationSec}s`, "--latency"];
  for (const h of o.headers ?? []) args.push("-H", h);
  if (o.luaScript !== undefined) args.push("-s", o.luaScript);
  args.push(o.url);
  const pre = o.prefix ?? [];
  const child = pre.length > 0 ? proc.start(pre[0]!, [...pre.slice(1), "taskset", ...args], { keepStdout: true }) : proc.start("taskset", args, { keepStdout: true });
  const cpu = sampleCpu(child.pid);
  const { code, timedOut } = await proc.waitBounded(child, (o.durationSec + 10) * 1000);
  const clientCpu = cpu.stop();
  const raw = child.stdout();
  const parsed = parseWrk(raw);
  if (timedOut || parsed === null) {
    throw new Error(`wrk ${timedOut ? "timed out" : `exit ${code}`}: ${child.output().trim().slice(-300)}`);
  }
  return { ...parsed, clientCpu, raw };
}
