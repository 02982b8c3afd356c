// conn.h: one client connection's state, engine-agnostic: buffered input of an unfinished
// request, the body still to skip, output the socket has not taken yet, and its deadline.
// Lives in the worker's fd-indexed table; owned and touched by that worker only.
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "chunked.h"
#include "responses.h"

namespace vw {

// A request whose chunked body is being read: its head, kept to be answered once the body has
// been decoded (and discarded), and the decoder's place. Allocated per chunked request only.
struct ChunkedBody {
  ChunkedDecoder decoder;
  std::unique_ptr<char[]> head;  // the request line and header section, as received
  uint32_t head_len = 0;
  bool finished = false;       // the body is over (or broken): answer next
  uint16_t error_status = 0;   // the body was malformed (400) or too large (413, 431)
};

// Output the socket did not take in one write, kept until EPOLLOUT: copies of staged bytes,
// references into the (immutable) response table for large bodies.
struct PendingOut {
  std::unique_ptr<char[]> copied;
  std::vector<iovec> iov;
  size_t first = 0;  // first iovec not yet fully written
  const ResponseTable* pinned = nullptr;  // the table its references point into, kept alive

  PendingOut() = default;
  PendingOut(const PendingOut&) = delete;
  PendingOut& operator=(const PendingOut&) = delete;
  ~PendingOut() {
    if (pinned) pinned->unpin();
  }
  void pin(const ResponseTable* t) {
    if (!t) return;  // the caller keeps the table alive by other means (blocking engine)
    pinned = t;
    t->pin();
  }
};

enum class ConnState : uint8_t {
  free,       // slot unused
  open,       // reading requests
  lingering,  // final response sent, write side shut, discarding input until EOF or timeout
};

struct Conn {
  uint32_t gen = 0;  // bumped at every accept into this slot: events carry it (stale-event guard)
  ConnState state = ConnState::free;
  bool close_after_write = false;  // the response being written is the last one
  bool linger_after_write = false;
  bool header_started = false;     // some bytes of a request header have arrived
  bool out_was_pending = false;    // epoll interest is EPOLLOUT (the last write was partial)
  uint32_t in_len = 0;
  uint32_t in_cap = 0;
  uint32_t scan_from = 0;          // parser resume offset inside in[]
  uint64_t deadline_ms = 0;        // monotonic ms after which the sweep closes it
  uint64_t body_left = 0;          // request body bytes still to skip
  char* in = nullptr;              // unfinished request bytes (malloc'd only when needed)
  PendingOut* out = nullptr;       // non-null only while a write is incomplete
  ChunkedBody* chunked = nullptr;  // non-null only while a chunked request body is read

  void release_buffers() {
    std::free(in);
    in = nullptr;
    in_len = in_cap = scan_from = 0;
    delete out;
    out = nullptr;
    delete chunked;
    chunked = nullptr;
  }
};

}  // namespace vw
