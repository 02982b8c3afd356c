// path.h: request path normalization before lookup: percent-decoding and dot-segment removal
// (RFC 3986 §2.1, §5.2.4). Pure; worker thread's scratch buffer in, bytes out.
#pragma once
#include <cstddef>
#include <string_view>

namespace vw {

enum class PathResult { unchanged, normalized, bad };

// Writes the normalized form of `in` into out[0, cap) when it differs. `bad`: a malformed or
// NUL escape, a path that climbs above the root, or one that does not fit.
PathResult normalize_path(std::string_view in, char* out, size_t cap, size_t& out_len);

}  // namespace vw
