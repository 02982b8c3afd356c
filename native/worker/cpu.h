// cpu.h: CPU affinity and scheduling policy for the calling thread. Returns errno; never prints.
#pragma once
#include <vector>

#include "worker/config.h"

namespace vw {

// CPUs this process may run on (sched_getaffinity: honours taskset and cgroup cpusets).
int allowed_cpus(std::vector<int>& out);

int pin_self(int cpu);
// Sets the calling thread's policy; returns 0 or errno (EPERM without the privilege).
int set_policy_self(Policy policy, int priority);
Policy current_policy_self(int* priority);
int current_cpu();

// `vw cpus`: what a worker would get on each CPU, tried by a short-lived thread per CPU.
struct CpuTrial {
  int cpu = -1;
  int pin_err = 0;
  int getcpu = -1;
  int rt_err = 0;
  Policy policy = Policy::other;
  int priority = 0;
  int tid = 0;
};
std::vector<CpuTrial> trial_cpus(const std::vector<int>& cpus, Policy policy, int priority);

}  // namespace vw
