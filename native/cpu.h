// cpu.h: CPU affinity and scheduling policy for the calling thread. Returns errno; never prints.
#pragma once
#include <vector>

#include "config.h"

namespace vw {

// CPUs this process may run on (sched_getaffinity: honours taskset and cgroup cpusets).
int allowed_cpus(std::vector<int>& out);
int online_cpu_count();

int pin_self(int cpu);
// Sets the calling thread's policy; returns 0 or errno (EPERM without the privilege).
int set_policy_self(Policy policy, int priority);
Policy current_policy_self(int* priority);
int current_cpu();

}  // namespace vw
