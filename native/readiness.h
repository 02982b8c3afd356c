// readiness.h: the connection semantics of a level-triggered readiness engine (epoll, poll,
// select), written once: accept (with TCP_DEFER_ACCEPT followed by a read at once, so a
// connection whose request is there is answered before it is ever watched), one read per
// readiness, one write per batch, partial writes resumed when writable with reading paused,
// linger, the 1 s tick (sweep, drain deadline, listener resume), graceful and immediate stop.
// A backend supplies only its interest set and its wait; it is a template parameter (CRTP), so
// each engine compiles to direct calls.
//
// A Backend derives from ReadinessEngine<Backend> and provides:
//   bool b_admit_fd(int fd)                         may this fd number be watched at all?
//   bool b_add(int fd, Conn& c, Interest in)        start watching a connection not yet watched
//   bool b_watch(int fd, Conn& c, Interest in)      switch a watched connection's interest
//   void b_forget(int fd)                           a watched connection is about to be closed
// Only watch() and close_conn() call these three; Conn::watched says which applies, so a
// connection answered and closed straight after accept never enters the interest set.
//   void b_listener(size_t i, bool on)              pause or resume listener i
//   void b_listener_closed(size_t i)                listener i is about to be closed
// and its run() loop, which calls before_wait() before and begin_iteration() after each wait, then on_wake(),
// on_timer(), on_listener(i) or on_conn(fd, c, ready) per readiness, and stops when
// finished() says so.
#pragma once
#include <sys/timerfd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "coalesce.h"
#include "admission.h"
#include "batch_write.h"
#include "clock.h"
#include "input_buffer.h"
#include "reserve_fd.h"
#include "serve_input.h"
#include "engine.h"
#include "proxy.h"
#include "session.h"
#include "sys.h"

namespace vw {

enum Ready : uint32_t { kReadable = 1, kWritable = 2, kHangup = 4 };  // kHangup: error or HUP
enum class Interest { read, write, none };  // none: paused (--proxy backpressure)

template <class Backend>
class ReadinessEngine : public Engine {
 public:
  explicit ReadinessEngine(WorkerEnv& env)
      : _env(env), _sys(env.stats), _lim(env.config.limits), _coalesce(env.config.coalesce) {}
  ~ReadinessEngine() override {
    // Teardown, not the hot path: plain close, not counted.
    for (size_t fd = 0; fd < _conns.size(); fd++) {
      if (_conns[fd].state == ConnState::free) continue;
      ::close(static_cast<int>(fd));
      _conns[fd].release_buffers();
    }
    drop(_env.stats.conns_open, _open);
    bump(_env.stats.conns_closed, _open);
  }

 protected:
  // Before the gate: buffers, the 1 s timerfd, the spare fd, the Date. Not counted.
  int prepare_common(std::string& what) {
    _sys.fail_waits_from_env();
    _out = std::make_unique<OutBatch>();
    _rbuf = std::make_unique<char[]>(kReadBuf);
    _timer.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    itimerspec every_second{{1, 0}, {1, 0}};
    if (!_timer.valid() || timerfd_settime(_timer.get(), 0, &every_second, nullptr)) {
      what = "timerfd";
      return errno;
    }
    _reserve.open();
    _date.refresh();
    if (!_env.config.proxy.empty()) {  // proxy mode: see the block at the end
      _relay = std::make_unique<Relay>(_env.config, _env.stats, _sys, _date, _now_ms, _port);
      if (int err = _relay->prepare(what)) return err;
    }
    return 0;
  }

  Backend& self() { return static_cast<Backend&>(*this); }
  bool stopping() const { return _stop != kRunning; }
  // The loop is over: an immediate stop, or a graceful one with nothing left open.
  bool finished() const { return _stop == kImmediate || (stopping() && _open == 0); }

  // The previous pass is over: tell the controller what it served, then hold this wait's
  // wake-up back by sleeping first, when the controller says so.
  void before_wait() {
    if (uint32_t hold = _coalesce.begin_wait(_env.stats)) _sys.nanosleep_us(hold);
  }

