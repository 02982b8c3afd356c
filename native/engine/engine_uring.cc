// engine_uring.cc: the io_uring engine (liburing). Completions instead of readiness: a multishot
// accept per listener, a multishot recv per connection into a ring of provided buffers (so an
// idle connection holds no buffer), one send per batch of pipelined responses, and the 1 s tick
// as an IORING_OP_TIMEOUT. Every submission of a loop iteration goes to the kernel with the same
// io_uring_submit_and_wait that waits: one io_uring_enter per iteration, no other system call on
// the request path. The ring's plumbing is uring_ring.h; the lifecycle around the I/O (table,
// tick, stop, accept policy, bookkeeping) is lifecycle.h's; this file is what the SQEs mean.
//
// Ring flags: IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (completion work runs
// only inside our own wait, never as an interrupting task_work), falling back to
// COOP_TASKRUN, then to none, when the kernel refuses; the flags the ring got are stored in the
// uring_setup_flags gauge and the launcher names them. --sqpoll: a kernel thread (iou-sqp-TID)
// polls the submission queue, so a busy worker makes no system call at all; the launcher adds
// that thread's CPU time to the worker's. It is created while the worker runs SCHED_OTHER for a
// moment, so it never busy-polls at real-time priority (a SCHED_FIFO thread must not spin). It
// polls for kSqThreadIdleMs after each piece of work, every completion included (completions
// are its task work): the 1 s tick, a multishot timeout with no submission, costs ~1.5 % at rest.
//
// Order and lifetime. Only the worker thread touches the ring. A connection's send state lives
// in a heap SendOp whose address is the send's user_data, so a completion that arrives after the
// connection was closed (and its fd number reused) finds its own buffers. Recv completions carry
// fd and generation and are dropped when stale. Closing cancels the fd's requests, then closes
// it, as two linked SQEs: closing alone would not end a multishot recv, which holds the file.
// Backpressure: while a send is in flight, bytes that arrive are kept (they may hold pipelined
// requests, answered once the send is done); past 64 KiB kept, the recv is cancelled until the
// output drains, like the other engines stop reading while a write is pending.
//
// --proxy: the relay (proxy.h) reads and writes its client and upstream fds itself; the engine
// accepts (non-blocking sockets then, no recv posted) and lends it its table and, for interest,
// oneshot polls (uring_relay.h). The `_relay` lines here are all of it.
#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <vector>

#include "engine/coalesce.h"
#include "engine/input_buffer.h"
#include "engine/lifecycle.h"
#include "engine/uring_relay.h"
#include "engine/uring_ring.h"

namespace vw {
namespace {

constexpr size_t kStashMax = kReadBuf;  // input kept while a send is in flight, then recv stops

// user_data: the kind in the low 3 bits. A send is its SendOp's (aligned) address.
enum Kind : uint64_t {
  kSend = 0, kRecv = 1, kAccept = 2, kTick = 3, kWake = 4, kIgnore = 5,
  kPoll = URingPolls::kPollKind,  // --proxy: a poll for the relay
};
constexpr uint64_t kKindMask = 7;

uint64_t recv_tag(int fd, uint32_t gen) {
  return kRecv | (static_cast<uint64_t>(fd) << 3) | (static_cast<uint64_t>(gen) << 32);
}

// One send in flight (and its continuations after a partial send).
struct SendOp {
  int fd;
  uint32_t gen;
  bool orphan = false;  // the connection was closed: free this on completion
  std::unique_ptr<PendingOut> out;
  msghdr msg{};
  SendOp* prev = nullptr;  // every live SendOp is on the engine's list, so teardown frees all
  SendOp* next = nullptr;
};

// What the ring adds to Conn, per fd.
struct URingConn {
  SendOp* send = nullptr;   // in flight, at most one
  bool recv_armed = false;  // a multishot recv is posted
  bool eof = false;         // the client shut its side while output was pending
};

class URingEngine final : public Lifecycle<URingEngine> {
  friend Lifecycle<URingEngine>;

 public:
  explicit URingEngine(WorkerEnv& env)
      : Lifecycle(env, env.stats), _ring(_sys, env.stats), _coalesce(env.config.coalesce) {}
  ~URingEngine() override;
  int prepare(std::string& what) override;
  void run() override;

 private:
  int wait();

  // ---- arming ----
  void arm_accept(size_t li);
  void arm_recv(int fd, Conn& c);
  void maybe_arm_recv(int fd, Conn& c);
  void arm_tick();
  void arm_wake();

