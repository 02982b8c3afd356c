// charts.ts: writing the result charts (bench/results/latest.svg, engines.svg, proxy.svg) from their
// results, either straight after a bench run or later from the committed JSON
// (`npm run bench:charts`).
import * as fs from "node:fs";
import * as path from "node:path";
import { enginesChart, type EnginesChartInput } from "./chart-engines";
import { latestChart, type LatestChartInput } from "./chart-latest";
import { proxyChart, type ProxyChartInput } from "./chart-proxy";
import { renderSvg } from "./vega-svg";

/** Renders latest.svg (`npm run bench`) into outDir; returns the file written. */
export async function writeLatestChart(outDir: string, r: LatestChartInput): Promise<string> {
  const file = path.join(outDir, "latest.svg");
  fs.writeFileSync(file, await renderSvg(latestChart(r)));
  return file;
}

/** Renders engines.svg (`npm run bench:engines`) into outDir; returns the file written. */
export async function writeEnginesChart(outDir: string, r: EnginesChartInput): Promise<string> {
  const file = path.join(outDir, "engines.svg");
  fs.writeFileSync(file, await renderSvg(enginesChart(r)));
  return file;
}

/** Renders proxy.svg (`npm run bench:proxy`) into outDir; returns the file written. */
export async function writeProxyChart(outDir: string, r: ProxyChartInput): Promise<string> {
  const file = path.join(outDir, "proxy.svg");
  fs.writeFileSync(file, await renderSvg(proxyChart(r)));
  return file;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses a results JSON file, checking the top-level keys the chart reads; throws with the file's name if one is missing. */
function readResult(file: string, keys: readonly string[]): Record<string, unknown> {
  const v: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
  if (!isObject(v)) throw new Error(`${file}: not a JSON object`);
  const missing = keys.filter((k) => !(k in v));
  if (missing.length > 0) throw new Error(`${file}: lacks ${missing.join(", ")} (not written by this version of the bench?)`);
  if (!isObject(v.meta) || !(Array.isArray(v.summary) || isObject(v.summary))) throw new Error(`${file}: meta or summary malformed`);
  return v;
}

/** latest.json as `npm run bench` wrote it. */
export function readLatest(file: string): LatestChartInput {
  return readResult(file, ["meta", "scenarios", "summary"]) as unknown as LatestChartInput;
}

/** engines.json as `npm run bench:engines` wrote it. */
export function readEngines(file: string): EnginesChartInput {
  return readResult(file, ["meta", "shapes", "engines", "summary"]) as unknown as EnginesChartInput;
}

/** proxy.json as `npm run bench:proxy` wrote it. */
export function readProxy(file: string): ProxyChartInput {
  const v = readResult(file, ["meta", "summary"]);
  if (!isObject(v.summary) || !Array.isArray(v.summary.proxies)) throw new Error(`${file}: summary.proxies missing`);
  return v as unknown as ProxyChartInput;
}
