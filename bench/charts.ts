// charts.ts: entry of `npm run bench:charts`: redraws bench/results/latest.svg, engines.svg and
// proxy.svg from the committed latest.json, engines.json and proxy.json, without running any
// benchmark.
import * as fs from "node:fs";
import * as path from "node:path";
import { readEngines, readLatest, readProxy, writeEnginesChart, writeLatestChart, writeProxyChart } from "./lib/charts";
import { Flags, log, runEntry, UsageError } from "./lib/harness";
import { repoRoot } from "./lib/util";

const USAGE = `usage: npm run bench:charts -- [--dir DIR]
  --dir DIR   where latest.json, engines.json and proxy.json are read and the SVGs written (default bench/results)`;

async function main(): Promise<number> {
  let f: Flags;
  try {
    f = new Flags(process.argv.slice(2), { "--dir": "string" }, USAGE);
  } catch (e) {
    if (e instanceof UsageError) {
      log(e.message);
      return e.code;
    }
    throw e;
  }
  const dir = f.str("--dir", path.join(repoRoot(), "bench", "results"));
  const jobs = [
    { json: "latest.json", draw: (file: string) => writeLatestChart(dir, readLatest(file)) },
    { json: "engines.json", draw: (file: string) => writeEnginesChart(dir, readEngines(file)) },
    { json: "proxy.json", draw: (file: string) => writeProxyChart(dir, readProxy(file)) },
  ];
  let drawn = 0;
  for (const j of jobs) {
    const file = path.join(dir, j.json);
    if (!fs.existsSync(file)) {
      log(`skipped: no ${file}`);
      continue;
    }
    log(`wrote ${await j.draw(file)} from ${j.json}`);
    drawn++;
  }
  return drawn > 0 ? 0 : 1;
}

runEntry("charts", main);
