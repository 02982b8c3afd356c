// path.cc: percent-decoding and dot-segment removal. Only preloaded table keys can ever match
// the result, so normalization decides equality, never reachability of anything else.
#include "http/path.h"

#include <cstring>

#include "http/grammar.h"

namespace vw {
namespace {

bool needs_work(std::string_view p) {
  if (p.find('%') != std::string_view::npos) return true;
  for (size_t i = 0; i + 1 < p.size(); i++)
    if (p[i] == '/' && p[i + 1] == '.') return true;
  return false;
}

}  // namespace

PathResult normalize_path(std::string_view in, char* out, size_t cap, size_t& out_len) {
  if (!needs_work(in)) return PathResult::unchanged;
  if (in.size() > cap || in.empty() || in[0] != '/') return PathResult::bad;
  // Decode first (into out), then remove dot-segments in place: "%2e%2e" is ".." too.
  size_t n = 0;
  for (size_t i = 0; i < in.size(); i++) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return PathResult::bad;
      int hi = hex_value(static_cast<unsigned char>(in[i + 1])), lo = hex_value(static_cast<unsigned char>(in[i + 2]));
      if (hi < 0 || lo < 0) return PathResult::bad;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return PathResult::bad;
      i += 2;
    }
    out[n++] = c;
  }
  // Dot-segment removal over out[0, n), writing to out[0, w): w never passes the read point.
  size_t w = 0, r = 0;
  while (r < n) {
    // r is at a '/': look at the segment that follows it.
    size_t seg = r + 1, end = seg;
    while (end < n && out[end] != '/') end++;
    size_t len = end - seg;
    if (len == 1 && out[seg] == '.') {
      if (end == n) out[w++] = '/';  // "/a/." is "/a/"
    } else if (len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
      if (w == 0) return PathResult::bad;  // above the root
      while (w > 0 && out[w - 1] != '/') w--;  // drop the last segment...
      w--;                                     // ...and its slash
      if (end == n) out[w++] = '/';
    } else {
      std::memmove(out + w, out + r, end - r);
      w += end - r;
    }
    r = end;
  }
  if (w == 0) out[w++] = '/';
  out_len = w;
  return PathResult::normalized;
}

}  // namespace vw
