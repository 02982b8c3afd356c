// conditional.cc: entity-tag lists and the precondition order of RFC 9110 §13.2.2. Only the
// comparison runs per request: the 304 and 412 answers themselves are precomputed.
#include "http/conditional.h"

#include "http/http_date.h"

namespace vw {
namespace {

enum class Compare : uint8_t { strong, weak };

// etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3)
constexpr bool is_etagc(unsigned char c) { return c == 0x21 || (c >= 0x23 && c != 0x7f); }

// Whether any entity-tag of one field line's list matches ours (§8.8.3.2). "*" alone matches
// any representation (and every route has one). A malformed list matches nothing.
bool list_matches(std::string_view list, std::string_view etag, Compare how) {
  if (list == "*") return true;
  bool matched = false, any = false;
  size_t i = 0;
  while (i < list.size()) {
    char c = list[i];
    if (c == ' ' || c == '\t' || c == ',') {  // OWS and empty elements (§5.6.1)
      i++;
      continue;
    }
    bool weak = false;
    if (c == 'W' && i + 1 < list.size() && list[i + 1] == '/') {
      weak = true;
      i += 2;
    }
    if (i >= list.size() || list[i] != '"') return false;
    size_t start = i++;
    while (i < list.size() && is_etagc(static_cast<unsigned char>(list[i]))) i++;
    if (i >= list.size() || list[i] != '"') return false;
    std::string_view tag = list.substr(start, ++i - start);  // with its quotes
    // Ours are strong: a strong comparison needs the other tag strong too.
    if (!etag.empty() && tag == etag && (how == Compare::weak || !weak)) matched = true;
    any = true;
    while (i < list.size() && (list[i] == ' ' || list[i] == '\t')) i++;
    if (i < list.size() && list[i] != ',') return false;
  }
  return any && matched;
}

// A list field on one or more lines: the lines together form one list (§5.3).
bool field_matches(const Field& f, const Request& req, const char* name, std::string_view etag,
                   Compare how) {
  if (f.once()) return list_matches(f.value, etag, how);
  std::string_view rest = req.fields, value;
  while (next_field_value(rest, name, value))
    if (list_matches(value, etag, how)) return true;
  return false;
}

// A date field that applies: given once, a valid HTTP-date, and a Last-Modified to compare.
bool field_date(const Field& f, const Validators& v, int64_t now, int64_t& date) {
  return f.once() && v.last_modified >= 0 && parse_http_date(f.value, now, date);
}

}  // namespace

Precondition evaluate_preconditions(const Request& req, const Validators& v, int64_t now) {
  int64_t date = 0;
  // 1. If-Match; 2. without it, If-Unmodified-Since.
  if (req.if_match.present()) {
    if (!field_matches(req.if_match, req, "if-match", v.etag, Compare::strong))
      return Precondition::failed;
  } else if (field_date(req.if_unmodified_since, v, now, date) && v.last_modified > date) {
    return Precondition::failed;
  }
  // 3. If-None-Match; 4. without it, If-Modified-Since (GET and HEAD only: the caller's case).
  if (req.if_none_match.present()) {
    if (field_matches(req.if_none_match, req, "if-none-match", v.etag, Compare::weak))
      return Precondition::not_modified;
  } else if (field_date(req.if_modified_since, v, now, date) && v.last_modified <= date) {
    return Precondition::not_modified;
  }
  return Precondition::proceed;
}

bool if_range_holds(const Request& req, const Validators& v, int64_t now) {
  if (!req.if_range.present()) return true;
  if (!req.if_range.once()) return false;
  std::string_view value = req.if_range.value;
  if (!value.empty() && value[0] == 'W') return false;  // a weak entity-tag never matches (§13.1.5)
  if (!value.empty() && value[0] == '"') {
    // Exactly one strong entity-tag, equal to ours.
    size_t i = 1;
    while (i < value.size() && is_etagc(static_cast<unsigned char>(value[i]))) i++;
    return i + 1 == value.size() && value[i] == '"' && !v.etag.empty() && value == v.etag;
  }
  int64_t date = 0;
  return v.last_modified >= 0 && parse_http_date(value, now, date) && date == v.last_modified &&
         v.last_modified < now;
}

}  // namespace vw
