// http.h: the HTTP/1.1 request parser (RFC 9112). A pure function over borrowed bytes: it never
// does I/O, never allocates and never knows which engine feeds it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/chunked.h"

namespace vw {

enum class Method : uint8_t { get, head, known_other, unknown };

// A field the server acts on: its value (OWS trimmed) and how many field lines carried it, so
// a field that must occur once (a date) can be told from a repeated one (RFC 9110 §5.3).
struct Field {
  std::string_view value;  // the last line's value
  uint8_t lines = 0;       // saturates at 255
  bool present() const { return lines != 0; }
  bool once() const { return lines == 1; }
};

struct Request {
  Method method = Method::unknown;
  std::string_view path;  // target path, query and fragment removed; points into the input
  uint8_t minor = 1;      // HTTP/1.<minor>; 0 means HTTP/1.0 rules
  bool conn_close = false;
  bool conn_keepalive = false;
  bool has_content_length = false;
  bool has_transfer_encoding = false;
  TransferCoding transfer = TransferCoding::none;  // what the Transfer-Encoding lines add up to
  uint64_t content_length = 0;
  // Preconditions (RFC 9110 §13.1) and ranges (§14.2, §13.1.5).
  Field if_match;
  Field if_none_match;
  Field if_modified_since;
  Field if_unmodified_since;
  Field range;
  Field if_range;
  bool conditional = false;  // any of the four preconditions is present
  std::string_view fields;   // the field lines, for a list field given on several lines
};

// The value (OWS trimmed) of the next field line named `lower_name` (lower case) in `fields`
// (Request::fields), which it advances past that line; false when there is none left.
bool next_field_value(std::string_view& fields, const char* lower_name, std::string_view& value);

enum class Parse : uint8_t { done, need_more, error };

struct ParseResult {
  Parse status;
  uint32_t consumed;      // done: bytes of request line + header section (body excluded);
                          // need_more: leading empty lines the caller may drop
  uint16_t error_status;  // error: the status to answer before closing (400, 414, 431, 505, ...)
};

// Parses one request header section from buf[0, len). `scan_from` carries where the search for
// the header's end resumes after a need_more, so bytes fed one at a time cost O(n), not O(n²);
// pass 0 for a fresh request and keep the value between calls on the same bytes.
ParseResult parse_request(const char* buf, size_t len, uint32_t max_header, size_t& scan_from,
                          Request& req);

}  // namespace vw
