// tick_timer.h: the worker's 1 s tick as a timerfd (the readiness and blocking engines wait on
// it; io_uring has its own timeout), 100 ms while a graceful stop drains, so the drain deadline
// holds to within a tenth of a second. Worker thread only.
#pragma once
#include <sys/timerfd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "worker/fd.h"
#include "worker/sys.h"

namespace vw {

class TickTimer {
 public:
  // Before the gate: not counted. Returns errno and names the step in `what`.
  int open(std::string& what) {
    _fd.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    itimerspec every_second{{1, 0}, {1, 0}};
    if (!_fd.valid() || timerfd_settime(_fd.get(), 0, &every_second, nullptr)) {
      what = "timerfd";
      return errno;
    }
    return 0;
  }
  int fd() const { return _fd.get(); }
  // It fired: read the expirations, so it stops being readable.
  void consume(Sys& sys) {
    uint64_t expirations;
    sys.read(_fd.get(), &expirations, sizeof(expirations));
  }
  void faster(Sys& sys) {
    itimerspec fast{{0, 100 * 1000 * 1000}, {0, 100 * 1000 * 1000}};
    sys.timerfd_settime(_fd.get(), &fast);
  }

 private:
  Fd _fd;
};

}  // namespace vw
