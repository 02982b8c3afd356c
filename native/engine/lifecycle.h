// lifecycle.h: what every engine does around its I/O, written once: the connection table, the
// stop message, the 1 s tick (drain deadline, listener resume, deadline sweep), graceful stop,
// the accept error policy with the spare fd, admission, accept and close bookkeeping, the end of
// a connection (close or linger), answering a read's worth of requests, teardown, and for an
// engine that relays (--proxy) the relay's tick, graceful stop and dispatch. An engine
// derives from Lifecycle<Itself> (CRTP: direct calls, nothing virtual on the hot path) and
// writes only its mechanism: how it waits, reads, writes and closes.
//
// The mechanism provides (called through self(); Lifecycle must be its friend):
//   void m_listen(size_t i, bool on)     pause or resume listener i (a valid one)
//   void m_close_listener(size_t i)      graceful stop: forget listener i, then close it
//   void m_tick_faster()                 graceful stop: tick every 100 ms
//   void close_conn(int fd, Conn& c)     close a client: its fd, then conn_closed(c)
// and, when it uses the table (serve, finish_response, the default sweeps):
//   WriteResult m_write(int fd, Conn& c, const ResponseTable* t)   write or post the batch *_out
//   void m_owed(int fd, Conn& c)         serve() left output owed (pending)
//   bool m_owes_output(int fd, Conn& c)  a response is still going out
//   bool m_shut_write(int fd, Conn& c)   shut writing before lingering; false: close instead
// and, when it accepts with accept_all (a readiness-style listener):
//   void m_accepted(int fd, const sockaddr_storage& peer)   an admitted connection: serve it
// It may hide, to do otherwise: m_fd_fits, m_open_count, m_refuse, m_table_grew, m_peer_gone,
// m_lingering, m_finishes_itself, close_all, sweep, drain (the blocking engine's table is its
// threads: it hides the last three).
// Everything here runs on the worker thread.
#pragma once
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/admission.h"
#include "worker/clock.h"
#include "engine/conn.h"
#include "engine/engine.h"
#include "engine/reserve_fd.h"
#include "engine/serve_input.h"
#include "proxy/proxy.h"
#include "worker/stats.h"
#include "worker/sys.h"

namespace vw {

template <class Mech>
class Lifecycle : public Engine {
 protected:
  // `counts`: the slot this thread counts into (the worker's own, or a private one folded into
  // it: the blocking engine).
  Lifecycle(WorkerEnv& env, StatsSlot& counts)
      : _env(env), _counts(counts), _sys(counts), _lim(env.config.limits) {}

  Mech& self() { return static_cast<Mech&>(*this); }
  bool stopping() const { return _stop != kRunning; }
  // The loop is over: an immediate stop, or a graceful one with nothing left open.
  bool finished() const { return _stop == kImmediate || (stopping() && self_open() == 0); }
  static bool is_client(const Conn& c) {
    return c.state == ConnState::open || c.state == ConnState::lingering;
  }

  // Before the gate: the test hook, the spare fd, the Date. Not counted.
  void prepare_lifecycle() {
    _sys.fail_waits_from_env();
    _reserve.open();
    _date.refresh();
  }

  // Teardown, not the hot path: plain close, not counted. The mechanism's destructor calls it
  // first, while its own kernel objects still exist.
  void close_all_at_teardown() {
    for (size_t fd = 0; fd < _conns.size(); fd++) {
      if (_conns[fd].state == ConnState::free) continue;
      ::close(static_cast<int>(fd));
      _conns[fd].release_buffers();
      _conns[fd].state = ConnState::free;
    }
    drop(_counts.conns_open, _open);
    bump(_counts.conns_closed, _open);
    _open = 0;
  }

  // A wait failed. EINTR: wait again. Anything else cannot happen with valid arguments, and
  // retrying would spin a real-time thread at 100 %: the worker stops, its errno published for
  // the launcher, which names it and exits non-zero.
  bool wait_failed(int err) {
    if (err == EINTR) return false;
    store_relaxed(_env.stats.wait_errno, static_cast<uint64_t>(err));
    return true;
  }

  // After each wait: no table pointer is held across iterations (reload QSBR); the Date and
  // the clock move on without a system call.
  void begin_pass() {
    _env.pass_quiescent_point();
    _date.refresh();
    _now_ms = mono_ms();
  }

  // ---- the stop message and the tick ----