  // ---- completions ----
  void on_cqe(const io_uring_cqe& cqe);
  void on_accept(size_t li, int res, bool more);
  void on_recv(int fd, Conn& c, int res, const char* data, bool more);
  void on_sent(SendOp* op, int res);

  void submit_send(SendOp* op);
  void close_conn(int fd, Conn& c);
  SendOp* new_send();
  void free_send(SendOp* op);

  // ---- the lifecycle's hooks (lifecycle.h) ----
  void m_table_grew() {
    _uc.resize(_conns.size());
    if (_polls) _polls->grow(_conns.size());
  }
  void m_refuse(int fd) { io_uring_prep_close(_ring.sqe(kIgnore), fd); }
  void m_listen(size_t i, bool on) {
    if (on && !_accepting[i]) arm_accept(i);  // pausing: the ended accept is not posted again
  }
  void m_close_listener(size_t i);
  void m_tick_faster();
  WriteResult m_write(int fd, Conn& c, const ResponseTable* table);
  void m_owed(int, Conn&) {}  // the send completes later (on_sent)
  bool m_owes_output(int fd, const Conn&) { return _uc[static_cast<size_t>(fd)].send != nullptr; }
  bool m_peer_gone(int fd) { return _uc[static_cast<size_t>(fd)].eof; }
  bool m_shut_write(int fd, Conn&) {
    io_uring_prep_shutdown(_ring.sqe(kIgnore), fd, SHUT_WR);
    return true;
  }
  void m_lingering(int fd, Conn& c) { maybe_arm_recv(fd, c); }  // read on, discarding

  // ---- proxy mode (--proxy; uring_relay.h) ----
  void relay_accepted(int fd);
  void on_poll(int fd, uint32_t gen, int res);
  struct RelayPort final : RelayHost {
    explicit RelayPort(URingEngine& engine) : e(engine) {}
    Conn& slot(int fd) override { return e.slot(fd); }
    bool admit(int) override { return true; }
    bool add(int fd) override {
      e._polls->start(fd);
      return true;
    }
    bool watch(int fd, Watch w) override {
      e._polls->want(fd, w);
      return true;
    }
    void forget(int fd) override { e._polls->forget(fd, e._conns[static_cast<size_t>(fd)].gen); }
    void close_client(int fd) override {
      Conn& c = e.slot(fd);
      if (is_client(c)) e.close_conn(fd, c);
    }
    // Lingering, the engine reads the client with its own recv (discarding); the relay's poll
    // is no longer wanted (one posted completes unseen).
    void linger_client(int fd) override {
      Conn& c = e.slot(fd);
      if (c.state != ConnState::open) return;
      e._polls->want(fd, Watch::none);
      c.linger_after_write = true;
      e.finish_response(fd, c);
    }
    URingEngine& e;
  };

