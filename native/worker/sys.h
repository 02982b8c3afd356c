// sys.h: every system call a worker's loop makes goes through one of these counted wrappers, so
// the worker's own counts agree with `perf stat -e raw_syscalls:sys_enter` by construction.
// Worker thread only: each Sys writes its own worker's slot.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "worker/stats.h"

namespace vw {

class Sys {
 public:
  explicit Sys(StatsSlot& slot) : _s(slot) {}

  int epoll_wait(int epfd, epoll_event* ev, int max, int timeout_ms) {
    count(_s.sys_epoll_wait);
    if (__builtin_expect(_fail_waits, 0)) return fail_wait();
    return ::epoll_wait(epfd, ev, max, timeout_ms);
  }
  int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    count(_s.sys_epoll_ctl);
    return ::epoll_ctl(epfd, op, fd, ev);
  }
  int accept4(int fd, sockaddr* sa, socklen_t* len, int flags) {
    count(_s.sys_accept);
    return ::accept4(fd, sa, len, flags);
  }
  ssize_t read(int fd, void* buf, size_t n) {
    count(_s.sys_read);
    return ::read(fd, buf, n);
  }
  ssize_t write(int fd, const void* buf, size_t n) {
    count(_s.sys_write);
    return ::write(fd, buf, n);
  }
  ssize_t writev(int fd, const iovec* iov, int n) {
    count(_s.sys_write);
    return ::writev(fd, iov, n);
  }
  int close(int fd) {
    count(_s.sys_close);
    return ::close(fd);
  }
  int shutdown(int fd, int how) {
    count(_s.sys_other);
    return ::shutdown(fd, how);
  }
  int open(const char* path, int flags) {
    count(_s.sys_other);
    return ::open(path, flags);
  }
  int timerfd_settime(int fd, const itimerspec* spec) {
    count(_s.sys_other);
    return ::timerfd_settime(fd, 0, spec, nullptr);
  }
  // --proxy: opening upstream connections (socket and setsockopt count as other).
  int socket(int domain, int type, int protocol) {
    count(_s.sys_other);
    return ::socket(domain, type, protocol);
  }
  int setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
    count(_s.sys_other);
    return ::setsockopt(fd, level, name, val, len);
  }
  int connect(int fd, const sockaddr* sa, socklen_t len) {
    count(_s.sys_connect);
    return ::connect(fd, sa, len);
  }
  int getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
    count(_s.sys_other);
    return ::getsockopt(fd, level, name, val, len);
  }
  int getpeername(int fd, sockaddr* sa, socklen_t* len) {
    count(_s.sys_other);
    return ::getpeername(fd, sa, len);
  }
  int getrusage_thread(rusage* ru) {
    count(_s.sys_other);
    return ::getrusage(RUSAGE_THREAD, ru);
  }
  // The calling thread's CPU time; unlike getrusage it first brings the scheduler's runtime up
  // to date (thread CPU clocks are not in the vDSO: one system call).
  int thread_cputime(timespec* ts) {
    count(_s.sys_other);
    return ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, ts);
  }
  int poll(pollfd* fds, nfds_t n, int timeout_ms) {
    count(_s.sys_poll);
    if (__builtin_expect(_fail_waits, 0)) return fail_wait();
    return ::poll(fds, n, timeout_ms);
  }
  int select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* timeout) {
    count(_s.sys_select);
    if (__builtin_expect(_fail_waits, 0)) return fail_wait();
    return ::select(nfds, rd, wr, ex, timeout);
  }
  // A relative sleep on CLOCK_MONOTONIC (hrtimer-backed); --coalesce's pause.
  int nanosleep_us(uint32_t us) {
    count(_s.sys_nanosleep);
    timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
    return ::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
  }
  void* mmap_stack(size_t len) {
    count(_s.sys_other);
    return ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  }
  int mprotect(void* p, size_t len, int prot) {
    count(_s.sys_other);
    return ::mprotect(p, len, prot);
  }
  int munmap(void* p, size_t len) {
    count(_s.sys_other);
    return ::munmap(p, len);
  }
  // An io_uring_enter the caller made itself (liburing's own are counted where they are made).
  void counted_io_uring_enter() { count(_s.sys_io_uring_enter); }

  // Test hook (VW_TEST_FAULT=wait in the environment, read once at engine start): every wait
  // fails with EINVAL, the "impossible" error, so tests can see a worker stop cleanly on one
  // instead of spinning. A waits-only flag: one predictable branch per wait.
  void fail_waits_from_env() {
    const char* f = ::getenv("VW_TEST_FAULT");
    _fail_waits = f != nullptr && std::strcmp(f, "wait") == 0;
  }
  bool failing_waits() const { return _fail_waits; }
  // System calls made on our behalf by a library, a fixed number we know of (see the caller).
  void counted_other(uint64_t n) {
    bump(_s.sys_total, n);
    bump(_s.sys_other, n);
  }

 private:
  int fail_wait() {
    errno = EINVAL;
    return -1;
  }
  void count(std::atomic<uint64_t>& kind) {
    bump(_s.sys_total);
    bump(kind);
  }
  StatsSlot& _s;
  bool _fail_waits = false;
};

}  // namespace vw
