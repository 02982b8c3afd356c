// cpus-report.ts: `vw cpus`: what vw sees before it starts: allowed and online CPUs, topology,
// whether SCHED_FIFO can be granted and why, RT throttling, cgroup CPU quota, isolated CPUs,
// a trial thread pinned on each allowed CPU, and where each network interface's interrupts and
// RPS/XPS work land against the workers' CPUs (netirq.ts).
import * as fs from "node:fs";
import * as os from "node:os";

import { allowedCpus, formatCpuList, parseCpuList, selectCpus } from "../cpu";
import { native } from "../native";
import { netReport } from "./netirq";
import { errnoName } from "../errors";

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Sockets, cores and threads per core over the given CPUs (from sysfs). */
function topology(cpus: number[]): { sockets: number; cores: number; threadsPerCore: number } {
  const cores = new Set<string>();
  const sockets = new Set<string>();
  for (const c of cpus) {
    const base = `/sys/devices/system/cpu/cpu${c}/topology`;
    const pkg = read(`${base}/physical_package_id`) ?? "?";
    sockets.add(pkg);
    cores.add(`${pkg}/${read(`${base}/core_id`) ?? c}`);
  }
  return { sockets: sockets.size, cores: cores.size, threadsPerCore: cpus.length / Math.max(cores.size, 1) };
}

function capSysNice(): boolean {
  const eff = /^CapEff:\s+([0-9a-f]+)/m.exec(read("/proc/self/status") ?? "")?.[1];
  return eff !== undefined && (BigInt(`0x${eff}`) & (1n << 23n)) !== 0n; // CAP_SYS_NICE = 23
}

function rtprioLimit(): string {
  const line = (read("/proc/self/limits") ?? "").split("\n").find((l) => l.startsWith("Max realtime priority"));
  const soft = line?.trim().split(/\s+/)[3];
  return soft ?? "?";
}

function cgroupQuota(): string {
  const rel = (read("/proc/self/cgroup") ?? "").split("\n").find((l) => l.startsWith("0::"))?.slice(3);
  if (rel === undefined) return "unknown (no cgroup v2)";
  const max = read(`/sys/fs/cgroup${rel}/cpu.max`) ?? read("/sys/fs/cgroup/cpu.max");
  if (!max) return "none";
  const [quota, period] = max.split(" ");
  return quota === "max" ? "none (cpu.max max)" : `${Number(quota) / Number(period)} CPUs (cpu.max ${max})`;
}

function cmdlineFlag(name: string): string | undefined {
  return (read("/proc/cmdline") ?? "").split(/\s+/).find((w) => w.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** One trial thread: where it was pinned, what getcpu said, the policy it got (errno 0: fine). */
export interface CpuTrial {
  thread: number;
  cpu: number;
  getcpu: number;
  policy: string;
  priority: number;
  pin_errno: number;
  rt_errno: number;
}

/** What `vw cpus --json` prints: the facts behind the text report. */
export interface CpusFacts {
  allowed: number[];
  online: string;
  node_cpus: number;
  topology: { sockets: number; cores: number; threads_per_core: number };
  realtime: { uid: number; cap_sys_nice: boolean; rlimit_rtprio: string; policy: string; priority: number };
  /** sched_rt_runtime_us of sched_rt_period_us; runtime -1: throttling off. */
  rt_throttling: { runtime_us: number; period_us: number };
  cgroup_quota: string;
  isolcpus: string;
  nohz_full: string;
  trials: CpuTrial[];
}

export function cpusFacts(policy: "fifo" | "rr" | "other" = "fifo", priority = 50): CpusFacts {
  const allowed = allowedCpus();
  const topo = topology(allowed);
  const isolated = read("/sys/devices/system/cpu/isolated") || cmdlineFlag("isolcpus") || "none";
  const wanted = policy === "rr" ? "SCHED_RR" : policy === "fifo" ? "SCHED_FIFO" : "SCHED_OTHER";
  return {
    allowed,
    online: read("/sys/devices/system/cpu/online") ?? "?",
    node_cpus: os.cpus().length,
    topology: { sockets: topo.sockets, cores: topo.cores, threads_per_core: topo.threadsPerCore },
    realtime: { uid: process.getuid?.() ?? -1, cap_sys_nice: capSysNice(), rlimit_rtprio: rtprioLimit(), policy: wanted, priority },
    rt_throttling: { runtime_us: Number(read("/proc/sys/kernel/sched_rt_runtime_us")), period_us: Number(read("/proc/sys/kernel/sched_rt_period_us")) },
    cgroup_quota: cgroupQuota(),
    isolcpus: isolated === "none" ? "none" : formatCpuList(parseCpuList(isolated.replace(/^[a-z_,]*,(?=\d)/, ""))),
    nohz_full: read("/sys/devices/system/cpu/nohz_full") || cmdlineFlag("nohz_full") || "none",
    trials: native()
      .trialCpus(allowed, policy, priority)
      .map((t, i) => ({ thread: i, cpu: t.cpu, getcpu: t.getcpu, policy: t.policy, priority: t.priority, pin_errno: t.pinErrno, rt_errno: t.rtErrno })),
  };
}

export function cpusReport(policy: "fifo" | "rr" | "other" = "fifo", priority = 50, cpus?: string, workers?: number): string {
  const f = cpusFacts(policy, priority);
  const workerCpus = selectCpus(f.allowed, cpus, workers);
  const { runtime_us: runtime, period_us: period } = f.rt_throttling;
  const throttling =
    runtime < 0
      ? "off (sched_rt_runtime_us = -1): a saturated SCHED_FIFO worker can starve its CPU"
      : `${runtime} of every ${period} µs (${((runtime / period) * 100).toFixed(0)}%): normal tasks keep ${((period - runtime) / 1000).toFixed(0)} ms a second on a busy RT CPU`;
  const lines = [
    `allowed cpus: ${formatCpuList(f.allowed)} (sched_getaffinity; taskset and cpusets narrow it)`,
    `online cpus:  ${f.online} (${f.node_cpus} known to Node)`,
    `topology:     ${f.topology.sockets} socket(s), ${f.topology.cores} core(s), ${f.topology.threads_per_core} thread(s) per core (over allowed CPUs)`,
    `real-time:    uid ${f.realtime.uid}, CAP_SYS_NICE ${f.realtime.cap_sys_nice ? "yes" : "no"}, RLIMIT_RTPRIO ${f.realtime.rlimit_rtprio}`,
    `rt throttling: ${throttling}`,
    `cgroup quota: ${f.cgroup_quota}`,
    `isolcpus:     ${f.isolcpus}`,
    `nohz_full:    ${f.nohz_full}`,
  ];
  for (const t of f.trials) {
    const pin = t.pin_errno ? `  pin failed (errno ${t.pin_errno})` : "";
    const rt = t.rt_errno ? `  ${f.realtime.policy} refused (${errnoName(t.rt_errno)})` : "";
    const prio = t.policy === "SCHED_OTHER" ? "" : ` ${t.priority}`;
    lines.push(`thread ${t.thread} -> cpu ${t.cpu} (getcpu ${t.getcpu})  ${t.policy}${prio}${pin}${rt}`);
  }
  lines.push(...netReport(workerCpus));
  return lines.join("\n");
}
