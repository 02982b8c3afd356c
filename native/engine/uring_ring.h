// uring_ring.h: the io_uring engine's ring (liburing): set-up with the flags this kernel takes,
// the provided receive buffers, getting an SQE, handing SQEs to the kernel (directly, or to the
// SQPOLL thread), the one wait per iteration (its wake-up held back when --coalesce says so),
// reading completions without an uncounted system call. What the SQEs mean is the engine's
// (engine_uring.cc). Only the worker thread touches the ring.
#pragma once
#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "worker/stats.h"
#include "worker/sys.h"

#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT  // Linux 6.12: io_uring_getevents_arg.min_wait_usec
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
#ifndef IORING_TIMEOUT_MULTISHOT  // Linux 6.4; liburing 2.3's header predates it
#define IORING_TIMEOUT_MULTISHOT (1U << 6)
#endif

namespace vw {

class URing {
 public:
  static constexpr unsigned kBufCount = 256;     // provided receive buffers (a power of 2)
  static constexpr size_t kBufSize = 16 * 1024;  // one recv completion carries at most this
  static constexpr int kBufGroup = 0;

  URing(Sys& sys, StatsSlot& stats) : _sys(sys), _stats(stats) {}
  ~URing() { close(); }
  URing(const URing&) = delete;
  URing& operator=(const URing&) = delete;

  // Before the gate: the ring (SQPOLL or not) and the provided buffers. Returns errno and names
  // the failing step in `what`.
  int open(bool sqpoll, std::string& what);
  // Teardown, not counted: exits the ring (cancelling what is posted, dropping its references
  // to sockets), frees the buffers. After it no completion can come.
  void close();

  // An SQE for user_data; when the SQ is full, what it holds goes to the kernel first.
  io_uring_sqe* sqe(uint64_t user_data);
  // Room for two linked SQEs, so the pair goes to the kernel together.
  void reserve_pair() {
    if (io_uring_sq_space_left(&_ring) < 2) make_room();
  }
  // Cancels everything posted on fd, hard-linked to the SQE the caller prepares next (it runs
  // even when there was nothing to cancel).
  void cancel_before(int fd, uint64_t user_data);

  // The one blocking point: submits what this iteration prepared and waits for a completion,
  // the wake-up held back up to `hold` µs for `wait_nr` completions (0: wake at the first).
  // Returns 0, or the errno of a wait that cannot work.
  int wait(uint32_t hold, unsigned wait_nr);
  // Before the worker stops: SQEs queued in this iteration (closes) must still reach the kernel.
  void submit_all();

  // The oldest completion, or null. Read from the ring directly: liburing's peek may enter the
  // kernel to flush an overflowed CQ, a system call that would go uncounted (wait() does that).
  io_uring_cqe* first_cqe() {
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&_ring, head, cqe) return cqe;
    return nullptr;
  }
  void seen(io_uring_cqe* cqe) { io_uring_cqe_seen(&_ring, cqe); }

  char* buffer(unsigned bid) { return _bufs + static_cast<size_t>(bid) * kBufSize; }
  void recycle(unsigned bid);

 private:
  enum class Until { room, empty };
  int open_ring(bool sqpoll, std::string& what);
  int open_buffers(std::string& what);
  void make_room() { hand_over(Until::room); }
  void hand_over(Until until);
  void flush_sq();
  void wake_sq_thread();
  int enter_held(unsigned to_submit, uint32_t hold, unsigned wait_nr);

  Sys& _sys;
  StatsSlot& _stats;
  io_uring _ring{};
  bool _ready = false;
  bool _sqpoll = false;
  bool _min_wait = false;  // the kernel holds wake-ups back itself (IORING_FEAT_MIN_TIMEOUT)
  io_uring_buf_ring* _br = nullptr;
  size_t _br_bytes = 0;
  char* _bufs = nullptr;
};

}  // namespace vw
