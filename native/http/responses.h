// responses.h: the response table (precomputed bytes per path and per error status) and the
// per-worker Date cache. The table is immutable once built; workers only read it.
#pragma once
#include <atomic>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_date.h"

namespace vw {

// One precomputed response. `head` holds the status line and every header but Connection, and
// no final CRLF: the writer appends the Connection line the request needs, then the blank line.
struct Response {
  uint16_t status = 200;
  uint32_t date_off = 0;  // where the 29-byte IMF-fixdate goes inside head
  std::string head;
  std::string body;
  // Validators, and the precomputed 304 answered when a conditional request matches them.
  std::string etag;             // e.g. "\"3q2-7w\"", empty when none
  int64_t last_modified = -1;   // seconds since the epoch, -1 when none
  int32_t not_modified = -1;    // index of the 304 variant in the table (every route has one)
  // The 206 head for a byte range of `body` (RFC 9110 §15.3.7): the 200's head under a 206
  // status line, without Content-Length; the writer adds Content-Range and Content-Length.
  std::string partial_head;
  uint32_t partial_date_off = 0;
};

// What content.ts hands over for one entry: the table builds the head from it.
struct ResponseSpec {
  std::string path;     // "" for an error page
  uint16_t status = 200;
  std::string headers;  // extra header lines, each ending in CRLF (Content-Type, Allow, ...)
  std::string body;
  std::string etag;                  // strong validator with its quotes, or ""
  int64_t last_modified = -1;        // seconds, or -1
  std::string not_modified_headers;  // header lines of the 304 (ETag, Last-Modified, ...)
};

class ResponseTable {
 public:
  // Returns "" or why the specs cannot make a table (duplicate path, missing error page).
  std::string build(const std::vector<ResponseSpec>& routes, const std::vector<ResponseSpec>& errors);

  const Response* find(std::string_view path) const;
  const Response& not_modified(const Response& r) const { return _not_modified[static_cast<size_t>(r.not_modified)]; }
  // Error statuses the parser or the router may answer with (400, 404, 405, 412, 413, 414, 416,
  // 431, 501, 505); always present after build().
  const Response& error(uint16_t status) const;

  // Output a socket has not taken yet may point into this table's bodies: while any does, a
  // reload must not free it. Only partial writes pin, so the hot path never touches this.
  void pin() const { _pins.fetch_add(1, std::memory_order_relaxed); }
  void unpin() const { _pins.fetch_sub(1, std::memory_order_release); }
  bool pinned() const { return _pins.load(std::memory_order_acquire) != 0; }

 private:
  std::vector<Response> _routes;
  std::vector<std::string> _paths;  // parallel to _routes
  std::vector<uint32_t> _slots;  // open addressing: index+1 into _routes, 0 = empty
  uint64_t _mask = 0;
  std::vector<Response> _errors;  // indexed by error_index()
  std::vector<Response> _not_modified;
  mutable std::atomic<int> _pins{0};
};

// Per worker: the Date header value, reformatted only when the second changes. Reads the
// coarse realtime clock through the vDSO, so keeping it fresh costs no system call.
class DateCache {
 public:
  // Call once per loop iteration.
  void refresh();
  const char* value() const { return _buf; }
  // The second value() shows, since the epoch (for comparing request dates with "now").
  int64_t now() const { return _sec; }

 private:
  int64_t _sec = -1;
  char _buf[kDateLen + 1] = {};
};

const char* reason_phrase(uint16_t status);

}  // namespace vw