  // A wait failed. EINTR: wait again. Anything else cannot happen with valid arguments, and
  // retrying would spin a real-time thread at 100 %: the worker stops, its errno published for
  // the launcher, which names it and exits non-zero.
  bool wait_failed(int err) {
    if (err == EINTR) return false;
    store_relaxed(_env.stats.wait_errno, static_cast<uint64_t>(err));
    return true;
  }

  void begin_iteration() {
    _env.pass_quiescent_point();  // no table pointer is held across iterations (reload QSBR)
    _date.refresh();
    _now_ms = mono_ms();
    _coalesce.end_wait(_env.stats);
  }

  // ---- the worker's own fds ----

  void on_wake() {
    uint64_t v;
    _sys.read(_env.wake_fd, &v, sizeof(v));
    int mode = _env.stop_mode.load();
    if (mode == _stop) return;
    if (mode == kGraceful) begin_graceful();
    _stop = mode;
  }

  void on_timer() {
    uint64_t expirations;
    _sys.read(_timer.get(), &expirations, sizeof(expirations));
    store_relaxed(_env.stats.cpu, static_cast<uint64_t>(sched_getcpu()));
    if (stopping() && _now_ms >= _drain_deadline_ms) {
      for (size_t fd = 0; fd < _conns.size(); fd++)
        if (is_client(_conns[fd])) close_conn(static_cast<int>(fd), _conns[fd]);
      return;
    }
    if (!_listening && !stopping()) set_listening(true);
    // Coarse sweep: one pass a second over the table instead of a timer per connection.
    for (size_t fd = 0; fd < _conns.size(); fd++) {
      Conn& c = _conns[fd];
      if (!is_client(c) || c.deadline_ms > _now_ms) continue;
      if (c.state == ConnState::open) bump(_env.stats.timeouts);
      close_conn(static_cast<int>(fd), c);
    }
    if (_relay) _relay->tick();
  }

  void on_listener(size_t li) {
    if (li >= _env.listeners.size() || !_env.listeners[li].valid()) return;
    int lfd = _env.listeners[li].get();
    StatsSlot& s = _env.stats;
    const bool want_peer = !_env.config.allow.empty() || _env.log;  // accept4 fills it: no call
    for (;;) {  // until EAGAIN: the backlog must not fill
      sockaddr_storage peer;
      peer.ss_family = AF_UNSPEC;
      socklen_t peer_len = sizeof(peer);
      int fd = _sys.accept4(lfd, want_peer ? reinterpret_cast<sockaddr*>(&peer) : nullptr,
                            want_peer ? &peer_len : nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
        bump(s.accept_errors);
        if ((err == EMFILE || err == ENFILE) && _reserve.trick(_sys, lfd) >= 0) {
          bump(s.rejected);
          continue;
        }
        // ENOBUFS, ENOMEM, or no spare fd: stop listening until the next tick rather than
        // spin on a listener that stays readable.
        set_listening(false);
        return;
      }
      if (!self().b_admit_fd(fd)) {  // select: an fd its fd_set cannot hold
        bump(s.rejected);
        _sys.close(fd);
        continue;
      }
      Admit a = admit(_env.config, _open, peer);
      if (a != Admit::ok) {
        bump(a == Admit::denied ? s.denied : s.rejected);
        _sys.close(fd);
        continue;
      }
      if (static_cast<size_t>(fd) >= _conns.size()) _conns.resize(static_cast<size_t>(fd) * 2 + 64);
      Conn& c = _conns[static_cast<size_t>(fd)];
      reset_for_accept(c, _now_ms + _lim.header_timeout_ms);
      set_peer(c, peer);
      if (_env.config.locality)
        count_locality(_sys, s, static_cast<int>(s.cpu.load(std::memory_order_relaxed)), fd);
      _open++;
      bump(s.conns_accepted);
      bump(s.conns_open);
      // Deferred accept: the request is (almost always) there already. Read and answer it now;
      // a connection that is closed by that answer costs no epoll_ctl and no wait. One that
      // stays (keep-alive, an unfinished header, output owed, lingering) or whose read found
      // nothing (the defer timeout passed without data) is watched from here on.
      if (_eager_read && _relay) {  // proxy mode: the relay reads, and may grow the table
        relay_event(fd, c, kReadable);
        Conn& now = _conns[static_cast<size_t>(fd)];
        if (now.state != ConnState::free && !now.watched && !watch(fd, now, Interest::read))
          close_conn(fd, now);
        continue;
      }
      if (_eager_read) {
        on_readable(fd, c);
        if (c.state == ConnState::free || c.watched) continue;
      }
      if (!watch(fd, c, Interest::read)) close_conn(fd, c);
    }
  }

