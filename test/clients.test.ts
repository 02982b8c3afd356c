// Real HTTP clients against vw: curl reusing a connection, ab with and without keep-alive,
// wrk and h2load --h1. Small runs only (the point is protocol compatibility, not load).
// A client that is not installed is skipped with the reason shown. Runs once with one worker
// and once with one per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";

import { which } from "./helpers/server";
import { MODES, Server, assertAnswers } from "./helpers/clients";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion (killed after timeoutMs); never rejects, so its output can be shown. */
function run(tool: string, args: string[], timeoutMs = 15000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20, encoding: "latin1" }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function skipUnless(tool: string): { skip: string | false } {
  return { skip: which(tool) ? false : `${tool} not installed` };
}

function show(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout.slice(0, 3000)}\n--- stderr\n${r.stderr.slice(0, 3000)}`;
}

/** The number in `label:   N` of ab's report. */
function abField(out: string, label: string): number | undefined {
  const m = new RegExp(`^${label}:\\s+(\\d+)`, "m").exec(out);
  return m ? Number(m[1]) : undefined;
}

for (const mode of MODES) {
  describe(`real clients (${mode.name})`, () => {
    const srv = new Server(mode.args);
    before(() => srv.start());
    after(() => srv.stop());
    afterEach(() => assertAnswers(srv.port));
    const url = (p: string) => `http://127.0.0.1:${srv.port}${p}`;

    it("curl reuses one connection for two URLs", skipUnless("curl"), async () => {
      const r = await run("curl", ["-sv", "--max-time", "5", url("/1b"), url("/100b")]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout.length, 1 + 100, `bodies of /1b and /100b\n${show(r)}`);
      assert.equal(r.stderr.match(/^\* +Connected to /gm)?.length, 1, `one "Connected to"\n${show(r)}`);
      assert.match(r.stderr, /Re-?using existing connection/, show(r));
      assert.match(r.stderr, /left intact/, show(r));
      assert.equal(r.stderr.match(/^< HTTP\/1\.1 200 OK/gm)?.length, 2, show(r));
      assert.doesNotMatch(r.stderr, /Closing connection|Connection died/i, show(r));
    });

    it("ab -k -n 2000 -c 10: all complete, all keep-alive, none failed", skipUnless("ab"), async () => {
      const r = await run("ab", ["-k", "-n", "2000", "-c", "10", "-s", "5", url("/1b")]);
      assert.equal(r.code, 0, show(r));
      assert.equal(abField(r.stdout, "Complete requests"), 2000, show(r));
      assert.equal(abField(r.stdout, "Failed requests"), 0, show(r));
      assert.equal(abField(r.stdout, "Keep-Alive requests"), 2000, show(r));
      assert.equal(abField(r.stdout, "Document Length"), 1, show(r));
      assert.doesNotMatch(r.stdout, /Non-2xx responses/, show(r));
    });

    it("ab -n 500 -c 10 (no keep-alive): all complete, none failed", skipUnless("ab"), async () => {
      const r = await run("ab", ["-n", "500", "-c", "10", "-s", "5", url("/100b")]);
      assert.equal(r.code, 0, show(r));
      assert.equal(abField(r.stdout, "Complete requests"), 500, show(r));
      assert.equal(abField(r.stdout, "Failed requests"), 0, show(r));
      assert.equal(abField(r.stdout, "Document Length"), 100, show(r));
      assert.doesNotMatch(r.stdout, /Non-2xx responses/, show(r));
    });

    it("wrk -t1 -c20 -d1s: no socket errors, no non-2xx", skipUnless("wrk"), async () => {
      const r = await run("wrk", ["-t1", "-c20", "-d1s", "--timeout", "2s", url("/1b")]);
      assert.equal(r.code, 0, show(r));
      const m = /(\d+) requests in [\d.]+m?s/.exec(r.stdout);
      assert.ok(m && Number(m[1]) > 0, `wrk made requests\n${show(r)}`);
      assert.doesNotMatch(r.stdout, /Socket errors/, show(r));
      assert.doesNotMatch(r.stdout, /Non-2xx/, show(r));
    });

    it("h2load --h1 -n 2000 -c 10: all succeeded, all 2xx", skipUnless("h2load"), async () => {
      const r = await run("h2load", ["--h1", "-n", "2000", "-c", "10", url("/1b")]);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/, show(r));
      assert.match(r.stdout, /status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/, show(r));
    });

    it("open fds are back to the count right after start", async () => {
      await srv.assertFdsAtBaseline();
    });
  });
}
