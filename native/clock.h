// clock.h: the latency histogram's clock. CLOCK_MONOTONIC through the vDSO: no system call.
#pragma once
#include <time.h>

#include <cstdint>

namespace vw {

// Monotonic nanoseconds.
inline uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace vw
