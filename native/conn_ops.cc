// conn_ops.cc: the engine-independent connection helpers declared in conn_ops.h.
#include "conn_ops.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace vw {

ReadSpan read_span(Conn& c, char* rbuf, size_t rbuf_len, const Limits& lim) {
  if (c.state != ConnState::open || c.in_len == 0) return {rbuf, rbuf_len};
  // An unfinished header continues where it stopped, in the connection's own buffer.
  if (c.in_len == c.in_cap) {
    uint32_t cap = c.in_cap * 2 > lim.max_header ? lim.max_header : c.in_cap * 2;
    if (cap <= c.in_cap) cap = c.in_cap + kMinInCap;  // parser answers 431 before this grows far
    c.in = static_cast<char*>(std::realloc(c.in, cap));
    c.in_cap = cap;
  }
  return {c.in + c.in_len, c.in_cap - c.in_len};
}

void keep_input(Conn& c, const char* p, size_t n) {
  if (n == 0) {
    if (c.in) {  // idle connections hold no buffer
      std::free(c.in);
      c.in = nullptr;
      c.in_cap = 0;
    }
    c.in_len = 0;
    return;
  }
  if (p == c.in && n == c.in_len) return;
  if (c.in && p >= c.in && p < c.in + c.in_cap) {
    std::memmove(c.in, p, n);
  } else {
    if (n > c.in_cap) {
      uint32_t cap = static_cast<uint32_t>(n) > kMinInCap ? static_cast<uint32_t>(n) : kMinInCap;
      std::free(c.in);
      c.in = static_cast<char*>(std::malloc(cap));
      c.in_cap = cap;
    }
    std::memcpy(c.in, p, n);
  }
  c.in_len = static_cast<uint32_t>(n);
}

PendingOut* pending_from_batch(const OutBatch& out, size_t written, const ResponseTable* table) {
  const iovec* iov = out.iov();
  int cnt = out.iovcnt();
  size_t skip = written, staged = 0;
  for (int i = 0; i < cnt; i++) {
    size_t len = iov[i].iov_len, off = skip < len ? skip : len;
    skip -= off;
    if (out.in_stage(iov[i].iov_base)) staged += len - off;
  }
  auto p = new PendingOut();
  p->copied.reset(new char[staged ? staged : 1]);
  p->iov.reserve(static_cast<size_t>(cnt));
  char* dst = p->copied.get();
  skip = written;
  for (int i = 0; i < cnt; i++) {
    size_t len = iov[i].iov_len, off = skip < len ? skip : len;
    skip -= off;
    if (off == len) continue;
    const char* src = static_cast<const char*>(iov[i].iov_base) + off;
    if (out.in_stage(iov[i].iov_base)) {
      std::memcpy(dst, src, len - off);
      p->iov.push_back({dst, len - off});
      dst += len - off;
    } else {
      p->iov.push_back({const_cast<char*>(src), len - off});
      if (!p->pinned) p->pin(table);
    }
  }
  return p;
}

bool pending_advance(PendingOut& p, size_t n) {
  while (p.first < p.iov.size() && n >= p.iov[p.first].iov_len) n -= p.iov[p.first++].iov_len;
  if (p.first == p.iov.size()) return true;
  p.iov[p.first].iov_base = static_cast<char*>(p.iov[p.first].iov_base) + n;
  p.iov[p.first].iov_len -= n;
  return false;
}

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

void count_locality(Sys& sys, StatsSlot& stats, int worker_cpu, int fd) {
  int cpu = -1;
  socklen_t len = sizeof(cpu);
  if (sys.getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) != 0 || cpu < 0) return;
  if (cpu == worker_cpu)
    bump(stats.incoming_local);
  else
    bump(stats.incoming_remote);
}

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
