// input_buffer.h: where a connection's input lands and what of it is kept: a read goes to the
// worker's shared buffer, or (while a header is unfinished) right after the bytes kept in c.in;
// the unanswered tail is kept in c.in, and an idle connection holds no buffer at all.
// Owned by the thread that serves the connection.
#pragma once
#include <cstddef>
#include <cstdint>

#include "worker/config.h"
#include "engine/conn.h"

namespace vw {

constexpr size_t kReadBuf = 64 * 1024;  // one read per readiness takes at most this much
constexpr uint32_t kMinInCap = 1024;    // smallest buffer an unfinished request gets

// Where the next read of `c` lands: the shared buffer, or (while a header is unfinished) right
// after the bytes already kept in c.in, which grows up to max_header first.
struct ReadSpan {
  char* dst;
  size_t room;
};
ReadSpan read_span(Conn& c, char* rbuf, size_t rbuf_len, const Limits& lim);

// After n > 0 bytes landed where read_span said: the bytes to serve (c.in grew, or rbuf).
inline const char* read_landed(Conn& c, const char* dst, char* rbuf, size_t n, size_t* len) {
  if (dst == rbuf) {
    *len = n;
    return rbuf;
  }
  c.in_len += static_cast<uint32_t>(n);
  *len = c.in_len;
  return c.in;
}

// Keeps the unanswered tail [p, p+n) in c.in (p may point into c.in itself); frees c.in when
// nothing is left, so an idle connection holds no buffer.
void keep_input(Conn& c, const char* p, size_t n);

// Appends [p, p+n) to c.in, growing it by doubling (an engine whose bytes arrive in its own
// buffers, while earlier ones are still unanswered).
void append_input(Conn& c, const char* p, size_t n);

}  // namespace vw
