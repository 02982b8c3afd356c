// uring_ring.cc: the ring declared in uring_ring.h.
#include "engine/uring_ring.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace vw {
namespace {

constexpr unsigned kSqEntries = 4096;
constexpr unsigned kCqEntries = 16384;
constexpr unsigned kSqThreadIdleMs = 10;  // --sqpoll: the kernel thread polls this long after work

// io_uring_getevents_arg as Linux 6.12 has it (liburing 2.3 calls min_wait_usec "pad").
struct GeteventsArg {
  uint64_t sigmask;
  uint32_t sigmask_sz;
  uint32_t min_wait_usec;
  uint64_t ts;
};
static_assert(sizeof(GeteventsArg) == sizeof(io_uring_getevents_arg), "io_uring_getevents_arg layout");

// Linux major.minor, e.g. 6.1 -> 601.
int kernel_version() {
  utsname u{};
  if (uname(&u) != 0) return 0;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) < 2) return 0;
  return major * 100 + minor;
}

}  // namespace

int URing::open(bool sqpoll, std::string& what) {
  // Multishot recv with provided buffers, and cancelling by fd, arrived in Linux 6.0.
  int kv = kernel_version();
  if (kv && kv < 600) {
    what = "io_uring: multishot recv needs Linux 6.0 or later";
    return ENOSYS;
  }
  if (int err = open_ring(sqpoll, what)) return err;
  return open_buffers(what);
}

void URing::close() {
  if (_ready) io_uring_queue_exit(&_ring);
  _ready = false;
  if (_br) munmap(_br, _br_bytes);
  _br = nullptr;
  std::free(_bufs);
  _bufs = nullptr;
}

