// responses.cc: building the response table and keeping the Date header fresh.
#include "http/responses.h"

#include <time.h>

#include <cstdio>
#include <cstring>

namespace vw {
namespace {

// The statuses vw can produce without a route: what the parser and the router answer.
constexpr uint16_t kErrorStatuses[] = {400, 404, 405, 412, 413, 414, 416, 431, 501, 505};
constexpr size_t kErrorCount = sizeof(kErrorStatuses) / sizeof(kErrorStatuses[0]);

size_t error_index(uint16_t status) {
  for (size_t i = 0; i < kErrorCount; i++)
    if (kErrorStatuses[i] == status) return i;
  return 0;  // 400: the catch-all for a malformed request
}

uint64_t hash_path(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Status line, Server, a Date placeholder (its offset in date_off) and `headers`.
std::string make_head(uint16_t status, const std::string& headers, uint32_t& date_off) {
  char line[64];
  std::snprintf(line, sizeof(line), "HTTP/1.1 %u %s\r\n", status, reason_phrase(status));
  std::string head = line;
  head += "Server: vw\r\nDate: ";
  date_off = static_cast<uint32_t>(head.size());
  head.append(kDateLen, ' ');
  head += "\r\n";
  head += headers;
  return head;
}

Response make_response(const ResponseSpec& spec) {
  Response r;
  r.status = spec.status;
  char line[64];
  r.head = make_head(spec.status, spec.headers, r.date_off);
  // A 304 carries no Content-Length: one would have to be the 200's length (RFC 9110 §8.6).
  if (spec.status != 304 && spec.status != 204) {
    std::snprintf(line, sizeof(line), "Content-Length: %zu\r\n", spec.body.size());
    r.head += line;
  }
  r.body = spec.body;
  return r;
}

}  // namespace

const char* reason_phrase(uint16_t status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
  }
  return "Unknown";
}

std::string ResponseTable::build(const std::vector<ResponseSpec>& routes,
                                 const std::vector<ResponseSpec>& errors) {
  _routes.clear();
  _paths.clear();
  _not_modified.clear();
  _routes.reserve(routes.size());
  uint64_t cap = 16;
  while (cap < routes.size() * 2) cap <<= 1;
  _slots.assign(cap, 0);
  _mask = cap - 1;
  for (const ResponseSpec& spec : routes) {
    if (spec.path.empty() || spec.path[0] != '/') return "route path must start with '/': " + spec.path;
    if (find(spec.path)) return "duplicate route: " + spec.path;
    _routes.push_back(make_response(spec));
    Response& r = _routes.back();
    r.etag = spec.etag;
    r.last_modified = spec.last_modified;
    // Every route can be answered 304 (If-None-Match: * needs no validator) and 206.
    ResponseSpec nm;
    nm.status = 304;
    nm.headers = spec.not_modified_headers;
    r.not_modified = static_cast<int32_t>(_not_modified.size());
    _not_modified.push_back(make_response(nm));
    if (spec.status == 200) r.partial_head = make_head(206, spec.headers, r.partial_date_off);
    uint64_t i = hash_path(spec.path) & _mask;
    while (_slots[i]) i = (i + 1) & _mask;
    _slots[i] = static_cast<uint32_t>(_routes.size());
    _paths.push_back(spec.path);
  }
  _errors.assign(kErrorCount, Response{});
  bool have[kErrorCount] = {};
  for (const ResponseSpec& spec : errors) {
    size_t i = error_index(spec.status);
    if (kErrorStatuses[i] != spec.status) continue;  // not a status vw produces itself
    _errors[i] = make_response(spec);
    have[i] = true;
  }
  for (size_t i = 0; i < kErrorCount; i++)
    if (!have[i]) return "missing error page for status " + std::to_string(kErrorStatuses[i]);
  return "";
}

const Response* ResponseTable::find(std::string_view path) const {
  if (_routes.empty()) return nullptr;
  for (uint64_t i = hash_path(path) & _mask; _slots[i]; i = (i + 1) & _mask) {
    uint32_t idx = _slots[i] - 1;
    if (_paths[idx] == path) return &_routes[idx];
  }
  return nullptr;
}

const Response& ResponseTable::error(uint16_t status) const { return _errors[error_index(status)]; }

void DateCache::refresh() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec == _sec) return;
  _sec = ts.tv_sec;
  // Calendar arithmetic, not gmtime_r: glibc takes its time zone lock there.
  format_imf_fixdate(_sec, _buf);
  _buf[kDateLen] = '\0';
}

}  // namespace vw