  URing _ring;
  std::vector<URingConn> _uc;    // indexed by fd, beside the lifecycle's table
  std::vector<bool> _accepting;  // a multishot accept is posted, per listener
  bool _wake_armed = false;
  uint64_t _tick_gen = 0;  // a tick completion of an older generation is not re-armed
  __kernel_timespec _tick{1, 0};
  // One multishot timeout ticks forever without a submission per tick, so nothing wakes an idle
  // SQPOLL thread; a kernel that refuses it (before 6.4) gets a timeout re-armed per tick.
  bool _tick_multishot = true;
  SendOp* _sends = nullptr;  // every SendOp not yet freed, orphans included
  uint32_t _sends_queued = 0;  // sends prepared since the last wait: their completions come at once
  Coalescer _coalesce;
  RelayPort _port{*this};
  std::unique_ptr<URingPolls> _polls;  // null unless --proxy
};

URingEngine::~URingEngine() {
  // Exiting the ring cancels what is still posted and drops its references to sockets and
  // listeners; after it no completion can come, so every SendOp can go.
  close_all_at_teardown();
  _ring.close();
  while (_sends) free_send(_sends);
}

int URingEngine::prepare(std::string& what) {
  if (int err = _ring.open(_env.config.sqpoll, what)) return err;
  prepare_lifecycle();
  _out = std::make_unique<OutBatch>();
  _accepting.assign(_env.listeners.size(), false);
  if (!_env.config.proxy.empty()) {
    _polls = std::make_unique<URingPolls>(_ring, kIgnore);
    _polls->grow(_conns.size());
    if (int err = start_relay(_port, what)) return err;
  }
  return 0;
}

// The one blocking point, the wake-up held back when --coalesce says so: up to the sends just
// submitted (which complete at once) plus a batch. Returns 0, or the errno of a wait that
// cannot work.
int URingEngine::wait() {
  uint32_t hold = _coalesce.begin_wait(_env.stats);
  int err = _ring.wait(hold, _sends_queued + Coalescer::batch());
  _sends_queued = 0;
  _coalesce.end_wait(_env.stats);
  return err;
}

// ---- arming ----

void URingEngine::arm_accept(size_t li) {
  // Accepted sockets stay blocking: io_uring then waits for room itself when a send meets a
  // full socket buffer (an O_NONBLOCK socket would complete that send with -EAGAIN instead).
  // The relay's are not: it reads and writes them itself, after a poll.
  io_uring_prep_multishot_accept(_ring.sqe(kAccept | (li << 3)), _env.listeners[li].get(),
                                 nullptr, nullptr, _relay ? SOCK_CLOEXEC | SOCK_NONBLOCK : SOCK_CLOEXEC);
  _accepting[li] = true;
}

void URingEngine::arm_recv(int fd, Conn& c) {
  io_uring_sqe* s = _ring.sqe(recv_tag(fd, c.gen));
  io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = URing::kBufGroup;
  _uc[static_cast<size_t>(fd)].recv_armed = true;
}

// Posts the recv again once it has ended (buffers ran out, a pause for backpressure, the kernel
// ending a multishot), unless the connection is done reading or still over its stash bound.
void URingEngine::maybe_arm_recv(int fd, Conn& c) {
  URingConn& u = _uc[static_cast<size_t>(fd)];
  if (c.state == ConnState::free || u.recv_armed || u.eof) return;
  if (u.send && c.in_len > kStashMax) return;
  arm_recv(fd, c);
}

void URingEngine::arm_tick() {
  io_uring_prep_timeout(_ring.sqe(kTick | (_tick_gen << 3)), &_tick, 0,
                        _tick_multishot ? IORING_TIMEOUT_MULTISHOT : 0);
}

void URingEngine::arm_wake() {
  io_uring_prep_poll_multishot(_ring.sqe(kWake), _env.wake_fd, POLLIN);
  _wake_armed = true;
}

// ---- the loop ----

void URingEngine::run() {
  StatsSlot& s = _env.stats;
  arm_wake();
  arm_tick();
  for (size_t i = 0; i < _env.listeners.size(); i++) arm_accept(i);
  for (;;) {
    if (int err = wait()) {
      wait_failed(err);
      return;
    }
    bump(s.loops);
    begin_pass();
    // Each CQE is copied and consumed before it is handled, so a handler that has to submit
    // mid-iteration (a full SQ) finds room in the CQ for what that submission completes.
    uint64_t seen = 0;
    io_uring_cqe* cqe;
    while (_stop != kImmediate && (cqe = _ring.first_cqe()) != nullptr) {
      io_uring_cqe c = *cqe;
      _ring.seen(cqe);
      seen++;
      on_cqe(c);
    }
    bump(s.events, seen);
    if (finished()) {
      _ring.submit_all();
      return;
    }
    if (_relay) {
      _relay->end_pass();
      _polls->flush(_conns);  // the pass's interest changes, as polls
    }
  }
}

void URingEngine::on_cqe(const io_uring_cqe& cqe) {
  uint64_t ud = cqe.user_data;
  bool more = cqe.flags & IORING_CQE_F_MORE;
  switch (static_cast<Kind>(ud & kKindMask)) {
    case kSend:
      on_sent(reinterpret_cast<SendOp*>(ud), cqe.res);
      return;
    case kRecv: {
      int fd = static_cast<int>((ud >> 3) & 0x1fffffff);
      uint32_t gen = static_cast<uint32_t>(ud >> 32);
      bool has_buf = cqe.flags & IORING_CQE_F_BUFFER;
      unsigned bid = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
      Conn* c = static_cast<size_t>(fd) < _conns.size() ? &_conns[static_cast<size_t>(fd)] : nullptr;
      // Stale: the connection was closed (its recv cancelled) and the number maybe reused.
      if (!c || c->state == ConnState::free || c->gen != gen) {
        if (has_buf) _ring.recycle(bid);
        return;
      }
      on_recv(fd, *c, cqe.res, has_buf ? _ring.buffer(bid) : nullptr, more);
      if (has_buf) _ring.recycle(bid);  // served or copied: the bytes are no longer needed
      return;
    }
    case kAccept:
      on_accept(static_cast<size_t>(ud >> 3), cqe.res, more);
      return;
    case kTick:
      if ((ud >> 3) != _tick_gen) return;  // replaced by a faster tick at graceful stop
      if (cqe.res == -EINVAL && _tick_multishot) {
        _tick_multishot = false;  // this kernel has no multishot timeouts
        arm_tick();
        return;
      }
      tick();
      if (!more && _stop != kImmediate) arm_tick();
      return;
    case kWake:
      if (!more) _wake_armed = false;
      on_stop_message();
      if (!_wake_armed && _stop != kImmediate) arm_wake();
      return;
    case kIgnore:
      return;
    case kPoll:
      on_poll(static_cast<int>((ud >> 3) & 0x1fffffff), static_cast<uint32_t>(ud >> 32), cqe.res);
      return;
  }
}

// ---- accepting ----

void URingEngine::on_accept(size_t li, int res, bool more) {
  if (!more && li < _accepting.size()) _accepting[li] = false;
  if (li >= _env.listeners.size() || !_env.listeners[li].valid()) {
    if (res >= 0) io_uring_prep_close(_ring.sqe(kIgnore), res);  // raced with the graceful close
    return;
  }
  if (res >= 0) {
    int fd = res;
    sockaddr_storage peer;
    peer.ss_family = AF_UNSPEC;
    if (!_env.config.allow.empty() || _env.log) {
      // Multishot accept returns no address per connection: ask (only under --allow or
      // --access-log: one getpeername per connection, never per request).
      socklen_t len = sizeof(peer);
      if (_sys.getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) peer.ss_family = AF_UNSPEC;
    }
    if (admitted(fd, peer)) {
      Conn& c = open_conn(fd, peer);
      _uc[static_cast<size_t>(fd)] = URingConn{};
      if (_relay)
        relay_accepted(fd);
      else
        arm_recv(fd, c);
    }
  } else {
    accept_failed(-res, _env.listeners[li].get());  // a multishot accept retries by itself
  }
  if (!_accepting[li] && _listening && !stopping()) arm_accept(li);
}

// ---- connections ----

void URingEngine::on_recv(int fd, Conn& c, int res, const char* data, bool more) {
  URingConn& u = _uc[static_cast<size_t>(fd)];
  if (!more) u.recv_armed = false;
  if (res > 0 && data) {
    size_t n = static_cast<size_t>(res);
    bump(_env.stats.bytes_in, n);
    if (c.state == ConnState::lingering) {
      // discarded: the answer was already final
    } else if (u.send) {
      // A response is still going out: keep the bytes, answer them after it.
      append_input(c, data, n);
      if (c.in_len > kStashMax && u.recv_armed)
        io_uring_prep_cancel64(_ring.sqe(kIgnore), recv_tag(fd, c.gen), 0);  // reading pauses
    } else if (c.in_len) {
      append_input(c, data, n);  // an unfinished request continues
      serve(fd, c, c.in, c.in_len);
    } else {
      serve(fd, c, data, n);  // straight from the provided buffer; a tail is copied to c.in
    }
    if (c.state != ConnState::free && !more) maybe_arm_recv(fd, c);
    return;
  }
  if (res == 0) {  // EOF
    if (u.send) {
      u.eof = true;  // the response still goes out; close after it
      return;
    }
    close_conn(fd, c);
    return;
  }
  if (res == -ENOBUFS || res == -ECANCELED) {
    // Out of buffers for a moment, or our own pause: post it again when there is room.
    if (!more) maybe_arm_recv(fd, c);
    return;
  }
  close_conn(fd, c);  // ECONNRESET and other errors
}

// The batch leaves through the ring later, so it is kept past this call (pending_from_batch
// copies the staged parts; large bodies stay references into the immutable table).
SendOp* URingEngine::new_send() {
  auto* op = new SendOp();
  op->next = _sends;
  if (_sends) _sends->prev = op;
  _sends = op;
  return op;
}

void URingEngine::free_send(SendOp* op) {
  if (op->prev) op->prev->next = op->next;
  else _sends = op->next;
  if (op->next) op->next->prev = op->prev;
  delete op;
}

WriteResult URingEngine::m_write(int fd, Conn& c, const ResponseTable* table) {
  SendOp* op = new_send();
  op->fd = fd;
  op->gen = c.gen;
  op->out.reset(pending_from_batch(*_out, 0, table));
  _uc[static_cast<size_t>(fd)].send = op;
  submit_send(op);
  return WriteResult::pending;
}

void URingEngine::submit_send(SendOp* op) {
  const iovec* iov;
  int cnt = pending_iov(*op->out, &iov);
  io_uring_sqe* s = _ring.sqe(reinterpret_cast<uint64_t>(op));
  _sends_queued++;
  if (cnt == 1) {
    io_uring_prep_send(s, op->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    op->msg = msghdr{};
    op->msg.msg_iov = const_cast<iovec*>(iov);
    op->msg.msg_iovlen = static_cast<size_t>(cnt);
    io_uring_prep_sendmsg(s, op->fd, &op->msg, MSG_NOSIGNAL);
  }
}

void URingEngine::on_sent(SendOp* op, int res) {
  if (op->orphan) {
    free_send(op);
    return;
  }
  int fd = op->fd;
  Conn& c = _conns[static_cast<size_t>(fd)];
  URingConn& u = _uc[static_cast<size_t>(fd)];
  if (res == -EAGAIN || res == -EINTR || res == -ENOBUFS) {
    // Refused for now, not failed: output owed to the client is never dropped. Wait until the
    // socket is writable, then send the rest (a poll linked to the send).
    bump(_env.stats.partial_writes);
    _ring.reserve_pair();
    io_uring_sqe* poll = _ring.sqe(kIgnore);
    io_uring_prep_poll_add(poll, fd, POLLOUT);
    poll->flags |= IOSQE_IO_LINK;
    submit_send(op);
    return;
  }
  if (res < 0) {
    u.send = nullptr;
    free_send(op);
    close_conn(fd, c);  // EPIPE, ECONNRESET
    return;
  }
  bump(_env.stats.bytes_out, static_cast<uint64_t>(res));
  c.deadline_ms = _now_ms + _lim.idle_timeout_ms;  // progress: a slow reader, not a dead one
  if (!pending_advance(*op->out, static_cast<size_t>(res))) {
    bump(_env.stats.partial_writes);
    submit_send(op);
    return;
  }
  u.send = nullptr;
  free_send(op);
  if (c.close_after_write) {
    finish_response(fd, c);
    return;
  }
  // Requests that arrived meanwhile are answered now, without another recv.
  if (c.in_len) serve(fd, c, c.in, c.in_len);
  if (c.state == ConnState::free || u.send) return;
  if (u.eof) {
    close_conn(fd, c);
    return;
  }
  maybe_arm_recv(fd, c);
}

void URingEngine::close_conn(int fd, Conn& c) {
  URingConn& u = _uc[static_cast<size_t>(fd)];
  // A multishot recv (or the relay's poll) holds the socket open: what is posted on fd is
  // cancelled first.
  if (u.recv_armed || u.send || _relay) _ring.cancel_before(fd, kIgnore);
  io_uring_prep_close(_ring.sqe(kIgnore), fd);
  if (u.send) u.send->orphan = true;  // its completion frees it
  u = URingConn{};
  conn_closed(c);
  if (_relay) {
    _polls->reset(fd);
    _relay->client_closed(fd);  // last: it may grow _conns (c is dead after)
  }
}

// ---- proxy mode ----

// Deferred accept: the request is (almost always) there already, so the relay reads it now, as
// on the readiness engines; from then on it is watched for reading (or as the relay says).
void URingEngine::relay_accepted(int fd) {
  _polls->start(fd);
  if (_env.config.defer_accept_s > 0) _relay->on_client(fd, kRelayReadable);
}

void URingEngine::on_poll(int fd, uint32_t gen, int res) {
  size_t i = static_cast<size_t>(fd);
  // Stale: the fd was closed (its poll cancelled or removed) and the number maybe reused.
  if (i >= _conns.size() || _conns[i].state == ConnState::free || _conns[i].gen != gen) return;
  uint32_t ready = _polls->completed(fd, res);
  if (!ready || _conns[i].state == ConnState::lingering) return;  // (lingering: the engine's)
  relay_ready(fd, _conns[i], ready);
}

// ---- the stop ----

void URingEngine::m_close_listener(size_t i) {
  int lfd = _env.listeners[i].release();
  _ring.cancel_before(lfd, kIgnore);  // the multishot accept holds the listener open
  io_uring_prep_close(_ring.sqe(kIgnore), lfd);
}

// Every 100 ms while draining: the 1 s timeout is removed (a late completion of it is ignored
// by its generation).
void URingEngine::m_tick_faster() {
  io_uring_prep_timeout_remove(_ring.sqe(kIgnore), kTick | (_tick_gen << 3), 0);
  _tick = __kernel_timespec{0, 100 * 1000 * 1000};
  _tick_gen++;
  arm_tick();
}

}  // namespace

std::unique_ptr<Engine> make_uring_engine(WorkerEnv& env) {
  return std::make_unique<URingEngine>(env);
}

}  // namespace vw
