// The summary at exit divides by the time requests were served (first to last), not by uptime:
// within 15 % of the client's own req/s for a load run inside idle seconds; NDJSON carries the
// same window, and its lines (the partial last one included) sum to the run.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

import { RawClient, sleep, startVw, which } from "./helpers/server";

const run = promisify(execFile);
const SUMMARY = /^vw: (\d+) requests in (\d+\.\d) s, (\d+) req\/s$/m;

describe("summary over the active window", () => {
  const wrk = which("wrk");
  it("req/s within 15 % of wrk's own, with idle time before and after", { skip: wrk ? false : "wrk not installed (apt-get install wrk)", timeout: 30000 }, async () => {
    const vw = await startVw(["--workers", "1", "--quiet"]);
    try {
      await sleep(1500);
      const { stdout } = await run(wrk!, ["-t1", "-c20", "-d2s", `http://127.0.0.1:${vw.port}/1b`], { timeout: 15000 });
      const clientRps = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(stdout)?.[1]);
      assert.ok(clientRps > 0, stdout);
      await sleep(1500);
      const { code } = await vw.stop();
      assert.equal(code, 0);
      const m = SUMMARY.exec(vw.stdout());
      assert.ok(m, vw.stdout());
      const [requests, seconds, rps] = [Number(m[1]), Number(m[2]), Number(m[3])];
      assert.ok(Math.abs(rps / clientRps - 1) < 0.15, `summary ${rps} req/s over ${seconds} s, wrk ${clientRps} req/s (${requests} requests)`);
      assert.ok(seconds >= 1.7 && seconds <= 2.5, `active window ${seconds} s for a 2 s run`);
      assert.match(vw.stdout(), /^ {2}all: up \d+\.\d s, /m, "uptime still shown");
    } finally {
      await vw.stop();
    }
  });

  it("NDJSON carries the window; its lines, the last partial one included, sum to the summary", { timeout: 30000 }, async () => {
    const vw = await startVw(["--workers", "1", "--json", "--stats-interval", "0.5"]);
    try {
      await sleep(700);
      const c = await RawClient.connect(vw.port);
      const t0 = performance.now();
      for (let i = 0; i < 30; i++) {
        if (i > 0) await sleep(25);
        c.write("GET /1b HTTP/1.1\r\nHost: x\r\n\r\n".repeat(10));
        await c.responses(10, { timeoutMs: 3000 });
      }
      const clientS = (performance.now() - t0) / 1000; // from the first request to the last answer
      c.destroy();
      await sleep(300); // stop before the next interval: the last line is a partial one
      const { code } = await vw.stop();
      assert.equal(code, 0);
      const lines = vw
        .stdout()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { requests: number; active_s: number | null; active_rps: number | null });
      assert.equal(lines.reduce((n, l) => n + l.requests, 0), 300, "the lines sum to every request");
      assert.equal(lines[0].active_s, null, "no window before the first request");
      const last = lines[lines.length - 1];
      // The window's ends are placed by vw's samplers (the idle one polls every 100 ms): within
      // 0.2 s of the client's, far from the 0.7 s idle before or the 0.3 s after.
      assert.ok(last.active_s !== null && Math.abs(last.active_s - clientS) < 0.2, `window ${last.active_s} s, client ${clientS.toFixed(3)} s`);
      assert.ok(last.active_rps !== null && Math.abs(last.active_rps - 300 / last.active_s!) < 1);
      const m = SUMMARY.exec(vw.stderr()); // with --json the summary goes to stderr
      assert.ok(m, vw.stderr());
      assert.equal(Number(m[1]), 300);
      assert.equal(m[2], last.active_s!.toFixed(1));
    } finally {
      await vw.stop();
    }
  });
});
