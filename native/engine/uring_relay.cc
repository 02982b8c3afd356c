// uring_relay.cc: the relay's readiness on io_uring, declared in uring_relay.h.
#include "engine/uring_relay.h"

#include <poll.h>

#include <cerrno>

namespace vw {
namespace {

uint8_t mask_of(Watch w) {
  return w == Watch::read ? POLLIN : w == Watch::write ? POLLOUT : 0;
}

}  // namespace

void URingPolls::queue(int fd) {
  PerFd& p = _fd[static_cast<size_t>(fd)];
  if (p.queued) return;
  p.queued = true;
  _queue.push_back(fd);
}

void URingPolls::start(int fd) {
  _fd[static_cast<size_t>(fd)] = PerFd{};
  want(fd, Watch::read);
}

void URingPolls::want(int fd, Watch w) {
  _fd[static_cast<size_t>(fd)].want = mask_of(w);
  queue(fd);
}

void URingPolls::forget(int fd, uint32_t gen) {
  PerFd& p = _fd[static_cast<size_t>(fd)];
  if (p.armed) io_uring_prep_poll_remove(_ring.sqe(_ignore), tag(fd, gen));
  p = PerFd{};  // its completion (-ECANCELED, or a late result) is stale: the slot is freed
}

uint32_t URingPolls::completed(int fd, int res) {
  PerFd& p = _fd[static_cast<size_t>(fd)];
  p.armed = 0;
  p.removing = false;
  queue(fd);  // posted again (or anew, after a remove) by the next flush
  uint32_t r = 0;
  if (res >= 0) {
    if (res & POLLIN) r |= kRelayReadable;
    if (res & POLLOUT) r |= kRelayWritable;
    if (res & (POLLERR | POLLHUP)) r |= kRelayHangup;
  } else if (res != -ECANCELED) {
    r = kRelayHangup;  // the relay's own read or write then finds the error
  }
  if (!(p.want & POLLIN)) r &= ~kRelayReadable;
  if (!(p.want & POLLOUT)) r &= ~kRelayWritable;
  return p.want ? r : 0;
}

void URingPolls::flush(const std::vector<Conn>& conns) {
  for (int fd : _queue) {
    PerFd& p = _fd[static_cast<size_t>(fd)];
    if (!p.queued) continue;  // reset since it was queued (and maybe queued again later)
    p.queued = false;
    const Conn& c = conns[static_cast<size_t>(fd)];
    if (c.state == ConnState::free || (p.want & ~p.armed) == 0) continue;  // covered already
    if (p.armed) {  // a poll for the other direction: removed first, then (completed) replaced
      if (!p.removing) io_uring_prep_poll_remove(_ring.sqe(_ignore), tag(fd, c.gen));
      p.removing = true;
      continue;
    }
    io_uring_prep_poll_add(_ring.sqe(tag(fd, c.gen)), fd, p.want);
    p.armed = p.want;
  }
  _queue.clear();
}

}  // namespace vw
