// clock.h: the worker's clocks, read through the vDSO so reading them costs no system call:
// coarse milliseconds for deadlines, microseconds for --coalesce, nanoseconds for the latency
// histogram. Any thread.
#pragma once
#include <time.h>

#include <cstdint>

namespace vw {

// Monotonic milliseconds, coarse (the tick's resolution is a second anyway).
inline uint64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// Microseconds on CLOCK_MONOTONIC: how close together a worker's passes come.
inline uint64_t mono_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// Monotonic nanoseconds.
inline uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace vw
