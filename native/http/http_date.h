// http_date.h: HTTP-date (RFC 9110 §5.6.7) in all three forms, parsed and formatted with
// calendar arithmetic only: no libc time zone state, no lock, no system call (worker thread).
#pragma once
#include <cstdint>
#include <string_view>

namespace vw {

constexpr size_t kDateLen = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

// Parses an HTTP-date: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete RFC 850 form
// ("Sunday, 06-Nov-94 08:49:37 GMT") or asctime ("Sun Nov  6 08:49:37 1994"). `now` is the
// current time in seconds since the epoch: an RFC 850 two-digit year that would lie more than 50
// years after it is the latest earlier year with those digits (RFC 9110 §5.6.7). On success sets
// `out` to seconds since the epoch (negative before 1970) and returns true. False, leaving `out`
// alone, for anything else: a wrong length or separator, an unknown or wrongly cased name, a
// day the month does not have, a time out of range (second 60 is allowed: a leap second), or a
// day name that is not that date's weekday (RFC 5322 §3.3, which IMF-fixdate is a profile of).
bool parse_http_date(std::string_view s, int64_t now, int64_t& out);

// Writes `sec` (seconds since the epoch) as an IMF-fixdate: exactly kDateLen bytes, no NUL.
void format_imf_fixdate(int64_t sec, char* out);

}  // namespace vw
