// conditional.h: preconditions (RFC 9110 §13.1, evaluated in the order of §13.2.2) and If-Range
// (§13.1.5) against one representation's validators. Pure; worker thread.
#pragma once
#include <cstdint>
#include <string_view>

#include "http/http.h"

namespace vw {

// The validators of a selected representation.
struct Validators {
  std::string_view etag;       // strong entity-tag with its quotes, empty when none
  int64_t last_modified = -1;  // seconds since the epoch, -1 when none
};

enum class Precondition : uint8_t {
  proceed,       // every condition held (or none applied): answer as without them
  not_modified,  // If-None-Match matched, or not modified since If-Modified-Since: 304
  failed,        // If-Match did not match, or modified since If-Unmodified-Since: 412
};

// RFC 9110 §13.2.2 steps 1-4 for a GET or HEAD whose answer without preconditions is 200:
// If-Match (strong comparison, §8.8.3.2; "*" matches any current representation), else
// If-Unmodified-Since; then If-None-Match (weak comparison), else If-Modified-Since. A date that
// is not a valid HTTP-date, or a date field given twice, is ignored (§13.1.3, §13.1.4), as is a
// date field when the representation has no Last-Modified. `now` is the current second.
Precondition evaluate_preconditions(const Request& req, const Validators& v, int64_t now);

// RFC 9110 §13.1.5: whether a Range may be honoured given If-Range. True without If-Range.
// An entity-tag matches by strong comparison only; a date only when it equals Last-Modified
// and that is a strong validator (at least a second before `now`, §8.8.2.2). Anything else,
// or If-Range given twice, is false: the whole representation is sent.
bool if_range_holds(const Request& req, const Validators& v, int64_t now);

}  // namespace vw
