// input_buffer.cc: the connection input buffer declared in input_buffer.h.
#include "engine/input_buffer.h"

#include <cstdlib>
#include <cstring>

namespace vw {

ReadSpan read_span(Conn& c, char* rbuf, size_t rbuf_len, const Limits& lim) {
  if (c.state != ConnState::open || c.in_len == 0) return {rbuf, rbuf_len};
  // An unfinished header continues where it stopped, in the connection's own buffer.
  if (c.in_len == c.in_cap) {
    uint32_t cap = c.in_cap * 2 > lim.max_header ? lim.max_header : c.in_cap * 2;
    if (cap <= c.in_cap) cap = c.in_cap + kMinInCap;  // parser answers 431 before this grows far
    c.in = static_cast<char*>(std::realloc(c.in, cap));
    c.in_cap = cap;
  }
  return {c.in + c.in_len, c.in_cap - c.in_len};
}

void keep_input(Conn& c, const char* p, size_t n) {
  if (n == 0) {
    if (c.in) {  // idle connections hold no buffer
      std::free(c.in);
      c.in = nullptr;
      c.in_cap = 0;
    }
    c.in_len = 0;
    return;
  }
  if (p == c.in && n == c.in_len) return;
  if (c.in && p >= c.in && p < c.in + c.in_cap) {
    std::memmove(c.in, p, n);
  } else {
    if (n > c.in_cap) {
      uint32_t cap = static_cast<uint32_t>(n) > kMinInCap ? static_cast<uint32_t>(n) : kMinInCap;
      std::free(c.in);
      c.in = static_cast<char*>(std::malloc(cap));
      c.in_cap = cap;
    }
    std::memcpy(c.in, p, n);
  }
  c.in_len = static_cast<uint32_t>(n);
}

void append_input(Conn& c, const char* p, size_t n) {
  if (c.in_len + n > c.in_cap) {
    size_t cap = c.in_cap ? c.in_cap : kMinInCap;
    while (cap < c.in_len + n) cap *= 2;
    c.in = static_cast<char*>(std::realloc(c.in, cap));
    c.in_cap = static_cast<uint32_t>(cap);
  }
  std::memcpy(c.in + c.in_len, p, n);
  c.in_len += static_cast<uint32_t>(n);
}

}  // namespace vw