  void on_stop_message() {
    uint64_t v;
    _sys.read(_env.wake_fd, &v, sizeof(v));
    int mode = _env.stop_mode.load();
    if (mode == _stop) return;
    if (mode == kGraceful) begin_graceful();
    _stop = mode;
  }

  void tick() {
    store_relaxed(_env.stats.cpu, static_cast<uint64_t>(sched_getcpu()));
    if (stopping() && _now_ms >= _drain_deadline_ms) {
      self().close_all();
      return;
    }
    if (!_listening && !stopping()) set_listening(true);
    self().sweep();
  }

  void close_all() {
    for (size_t fd = 0; fd < _conns.size(); fd++)
      if (is_client(_conns[fd])) self().close_conn(static_cast<int>(fd), _conns[fd]);
  }

  // Coarse sweep: one pass a second over the table instead of a timer per connection (the
  // relay's exchanges keep their own deadlines: --proxy-timeout).
  void sweep() {
    for (size_t fd = 0; fd < _conns.size(); fd++) {
      Conn& c = _conns[fd];
      if (!is_client(c) || c.deadline_ms > _now_ms) continue;
      if (c.state == ConnState::open) bump(_counts.timeouts);
      self().close_conn(static_cast<int>(fd), c);
    }
    if (_relay) _relay->tick();
  }

  void begin_graceful() {
    for (size_t i = 0; i < _env.listeners.size(); i++)
      if (_env.listeners[i].valid()) self().m_close_listener(i);  // new connections: refused
    _drain_deadline_ms = _now_ms + _lim.drain_timeout_ms;
    self().m_tick_faster();
    self().drain();
  }

  // Graceful stop: a connection with a response going out finishes it, then ends; the others
  // end now.
  void drain() {
    if (_relay) _relay->begin_graceful();
    for (size_t fd = 0; fd < _conns.size(); fd++) {
      Conn& c = _conns[fd];
      if (!is_client(c)) continue;
      if (self().m_owes_output(static_cast<int>(fd), c)) {
        c.close_after_write = true;
        c.linger_after_write = false;
      } else if (!self().m_finishes_itself(static_cast<int>(fd))) {
        self().close_conn(static_cast<int>(fd), c);
      }
    }
  }
  // A relayed exchange in flight ends itself: its response first, then the client.
  bool m_finishes_itself(int fd) { return _relay && _relay->in_flight(fd); }

  // ---- --proxy (proxy.h): the relay's part of the lifecycle, for an engine that relays ----
  // Before the gate: the relay, lent `host` (the engine's RelayHost). Returns errno, names `what`.
  int start_relay(RelayHost& host, std::string& what) {
    _relay = std::make_unique<Relay>(_env.config, _env.stats, _sys, _date, _now_ms, host, _env.log);
    return _relay->prepare(what);
  }
  // Readiness of an fd the relay drives: an upstream connection, or a client not lingering.
  void relay_ready(int fd, const Conn& c, uint32_t ready) {
    if (c.state == ConnState::upstream)
      _relay->on_upstream(fd, ready);
    else
      _relay->on_client(fd, ready);
  }

  void set_listening(bool on) {
    _listening = on;
    for (size_t i = 0; i < _env.listeners.size(); i++)
      if (_env.listeners[i].valid()) self().m_listen(i, on);
  }

  // ---- accepting ----

  // Accepts on listener li until EAGAIN (the backlog must not fill); each connection that
  // passes admission goes to the mechanism's m_accepted(fd, peer). `flags`: SOCK_NONBLOCK or 0.
  void accept_all(size_t li, int flags) {
    if (li >= _env.listeners.size() || !_env.listeners[li].valid()) return;
    int lfd = _env.listeners[li].get();
    const bool want_peer = !_env.config.allow.empty() || _env.log;  // accept4 fills it: no call
    for (;;) {
      sockaddr_storage peer;
      peer.ss_family = AF_UNSPEC;
      socklen_t peer_len = sizeof(peer);
      int fd = _sys.accept4(lfd, want_peer ? reinterpret_cast<sockaddr*>(&peer) : nullptr,
                            want_peer ? &peer_len : nullptr, flags | SOCK_CLOEXEC);
      if (fd < 0) {
        if (accept_failed(errno, lfd)) continue;
        return;
      }
      if (admitted(fd, peer)) self().m_accepted(fd, peer);
    }
  }

