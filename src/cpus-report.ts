// cpus-report.ts: `vw cpus`: what vw sees before it starts: allowed and online CPUs, topology,
// whether SCHED_FIFO can be granted and why, RT throttling, cgroup CPU quota, isolated CPUs,
// a trial thread pinned on each allowed CPU, and where each network interface's interrupts and
// RPS/XPS work land against the workers' CPUs (netirq.ts).
import * as fs from "node:fs";
import * as os from "node:os";

import { allowedCpus, formatCpuList, parseCpuList, selectCpus } from "./cpu";
import { native } from "./native";
import { netReport } from "./netirq";

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

function topology(cpus: number[]): string {
  const cores = new Set<string>();
  const sockets = new Set<string>();
  for (const c of cpus) {
    const base = `/sys/devices/system/cpu/cpu${c}/topology`;
    const pkg = read(`${base}/physical_package_id`) ?? "?";
    sockets.add(pkg);
    cores.add(`${pkg}/${read(`${base}/core_id`) ?? c}`);
  }
  const threads = cpus.length / Math.max(cores.size, 1);
  return `${sockets.size} socket(s), ${cores.size} core(s), ${threads} thread(s) per core (over allowed CPUs)`;
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

export function cpusReport(policy: "fifo" | "rr" | "other" = "fifo", priority = 50, cpus?: string, workers?: number): string {
  const allowed = allowedCpus();
  const workerCpus = selectCpus(allowed, cpus, workers);
  const online = read("/sys/devices/system/cpu/online") ?? "?";
  const uid = process.getuid?.() ?? -1;
  const runtime = Number(read("/proc/sys/kernel/sched_rt_runtime_us"));
  const period = Number(read("/proc/sys/kernel/sched_rt_period_us"));
  const throttling =
    runtime < 0
      ? "off (sched_rt_runtime_us = -1): a saturated SCHED_FIFO worker can starve its CPU"
      : `${runtime} of every ${period} µs (${((runtime / period) * 100).toFixed(0)}%): normal tasks keep ${((period - runtime) / 1000).toFixed(0)} ms a second on a busy RT CPU`;
  const isolated = read("/sys/devices/system/cpu/isolated") || cmdlineFlag("isolcpus") || "none";
  const nohz = read("/sys/devices/system/cpu/nohz_full") || cmdlineFlag("nohz_full") || "none";
  const lines = [
    `allowed cpus: ${formatCpuList(allowed)} (sched_getaffinity; taskset and cpusets narrow it)`,
    `online cpus:  ${online} (${os.cpus().length} known to Node)`,
    `topology:     ${topology(allowed)}`,
    `real-time:    uid ${uid}, CAP_SYS_NICE ${capSysNice() ? "yes" : "no"}, RLIMIT_RTPRIO ${rtprioLimit()}`,
    `rt throttling: ${throttling}`,
    `cgroup quota: ${cgroupQuota()}`,
    `isolcpus:     ${isolated === "none" ? "none" : formatCpuList(parseCpuList(isolated.replace(/^[a-z_,]*,(?=\d)/, "")))}`,
    `nohz_full:    ${nohz}`,
  ];
  const wanted = policy === "rr" ? "SCHED_RR" : policy === "fifo" ? "SCHED_FIFO" : "SCHED_OTHER";
  for (const [i, t] of native().trialCpus(allowed, policy, priority).entries()) {
    const pin = t.pinErrno ? `  pin failed (errno ${t.pinErrno})` : "";
    const rt = t.rtErrno ? `  ${wanted} refused (${t.rtErrno === 1 ? "EPERM" : `errno ${t.rtErrno}`})` : "";
    const prio = t.policy === "SCHED_OTHER" ? "" : ` ${t.priority}`;
    lines.push(`thread ${i} -> cpu ${t.cpu} (getcpu ${t.getcpu})  ${t.policy}${prio}${pin}${rt}`);
  }
  lines.push(...netReport(workerCpus));
  return lines.join("\n");
}
