// engine_uring.cc: the io_uring engine (liburing). Completions instead of readiness: a multishot
// accept per listener, a multishot recv per connection into a ring of provided buffers (so an
// idle connection holds no buffer), one send per batch of pipelined responses, and the 1 s tick
// as an IORING_OP_TIMEOUT. Every submission of a loop iteration goes to the kernel with the same
// io_uring_submit_and_wait that waits: one io_uring_enter per iteration, no other system call on
// the request path. Connection semantics are the shared ones (serve_input.h, input_buffer.h, batch_write.h, admission.h).
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
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "coalesce.h"
#include "admission.h"
#include "batch_write.h"
#include "clock.h"
#include "input_buffer.h"
#include "reserve_fd.h"
#include "serve_input.h"

namespace vw {
namespace {

constexpr unsigned kSqEntries = 4096;
constexpr unsigned kCqEntries = 16384;
constexpr unsigned kBufCount = 256;       // provided receive buffers per worker (a power of 2)
constexpr size_t kBufSize = 16 * 1024;    // one recv completion carries at most this
constexpr int kBufGroup = 0;
constexpr size_t kStashMax = kReadBuf;    // input kept while a send is in flight, then recv stops
constexpr unsigned kSqThreadIdleMs = 10;  // --sqpoll: the kernel thread polls this long after work

#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT  // Linux 6.12: io_uring_getevents_arg.min_wait_usec
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
#ifndef IORING_TIMEOUT_MULTISHOT  // Linux 6.4; liburing 2.3's header predates it
#define IORING_TIMEOUT_MULTISHOT (1U << 6)
#endif

// io_uring_getevents_arg as Linux 6.12 has it (liburing 2.3 calls min_wait_usec "pad").
struct GeteventsArg {
  uint64_t sigmask;
  uint32_t sigmask_sz;
  uint32_t min_wait_usec;
  uint64_t ts;
};
static_assert(sizeof(GeteventsArg) == sizeof(io_uring_getevents_arg), "io_uring_getevents_arg layout");

// user_data: the kind in the low 3 bits. A send is its SendOp's (aligned) address.
enum Kind : uint64_t { kSend = 0, kRecv = 1, kAccept = 2, kTick = 3, kWake = 4, kIgnore = 5 };
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

// The oldest completion, or null. Read from the ring directly: liburing's peek may enter the
// kernel to flush an overflowed CQ, a system call that would go uncounted (wait() does that).
io_uring_cqe* first_cqe(io_uring* ring) {
  unsigned head;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(ring, head, cqe) return cqe;
  return nullptr;
}

// Linux major.minor, e.g. 6.1 -> 601.
int kernel_version() {
  utsname u{};
  if (uname(&u) != 0) return 0;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) < 2) return 0;
  return major * 100 + minor;
}

class URingEngine final : public Engine {
 public:
  explicit URingEngine(WorkerEnv& env)
      : _env(env), _sys(env.stats), _lim(env.config.limits), _coalesce(env.config.coalesce) {}
  ~URingEngine() override;
  int prepare(std::string& what) override;
  void run() override;

 private:
  int setup_ring(std::string& what);
  int setup_buffers(std::string& what);
  bool stopping() const { return _stop != kRunning; }
  bool finished() const { return _stop == kImmediate || (stopping() && _open == 0); }

  // ---- the ring ----
  io_uring_sqe* sqe(uint64_t user_data);
  void make_room();
  int wait();
  int enter_held(unsigned to_submit, uint32_t hold);
  void flush_sq();
  void wake_sq_thread();
  void submit_all();
  char* buffer(unsigned bid) { return _bufs + static_cast<size_t>(bid) * kBufSize; }
  void recycle(unsigned bid);

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
  void on_tick();
  void on_wake();

  void serve(int fd, Conn& c, const char* data, size_t len);
  WriteResult start_send(int fd, Conn& c, const ResponseTable* table);
  void submit_send(SendOp* op);
  void finish_response(int fd, Conn& c);
  void close_conn(int fd, Conn& c);
  void stash(Conn& c, const char* p, size_t n);
  void begin_graceful();
  SendOp* new_send();
  void free_send(SendOp* op);

