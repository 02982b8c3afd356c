// netirq.ts: for `vw cpus`: per network interface, which CPUs take its interrupts
// (/proc/interrupts, /proc/irq/N/*affinity_list) and its RPS/XPS masks, set against the workers'
// CPUs, with a sentence when they do not line up. Reads files only; `root` lets tests point it
// at a fake /proc and /sys.
import * as fs from "node:fs";
import * as path from "node:path";

import { formatCpuList, parseCpuList } from "../cpu";

export interface NicIrq {
  irq: number;
  name: string; // the action name in /proc/interrupts, e.g. eth0-TxRx-0, virtio2-input.0
  affinity: number[]; // effective_affinity_list, else smp_affinity_list
  took: number[]; // CPUs that have handled it at least once
}

export interface Nic {
  name: string;
  device: string | undefined; // the device it sits on (undefined: virtual, no interrupts)
  rxQueues: number;
  txQueues: number;
  irqs: NicIrq[];
  rps: number[]; // union of rx-*/rps_cpus
  xps: number[]; // union of tx-*/xps_cpus
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

function list(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** "00000000,0000000f" (32-bit groups, most significant first) → [0, 1, 2, 3]. */
export function parseCpuMask(text: string): number[] {
  const groups = text.trim().split(",").reverse();
  const out: number[] = [];
  groups.forEach((g, i) => {
    const v = parseInt(g || "0", 16);
    for (let b = 0; b < 32; b++) if (v & (1 << b)) out.push(i * 32 + b);
  });
  return out;
}

interface IrqLine {
  irq: number;
  counts: Map<number, number>;
  name: string;
}

function interrupts(proc: string): IrqLine[] {
  const text = read(path.join(proc, "interrupts"));
  if (!text) return [];
  const [header, ...rest] = text.split("\n");
  const cpus = header.trim().split(/\s+/).map((c) => Number(c.replace(/^CPU/, "")));
  const out: IrqLine[] = [];
  for (const line of rest) {
    const m = /^\s*(\d+):\s+(.*)$/.exec(line);
    if (!m) continue;
    const fields = m[2].trim().split(/\s+/);
    const counts = new Map<number, number>();
    cpus.forEach((cpu, i) => counts.set(cpu, Number(fields[i]) || 0));
    out.push({ irq: Number(m[1]), counts, name: fields.slice(cpus.length).at(-1) ?? "" });
  }
  return out;
}

function union(sets: number[][]): number[] {
  return [...new Set(sets.flat())].sort((a, b) => a - b);
}

/** Every interface but lo, with its interrupts and steering masks. */
export function readNics(root = "/"): Nic[] {
  const sys = path.join(root, "sys", "class", "net");
  const proc = path.join(root, "proc");
  const lines = interrupts(proc);
  const nics: Nic[] = [];
  for (const name of list(sys)) {
    if (name === "lo") continue;
    const base = path.join(sys, name);
    const queues = list(path.join(base, "queues"));
    const rx = queues.filter((q) => q.startsWith("rx-"));
    const tx = queues.filter((q) => q.startsWith("tx-"));
    let device: string | undefined;
    try {
      device = fs.realpathSync(path.join(base, "device"));
    } catch {
      device = undefined;
    }
    const irqs: NicIrq[] = [];
    if (device !== undefined) {
      // MSI vectors of the device (or of the PCI function a virtio device sits on), and any line
      // named after the interface or the device (eth0-TxRx-0, virtio2-input.0).
      const msi = new Set([...list(path.join(device, "msi_irqs")), ...list(path.join(device, "..", "msi_irqs"))].map(Number));
      const dev = path.basename(device);
      const esc = (t: string): string => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const named = new RegExp(`(^|[^\\w])(${esc(name)}|${esc(dev)})([^\\w]|$)`);
      for (const l of lines) {
        if (!msi.has(l.irq) && !named.test(l.name)) continue;
        if (/-config$|^virtio\d+-(config|ctrl)/.test(l.name)) continue; // not packet work
        const irqDir = path.join(proc, "irq", String(l.irq));
        const aff = read(path.join(irqDir, "effective_affinity_list")) || read(path.join(irqDir, "smp_affinity_list")) || "";
        irqs.push({
          irq: l.irq,
          name: l.name,
          affinity: aff ? parseCpuList(aff) : [],
          took: [...l.counts].filter(([, n]) => n > 0).map(([cpu]) => cpu),
        });
      }
    }
    const mask = (q: string, file: string): number[] => parseCpuMask(read(path.join(base, "queues", q, file)) ?? "0");
    nics.push({
      name,
      device: device === undefined ? undefined : path.basename(device),
      rxQueues: rx.length,
      txQueues: tx.length,
      irqs,
      rps: union(rx.map((q) => mask(q, "rps_cpus"))),
      xps: union(tx.map((q) => mask(q, "xps_cpus"))),
    });
  }
  return nics;
}

/** A transmit-completion vector (eth0-tx-0, virtio2-output.0), not one that brings packets in. */
export function transmitOnly(name: string): boolean {
  return /(^|[-_.])(tx|output)([-_.\d]|$)/i.test(name) && !/rx|input/i.test(name);
}

const fmt = (cpus: number[]): string => (cpus.length ? formatCpuList(cpus) : "none");

/** The `vw cpus` lines for the network interfaces, against the workers' CPUs. */
export function netReport(workerCpus: readonly number[], root = "/"): string[] {
  const nics = readNics(root);
  const out = [`network:      workers on cpu ${fmt([...workerCpus])}; per interface, the CPUs that take its interrupts and its RPS/XPS masks`];
  const virtual = nics.filter((n) => n.device === undefined).map((n) => n.name);
  for (const n of nics.filter((x) => x.device !== undefined)) {
    const irqText = n.irqs.length
      ? n.irqs.map((i) => `${i.irq} ${i.name} -> cpu ${fmt(i.affinity)} (took it: ${fmt(i.took)})`).join(", ")
      : "none found";
    out.push(`  ${n.name} (${n.device}, ${n.rxQueues} rx / ${n.txQueues} tx queues): irqs ${irqText}; rps ${fmt(n.rps)}; xps ${fmt(n.xps)}`);
    // Where its receive work runs: RPS moves the protocol work to the masked CPUs; without it,
    // the CPU that took the interrupt does it all.
    const irqCpus = union(n.irqs.filter((i) => !transmitOnly(i.name)).map((i) => (i.took.length ? i.took : i.affinity)));
    const processing = n.rps.length ? n.rps : irqCpus;
    if (processing.length === 0) {
      out.push(`  ${n.name}: no interrupt of its own found; vw cannot tell where its packets are processed (--locality measures it)`);
      continue;
    }
    const uncovered = workerCpus.filter((c) => !processing.includes(c));
    const idle = processing.filter((c) => !workerCpus.includes(c));
    const by = n.rps.length ? "RPS" : "its interrupts";
    if (uncovered.length === 0 && idle.length === 0) {
      out.push(`  ${n.name}: lines up: ${by} put its receive work on the workers' CPUs (${fmt(processing)})`);
      continue;
    }
    if (uncovered.length) {
      out.push(
        `  ${n.name}: does not line up: ${by} put its receive work on cpu ${fmt(processing)}, so workers on cpu ${fmt(uncovered)} get connections whose packets another CPU processed; spread the queues over the worker CPUs (/proc/irq/N/smp_affinity_list, one queue per worker; ethtool -L for more queues) or set rx-N/rps_cpus to include them (--locality counts it)`,
      );
    }
    if (idle.length) {
      out.push(`  ${n.name}: receive work also on cpu ${fmt(idle)}, where no worker runs (fine when those CPUs are set aside for interrupts)`);
    }
  }
  if (virtual.length) out.push(`  virtual (no interrupts of their own; their packets are processed on the sending CPU): ${virtual.join(", ")}`);
  out.push(`  lo: loopback has no interrupts; its packets are processed on the sending CPU`);
  return out;
}
