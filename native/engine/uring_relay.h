// uring_relay.h: --proxy on the io_uring engine, the readiness the relay (proxy.h) needs. The
// relay does its own reads and writes (counted, through Sys) and only asks to be told when an fd
// is readable or writable; here each of its interest changes becomes a oneshot
// IORING_OP_POLL_ADD (POLLIN or POLLOUT), posted again after each completion while the interest
// is still wanted.
//
// Why oneshot: a oneshot poll looks at the fd when it is posted, so it behaves like the level
// triggered readiness engines (the relay reads at most 64 KiB per readiness; a multishot poll
// fires on wake-ups only and could leave bytes unread). Its SQE costs no system call: it goes to
// the kernel with the iteration's one io_uring_enter.
//
// At most one poll per fd is posted at a time. Its user_data is fd and Conn::gen (the kind
// kPollKind in the low 3 bits), so a completion for an fd closed since, or reused by another
// connection, is dropped as stale by the engine before it reaches this class. Interest changes
// made during a pass are applied once after it (flush): a poll that already covers what is
// wanted stays (a poll for reading while nothing is wanted just completes unseen); one that does
// not is removed (IORING_OP_POLL_REMOVE) and the new one posted when its completion comes.
//
// Closing. Client fds are the engine's: it closes them with its cancel-then-close pair, whose
// cancel by fd ends the poll too, and calls reset(). Upstream fds are the relay's: it calls
// forget() (RelayHost::forget) and then closes them itself; forget() removes the poll by its
// user_data (a plain close would not end it: a posted poll holds the socket open).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/conn.h"
#include "engine/uring_ring.h"
#include "proxy/proxy.h"

namespace vw {

class URingPolls {
 public:
  static constexpr uint64_t kPollKind = 6;  // engine_uring.cc's Kind of a poll completion
  // `ignore`: the user_data of SQEs whose completion means nothing (poll removes).
  URingPolls(URing& ring, uint64_t ignore) : _ring(ring), _ignore(ignore) {}

  static uint64_t tag(int fd, uint32_t gen) {
    return kPollKind | (static_cast<uint64_t>(fd) << 3) | (static_cast<uint64_t>(gen) << 32);
  }

  void grow(size_t n) { _fd.resize(n); }  // the engine's table grew
  // A connection new to the relay (an accepted client, a new upstream): watched for reading.
  void start(int fd);
  void want(int fd, Watch w);
  // The relay is about to close fd (an upstream) itself.
  void forget(int fd, uint32_t gen);
  // The engine closed fd through the ring (its cancel by fd ends the poll).
  void reset(int fd) { _fd[static_cast<size_t>(fd)] = PerFd{}; }
  // A poll of fd completed (not stale): the relay's readiness bits for it, 0 when nothing it
  // wants. The fd is queued to be watched again by the next flush.
  uint32_t completed(int fd, int res);
  // After a pass: the polls brought up to what the relay wants now.
  void flush(const std::vector<Conn>& conns);

 private:
  struct PerFd {
    uint8_t want = 0;      // POLLIN, POLLOUT or 0 (Watch::none)
    uint8_t armed = 0;     // the mask of the poll posted; 0: none
    bool removing = false;  // a remove of that poll is posted
    bool queued = false;    // in _queue
  };
  void queue(int fd);

  URing& _ring;
  uint64_t _ignore;
  std::vector<PerFd> _fd;   // by fd, as big as the engine's table
  std::vector<int> _queue;  // fds whose poll may need posting or removing
};

}  // namespace vw
