// readiness.h: the mechanism of a level-triggered readiness engine (epoll, poll, select), written
// once: accept (with TCP_DEFER_ACCEPT followed by a read at once, so a connection whose request
// is there is answered before it is ever watched), one read per readiness, one write per batch,
// partial writes resumed when writable with reading paused, the interest set's part of linger,
// the tick and the stop (a timerfd and the stop eventfd among the watched fds). The lifecycle
// around it (table, tick, stop, accept policy, bookkeeping) is lifecycle.h's. A backend supplies
// only its interest set and its wait; it is a template parameter (CRTP), so each engine compiles
// to direct calls.
//
// A Backend derives from ReadinessEngine<Backend> and provides:
//   int b_wait()                                    one wait: ready entries, or -1 and errno
//   bool b_dispatch(int n)                          handle them (on_wake, on_timer, on_listener,
//                                                   on_conn); false: an immediate stop, return
//   bool b_admit_fd(int fd)                         may this fd number be watched at all?
//                                                   (optional: every fd may)
//   bool b_add(int fd, Conn& c, Interest in)        start watching a connection not yet watched
//   bool b_watch(int fd, Conn& c, Interest in)      switch a watched connection's interest
//   void b_forget(int fd)                           a watched connection is about to be closed
// Only watch() and close_conn() call these three; Conn::watched says which applies, so a
// connection answered and closed straight after accept never enters the interest set.
//   void b_listener(size_t i, bool on)              pause or resume listener i
//   void b_listener_closed(size_t i)                listener i is about to be closed
// and its prepare(), which calls prepare_common() first. The loop, run(), is written here once.
#pragma once
#include <cerrno>
#include <memory>
#include <string>

#include "engine/batch_write.h"
#include "engine/coalesce.h"
#include "engine/input_buffer.h"
#include "engine/lifecycle.h"
#include "proxy/proxy.h"
#include "engine/tick_timer.h"

namespace vw {

enum Ready : uint32_t { kReadable = 1, kWritable = 2, kHangup = 4 };  // kHangup: error or HUP
enum class Interest { read, write, none };  // none: paused (--proxy backpressure)

template <class Backend>
class ReadinessEngine : public Lifecycle<Backend> {
  using Base = Lifecycle<Backend>;
  friend Base;

 public:
  explicit ReadinessEngine(WorkerEnv& env)
      : Base(env, env.stats), _coalesce(env.config.coalesce) {}
  ~ReadinessEngine() override { this->close_all_at_teardown(); }

  void run() override {
    for (;;) {
      before_wait();
      int n = self().b_wait();
      bump(_env.stats.loops);
      if (n < 0) {
        if (wait_failed(errno)) return;  // EINTR: signals are blocked, but a debugger can cause it
        continue;
      }
      bump(_env.stats.events, static_cast<uint64_t>(n));
      begin_iteration();
      if (!self().b_dispatch(n) || finished()) return;
      if (_relay) _relay->end_pass();
    }
  }

  bool b_admit_fd(int) { return true; }

 protected:
  using Base::_conns;
  using Base::_date;
  using Base::_env;
  using Base::_lim;
  using Base::_now_ms;
  using Base::_out;
  using Base::_relay;
  using Base::_stop;
  using Base::_sys;
  using Base::finished;
  using Base::self;
  using Base::stopping;
  using Base::wait_failed;

  // Before the gate: buffers, the 1 s timerfd, the spare fd, the Date. Not counted.
  int prepare_common(std::string& what) {
    this->prepare_lifecycle();
    _out = std::make_unique<OutBatch>();
    _rbuf = std::make_unique<char[]>(kReadBuf);
    if (int err = _timer.open(what)) return err;
    if (!_env.config.proxy.empty()) {  // proxy mode: see the block at the end
      if (int err = this->start_relay(_port, what)) return err;
    }
    return 0;
  }

  // The previous pass is over: tell the controller what it served, then hold this wait's
  // wake-up back by sleeping first, when the controller says so.
  void before_wait() {
    if (uint32_t hold = _coalesce.begin_wait(_env.stats)) _sys.nanosleep_us(hold);
  }

  void begin_iteration() {
    this->begin_pass();
    _coalesce.end_wait(_env.stats);
  }

  // ---- the worker's own fds ----

