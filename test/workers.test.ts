// Workers: one per allowed CPU, each pinned to exactly its CPU, real-time when privileged.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { allowedCpus, formatCpuList } from "../src/cpu";
import { RawClient, runVw, startVw, type VwProcess } from "./helpers/server";
import { isRoot, taskPolicy, taskStatus } from "./helpers/proc";

const SCHED_FIFO = 1;

describe("workers on every allowed CPU", () => {
  let vw: VwProcess;
  const cpus = allowedCpus();
  before(async () => {
    vw = await startVw([]);
  });
  after(async () => {
    await vw.stop();
  });

  it("starts one worker per allowed CPU and prints a line for each", () => {
    const lines = vw.stdout().split("\n").filter((l) => l.startsWith("worker "));
    assert.equal(lines.length, cpus.length);
    lines.forEach((line, i) => {
      assert.match(line, new RegExp(`^worker ${i}  cpu ${cpus[i]} \\(getcpu ${cpus[i]}\\)  SCHED_(FIFO 50|OTHER)  tid \\d+$`));
    });
  });

  it("pins each worker thread to exactly its CPU", () => {
    assert.equal(vw.tids.length, cpus.length);
    vw.tids.forEach((tid, i) => {
      assert.equal(taskStatus(vw.pid, tid).get("Cpus_allowed_list"), String(cpus[i]));
    });
  });

  it("runs the workers SCHED_FIFO at priority 50 when root", { skip: isRoot() ? false : "not root" }, () => {
    for (const tid of vw.tids) {
      assert.deepEqual(taskPolicy(vw.pid, tid), { policy: SCHED_FIFO, rtPriority: 50 });
    }
  });

  it("leaves the Node main thread with normal scheduling", () => {
    assert.equal(taskPolicy(vw.pid, vw.pid).policy, 0);
  });

  it("serves from every worker", async () => {
    const c = await RawClient.connect(vw.port);
    const r = await c.request("GET /1b HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal(r.status, 200);
    c.destroy();
  });
});

describe("CPU selection", () => {
  const cpus = allowedCpus();

  it("--workers 1 --cpus LAST pins a single worker there", async () => {
    const last = cpus[cpus.length - 1];
    const vw = await startVw(["--workers", "1", "--cpus", String(last)]);
    try {
      assert.equal(vw.tids.length, 1);
      assert.equal(taskStatus(vw.pid, vw.tids[0]).get("Cpus_allowed_list"), String(last));
    } finally {
      await vw.stop();
    }
  });

  it("respects taskset: under taskset -c LAST only that CPU gets a worker", async () => {
    const last = cpus[cpus.length - 1];
    const vw = await startVw([], { wrap: ["taskset", "-c", String(last)] });
    try {
      assert.equal(vw.tids.length, 1);
      assert.match(vw.stdout(), new RegExp(`worker 0  cpu ${last} \\(getcpu ${last}\\)`));
    } finally {
      await vw.stop();
    }
  });

  it("refuses a CPU outside the allowed set, naming the allowed set", async () => {
    const r = await runVw(["--port", "0", "--cpus", "4000"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.match(r.stderr, new RegExp(`CPU 4000 is not allowed .*allowed: ${formatCpuList(cpus)}`));
  });

  it("refuses a CPU that taskset excluded", { skip: cpus.length < 2 ? "needs 2 CPUs" : false }, async () => {
    const r = await runVw(["--port", "0", "--cpus", String(cpus[0])], { wrap: ["taskset", "-c", String(cpus[1])] });
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`allowed: ${cpus[1]}$`, "m"));
  });

  it("refuses more workers than CPUs", async () => {
    const r = await runVw(["--port", "0", "--workers", String(cpus.length + 1)]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /one worker per CPU/);
  });
});
