// conn.h: one client connection's slot in the worker's fd-indexed table, and its transitions
// (accepted, lingering, closed): buffered input of an unfinished request, output the socket has
// not taken yet, its deadline, and the HTTP session's own state (Conn::http, which the engines
// hold but never read). Owned and touched by the thread that serves the connection only.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "worker/config.h"
#include "engine/pending_out.h"
#include "http/session.h"

namespace vw {

enum class ConnState : uint8_t {
  free,       // slot unused
  open,       // reading requests
  lingering,  // final response sent, write side shut, discarding input until EOF or timeout
  upstream,   // --proxy: a connection to a backend, owned by the relay (proxy.h), not a client
};

struct Conn {
  uint32_t gen = 0;  // bumped at every accept into this slot: events carry it (stale-event guard)
  ConnState state = ConnState::free;
  bool close_after_write = false;  // the response being written is the last one
  bool linger_after_write = false;
  // Readiness engines only (readiness.h): the interest set's view of this connection.
  bool out_was_pending = false;    // the interest is writable (the last write was partial)
  bool watched = false;            // in the interest set
  uint32_t in_len = 0;
  uint32_t in_cap = 0;
  uint64_t deadline_ms = 0;        // monotonic ms after which the sweep closes it
  char* in = nullptr;              // unfinished request bytes (malloc'd only when needed)
  PendingOut* out = nullptr;       // non-null only while a write is incomplete
  SessionState http;               // the HTTP session's, never read by an engine

  void release_buffers() {
    std::free(in);
    in = nullptr;
    in_len = in_cap = 0;
    delete out;
    out = nullptr;
    http.reset();
  }
};

// Marks a table slot as a fresh connection: new generation, header deadline.
inline void reset_for_accept(Conn& c, uint64_t deadline_ms) {
  c.gen = (c.gen + 1) & 0x7fffffff;
  c.state = ConnState::open;
  c.close_after_write = c.linger_after_write = c.http.header_started = c.out_was_pending = false;
  c.watched = false;
  c.http.body_left = 0;
  c.deadline_ms = deadline_ms;
}

// --access-log: the address accept returned, kept for the connection's log lines.
inline void set_peer(Conn& c, const sockaddr_storage& peer) {
  SessionState& h = c.http;
  if (peer.ss_family == AF_INET) {
    h.peer_family = 4;
    std::memcpy(h.peer, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, 4);
  } else if (peer.ss_family == AF_INET6) {
    h.peer_family = 6;
    std::memcpy(h.peer, &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, 16);
  } else {
    h.peer_family = 0;
  }
}

// The last response is out and its write side shut: from now on input is read and discarded
// until EOF or the linger deadline (closing over unread input would reset the connection and
// could destroy the response).
inline void start_linger(Conn& c, uint64_t now_ms, const Limits& lim) {
  c.state = ConnState::lingering;
  c.deadline_ms = now_ms + lim.linger_timeout_ms;
  std::free(c.in);
  c.in = nullptr;
  c.in_len = c.in_cap = 0;
}

// Resets a slot after its fd is closed (the caller closes, counts and frees).
inline void reset_closed(Conn& c) {
  c.release_buffers();
  c.state = ConnState::free;
  c.watched = false;
}

}  // namespace vw
