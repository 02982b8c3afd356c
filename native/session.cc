// session.cc: request → response choice, keep-alive rules (RFC 9112 §9.3), body skipping.
#include "session.h"

#include <cstring>

#include <vector>

#include "http.h"
#include "path.h"

namespace vw {
namespace {

constexpr char kEndKeep[] = "\r\n";
constexpr char kEndClose[] = "Connection: close\r\n\r\n";
constexpr char kEndKeepAlive[] = "Connection: keep-alive\r\n\r\n";

// Appends one response; false (and nothing appended) when the batch has no room for it.
bool append(const ServeCtx& ctx, const Response& r, bool with_body, const char* end,
            size_t end_len, OutBatch& out) {
  size_t body = with_body ? r.body.size() : 0;
  bool copy_body = body < OutBatch::kCopyBelow;
  size_t copy = r.head.size() + end_len + (copy_body ? body : 0);
  if (!out.fits(copy, copy_body ? 0 : 1)) return false;
  char* p = out.copy_slot(r.head.size() + end_len + (copy_body ? body : 0));
  std::memcpy(p, r.head.data(), r.head.size());
  std::memcpy(p + r.date_off, ctx.date->value(), kDateLen);
  p += r.head.size();
  std::memcpy(p, end, end_len);
  if (copy_body) {
    std::memcpy(p + end_len, r.body.data(), body);
  } else if (body) {
    out.ref(r.body.data(), body);
  }
  StatsSlot& s = *ctx.stats;
  bump(s.requests);
  switch (r.status / 100) {
    case 2: bump(s.resp_2xx); break;
    case 3: bump(s.resp_3xx); break;
    case 4: bump(s.resp_4xx); break;
    default: bump(s.resp_5xx); break;
  }
  return true;
}

// If-None-Match: weak comparison over a list of entity-tags, or "*" (RFC 9110 §13.1.2).
bool etag_matches(std::string_view list, std::string_view etag) {
  if (list == "*") return true;
  while (!list.empty()) {
    while (!list.empty() && (list.front() == ' ' || list.front() == '\t' || list.front() == ','))
      list.remove_prefix(1);
    if (list.size() >= 2 && list[0] == 'W' && list[1] == '/') list.remove_prefix(2);
    size_t end = list.find(',');
    std::string_view tag = list.substr(0, end);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (!tag.empty() && tag == etag) return true;
    if (end == std::string_view::npos) break;
    list.remove_prefix(end);
  }
  return false;
}

// RFC 9110 §13.2.2: If-None-Match decides when present; If-Modified-Since only without it.
bool not_modified(const Response& r, const Request& req, int64_t now) {
  if (r.not_modified < 0) return false;
  if (req.if_none_match.present())
    return !r.etag.empty() && etag_matches(req.if_none_match.value, r.etag);
  // RFC 9110 §13.1.3: an invalid date, or more than one, is ignored.
  if (!req.if_modified_since.once() || r.last_modified < 0) return false;
  int64_t since = 0;
  return parse_http_date(req.if_modified_since.value, now, since) && r.last_modified <= since;
}

const Response& route(const ResponseTable& table, const Request& req, int64_t now) {
  switch (req.method) {
    case Method::get:
    case Method::head: {
      std::string_view path = req.path;
      // Percent-escapes and dot-segments are resolved before lookup; the scratch buffer grows
      // once per worker to the longest path that needed it, never per request.
      thread_local std::vector<char> scratch;
      if (scratch.size() < path.size()) scratch.resize(path.size());
      size_t n = 0;
      switch (normalize_path(path, scratch.data(), scratch.size(), n)) {
        case PathResult::unchanged: break;
        case PathResult::normalized: path = std::string_view(scratch.data(), n); break;
        case PathResult::bad: return table.error(400);
      }
      const Response* r = table.find(path);
      if (!r) return table.error(404);
      return not_modified(*r, req, now) ? table.not_modified(*r) : *r;
    }
    case Method::known_other: return table.error(405);
    case Method::unknown: break;
  }
  return table.error(501);
}

}  // namespace

ServeOutcome serve_requests(const ServeCtx& ctx, Conn& conn, const char* data, size_t len,
                            OutBatch& out) {
  ServeOutcome o;
  size_t pos = 0;
  while (pos < len) {
    if (conn.body_left) {  // a body is skipped, never parsed as the next request
      size_t skip = len - pos < conn.body_left ? len - pos : static_cast<size_t>(conn.body_left);
      pos += skip;
      conn.body_left -= skip;
      continue;
    }
    Request req;
    size_t scan = conn.scan_from;
    ParseResult pr = parse_request(data + pos, len - pos, ctx.limits->max_header, scan, req);
    if (pr.status == Parse::need_more) {
      pos += pr.consumed;  // blank lines before a request line
      conn.scan_from = static_cast<uint32_t>(scan > pr.consumed ? scan - pr.consumed : 0);
      conn.header_started = pos < len;
      break;
    }
    if (pr.status == Parse::error) {
      if (!append(ctx, ctx.table->error(pr.error_status), true, kEndClose, sizeof(kEndClose) - 1,
                  out)) {
        o.batch_full = true;
        break;
      }
      bump(ctx.stats->parse_errors);
      conn.scan_from = 0;
      conn.header_started = false;
      o.close = o.linger = true;
      pos = len;  // nothing after a malformed request can be trusted
      break;
    }

    // Framing problems end the connection: the next request's start is unknowable.
    const Response* r;
    bool must_close = false;
    if (req.has_transfer_encoding) {
      r = &ctx.table->error(501);
      must_close = true;
    } else if (req.content_length > ctx.limits->max_body) {
      r = &ctx.table->error(413);
      must_close = true;
    } else {
      r = &route(*ctx.table, req, ctx.date->now());
    }
    bool keep = ctx.keepalive && !must_close && !req.conn_close &&
                (req.minor == 1 || req.conn_keepalive);
    const char* end = kEndKeep;
    size_t end_len = sizeof(kEndKeep) - 1;
    if (!keep) {
      end = kEndClose;
      end_len = sizeof(kEndClose) - 1;
    } else if (req.minor == 0) {
      end = kEndKeepAlive;  // HTTP/1.0 keeps the connection only when told so (ab -k)
      end_len = sizeof(kEndKeepAlive) - 1;
    }
    if (!append(ctx, *r, req.method != Method::head, end, end_len, out)) {
      o.batch_full = true;  // this request is answered on the next call
      break;
    }
    if (must_close) bump(ctx.stats->parse_errors);
    conn.scan_from = 0;
    conn.header_started = false;
    pos += pr.consumed;
    if (!must_close) conn.body_left = req.content_length;
    if (!keep) {
      o.close = true;
      // Unread bytes (a body, pipelined requests) would turn close() into a reset that can
      // destroy the response before the client reads it: drain them instead.
      o.linger = must_close || pos < len || conn.body_left > 0;
      pos = len;
      break;
    }
  }
  o.consumed = pos;
  return o;
}

}  // namespace vw
