// batch_write.cc: the writes declared in batch_write.h.
#include "engine/batch_write.h"

#include <cerrno>

namespace vw {

WriteResult write_batch(Sys& sys, StatsSlot& stats, int fd, Conn& c, const OutBatch& out,
                        const ResponseTable* table) {
  const iovec* iov = out.iov();
  int cnt = out.iovcnt();
  ssize_t n = cnt == 1 ? sys.write(fd, iov[0].iov_base, iov[0].iov_len) : sys.writev(fd, iov, cnt);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) return WriteResult::failed;  // EPIPE, ECONNRESET
    n = 0;
  }
  bump(stats.bytes_out, static_cast<uint64_t>(n));
  size_t written = static_cast<size_t>(n);
  if (written == out.bytes()) return WriteResult::done;
  bump(stats.partial_writes);
  c.out = pending_from_batch(out, written, table);
  return WriteResult::pending;
}

WriteResult write_pending(Sys& sys, StatsSlot& stats, int fd, Conn& c) {
  const iovec* iov;
  int cnt = pending_iov(*c.out, &iov);
  ssize_t n = sys.writev(fd, iov, cnt);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return WriteResult::pending;
    return WriteResult::failed;
  }
  bump(stats.bytes_out, static_cast<uint64_t>(n));
  if (pending_advance(*c.out, static_cast<size_t>(n))) return WriteResult::done;
  bump(stats.partial_writes);
  return WriteResult::pending;
}

}  // namespace vw
