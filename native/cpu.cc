// cpu.cc: affinity, policy and getcpu for the calling thread.
#include "cpu.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>

namespace vw {

int allowed_cpus(std::vector<int>& out) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return errno;
  out.clear();
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  return 0;
}

int online_cpu_count() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

int pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int native_policy(Policy p) {
  switch (p) {
    case Policy::fifo: return SCHED_FIFO;
    case Policy::rr: return SCHED_RR;
    case Policy::other: break;
  }
  return SCHED_OTHER;
}

int set_policy_self(Policy policy, int priority) {
  sched_param param{};
  param.sched_priority = policy == Policy::other ? 0 : priority;
  return pthread_setschedparam(pthread_self(), native_policy(policy), &param);
}

Policy current_policy_self(int* priority) {
  int policy = SCHED_OTHER;
  sched_param param{};
  pthread_getschedparam(pthread_self(), &policy, &param);
  *priority = param.sched_priority;
  if (policy == SCHED_FIFO) return Policy::fifo;
  if (policy == SCHED_RR) return Policy::rr;
  return Policy::other;
}

// glibc answers from rseq/vDSO: no system call.
int current_cpu() { return sched_getcpu(); }

}  // namespace vw
