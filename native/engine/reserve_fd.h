// reserve_fd.h: a spare fd, given up to accept-and-close when the process runs out (EMFILE,
// ENFILE), so the client hears a clean close and the listener stops being readable instead of
// spinning. One per worker, worker thread only.
#pragma once
#include "worker/fd.h"
#include "worker/sys.h"

namespace vw {

class ReserveFd {
 public:
  void open();  // before the gate: not counted
  // Closes the spare, accepts one connection on lfd and closes it, re-opens the spare.
  // Returns the accepted fd (already closed), or -1 when there was no spare or accept failed.
  int trick(Sys& sys, int lfd);

 private:
  Fd _fd;
};

}  // namespace vw
