// admission.cc: --locality's count, declared in admission.h.
#include "engine/admission.h"

namespace vw {

void count_locality(Sys& sys, StatsSlot& stats, int worker_cpu, int fd) {
  int cpu = -1;
  socklen_t len = sizeof(cpu);
  if (sys.getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) != 0 || cpu < 0) return;
  if (cpu == worker_cpu)
    bump(stats.incoming_local);
  else
    bump(stats.incoming_remote);
}

}  // namespace vw