  WorkerEnv& _env;
  Sys _sys;
  const Limits& _lim;
  io_uring _ring{};
  bool _ring_ready = false;
  bool _sqpoll = false;
  bool _min_wait = false;  // the kernel holds wake-ups back itself (IORING_FEAT_MIN_TIMEOUT)
  io_uring_buf_ring* _br = nullptr;
  size_t _br_bytes = 0;
  char* _bufs = nullptr;
  ReserveFd _reserve;
  std::vector<Conn> _conns;     // indexed by fd
  std::vector<URingConn> _uc;   // indexed by fd
  std::vector<bool> _accepting;  // a multishot accept is posted, per listener
  uint32_t _open = 0;
  bool _listening = true;
  bool _wake_armed = false;
  int _stop = kRunning;
  uint64_t _now_ms = 0;
  uint64_t _drain_deadline_ms = 0;
  uint64_t _tick_gen = 0;  // a tick completion of an older generation is not re-armed
  __kernel_timespec _tick{1, 0};
  // One multishot timeout ticks forever without a submission per tick, so nothing wakes an idle
  // SQPOLL thread; a kernel that refuses it (before 6.4) gets a timeout re-armed per tick.
  bool _tick_multishot = true;
  SendOp* _sends = nullptr;  // every SendOp not yet freed, orphans included
  uint32_t _sends_queued = 0;  // sends prepared since the last wait: their completions come at once
  Coalescer _coalesce;
  DateCache _date;
  std::unique_ptr<OutBatch> _out;
};

URingEngine::~URingEngine() {
  // Teardown, not the hot path: plain close, not counted. Exiting the ring cancels what is
  // still posted and drops its references to sockets and listeners.
  uint32_t open = 0;
  for (size_t fd = 0; fd < _conns.size(); fd++) {
    if (_conns[fd].state == ConnState::free) continue;
    ::close(static_cast<int>(fd));
    _conns[fd].release_buffers();
    open++;
  }
  drop(_env.stats.conns_open, open);
  bump(_env.stats.conns_closed, open);
  if (_ring_ready) io_uring_queue_exit(&_ring);
  while (_sends) free_send(_sends);  // no completion can come any more
  if (_br) munmap(_br, _br_bytes);
  std::free(_bufs);
}