  // ---- connections ----

  void on_conn(int fd, Conn& c, uint32_t ready) {
    if (_relay) {
      relay_event(fd, c, ready);
      return;
    }
    if (c.out) {
      if (ready & (kWritable | kHangup)) on_writable(fd, c);
      return;
    }
    if (ready & (kReadable | kHangup)) on_readable(fd, c);
  }

  void on_readable(int fd, Conn& c) {
    ReadSpan span = read_span(c, _rbuf.get(), kReadBuf, _lim);
    ssize_t n = _sys.read(fd, span.dst, span.room);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      close_conn(fd, c);  // EOF, ECONNRESET
      return;
    }
    bump(_env.stats.bytes_in, static_cast<uint64_t>(n));
    if (c.state == ConnState::lingering) return;  // discarded: the answer was already final
    size_t len;
    const char* data = read_landed(c, span.dst, _rbuf.get(), static_cast<size_t>(n), &len);
    serve(fd, c, data, len);
  }

  void serve(int fd, Conn& c, const char* data, size_t len) {
    ServeCtx ctx = serve_ctx(_env, _date, _env.stats);
    OutBatch& out = *_out;
    Served r = serve_input(ctx, c, data, len, out, _now_ms,
                           [&] { return write_batch(_sys, _env.stats, fd, c, out, ctx.table); });
    switch (r) {
      case Served::idle:
        return;
      case Served::failed:
        close_conn(fd, c);
        return;
      case Served::pending:
        if (!watch(fd, c, Interest::write)) close_conn(fd, c);
        return;
      case Served::finish:
        finish_response(fd, c);
        return;
    }
  }

  void on_writable(int fd, Conn& c) {
    WriteResult w = write_pending(_sys, _env.stats, fd, c);
    if (w == WriteResult::failed) {
      close_conn(fd, c);
      return;
    }
    c.deadline_ms = _now_ms + _lim.idle_timeout_ms;  // progress: a slow reader, not a dead one
    if (w == WriteResult::pending) return;
    delete c.out;
    c.out = nullptr;
    if (c.close_after_write) {
      c.out_was_pending = true;
      finish_response(fd, c);
      return;
    }
    if (!watch(fd, c, Interest::read)) {
      close_conn(fd, c);
      return;
    }
    // Requests that arrived with the ones just answered are answered now, without a read.
    if (c.in_len) serve(fd, c, c.in, c.in_len);
  }

  // The last response of the connection is out: close, or shut writing and drain first.
  void finish_response(int fd, Conn& c) {
    if (!c.linger_after_write || stopping()) {
      close_conn(fd, c);
      return;
    }
    _sys.shutdown(fd, SHUT_WR);
    // After a partial write the interest is writable, which a shut-down socket reports forever:
    // back to readable, or the loop would spin (at SCHED_FIFO) until the linger deadline.
    if (c.out_was_pending && !watch(fd, c, Interest::read)) {
      close_conn(fd, c);
      return;
    }
    c.state = ConnState::lingering;
    c.deadline_ms = _now_ms + _lim.linger_timeout_ms;
    std::free(c.in);
    c.in = nullptr;
    c.in_len = c.in_cap = 0;
  }

  // The interest set learns of a connection only here: added when first watched, switched after.
  bool watch(int fd, Conn& c, Interest in) {
    if (c.watched) return self().b_watch(fd, c, in);
    if (!self().b_add(fd, c, in)) return false;
    c.watched = true;
    return true;
  }

