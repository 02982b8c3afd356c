// range.h: the Range field of a GET (RFC 9110 §14.1, §14.2) against a representation of known
// length. Pure; worker thread.
#pragma once
#include <cstdint>
#include <string_view>

namespace vw {

enum class RangeAnswer : uint8_t {
  whole,          // no usable Range: 200 with the whole representation
  partial,        // one satisfiable byte range: 206 with [first, last]
  unsatisfiable,  // one byte range that selects nothing: 416
};

// Reads a Range value ("bytes=0-499", "bytes=500-", "bytes=-500"; the unit is case-insensitive)
// for a representation of `length` bytes. A range-set with more than one range is answered whole
// (§14.2 allows ignoring Range), as is anything not a valid bytes ranges-specifier (an unknown
// unit, last-pos below first-pos, stray whitespace), and a suffix range of a zero-length
// representation. On `partial`, first and last (inclusive, last < length) are set; last-pos past
// the end is clamped (§14.1.2).
RangeAnswer read_range(std::string_view value, uint64_t length, uint64_t& first, uint64_t& last);

}  // namespace vw