int URingEngine::setup_ring(std::string& what) {
  _sqpoll = _env.config.sqpoll;
  // Tried in order; EINVAL means "this kernel does not know a flag": try the next set.
  const unsigned plain[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                            IORING_SETUP_COOP_TASKRUN, 0};
  const unsigned sqpoll[] = {IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER,
                             IORING_SETUP_SQPOLL};
  const unsigned* tries = _sqpoll ? sqpoll : plain;
  size_t n = _sqpoll ? 2 : 3;
  // The SQPOLL thread inherits the creating thread's policy: create it under SCHED_OTHER, so
  // its busy polling never runs at real-time priority.
  int policy = SCHED_OTHER;
  sched_param param{};
  pthread_getschedparam(pthread_self(), &policy, &param);
  bool lowered = false;
  if (_sqpoll && policy != SCHED_OTHER) {
    sched_param zero{};
    lowered = pthread_setschedparam(pthread_self(), SCHED_OTHER, &zero) == 0;
  }
  int err = EINVAL;
  for (size_t i = 0; i < n; i++) {
    io_uring_params p{};
    p.flags = tries[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = kCqEntries;
    if (_sqpoll) p.sq_thread_idle = kSqThreadIdleMs;
    int r = io_uring_queue_init_params(kSqEntries, &_ring, &p);
    if (r == 0) {
      _ring_ready = true;
      _min_wait = (p.features & IORING_FEAT_MIN_TIMEOUT) != 0;
      store_relaxed(_env.stats.uring_setup_flags, tries[i]);
      store_relaxed(_env.stats.uring_features, p.features);
      err = 0;
      break;
    }
    err = -r;
    if (err != EINVAL) break;
  }
  if (lowered && pthread_setschedparam(pthread_self(), policy, &param) != 0 && err == 0) {
    what = "io_uring: restore the worker's scheduling policy after creating the SQPOLL thread";
    return EPERM;
  }
  if (err) what = _sqpoll ? "io_uring_queue_init (SQPOLL)" : "io_uring_queue_init";
  return err;
}

int URingEngine::setup_buffers(std::string& what) {
  _br_bytes = kBufCount * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, _br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    what = "io_uring: buffer ring";
    return errno;
  }
  _br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(_br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(mem);
  reg.ring_entries = kBufCount;
  reg.bgid = kBufGroup;
  if (int r = io_uring_register_buf_ring(&_ring, &reg, 0)) {
    what = "io_uring: register a provided buffer ring (Linux 5.19 or later)";
    return -r;
  }
  _bufs = static_cast<char*>(std::aligned_alloc(4096, kBufCount * kBufSize));
  if (!_bufs) {
    what = "io_uring: receive buffers";
    return ENOMEM;
  }
  for (unsigned i = 0; i < kBufCount; i++)
    io_uring_buf_ring_add(_br, buffer(i), kBufSize, static_cast<unsigned short>(i),
                          io_uring_buf_ring_mask(kBufCount), static_cast<int>(i));
  io_uring_buf_ring_advance(_br, static_cast<int>(kBufCount));
  return 0;
}

int URingEngine::prepare(std::string& what) {
  // Multishot recv with provided buffers, and cancelling by fd, arrived in Linux 6.0.
  int kv = kernel_version();
  if (kv && kv < 600) {
    what = "io_uring: multishot recv needs Linux 6.0 or later";
    return ENOSYS;
  }
  _sys.fail_waits_from_env();
  if (int err = setup_ring(what)) return err;
  if (int err = setup_buffers(what)) return err;
  _out = std::make_unique<OutBatch>();
  _reserve.open();
  _accepting.assign(_env.listeners.size(), false);
  _date.refresh();
  return 0;
}

// ---- the ring ----

io_uring_sqe* URingEngine::sqe(uint64_t user_data) {
  io_uring_sqe* s;
  while (!(s = io_uring_get_sqe(&_ring))) make_room();  // each round submits or waits: progress
  io_uring_sqe_set_data64(s, user_data);
  return s;
}

// Publishes the SQEs prepared so far (the SQ tail), as liburing's own flush does.
void URingEngine::flush_sq() {
  io_uring_sq& sq = _ring.sq;
  unsigned tail = sq.sqe_tail;
  if (sq.sqe_head == tail) return;
  sq.sqe_head = tail;
  io_uring_smp_store_release(sq.ktail, tail);
}

// The submission queue is full in the middle of an iteration: hand it to the kernel now.
void URingEngine::make_room() {
  if (!_sqpoll) {
    _sys.counted_io_uring_enter();  // submitted > 0: liburing always enters here
    int r = io_uring_submit(&_ring);
    if (r == -EBUSY || r == -EAGAIN) {
      // The CQ overflowed: completions the kernel could not post yet. run() consumes each CQE
      // before handling it, so the CQ has room now; this enter moves them in, then submit again.
      _sys.counted_io_uring_enter();
      io_uring_enter(_ring.ring_fd, 0, 0, IORING_ENTER_GETEVENTS, nullptr);
    }
    return;
  }
  wake_sq_thread();
  while (io_uring_sq_space_left(&_ring) == 0) {
    _sys.counted_io_uring_enter();
    io_uring_enter(_ring.ring_fd, 0, 0, IORING_ENTER_SQ_WAIT, nullptr);
  }
}

// SQPOLL: publish the prepared SQEs; the kernel thread takes them from the tail. Enter only to
// wake it when it has gone to sleep.
void URingEngine::wake_sq_thread() {
  flush_sq();
  io_uring_smp_mb();
  if (IO_URING_READ_ONCE(*_ring.sq.kflags) & IORING_SQ_NEED_WAKEUP) {
    _sys.counted_io_uring_enter();
    io_uring_enter(_ring.ring_fd, 0, 0, IORING_ENTER_SQ_WAKEUP, nullptr);
  }
}

// The one blocking point: submit what this iteration prepared and wait for a completion, the
// wake-up held back when --coalesce says so. Returns 0, or the errno of a wait that cannot work.
int URingEngine::wait() {
  uint32_t hold = _coalesce.begin_wait(_env.stats);
  // Without the kernel's min-wait (before Linux 6.12) the worker pauses first, as the readiness
  // engines do, then waits as usual.
  if (hold && !_min_wait) _sys.nanosleep_us(hold);
  const bool kernel_hold = hold && _min_wait;
  int r = 0;
  if (_sqpoll) {
    wake_sq_thread();
    if (kernel_hold) {
      r = enter_held(0, hold);
    } else if (io_uring_cq_ready(&_ring) == 0) {
      _sys.counted_io_uring_enter();
      r = io_uring_enter(_ring.ring_fd, 0, 1, IORING_ENTER_GETEVENTS, nullptr);
    }
  } else if (kernel_hold) {
    flush_sq();
    r = enter_held(io_uring_sq_ready(&_ring), hold);
  } else {
    // wait_nr 1: liburing enters exactly once, submitting and waiting in the same call.
    _sys.counted_io_uring_enter();
    r = io_uring_submit_and_wait(&_ring, 1);
  }
  _sends_queued = 0;
  _coalesce.end_wait(_env.stats);
  if (_sys.failing_waits()) r = -EINVAL;  // test hook: the impossible error
  if (r >= 0) return 0;
  int err = r == -1 ? errno : -r;  // liburing returns -errno; be safe with a libc-style -1
  if (err == EINTR || err == ETIME || err == EAGAIN || err == EBUSY) return 0;  // wait again
  if (kernel_hold && err == EINVAL && !_sys.failing_waits()) {
    _min_wait = false;  // the kernel claims min-wait but refuses the argument: pause instead
    return 0;
  }
  return err;
}

// A wait whose wake-up the kernel holds back up to `hold` µs: it returns once a batch of
// completions is there (the sends just submitted, which complete at once, plus the target
// batch) or, after `hold`, once there is any; a completion after an idle spell longer than
// `hold` returns at once (Linux: io_cqring_min_timer_wakeup then switches to the general
// timeout). With DEFER_TASKRUN the task is not even woken before then.
int URingEngine::enter_held(unsigned to_submit, uint32_t hold) {
  // The general timeout must be set: without one the kernel ends the wait when min_wait_usec
  // expires even with nothing to return (a held idle worker would wake every `hold`).
  static const __kernel_timespec kLongWait{10, 0};
  GeteventsArg arg{};
  arg.sigmask_sz = _NSIG / 8;
  arg.min_wait_usec = hold;
  arg.ts = reinterpret_cast<uint64_t>(&kLongWait);
  _sys.counted_io_uring_enter();
  return io_uring_enter2(_ring.ring_fd, to_submit, _sends_queued + Coalescer::batch(),
                         IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                         reinterpret_cast<sigset_t*>(&arg), sizeof(arg));
}

// Before run() returns: closes queued in this iteration must still happen.
void URingEngine::submit_all() {
  if (io_uring_sq_ready(&_ring) == 0) return;
  if (!_sqpoll) {
    _sys.counted_io_uring_enter();
    io_uring_submit(&_ring);
    return;
  }
  wake_sq_thread();
  for (int i = 0; i < 100 && io_uring_sq_ready(&_ring) != 0; i++) {  // bounded: at most ~100 ms
    _sys.counted_io_uring_enter();
    io_uring_enter(_ring.ring_fd, 0, 0, IORING_ENTER_SQ_WAIT, nullptr);
  }
}

void URingEngine::recycle(unsigned bid) {
  io_uring_buf_ring_add(_br, buffer(bid), kBufSize, static_cast<unsigned short>(bid),
                        io_uring_buf_ring_mask(kBufCount), 0);
  io_uring_buf_ring_advance(_br, 1);
}

// ---- arming ----

void URingEngine::arm_accept(size_t li) {
  // Accepted sockets stay blocking: io_uring then waits for room itself when a send meets a
  // full socket buffer (an O_NONBLOCK socket would complete that send with -EAGAIN instead).
  io_uring_prep_multishot_accept(sqe(kAccept | (li << 3)), _env.listeners[li].get(), nullptr,
                                 nullptr, SOCK_CLOEXEC);
  _accepting[li] = true;
}

void URingEngine::arm_recv(int fd, Conn& c) {
  io_uring_sqe* s = sqe(recv_tag(fd, c.gen));
  io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = kBufGroup;
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
  io_uring_prep_timeout(sqe(kTick | (_tick_gen << 3)), &_tick, 0,
                        _tick_multishot ? IORING_TIMEOUT_MULTISHOT : 0);
}

void URingEngine::arm_wake() {
  io_uring_prep_poll_multishot(sqe(kWake), _env.wake_fd, POLLIN);
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
      // Retrying would spin a real-time thread: stop this worker, its errno published for the
      // launcher, which names it and exits non-zero.
      store_relaxed(s.wait_errno, static_cast<uint64_t>(err));
      return;
    }
    _env.pass_quiescent_point();  // no table pointer is held across iterations (reload QSBR)
    bump(s.loops);
    _date.refresh();
    _now_ms = mono_ms();
    // Each CQE is copied and consumed before it is handled, so a handler that has to submit
    // mid-iteration (a full SQ) finds room in the CQ for what that submission completes.
    uint64_t seen = 0;
    io_uring_cqe* cqe;
    while (_stop != kImmediate && (cqe = first_cqe(&_ring)) != nullptr) {
      io_uring_cqe c = *cqe;
      io_uring_cqe_seen(&_ring, cqe);
      seen++;
      on_cqe(c);
    }
    bump(s.events, seen);
    if (finished()) {
      submit_all();
      return;
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
        if (has_buf) recycle(bid);
        return;
      }
      on_recv(fd, *c, cqe.res, has_buf ? buffer(bid) : nullptr, more);
      if (has_buf) recycle(bid);  // served or copied: the bytes are no longer needed
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
      on_tick();
      if (!more && _stop != kImmediate) arm_tick();
      return;
    case kWake:
      if (!more) _wake_armed = false;
      on_wake();
      if (!_wake_armed && _stop != kImmediate) arm_wake();
      return;
    case kIgnore:
      return;
  }
}

