// engine_poll.cc: the poll engine. The worker keeps one pollfd array over its whole fd set (the
// stop eventfd, the 1 s timerfd, its listeners, every connection) and hands all of it to poll()
// each iteration, so the kernel walks every fd and the worker scans every entry afterwards: the
// O(n) cost per call that epoll avoids is real here, by design. Connection semantics are the
// ones in readiness.h. Everything here runs on the worker thread.
#include <poll.h>

#include "engine/readiness.h"

namespace vw {
namespace {

constexpr size_t kWake = 0;
constexpr size_t kTimer = 1;
constexpr size_t kFirstListener = 2;

class PollEngine final : public ReadinessEngine<PollEngine> {
 public:
  explicit PollEngine(WorkerEnv& env) : ReadinessEngine(env) {}
  int prepare(std::string& what) override;

  // ---- backend hooks (readiness.h) ----
  int b_wait() { return _sys.poll(_pfds.data(), static_cast<nfds_t>(_pfds.size()), -1); }
  bool b_dispatch(int n);
  bool b_add(int fd, Conn&, Interest in) {
    if (static_cast<size_t>(fd) >= _index.size()) _index.resize(static_cast<size_t>(fd) * 2 + 64, -1);
    _index[static_cast<size_t>(fd)] = static_cast<int32_t>(_pfds.size());
    _pfds.push_back({fd, events(in), 0});  // revents 0: a fresh entry is never taken for a ready one
    return true;
  }
  bool b_watch(int fd, Conn&, Interest in) {
    _pfds[static_cast<size_t>(_index[static_cast<size_t>(fd)])].events = events(in);
    return true;
  }
  // Swap-remove: the last entry takes the closed one's place. run() scans downwards, so the
  // moved entry has either been handled already (its revents cleared) or is still ahead.
  void b_forget(int fd) {
    size_t at = static_cast<size_t>(_index[static_cast<size_t>(fd)]);
    _index[static_cast<size_t>(fd)] = -1;
    size_t last = _pfds.size() - 1;
    if (at != last) {
      _pfds[at] = _pfds[last];
      _index[static_cast<size_t>(_pfds[at].fd)] = static_cast<int32_t>(at);
    }
    _pfds.pop_back();
  }
  // Listeners keep their fixed slot: paused is events 0, closed is fd -1 (poll skips it).
  void b_listener(size_t i, bool on) { _pfds[kFirstListener + i].events = on ? POLLIN : 0; }
  void b_listener_closed(size_t i) { _pfds[kFirstListener + i].fd = -1; }

 private:
  static short events(Interest in) {
    return in == Interest::read ? POLLIN : in == Interest::write ? POLLOUT : 0;
  }
  void dispatch(size_t i);

  std::vector<pollfd> _pfds;   // [wake, timer, listeners..., connections...]
  std::vector<int32_t> _index;  // fd -> its entry in _pfds, -1 if none
  size_t _fixed = 0;            // entries before the first connection
};

int PollEngine::prepare(std::string& what) {
  if (int err = prepare_common(what)) return err;
  _pfds.push_back({_env.wake_fd, POLLIN, 0});
  _pfds.push_back({_timer.fd(), POLLIN, 0});
  for (const Fd& l : _env.listeners) _pfds.push_back({l.get(), POLLIN, 0});
  _fixed = _pfds.size();
  return 0;
}

uint32_t ready_of(short re) {
  return ((re & POLLIN) ? kReadable : 0u) | ((re & POLLOUT) ? kWritable : 0u) |
         ((re & (POLLERR | POLLHUP | POLLNVAL)) ? kHangup : 0u);
}

void PollEngine::dispatch(size_t i) {
  pollfd& p = _pfds[i];
  short re = p.revents;
  p.revents = 0;  // handled: if a later removal moves this entry, it is not handled twice
  if (i >= _fixed) {
    on_conn(p.fd, _conns[static_cast<size_t>(p.fd)], ready_of(re));
  } else if (i == kWake) {
    on_wake();
  } else if (i == kTimer) {
    on_timer();
  } else {
    on_listener(i - kFirstListener);
  }
}

bool PollEngine::b_dispatch(int n) {
  // Connections first, downwards: closing one (even from the tick's sweep) moves only the
  // last entry, which this scan has already passed. Entries appended by accepts in this pass
  // carry revents 0. `left` stops the scan once every reported entry has been seen.
  int left = n;
  for (size_t i = _pfds.size(); i-- > _fixed && left > 0;) {
    if (i >= _pfds.size() || _pfds[i].revents == 0) continue;
    left--;
    dispatch(i);
  }
  for (size_t i = 0; i < _fixed && left > 0; i++) {
    if (_pfds[i].revents == 0) continue;
    left--;
    dispatch(i);
    if (_stop == kImmediate) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<Engine> make_poll_engine(WorkerEnv& env) {
  return std::make_unique<PollEngine>(env);
}

}  // namespace vw
