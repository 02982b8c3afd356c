// engine_epoll.cc: the epoll engine. One blocking point per worker (epoll_wait over listeners,
// connections, a 1 s timerfd and the stop eventfd), level-triggered so one read per readiness
// is enough (no read that ends in EAGAIN), one write per batch of pipelined responses. The
// connection semantics live in readiness.h; this file is the interest set and the wait.
// Everything here runs on the worker thread.
#include <sys/epoll.h>

#include "engine/readiness.h"

namespace vw {
namespace {

constexpr int kMaxEvents = 512;

// epoll data: a connection is fd | gen << 32; the top bit marks the worker's own fds.
constexpr uint64_t kSpecial = 1ull << 63;
constexpr uint64_t kTagWake = kSpecial | 1;
constexpr uint64_t kTagTimer = kSpecial | 2;
constexpr uint64_t kTagListener = kSpecial | 0x100;  // + listener index

class EpollEngine final : public ReadinessEngine<EpollEngine> {
 public:
  explicit EpollEngine(WorkerEnv& env) : ReadinessEngine(env) {}
  int prepare(std::string& what) override;

  // ---- backend hooks (readiness.h) ----
  int b_wait() { return _sys.epoll_wait(_ep.get(), _events, kMaxEvents, -1); }
  bool b_dispatch(int n);
  bool b_add(int fd, Conn& c, Interest in) { return ctl(EPOLL_CTL_ADD, fd, c, events(in)); }
  bool b_watch(int fd, Conn& c, Interest in) { return ctl(EPOLL_CTL_MOD, fd, c, events(in)); }
  void b_forget(int) {}           // closing removes the fd from the epoll set
  void b_listener_closed(size_t) {}  // likewise
  void b_listener(size_t i, bool on) {
    epoll_event ev{};
    ev.events = on ? static_cast<uint32_t>(EPOLLIN) : 0u;
    ev.data.u64 = kTagListener + i;
    _sys.epoll_ctl(_ep.get(), EPOLL_CTL_MOD, _env.listeners[i].get(), &ev);
  }

 private:
  static uint32_t events(Interest in) {
    return in == Interest::read ? EPOLLIN : in == Interest::write ? EPOLLOUT : 0u;
  }
  bool ctl(int op, int fd, Conn& c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = static_cast<uint64_t>(fd) | (static_cast<uint64_t>(c.gen) << 32);
    return _sys.epoll_ctl(_ep.get(), op, fd, &ev) == 0;
  }

  Fd _ep;
  epoll_event _events[kMaxEvents];
};

int EpollEngine::prepare(std::string& what) {
  if (int err = prepare_common(what)) return err;
  _ep.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!_ep.valid()) {
    what = "epoll_create1";
    return errno;
  }
  auto add = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return epoll_ctl(_ep.get(), EPOLL_CTL_ADD, fd, &ev);
  };
  if (add(_env.wake_fd, kTagWake) || add(_timer.fd(), kTagTimer)) {
    what = "epoll_ctl";
    return errno;
  }
  for (size_t i = 0; i < _env.listeners.size(); i++) {
    if (add(_env.listeners[i].get(), kTagListener + i)) {
      what = "epoll_ctl listener";
      return errno;
    }
  }
  return 0;
}

bool EpollEngine::b_dispatch(int n) {
  for (int i = 0; i < n; i++) {
    uint64_t tag = _events[i].data.u64;
    if (tag & kSpecial) {
      if (tag == kTagWake) on_wake();
      else if (tag == kTagTimer) on_timer();
      else on_listener(static_cast<size_t>(tag - kTagListener));
      if (_stop == kImmediate) return false;
      continue;
    }
    int fd = static_cast<int>(tag & 0xffffffff);
    Conn& c = _conns[static_cast<size_t>(fd)];
    // Hazard: an earlier event of this batch may have closed fd, and an accept may have
    // reused it. The generation tells the old connection's event from the new one's.
    if (c.state == ConnState::free || c.gen != static_cast<uint32_t>(tag >> 32)) continue;
    uint32_t ev = _events[i].events;
    on_conn(fd, c, ((ev & EPOLLIN) ? kReadable : 0u) | ((ev & EPOLLOUT) ? kWritable : 0u) |
                       ((ev & (EPOLLERR | EPOLLHUP)) ? kHangup : 0u));
  }
  return true;
}

}  // namespace

std::unique_ptr<Engine> make_epoll_engine(WorkerEnv& env) {
  return std::make_unique<EpollEngine>(env);
}

}  // namespace vw
