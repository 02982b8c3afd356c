// cpu.cc: affinity, policy and getcpu for the calling thread.
#include "worker/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

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

namespace {
struct TrialArg {
  CpuTrial result;
  Policy policy;
  int priority;
};

void* trial_main(void* p) {
  auto* a = static_cast<TrialArg*>(p);
  CpuTrial& r = a->result;
  r.tid = static_cast<int>(syscall(SYS_gettid));
  r.pin_err = pin_self(r.cpu);
  if (a->policy != Policy::other) r.rt_err = set_policy_self(a->policy, a->priority);
  r.policy = current_policy_self(&r.priority);
  r.getcpu = current_cpu();
  return nullptr;
}
}  // namespace

std::vector<CpuTrial> trial_cpus(const std::vector<int>& cpus, Policy policy, int priority) {
  std::vector<TrialArg> args(cpus.size());
  std::vector<pthread_t> threads(cpus.size());
  std::vector<bool> started(cpus.size(), false);
  for (size_t i = 0; i < cpus.size(); i++) {
    args[i].result.cpu = cpus[i];
    args[i].policy = policy;
    args[i].priority = priority;
    started[i] = pthread_create(&threads[i], nullptr, trial_main, &args[i]) == 0;
  }
  std::vector<CpuTrial> out;
  for (size_t i = 0; i < cpus.size(); i++) {
    if (started[i]) pthread_join(threads[i], nullptr);
    else args[i].result.pin_err = EAGAIN;
    out.push_back(args[i].result);
  }
  return out;
}

}  // namespace vw
