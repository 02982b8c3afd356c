// A wait that fails with an error retrying cannot cure (anything but EINTR) stops the worker,
// never spins it at real-time priority: the launcher names the worker and the errno in one line
// and exits 1. The failure is injected with the test hook VW_TEST_FAULT=wait (every wait returns
// EINVAL), under every engine.
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { engineList, engineSkip } from "./helpers/engines";
import { startVw } from "./helpers/server";

describe("an impossible wait error ends the process, not in a spin", () => {
  for (const engine of engineList()) {
    it(`${engine}: exit 1 with one line naming the worker and EINVAL`, { skip: engineSkip(engine) ?? false, timeout: 20000 }, async () => {
      const t0 = Date.now();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--quiet", "--stats-interval", "0.2"], {
        env: { ...process.env, VW_TEST_FAULT: "wait" },
      });
      const timer = setTimeout(() => void vw.stop("SIGKILL"), 10000);
      const r = await vw.exited;
      clearTimeout(timer);
      assert.equal(r.code, 1, `exit ${r.code} ${r.signal ?? ""}: ${vw.stderr()}`);
      assert.ok(Date.now() - t0 < 8000, "took too long to notice");
      const lines = vw.stderr().split("\n").filter((l) => /stopped: its wait for events failed/.test(l));
      assert.equal(lines.length, 1, vw.stderr());
      assert.match(lines[0], /^vw: worker 0 \(cpu \d+\) stopped: its wait for events failed with EINVAL/);
    });
  }
});
