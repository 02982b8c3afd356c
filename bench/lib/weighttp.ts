// weighttp.ts: the optional second load generator (`weighttp` on PATH or at
// $WEIGHTTP). It runs a request count, not a duration, so the caller sizes N
// from a warm-up rate; the run is still killed if it overstays its bound.
import * as proc from "./proc";
import { sampleCpu } from "./procstat";
import { which } from "./util";

export function weighttpPath(): string | null {
  const env = process.env["WEIGHTTP"];
  if (env !== undefined && env !== "") return which(env);
  return which("weighttp");
}

export interface WeighttpResult {
  requests: number;
  reqPerSec: number;
  errors: number;
  clientCpu: number | null;
  raw: string;
}

/**
 * weighttp's summary, in either of the two forms its releases print: the classic text
 * ("finished in …", "requests: …") or, from lighttpd/weighttp's newer builds (also calling
 * themselves 0.5), one JSON object after the progress lines.
 */
export function parseWeighttp(text: string): { requests: number; reqPerSec: number; errors: number } | null {
  return parseWeighttpText(text) ?? parseWeighttpJson(text);
}

function parseWeighttpText(text: string): { requests: number; reqPerSec: number; errors: number } | null {
  // "finished in 2 sec, 345 millisec and 123 microsec, 42622 req/s, 5023 kbyte/s"
  // "requests: 100000 total, 100000 started, 100000 done, 99990 succeeded, 10 failed, 0 errored"
  const fin = /finished in (\d+) sec, (\d+) millisec and (\d+) microsec, (\d+) req\/s/.exec(text);
  const req = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(text);
  if (fin === null || req === null) return null;
  const sec = Number(fin[1]) + Number(fin[2]) / 1e3 + Number(fin[3]) / 1e6;
  const ok = Number(req[3]);
  return {
    requests: ok,
    reqPerSec: sec > 0 ? ok / sec : Number(fin[4]),
    errors: Number(req[4]) + Number(req[5]),
  };
}

function parseWeighttpJson(text: string): { requests: number; reqPerSec: number; errors: number } | null {
  // { "reqs_per_sec": 1234, "secs_elapsed": 0.16, "response_counts": { "pass": 200, "fail": 0, "errs": 0 }, … }
  const at = text.startsWith("{") ? 0 : text.indexOf("\n{");
  if (at < 0) return null;
  let v: unknown;
  try {
    v = JSON.parse(text.slice(at));
  } catch {
    return null;
  }
  const obj = (x: unknown): Record<string, unknown> | null => (typeof x === "object" && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : null);
  const top = obj(v);
  const counts = obj(top?.["response_counts"]);
  if (top === null || counts === null) return null;
  const n = (o: Record<string, unknown>, k: string): number | null => (typeof o[k] === "number" ? o[k] : null);
  const pass = n(counts, "pass");
  const secs = n(top, "secs_elapsed");
  const rps = n(top, "reqs_per_sec");
  if (pass === null || (secs === null && rps === null)) return null;
  return {
    requests: pass,
    reqPerSec: secs !== null && secs > 0 ? pass / secs : (rps ?? 0),
    errors: (n(counts, "fail") ?? 0) + (n(counts, "errs") ?? 0),
  };
}

export async function runWeighttp(o: {
  bin: string;
  url: string;
  requests: number;
  connections: number;
  clientCpus: string;
  limitSec: number;
  /** weighttp -t (default 1) */
  threads?: number;
}): Promise<WeighttpResult> {
  const args = ["-c", o.clientCpus, o.bin, "-n", String(o.requests), "-c", String(o.connections), "-t", String(o.threads ?? 1), "-k", o.url];
  const child = proc.start("taskset", args, { keepStdout: true });
  const cpu = sampleCpu(child.pid);
  const { code, timedOut } = await proc.waitBounded(child, o.limitSec * 1000);
  const clientCpu = cpu.stop();
  const raw = child.stdout();
  const parsed = parseWeighttp(raw);
  if (timedOut || parsed === null) {
    throw new Error(`weighttp ${timedOut ? "timed out" : `exit ${code}`}: ${child.output().trim().slice(-300)}`);
  }
  return { ...parsed, clientCpu, raw };
}