// ---- accepting ----

void URingEngine::on_accept(size_t li, int res, bool more) {
  if (!more && li < _accepting.size()) _accepting[li] = false;
  if (li >= _env.listeners.size() || !_env.listeners[li].valid()) {
    if (res >= 0) io_uring_prep_close(sqe(kIgnore), res);  // raced with the graceful close
    return;
  }
  StatsSlot& s = _env.stats;
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
    Admit a = admit(_env.config, _open, peer);
    if (a != Admit::ok) {
      bump(a == Admit::denied ? s.denied : s.rejected);
      io_uring_prep_close(sqe(kIgnore), fd);
    } else {
      if (static_cast<size_t>(fd) >= _conns.size()) {
        _conns.resize(static_cast<size_t>(fd) * 2 + 64);
        _uc.resize(_conns.size());
      }
      Conn& c = _conns[static_cast<size_t>(fd)];
      reset_for_accept(c, _now_ms + _lim.header_timeout_ms);
      set_peer(c, peer);
      _uc[static_cast<size_t>(fd)] = URingConn{};
      arm_recv(fd, c);
      if (_env.config.locality)
        count_locality(_sys, s, static_cast<int>(s.cpu.load(std::memory_order_relaxed)), fd);
      _open++;
      bump(s.conns_accepted);
      bump(s.conns_open);
    }
  } else {
    int err = -res;
    if (err != EINTR && err != ECONNABORTED && err != EPROTO && err != EAGAIN && err != ECANCELED) {
      bump(s.accept_errors);
      if ((err == EMFILE || err == ENFILE) && _reserve.trick(_sys, _env.listeners[li].get()) >= 0) {
        bump(s.rejected);
      } else {
        _listening = false;  // ENOBUFS, ENOMEM, or no spare fd: resume at the next tick
      }
    }
  }
  if (!_accepting[li] && _listening && !stopping()) arm_accept(li);
}

