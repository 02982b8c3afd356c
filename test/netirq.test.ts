// `vw cpus`: where each network interface's interrupts and RPS/XPS work land against the
// workers' CPUs, read from /proc and /sys (a fake tree here, the real one through the CLI).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { netReport, parseCpuMask, readNics, transmitOnly } from "../src/cli/netirq";
import { runVw } from "./helpers/server";

let root = "";

function put(rel: string, text: string): void {
  const f = path.join(root, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
}

/** A 4-CPU machine with eth1 (4 queues, one vector each, IRQ 50+q on cpu `irqCpu(q)`) and a veth. */
function machine(irqCpu: (q: number) => number, rps = "0"): void {
  fs.rmSync(root, { recursive: true, force: true });
  const lines = ["           CPU0       CPU1       CPU2       CPU3"];
  for (let q = 0; q < 4; q++) {
    const counts = [0, 1, 2, 3].map((c) => (c === irqCpu(q) ? 1000 + q : 0));
    lines.push(` ${50 + q}:  ${counts.join("  ")}  PCI-MSIX-0000:01:00.0  ${q}-edge  eth1-TxRx-${q}`);
    put(`proc/irq/${50 + q}/smp_affinity_list`, `${irqCpu(q)}\n`);
    put(`sys/devices/pci0000:00/0000:01:00.0/msi_irqs/${50 + q}`, "msix\n");
    put(`sys/class/net/eth1/queues/rx-${q}/rps_cpus`, `${rps}\n`);
    put(`sys/class/net/eth1/queues/tx-${q}/xps_cpus`, `${(1 << q).toString(16)}\n`);
  }
  lines.push(" 60:  5  0  0  0  PCI-MSIX-0000:02:00.0  0-edge  nvme0q0");
  lines.push("NMI:  0  0  0  0  Non-maskable interrupts");
  put("proc/interrupts", lines.join("\n") + "\n");
  fs.symlinkSync(path.join(root, "sys/devices/pci0000:00/0000:01:00.0"), path.join(root, "sys/class/net/eth1/device"));
  put("sys/class/net/veth0/queues/rx-0/rps_cpus", "0\n");
  put("sys/class/net/lo/queues/rx-0/rps_cpus", "0\n");
}

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vw-netirq-"));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe("network interfaces against the workers' CPUs", () => {
  it("reads the vectors, their affinity, who took them, and the RPS/XPS masks", () => {
    machine((q) => q);
    const nics = readNics(root);
    assert.deepEqual(nics.map((n) => n.name), ["eth1", "veth0"]);
    const eth1 = nics[0];
    assert.equal(eth1.device, "0000:01:00.0");
    assert.equal(eth1.rxQueues, 4);
    assert.deepEqual(eth1.irqs.map((i) => [i.irq, i.name, i.affinity, i.took]), [
      [50, "eth1-TxRx-0", [0], [0]],
      [51, "eth1-TxRx-1", [1], [1]],
      [52, "eth1-TxRx-2", [2], [2]],
      [53, "eth1-TxRx-3", [3], [3]],
    ]);
    assert.deepEqual(eth1.rps, []);
    assert.deepEqual(eth1.xps, [0, 1, 2, 3]);
    assert.equal(nics[1].device, undefined, "a veth has no device and no interrupts");
  });

  it("one queue per worker CPU: lines up", () => {
    machine((q) => q);
    const text = netReport([0, 1, 2, 3], root).join("\n");
    assert.match(text, /^network: +workers on cpu 0-3/m);
    assert.match(text, /eth1: lines up: its interrupts put its receive work on the workers' CPUs \(0-3\)/);
    assert.match(text, /virtual .*: veth0/);
  });

  it("every queue on cpu 0: the other workers' packets are processed elsewhere, said once with the fix", () => {
    machine(() => 0);
    const text = netReport([0, 1, 2, 3], root).join("\n");
    assert.match(text, /eth1: does not line up: its interrupts put its receive work on cpu 0, so workers on cpu 1-3 get connections whose packets another CPU processed; .*smp_affinity_list.*rps_cpus/);
  });

  it("RPS over every CPU makes up for it", () => {
    machine(() => 0, "f");
    const text = netReport([0, 1, 2, 3], root).join("\n");
    assert.match(text, /rps 0-3/);
    assert.match(text, /eth1: lines up: RPS put its receive work on the workers' CPUs/);
  });

  it("interrupts on CPUs without a worker are named (CPUs set aside for interrupts)", () => {
    machine((q) => q);
    const text = netReport([0, 1], root).join("\n");
    assert.match(text, /eth1: receive work also on cpu 2-3, where no worker runs/);
    assert.doesNotMatch(text, /does not line up/);
  });

  it("masks and vector names", () => {
    assert.deepEqual(parseCpuMask("00000000,0000000f"), [0, 1, 2, 3]);
    assert.deepEqual(parseCpuMask("1,00000001"), [0, 32]);
    assert.deepEqual(parseCpuMask("0"), []);
    assert.equal(transmitOnly("virtio2-output.0"), true);
    assert.equal(transmitOnly("eth0-tx-3"), true);
    assert.equal(transmitOnly("eth0-TxRx-3"), false);
    assert.equal(transmitOnly("virtio2-input.0"), false);
  });
});

describe("vw cpus", () => {
  it("reports the network section for the real machine", async () => {
    const r = await runVw(["cpus", "--policy", "other"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^network: +workers on cpu /m);
    assert.match(r.stdout, /^ {2}lo: loopback has no interrupts/m);
  });
  it("--cpus narrows the workers it compares against; a bad --workers is one line, exit 2", async () => {
    const r = await runVw(["cpus", "--policy", "other", "--cpus", "0"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^network: +workers on cpu 0;/m);
    const bad = await runVw(["cpus", "--workers", "0"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr.trim(), /^vw: --workers 0: must be a whole number from 1$/);
  });
});
