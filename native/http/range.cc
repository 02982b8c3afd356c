// range.cc: byte ranges. One range is served as a slice of the stored body; several ranges would
// need a multipart body built per request, so they get the whole representation instead.
#include "http/range.h"

#include <limits>

namespace vw {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// 1*DIGIT from v[i]; saturates at kMax (a position past any body). False when there is none.
bool digits(std::string_view v, size_t& i, uint64_t& out) {
  size_t start = i;
  uint64_t n = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; i++) {
    uint64_t d = static_cast<uint64_t>(v[i] - '0');
    n = n > (kMax - d) / 10 ? kMax : n * 10 + d;
  }
  out = n;
  return i > start;
}

bool unit_is_bytes(std::string_view u) {
  if (u.size() != 5) return false;
  static const char kBytes[] = "bytes";
  for (size_t i = 0; i < 5; i++)
    if ((u[i] | 0x20) != kBytes[i]) return false;
  return true;
}

}  // namespace

RangeAnswer read_range(std::string_view v, uint64_t length, uint64_t& first, uint64_t& last) {
  size_t eq = v.find('=');
  if (eq == std::string_view::npos || !unit_is_bytes(v.substr(0, eq))) return RangeAnswer::whole;
  // range-set = 1#range-spec: OWS and empty elements between commas (RFC 9110 §5.6.1).
  size_t i = eq + 1;
  int ranges = 0;
  bool suffix = false;
  uint64_t a = 0, b = kMax;
  while (i < v.size()) {
    if (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
      i++;
      continue;
    }
    bool is_suffix = v[i] == '-';
    uint64_t x = 0, y = kMax;
    if (is_suffix) {
      i++;
      if (!digits(v, i, x)) return RangeAnswer::whole;  // suffix-range = "-" suffix-length
    } else {
      if (!digits(v, i, x) || i >= v.size() || v[i] != '-') return RangeAnswer::whole;
      i++;
      if (i < v.size() && v[i] >= '0' && v[i] <= '9') {
        digits(v, i, y);
        if (y < x) return RangeAnswer::whole;  // invalid int-range (§14.1.1)
      }
    }
    size_t j = i;
    while (j < v.size() && (v[j] == ' ' || v[j] == '\t')) j++;
    if (j < v.size() && v[j] != ',') return RangeAnswer::whole;
    i = j;
    if (++ranges == 1) {
      suffix = is_suffix;
      a = x;
      b = y;
    }
  }
  if (ranges != 1) return RangeAnswer::whole;
  if (suffix) {
    if (length == 0) return a == 0 ? RangeAnswer::unsatisfiable : RangeAnswer::whole;
    if (a == 0) return RangeAnswer::unsatisfiable;  // a zero suffix-length selects nothing
    first = a >= length ? 0 : length - a;
    last = length - 1;
    return RangeAnswer::partial;
  }
  if (a >= length) return RangeAnswer::unsatisfiable;
  first = a;
  last = b >= length ? length - 1 : b;
  return RangeAnswer::partial;
}

}  // namespace vw
