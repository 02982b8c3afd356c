// The parser and the connection logic under libFuzzer (fuzz/run.sh): fuzz/regressions/ first,
// then 20 seconds of mutations of fuzz/corpus/, with ASan and UBSan, against the invariants in
// fuzz/parser_fuzz.cc. Skipped, with the reason shown, where clang or its fuzzer runtime is missing.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";

import { root, which } from "./helpers/server";

const SECONDS = 20;

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fuzz/run.sh still running after ${timeoutMs} ms:\n${out.slice(-2000)}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe("fuzzing", () => {
  const clang = which("clang++");
  it(
    `parse_request and serve_requests survive ${SECONDS} s of libFuzzer with every invariant held`,
    { skip: clang ? false : "clang not installed", timeout: 120_000 },
    async (t) => {
      const { code, out } = await run("bash", [path.join(root, "fuzz", "run.sh"), String(SECONDS)], 115_000);
      if (code === 77) {
        t.skip(/fuzz: SKIP: (.*)/.exec(out)?.[1] ?? "libFuzzer runtime not available");
        return;
      }
      // On failure, show where libFuzzer stopped: the violated invariant, the stack, the input.
      const tail = out.split("\n").filter((l) => !/^#\d+\s+(NEW|REDUCE|pulse)/.test(l)).slice(-60).join("\n");
      assert.equal(code, 0, `fuzz/run.sh exited ${code}:\n${tail}`);
      const done = /^Done (\d+) runs in (\d+) second/m.exec(out);
      assert.ok(done, `no libFuzzer "Done" line:\n${tail}`);
      assert.ok(Number(done[1]) > 1000, `only ${done[1]} runs in ${done[2]} s`);
    },
  );
});
