// engine_select.cc: the select engine. The worker keeps master read and write fd_sets over its
// whole fd set (the stop eventfd, the 1 s timerfd, its listeners, every connection); select()
// overwrites what it is given, so every call starts from a copy of the masters and the worker
// then tests every fd up to the highest one: the O(n) cost per call is real here, by design.
// An fd_set holds fds below FD_SETSIZE (1024) only: a connection accepted on a higher fd is
// closed at once and counted in `rejected` (the worker prints nothing; the counters say it).
// Connection semantics are the ones in readiness.h. Everything here runs on the worker thread.
#include <sys/select.h>

#include "engine/readiness.h"

namespace vw {
namespace {

class SelectEngine final : public ReadinessEngine<SelectEngine> {
 public:
  explicit SelectEngine(WorkerEnv& env) : ReadinessEngine(env) {
    FD_ZERO(&_rd);
    FD_ZERO(&_wr);
    FD_ZERO(&_rd_ready);
    FD_ZERO(&_wr_ready);
  }
  int prepare(std::string& what) override;

  // ---- backend hooks (readiness.h) ----
  int b_wait() {
    _rd_ready = _rd;
    _wr_ready = _wr;
    return _sys.select(_maxfd + 1, &_rd_ready, &_wr_ready, nullptr, nullptr);
  }
  bool b_dispatch(int n);
  bool b_admit_fd(int fd) { return fd < FD_SETSIZE; }  // FD_SET beyond it writes out of bounds
  bool b_add(int fd, Conn& c, Interest in) {
    if (fd > _maxfd) _maxfd = fd;
    return b_watch(fd, c, in);
  }
  bool b_watch(int fd, Conn&, Interest in) {
    FD_CLR(fd, &_rd);
    FD_CLR(fd, &_wr);
    if (in == Interest::read) FD_SET(fd, &_rd);
    if (in == Interest::write) FD_SET(fd, &_wr);
    if (in != Interest::none && fd > _maxfd) _maxfd = fd;  // b_forget may have lowered it
    return true;
  }
  // Also clears what the current select() reported for fd: an accept later in this pass may
  // reuse the number, and the new connection must not inherit the old one's readiness.
  void b_forget(int fd) {
    FD_CLR(fd, &_rd);
    FD_CLR(fd, &_wr);
    FD_CLR(fd, &_rd_ready);
    FD_CLR(fd, &_wr_ready);
    while (_maxfd >= 0 && !FD_ISSET(_maxfd, &_rd) && !FD_ISSET(_maxfd, &_wr)) _maxfd--;
  }
  void b_listener(size_t i, bool on) {
    int fd = _env.listeners[i].get();
    if (on) FD_SET(fd, &_rd);
    else FD_CLR(fd, &_rd);
  }
  void b_listener_closed(size_t i) {
    int fd = _env.listeners[i].get();
    _listener_of[static_cast<size_t>(fd)] = -1;
    b_forget(fd);
  }

 private:
  void watch_own(int fd) {
    FD_SET(fd, &_rd);
    if (fd > _maxfd) _maxfd = fd;
  }

  fd_set _rd, _wr;              // interest: rebuilt into the ready sets before each call
  fd_set _rd_ready, _wr_ready;  // what the last select() reported
  int _maxfd = -1;
  std::vector<int> _listener_of = std::vector<int>(FD_SETSIZE, -1);  // fd -> listener index
};

int SelectEngine::prepare(std::string& what) {
  if (int err = prepare_common(what)) return err;
  std::vector<int> own{_env.wake_fd, _timer.fd()};
  for (const Fd& l : _env.listeners) own.push_back(l.get());
  for (int fd : own) {
    if (fd >= FD_SETSIZE) {
      what = "select: fd " + std::to_string(fd) + " is at or above FD_SETSIZE (" +
             std::to_string(FD_SETSIZE) + ")";
      return EMFILE;
    }
    watch_own(fd);
  }
  for (size_t i = 0; i < _env.listeners.size(); i++)
    _listener_of[static_cast<size_t>(_env.listeners[i].get())] = static_cast<int>(i);
  return 0;
}

bool SelectEngine::b_dispatch(int n) {
  const int wake = _env.wake_fd;
  const int timer = _timer.fd();
  // Every fd up to the highest is tested. `left` (ready bits not yet seen) ends the scan early.
  int left = n;
  for (int fd = 0; fd <= _maxfd && left > 0; fd++) {
    uint32_t ready = (FD_ISSET(fd, &_rd_ready) ? kReadable : 0u) |
                     (FD_ISSET(fd, &_wr_ready) ? kWritable : 0u);
    if (!ready) continue;
    left -= (ready & kReadable ? 1 : 0) + (ready & kWritable ? 1 : 0);
    if (fd == wake) {
      on_wake();
      if (_stop == kImmediate) return false;
    } else if (fd == timer) {
      on_timer();
    } else if (_listener_of[static_cast<size_t>(fd)] >= 0) {
      on_listener(static_cast<size_t>(_listener_of[static_cast<size_t>(fd)]));
    } else {
      // select reports an error as readable (and writable): on_conn reads or writes to see it.
      on_conn(fd, _conns[static_cast<size_t>(fd)], ready);
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<Engine> make_select_engine(WorkerEnv& env) {
  return std::make_unique<SelectEngine>(env);
}

}  // namespace vw
