// reserve_fd.cc: the spare fd declared in reserve_fd.h.
#include "engine/reserve_fd.h"

#include <fcntl.h>
#include <sys/socket.h>

namespace vw {

void ReserveFd::open() { _fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

int ReserveFd::trick(Sys& sys, int lfd) {
  if (!_fd.valid()) return -1;
  sys.close(_fd.release());
  int fd = sys.accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) sys.close(fd);
  _fd.reset(sys.open("/dev/null", O_RDONLY | O_CLOEXEC));
  return fd;
}

}  // namespace vw