int URing::open_ring(bool sqpoll, std::string& what) {
  _sqpoll = sqpoll;
  // Tried in order; EINVAL means "this kernel does not know a flag": try the next set.
  const unsigned plain[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                            IORING_SETUP_COOP_TASKRUN, 0};
  const unsigned with_sqpoll[] = {IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER,
                                  IORING_SETUP_SQPOLL};
  const unsigned* tries = _sqpoll ? with_sqpoll : plain;
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
      _ready = true;
      _min_wait = (p.features & IORING_FEAT_MIN_TIMEOUT) != 0;
      store_relaxed(_stats.uring_setup_flags, tries[i]);
      store_relaxed(_stats.uring_features, p.features);
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

int URing::open_buffers(std::string& what) {
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

void URing::recycle(unsigned bid) {
  io_uring_buf_ring_add(_br, buffer(bid), kBufSize, static_cast<unsigned short>(bid),
                        io_uring_buf_ring_mask(kBufCount), 0);
  io_uring_buf_ring_advance(_br, 1);
}

io_uring_sqe* URing::sqe(uint64_t user_data) {
  io_uring_sqe* s;
  while (!(s = io_uring_get_sqe(&_ring))) make_room();  // each round submits or waits: progress
  io_uring_sqe_set_data64(s, user_data);
  return s;
}

void URing::cancel_before(int fd, uint64_t user_data) {
  reserve_pair();
  io_uring_sqe* s = sqe(user_data);
  io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
  s->flags |= IOSQE_IO_HARDLINK;
}

// Publishes the SQEs prepared so far (the SQ tail), as liburing's own flush does.
void URing::flush_sq() {
  io_uring_sq& sq = _ring.sq;
  unsigned tail = sq.sqe_tail;
  if (sq.sqe_head == tail) return;
  sq.sqe_head = tail;
  io_uring_smp_store_release(sq.ktail, tail);
}

// SQPOLL: publish the prepared SQEs; the kernel thread takes them from the tail. Enter only to
// wake it when it has gone to sleep.
void URing::wake_sq_thread() {
  flush_sq();
  io_uring_smp_mb();
  if (IO_URING_READ_ONCE(*_ring.sq.kflags) & IORING_SQ_NEED_WAKEUP) {
    _sys.counted_io_uring_enter();
    io_uring_enter(_ring.ring_fd, 0, 0, IORING_ENTER_SQ_WAKEUP, nullptr);
  }
}

// Hands the prepared SQEs to the kernel outside the wait: the SQ is full in the middle of an
// iteration (Until::room), or the worker is about to stop (Until::empty). Without SQPOLL, one
// submit. With SQPOLL, wake the thread and wait until it has taken them: until there is room
// for one more, or until none is left (bounded: at most ~100 ms).
void URing::hand_over(Until until) {
  if (!_sqpoll) {
    _sys.counted_io_uring_enter();  // submitted > 0: liburing always enters here
    int r = io_uring_submit(&_ring);
    if (until == Until::room && (r == -EBUSY || r == -EAGAIN)) {
      // The CQ overflowed: completions the kernel could not post yet. run() consumes each CQE
      // before handling it, so the CQ has room now; this enter moves them in, then submit again.
      _sys.counted_io_uring_enter();
      io_uring_enter(_ring.ring_fd, 0, 0, IORING_ENTER_GETEVENTS, nullptr);
    }
    return;
  }
  wake_sq_thread();
  for (int i = 0; until == Until::room ? io_uring_sq_space_left(&_ring) == 0
                                       : i < 100 && io_uring_sq_ready(&_ring) != 0;
       i++) {
    _sys.counted_io_uring_enter();
    io_uring_enter(_ring.ring_fd, 0, 0, IORING_ENTER_SQ_WAIT, nullptr);
  }
}

void URing::submit_all() {
  if (io_uring_sq_ready(&_ring) == 0) return;
  hand_over(Until::empty);
}

int URing::wait(uint32_t hold, unsigned wait_nr) {
  // Without the kernel's min-wait (before Linux 6.12) the worker pauses first, as the readiness
  // engines do, then waits as usual.
  if (hold && !_min_wait) _sys.nanosleep_us(hold);
  const bool kernel_hold = hold && _min_wait;
  int r = 0;
  if (_sqpoll) {
    wake_sq_thread();
    if (kernel_hold) {
      r = enter_held(0, hold, wait_nr);
    } else if (io_uring_cq_ready(&_ring) == 0) {
      _sys.counted_io_uring_enter();
      r = io_uring_enter(_ring.ring_fd, 0, 1, IORING_ENTER_GETEVENTS, nullptr);
    }
  } else if (kernel_hold) {
    flush_sq();
    r = enter_held(io_uring_sq_ready(&_ring), hold, wait_nr);
  } else {
    // wait_nr 1: liburing enters exactly once, submitting and waiting in the same call.
    _sys.counted_io_uring_enter();
    r = io_uring_submit_and_wait(&_ring, 1);
  }
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

// A wait whose wake-up the kernel holds back up to `hold` µs: it returns once `wait_nr`
// completions are there (the sends just submitted, which complete at once, plus the target
// batch) or, after `hold`, once there is any; a completion after an idle spell longer than
// `hold` returns at once (Linux: io_cqring_min_timer_wakeup then switches to the general
// timeout). With DEFER_TASKRUN the task is not even woken before then.
int URing::enter_held(unsigned to_submit, uint32_t hold, unsigned wait_nr) {
  // The general timeout must be set: without one the kernel ends the wait when min_wait_usec
  // expires even with nothing to return (a held idle worker would wake every `hold`).
  static const __kernel_timespec kLongWait{10, 0};
  GeteventsArg arg{};
  arg.sigmask_sz = _NSIG / 8;
  arg.min_wait_usec = hold;
  arg.ts = reinterpret_cast<uint64_t>(&kLongWait);
  _sys.counted_io_uring_enter();
  return io_uring_enter2(_ring.ring_fd, to_submit, wait_nr,
                         IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                         reinterpret_cast<sigset_t*>(&arg), sizeof(arg));
}

}  // namespace vw