// ---- connections ----

void URingEngine::stash(Conn& c, const char* p, size_t n) {
  if (c.in_len + n > c.in_cap) {
    size_t cap = c.in_cap ? c.in_cap : kMinInCap;
    while (cap < c.in_len + n) cap *= 2;
    c.in = static_cast<char*>(std::realloc(c.in, cap));
    c.in_cap = static_cast<uint32_t>(cap);
  }
  std::memcpy(c.in + c.in_len, p, n);
  c.in_len += static_cast<uint32_t>(n);
}

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
      stash(c, data, n);
      if (c.in_len > kStashMax && u.recv_armed) {
        io_uring_sqe* s = sqe(kIgnore);
        io_uring_prep_cancel64(s, recv_tag(fd, c.gen), 0);  // reading pauses until it drains
      }
    } else if (c.in_len) {
      stash(c, data, n);  // an unfinished request continues
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

void URingEngine::serve(int fd, Conn& c, const char* data, size_t len) {
  ServeCtx ctx = serve_ctx(_env, _date, _env.stats);
  OutBatch& out = *_out;
  Served r = serve_input(ctx, c, data, len, out, _now_ms, [&] { return start_send(fd, c, ctx.table); });
  switch (r) {
    case Served::idle:
    case Served::pending:  // the send completes later (on_sent)
      return;
    case Served::failed:
      close_conn(fd, c);
      return;
    case Served::finish:
      finish_response(fd, c);
      return;
  }
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

WriteResult URingEngine::start_send(int fd, Conn& c, const ResponseTable* table) {
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
  io_uring_sqe* s = sqe(reinterpret_cast<uint64_t>(op));
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
    if (io_uring_sq_space_left(&_ring) < 2) make_room();  // the pair must go in together
    io_uring_sqe* poll = sqe(kIgnore);
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

// The last response of the connection is out: close, or shut writing and drain first.
void URingEngine::finish_response(int fd, Conn& c) {
  if (!c.linger_after_write || stopping() || _uc[static_cast<size_t>(fd)].eof) {
    close_conn(fd, c);
    return;
  }
  io_uring_prep_shutdown(sqe(kIgnore), fd, SHUT_WR);
  c.state = ConnState::lingering;
  c.deadline_ms = _now_ms + _lim.linger_timeout_ms;
  std::free(c.in);
  c.in = nullptr;
  c.in_len = c.in_cap = 0;
  maybe_arm_recv(fd, c);  // read on, discarding, until EOF or the linger deadline
}

void URingEngine::close_conn(int fd, Conn& c) {
  URingConn& u = _uc[static_cast<size_t>(fd)];
  if (u.recv_armed || u.send) {
    // Cancel what is posted on fd first (a multishot recv holds the socket open), then close;
    // a hard link runs the close even when there was nothing left to cancel.
    if (io_uring_sq_space_left(&_ring) < 2) make_room();
    io_uring_sqe* s = sqe(kIgnore);
    io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
    s->flags |= IOSQE_IO_HARDLINK;
  }
  io_uring_prep_close(sqe(kIgnore), fd);
  if (u.send) u.send->orphan = true;  // its completion frees it
  u = URingConn{};
  reset_closed(c);
  _open--;
  drop(_env.stats.conns_open);
  bump(_env.stats.conns_closed);
}

// ---- the tick and the stop ----

void URingEngine::on_tick() {
  store_relaxed(_env.stats.cpu, static_cast<uint64_t>(sched_getcpu()));
  if (stopping() && _now_ms >= _drain_deadline_ms) {
    for (size_t fd = 0; fd < _conns.size(); fd++)
      if (_conns[fd].state != ConnState::free) close_conn(static_cast<int>(fd), _conns[fd]);
    return;
  }
  if (!_listening && !stopping()) {
    _listening = true;
    for (size_t i = 0; i < _env.listeners.size(); i++)
      if (_env.listeners[i].valid() && !_accepting[i]) arm_accept(i);
  }
  // Coarse sweep: one pass a second over the table instead of a timer per connection.
  for (size_t fd = 0; fd < _conns.size(); fd++) {
    Conn& c = _conns[fd];
    if (c.state == ConnState::free || c.deadline_ms > _now_ms) continue;
    if (c.state == ConnState::open) bump(_env.stats.timeouts);
    close_conn(static_cast<int>(fd), c);
  }
}

void URingEngine::on_wake() {
  uint64_t v;
  _sys.read(_env.wake_fd, &v, sizeof(v));
  int mode = _env.stop_mode.load();
  if (mode == _stop) return;
  if (mode == kGraceful) begin_graceful();
  _stop = mode;
}

void URingEngine::begin_graceful() {
  for (size_t i = 0; i < _env.listeners.size(); i++) {
    Fd& l = _env.listeners[i];
    if (!l.valid()) continue;
    int lfd = l.release();
    // The multishot accept holds the listener open: cancel it, then close.
    if (io_uring_sq_space_left(&_ring) < 2) make_room();
    io_uring_sqe* s = sqe(kIgnore);
    io_uring_prep_cancel_fd(s, lfd, IORING_ASYNC_CANCEL_ALL);
    s->flags |= IOSQE_IO_HARDLINK;
    io_uring_prep_close(sqe(kIgnore), lfd);
  }
  _drain_deadline_ms = _now_ms + _lim.drain_timeout_ms;
  // Tick every 100 ms while draining: the 1 s timeout is removed (a late completion of it is
  // ignored by its generation).
  io_uring_prep_timeout_remove(sqe(kIgnore), kTick | (_tick_gen << 3), 0);
  _tick = __kernel_timespec{0, 100 * 1000 * 1000};
  _tick_gen++;
  arm_tick();
  for (size_t fd = 0; fd < _conns.size(); fd++) {
    Conn& c = _conns[fd];
    if (c.state == ConnState::free) continue;
    if (_uc[fd].send) {
      c.close_after_write = true;  // an in-flight response is finished, then the connection ends
      c.linger_after_write = false;
    } else {
      close_conn(static_cast<int>(fd), c);
    }
  }
}

}  // namespace

std::unique_ptr<Engine> make_uring_engine(WorkerEnv& env) {
  return std::make_unique<URingEngine>(env);
}

}  // namespace vw