  // The accept error policy. True: accept again.
  bool accept_failed(int err, int lfd) {
    if (err == EAGAIN || err == EWOULDBLOCK || err == ECANCELED) return false;  // ECANCELED: ours
    if (err == EINTR || err == ECONNABORTED || err == EPROTO) return true;
    bump(_counts.accept_errors);
    if ((err == EMFILE || err == ENFILE) && _reserve.trick(_sys, lfd) >= 0) {
      bump(_counts.rejected);
      return true;
    }
    // ENOBUFS, ENOMEM, or no spare fd: stop listening until the next tick rather than spin on
    // a listener that stays readable.
    set_listening(false);
    return false;
  }

  // --max-conns, --allow, an fd number the mechanism cannot hold (select), --locality. False:
  // refused, counted and closed.
  bool admitted(int fd, const sockaddr_storage& peer) {
    Admit a = self().m_fd_fits(fd) ? admit(_env.config, self_open(), peer) : Admit::over_limit;
    if (a != Admit::ok) {
      bump(a == Admit::denied ? _counts.denied : _counts.rejected);
      self().m_refuse(fd);
      return false;
    }
    if (_env.config.locality) {
      int cpu = static_cast<int>(_env.stats.cpu.load(std::memory_order_relaxed));
      count_locality(_sys, _counts, cpu, fd);
    }
    return true;
  }
  bool m_fd_fits(int) { return true; }
  uint32_t m_open_count() { return _open; }
  void m_refuse(int fd) { _sys.close(fd); }

  void count_accepted() {
    bump(_counts.conns_accepted);
    bump(_counts.conns_open);
  }

  // An admitted fd's table slot, as a fresh connection.
  Conn& open_conn(int fd, const sockaddr_storage& peer) {
    Conn& c = slot(fd);
    reset_for_accept(c, _now_ms + _lim.header_timeout_ms);
    set_peer(c, peer);
    _open++;
    count_accepted();
    return c;
  }

  // fd's table slot; the table grows (a Conn& from before may dangle after).
  Conn& slot(int fd) {
    size_t i = static_cast<size_t>(fd);
    if (i >= _conns.size()) {
      _conns.resize(i * 2 + 64);
      self().m_table_grew();
    }
    return _conns[i];
  }
  void m_table_grew() {}

  // ---- answering and ending ----

  // Answers the requests in data[0, len) batch by batch through the mechanism's m_write.
  void serve(int fd, Conn& c, const char* data, size_t len) {
    ServeCtx ctx = serve_ctx(_env, _date, _env.stats);
    Served r = serve_input(ctx, c, data, len, *_out, _now_ms,
                           [&] { return self().m_write(fd, c, ctx.table); });
    switch (r) {
      case Served::idle:
        return;
      case Served::pending:
        self().m_owed(fd, c);
        return;
      case Served::failed:
        self().close_conn(fd, c);
        return;
      case Served::finish:
        finish_response(fd, c);
        return;
    }
  }

  // The last response of the connection is out: close, or shut writing and drain first.
  void finish_response(int fd, Conn& c) {
    if (!c.linger_after_write || stopping() || self().m_peer_gone(fd) ||
        !self().m_shut_write(fd, c)) {
      self().close_conn(fd, c);
      return;
    }
    start_linger(c, _now_ms, _lim);
    self().m_lingering(fd, c);
  }
  bool m_peer_gone(int) { return false; }
  void m_lingering(int, Conn&) {}

  // Bookkeeping once the mechanism has closed (or queued the close of) a client's fd.
  void conn_closed(Conn& c) {
    reset_closed(c);
    _open--;
    drop(_counts.conns_open);
    bump(_counts.conns_closed);
  }

  WorkerEnv& _env;
  StatsSlot& _counts;
  Sys _sys;
  const Limits& _lim;
  ReserveFd _reserve;
  std::vector<Conn> _conns;  // indexed by fd
  uint32_t _open = 0;
  bool _listening = true;
  int _stop = kRunning;
  uint64_t _now_ms = 0;
  uint64_t _drain_deadline_ms = 0;
  DateCache _date;
  std::unique_ptr<OutBatch> _out;  // one batch at a time, for every connection
  std::unique_ptr<Relay> _relay;   // null unless --proxy

 private:
  uint32_t self_open() const { return const_cast<Lifecycle*>(this)->self().m_open_count(); }
};

}  // namespace vw