  void close_conn(int fd, Conn& c) {
    if (c.watched) self().b_forget(fd);
    _sys.close(fd);
    reset_closed(c);
    _open--;
    drop(_env.stats.conns_open);
    bump(_env.stats.conns_closed);
    if (_relay) _relay->client_closed(fd);  // last: it may grow _conns (c is dead after)
  }

  // ---- listening and stopping ----

  void set_listening(bool on) {
    _listening = on;
    for (size_t i = 0; i < _env.listeners.size(); i++)
      if (_env.listeners[i].valid()) self().b_listener(i, on);
  }

  void begin_graceful() {
    for (size_t i = 0; i < _env.listeners.size(); i++) {
      Fd& l = _env.listeners[i];
      if (!l.valid()) continue;
      self().b_listener_closed(i);
      _sys.close(l.release());  // new connections to this worker are refused from now on
    }
    _drain_deadline_ms = _now_ms + _lim.drain_timeout_ms;
    // Tick every 100 ms while draining, so the deadline holds to within a tenth of a second.
    itimerspec fast{{0, 100 * 1000 * 1000}, {0, 100 * 1000 * 1000}};
    _sys.timerfd_settime(_timer.get(), &fast);
    if (_relay) _relay->begin_graceful();
    for (size_t fd = 0; fd < _conns.size(); fd++) {
      Conn& c = _conns[fd];
      if (!is_client(c)) continue;
      if (c.out) {
        c.close_after_write = true;  // an in-flight response is finished, then the connection ends
        c.linger_after_write = false;
      } else if (_relay && _relay->in_flight(static_cast<int>(fd))) {
        continue;  // the relay finishes its exchange, then closes the connection
      } else {
        close_conn(static_cast<int>(fd), c);
      }
    }
  }

  WorkerEnv& _env;
  Sys _sys;
  const Limits& _lim;
  Coalescer _coalesce;
  Fd _timer;
  ReserveFd _reserve;
  std::vector<Conn> _conns;  // indexed by fd
  uint32_t _open = 0;
  bool _listening = true;
  const bool _eager_read = _env.config.defer_accept_s > 0;  // read straight after accept
  int _stop = kRunning;
  uint64_t _now_ms = 0;
  uint64_t _drain_deadline_ms = 0;
  DateCache _date;
  std::unique_ptr<OutBatch> _out;
  std::unique_ptr<char[]> _rbuf;  // shared by every connection: a read lands here first

  // ---- proxy mode (--proxy; proxy.h) ----
  // The relay drives every client and upstream fd; upstream fds sit in _conns as
  // ConnState::upstream. The engine's part is this block plus the `if (_relay)` lines in
  // prepare_common, on_conn, close_conn, on_timer and begin_graceful, and is_client() in the
  // sweeps.
  static bool is_client(const Conn& c) {
    return c.state == ConnState::open || c.state == ConnState::lingering;
  }
  void relay_event(int fd, Conn& c, uint32_t ready) {
    if (c.state == ConnState::upstream)
      _relay->on_upstream(fd, ready);
    else
      _relay->on_client(fd, ready);
  }
  struct RelayPort final : RelayHost {
    explicit RelayPort(ReadinessEngine& engine) : e(engine) {}
    Conn& slot(int fd) override {
      size_t i = static_cast<size_t>(fd);
      if (i >= e._conns.size()) e._conns.resize(i * 2 + 64);
      return e._conns[i];
    }
    bool admit(int fd) override { return e.self().b_admit_fd(fd); }
    bool add(int fd) override { return e.watch(fd, slot(fd), Interest::read); }
    bool watch(int fd, Watch w) override {
      return e.watch(fd, slot(fd), w == Watch::read    ? Interest::read
                                   : w == Watch::write ? Interest::write
                                                       : Interest::none);
    }
    void forget(int fd) override {
      Conn& c = slot(fd);
      if (c.watched) e.self().b_forget(fd);
      c.watched = false;
    }
    void close_client(int fd) override {
      Conn& c = slot(fd);
      if (is_client(c)) e.close_conn(fd, c);
    }
    ReadinessEngine& e;
  };
  RelayPort _port{*this};
  std::unique_ptr<Relay> _relay;  // null unless --proxy
};

}  // namespace vw
