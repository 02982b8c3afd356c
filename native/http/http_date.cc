// http_date.cc: HTTP-date parsing and formatting over the proleptic Gregorian calendar
// (days_from_civil / civil_from_days, Howard Hinnant's algorithms), UTC only.
#include "http/http_date.h"

#include <cstring>

namespace vw {
namespace {

const char kShortDays[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // from 1970-01-01
const char* const kLongDays[7] = {"Thursday", "Friday", "Saturday", "Sunday",
                                  "Monday", "Tuesday", "Wednesday"};
const char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = floor_div(y, 400);
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int64_t& y, int64_t& m, int64_t& d) {
  z += 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = yoe + era * 400 + (m <= 2);
}

int weekday(int64_t days) { return static_cast<int>(((days % 7) + 7) % 7); }  // 0 = Thursday

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int64_t month_days(int64_t y, int64_t m) {
  static const int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

// Fixed-width decimal digits at s[at, at+len); -1 when any is not a digit.
int64_t digits(std::string_view s, size_t at, size_t len) {
  if (at + len > s.size()) return -1;
  int64_t v = 0;
  for (size_t i = at; i < at + len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

int64_t month_of(std::string_view s, size_t at) {
  if (at + 3 > s.size()) return 0;
  for (int i = 0; i < 12; i++)
    if (std::memcmp(kMonths[i], s.data() + at, 3) == 0) return i + 1;
  return 0;
}

// time-of-day = hour ":" minute ":" second, "00:00:00" to "23:59:60" (leap second).
bool time_of_day(std::string_view s, size_t at, int64_t& secs) {
  if (at + 8 > s.size() || s[at + 2] != ':' || s[at + 5] != ':') return false;
  int64_t h = digits(s, at, 2), m = digits(s, at + 3, 2), sec = digits(s, at + 6, 2);
  if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60) return false;
  secs = h * 3600 + m * 60 + sec;
  return true;
}

// The date is real (the month has that day) and `day_name` is its weekday; then its seconds.
bool finish(int64_t y, int64_t m, int64_t d, int64_t secs, int day_name, int64_t& out) {
  if (m < 1 || d < 1 || d > month_days(y, m)) return false;
  int64_t days = days_from_civil(y, m, d);
  if (weekday(days) != day_name) return false;
  out = days * 86400 + secs;
  return true;
}

int short_day(std::string_view s) {
  if (s.size() < 3) return -1;
  for (int i = 0; i < 7; i++)
    if (std::memcmp(kShortDays[i], s.data(), 3) == 0) return i;
  return -1;
}

// IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT; date1 = day SP month SP year
bool imf_fixdate(std::string_view s, int64_t& out) {
  int wd = short_day(s);
  if (s.size() != kDateLen || wd < 0 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' ||
      s[16] != ' ' || s.substr(25) != " GMT")
    return false;
  int64_t day = digits(s, 5, 2), month = month_of(s, 8), year = digits(s, 12, 4), secs = 0;
  if (day < 0 || year < 0 || !time_of_day(s, 17, secs)) return false;
  return finish(year, month, day, secs, wd, out);
}

// asctime-date = day-name SP date3 SP time-of-day SP year; date3 = month SP ( 2DIGIT / ( SP DIGIT ))
bool asctime_date(std::string_view s, int64_t& out) {
  int wd = short_day(s);
  if (s.size() != 24 || wd < 0 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
    return false;
  int64_t day = s[8] == ' ' ? digits(s, 9, 1) : digits(s, 8, 2);
  int64_t month = month_of(s, 4), year = digits(s, 20, 4), secs = 0;
  if (day < 0 || year < 0 || !time_of_day(s, 11, secs)) return false;
  return finish(year, month, day, secs, wd, out);
}

// rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT; date2 = day "-" month "-" 2DIGIT
bool rfc850_date(std::string_view s, int64_t now, int64_t& out) {
  size_t comma = s.find(',');
  if (comma == std::string_view::npos) return false;
  int wd = -1;
  for (int i = 0; i < 7; i++)
    if (s.substr(0, comma) == kLongDays[i]) wd = i;
  std::string_view r = s.substr(comma + 1);  // " 06-Nov-94 08:49:37 GMT"
  if (wd < 0 || r.size() != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' ||
      r.substr(19) != " GMT")
    return false;
  int64_t day = digits(r, 1, 2), month = month_of(r, 4), yy = digits(r, 8, 2), secs = 0;
  if (day < 0 || yy < 0 || !time_of_day(r, 11, secs)) return false;
  // RFC 9110 §5.6.7: a year more than 50 years in the future is the latest past year with
  // those two digits. Start from this century and step back once if it lands too far ahead.
  int64_t ny, nm, nd;
  int64_t now_days = floor_div(now, 86400);
  civil_from_days(now_days, ny, nm, nd);
  int64_t year = ny - ny % 100 + yy;
  int64_t cutoff = days_from_civil(ny + 50, nm, nd) * 86400 + (now - now_days * 86400);
  if (month >= 1 && days_from_civil(year, month, day) * 86400 + secs > cutoff)
    year -= 100;
  return finish(year, month, day, secs, wd, out);
}

}  // namespace

bool parse_http_date(std::string_view s, int64_t now, int64_t& out) {
  if (s.size() == kDateLen && s.size() > 3 && s[3] == ',') return imf_fixdate(s, out);
  if (s.size() == 24 && s[3] == ' ') return asctime_date(s, out);
  return rfc850_date(s, now, out);
}

void format_imf_fixdate(int64_t sec, char* p) {
  int64_t days = floor_div(sec, 86400), rem = sec - days * 86400;
  int64_t y, m, d;
  civil_from_days(days, y, m, d);
  auto two = [](char* q, int64_t v) {
    q[0] = static_cast<char>('0' + v / 10);
    q[1] = static_cast<char>('0' + v % 10);
  };
  std::memcpy(p, kShortDays[weekday(days)], 3);
  std::memcpy(p + 3, ", ", 2);
  two(p + 5, d);
  p[7] = ' ';
  std::memcpy(p + 8, kMonths[m - 1], 3);
  p[11] = ' ';
  two(p + 12, y / 100 % 100);
  two(p + 14, y % 100);
  p[16] = ' ';
  two(p + 17, rem / 3600);
  p[19] = ':';
  two(p + 20, rem / 60 % 60);
  p[22] = ':';
  two(p + 23, rem % 60);
  std::memcpy(p + 25, " GMT", 4);
}

}  // namespace vw