  void on_wake() { this->on_stop_message(); }

  void on_timer() {
    _timer.consume(_sys);
    this->tick();
  }

  void on_listener(size_t li) { this->accept_all(li, SOCK_NONBLOCK); }

  // ---- connections ----

  void on_conn(int fd, Conn& c, uint32_t ready) {
    if (_relay && c.state != ConnState::lingering) {  // (a lingering client is the engine's)
      this->relay_ready(fd, c, ready);
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
    this->serve(fd, c, data, len);
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
      this->finish_response(fd, c);
      return;
    }
    if (!watch(fd, c, Interest::read)) {
      close_conn(fd, c);
      return;
    }
    // Requests that arrived with the ones just answered are answered now, without a read.
    if (c.in_len) this->serve(fd, c, c.in, c.in_len);
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
    this->conn_closed(c);
    if (_relay) _relay->client_closed(fd);  // last: it may grow _conns (c is dead after)
  }

  // ---- the lifecycle's hooks (lifecycle.h) ----

  // Deferred accept: the request is (almost always) there already. Read and answer it now; a
  // connection that is closed by that answer costs no epoll_ctl and no wait. One that stays
  // (keep-alive, an unfinished header, output owed, lingering) or whose read found nothing (the
  // defer timeout passed without data) is watched from here on.
  void m_accepted(int fd, const sockaddr_storage& peer) {
    Conn& c = this->open_conn(fd, peer);
    if (_eager_read && _relay) {  // proxy mode: the relay reads, and may grow the table
      this->relay_ready(fd, c, kReadable);
      Conn& now = _conns[static_cast<size_t>(fd)];
      if (now.state != ConnState::free && !now.watched && !watch(fd, now, Interest::read))
        close_conn(fd, now);
      return;
    }
    if (_eager_read) {
      on_readable(fd, c);
      if (c.state == ConnState::free || c.watched) return;
    }
    if (!watch(fd, c, Interest::read)) close_conn(fd, c);
  }
  bool m_fd_fits(int fd) { return self().b_admit_fd(fd); }  // select: what its fd_set can hold
  void m_listen(size_t i, bool on) { self().b_listener(i, on); }
  void m_close_listener(size_t i) {
    self().b_listener_closed(i);
    _sys.close(_env.listeners[i].release());
  }
  void m_tick_faster() { _timer.faster(_sys); }
  WriteResult m_write(int fd, Conn& c, const ResponseTable* table) {
    return write_batch(_sys, _env.stats, fd, c, *_out, table);
  }
  void m_owed(int fd, Conn& c) {
    if (!watch(fd, c, Interest::write)) close_conn(fd, c);
  }
  bool m_owes_output(int, const Conn& c) { return c.out != nullptr; }
  // After a partial write the interest is writable, which a shut-down socket reports forever:
  // back to readable, or the loop would spin (at SCHED_FIFO) until the linger deadline.
  bool m_shut_write(int fd, Conn& c) {
    _sys.shutdown(fd, SHUT_WR);
    return !c.out_was_pending || watch(fd, c, Interest::read);
  }

  Coalescer _coalesce;
  TickTimer _timer;
  const bool _eager_read = _env.config.defer_accept_s > 0;  // read straight after accept
  std::unique_ptr<char[]> _rbuf;  // shared by every connection: a read lands here first

  // ---- proxy mode (--proxy; proxy.h) ----
  // The relay drives every client and upstream fd; upstream fds sit in _conns as
  // ConnState::upstream. The engine's part is this block plus the `if (_relay)` lines in
  // prepare_common, on_conn, m_accepted and close_conn; the tick, the graceful stop and the
  // dispatch by fd kind are the lifecycle's (relay_ready).
  struct RelayPort final : RelayHost {
    explicit RelayPort(ReadinessEngine& engine) : e(engine) {}
    Conn& slot(int fd) override { return e.slot(fd); }
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
      if (Base::is_client(c)) e.close_conn(fd, c);
    }
    void linger_client(int fd) override {
      Conn& c = slot(fd);
      if (c.state != ConnState::open) return;
      c.linger_after_write = true;
      e.finish_response(fd, c);
    }
    ReadinessEngine& e;
  };
  RelayPort _port{*this};
};

}  // namespace vw
