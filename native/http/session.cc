// session.cc: request → response choice, keep-alive rules (RFC 9112 §9.3), body skipping
// (Content-Length counted down, chunked decoded), preconditions and byte ranges.
#include "http/session.h"

#include <cstring>

#include <vector>

#include "http/chunked.h"
#include "http/conditional.h"
#include "http/http.h"
#include "http/path.h"
#include "http/range.h"

namespace vw {
namespace {

constexpr char kEndKeep[] = "\r\n";
constexpr char kEndClose[] = "Connection: close\r\n\r\n";
constexpr char kEndKeepAlive[] = "Connection: keep-alive\r\n\r\n";

// The answer chosen for one request: a precomputed response, or for a byte range a slice of
// one (206) or the 416 page naming the representation's length.
struct Reply {
  const Response* r;
  RangeAnswer kind = RangeAnswer::whole;
  uint64_t first = 0, last = 0;  // partial: the slice of r->body, inclusive
  uint64_t length = 0;           // unsatisfiable: the whole representation's length
};

char* put(char* p, const char* s) {
  size_t n = std::strlen(s);
  std::memcpy(p, s, n);
  return p + n;
}
char* put_u64(char* p, uint64_t v) {
  char tmp[20];
  int n = 0;
  do tmp[n++] = static_cast<char>('0' + v % 10);
  while (v /= 10);
  while (n) *p++ = tmp[--n];
  return p;
}

// --access-log: what a response's log record says about its request.
struct LogSrc {
  const SessionState& conn;
  std::string_view head;  // the request's bytes from its request line on (cut at CR/LF later)
  const Request* req;     // null when it did not parse (no Referer, no User-Agent)
};

// Fills the worker's ring: no system call, no lock (a full ring drops and counts).
void log_one(const ServeCtx& ctx, const LogSrc& src, uint16_t status, uint64_t bytes) {
  std::string_view referer, agent;
  if (ctx.log_combined && src.req) {
    std::string_view f = src.req->fields;
    next_field_value(f, "referer", referer);
    f = src.req->fields;
    next_field_value(f, "user-agent", agent);
  }
  log_response(*ctx.log, *ctx.stats, ctx.date->now(), src.conn.peer, src.conn.peer_family,
               src.head, referer, agent, status, bytes);
}

// Appends one response; false (and nothing appended) when the batch has no room for it.
// `head` gets the Date at date_off, then `mid` (per-request header lines), then `end`.
bool append_parts(const ServeCtx& ctx, uint16_t status, std::string_view head, uint32_t date_off,
                  std::string_view mid, std::string_view body, bool with_body,
                  std::string_view end, OutBatch& out, const LogSrc& src) {
  size_t n = with_body ? body.size() : 0;
  bool copy_body = n < OutBatch::kCopyBelow;
  size_t copy = head.size() + mid.size() + end.size() + (copy_body ? n : 0);
  if (!out.fits(copy, copy_body ? 0 : 1)) return false;
  char* p = out.copy_slot(copy);
  std::memcpy(p, head.data(), head.size());
  std::memcpy(p + date_off, ctx.date->value(), kDateLen);
  p += head.size();
  if (!mid.empty()) std::memcpy(p, mid.data(), mid.size());  // (memcpy from null is UB)
  p += mid.size();
  std::memcpy(p, end.data(), end.size());
  if (copy_body) {
    std::memcpy(p + end.size(), body.data(), n);
  } else if (n) {
    out.ref(body.data(), n);  // a slice of the table's body: never copied
  }
  count_response(*ctx.stats, status);
  if (ctx.log) log_one(ctx, src, status, n);
  return true;
}

bool append(const ServeCtx& ctx, const Reply& rep, bool with_body, std::string_view end,
            OutBatch& out, const LogSrc& src) {
  const Response& r = *rep.r;
  char mid[96];
  char* p = mid;
  switch (rep.kind) {
    case RangeAnswer::whole:
      return append_parts(ctx, r.status, r.head, r.date_off, {}, r.body, with_body, end, out,
                          src);
    case RangeAnswer::partial: {  // RFC 9110 §14.4: Content-Range: bytes first-last/length
      p = put_u64(put(p, "Content-Range: bytes "), rep.first);
      p = put_u64(put(p, "-"), rep.last);
      p = put_u64(put(p, "/"), r.body.size());
      p = put_u64(put(p, "\r\nContent-Length: "), rep.last - rep.first + 1);
      p = put(p, "\r\n");
      std::string_view slice(r.body.data() + rep.first, rep.last - rep.first + 1);
      return append_parts(ctx, 206, r.partial_head, r.partial_date_off,
                          std::string_view(mid, static_cast<size_t>(p - mid)), slice, with_body,
                          end, out, src);
    }
    case RangeAnswer::unsatisfiable:  // RFC 9110 §15.5.17: Content-Range: bytes */length
      p = put_u64(put(p, "Content-Range: bytes */"), rep.length);
      p = put(p, "\r\n");
      return append_parts(ctx, r.status, r.head, r.date_off,
                          std::string_view(mid, static_cast<size_t>(p - mid)), r.body, with_body,
                          end, out, src);
  }
  return false;
}

// Preconditions (RFC 9110 §13.2.2), then Range with If-Range (steps 5-6): only for a route
// found, whose answer would otherwise be 200.
Reply conditional_reply(const ResponseTable& table, const Response& r, const Request& req,
                        int64_t now) {
  Validators v{r.etag, r.last_modified};
  if (req.conditional) {
    switch (evaluate_preconditions(req, v, now)) {
      case Precondition::proceed: break;
      case Precondition::not_modified: return {&table.not_modified(r)};
      case Precondition::failed: return {&table.error(412)};
    }
  }
  // GET is the only method with range handling (§14.2); Range given twice is not one range.
  if (req.method != Method::get || !req.range.once() || r.partial_head.empty() ||
      !if_range_holds(req, v, now))
    return {&r};
  Reply rep{&r};
  rep.kind = read_range(req.range.value, r.body.size(), rep.first, rep.last);
  if (rep.kind == RangeAnswer::unsatisfiable) {
    rep.r = &table.error(416);
    rep.length = r.body.size();
  }
  return rep;
}

Reply route(const ResponseTable& table, const Request& req, int64_t now) {
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
        case PathResult::bad: return {&table.error(400)};
      }
      const Response* r = table.find(path);
      if (!r) return {&table.error(404)};
      if (!req.conditional && !req.range.present()) return {r};  // the plain GET: nothing more
      return conditional_reply(table, *r, req, now);
    }
    case Method::known_other: return {&table.error(405)};
    case Method::unknown: break;
  }
  return {&table.error(501)};
}

std::string_view end_for(bool keep, uint8_t minor) {
  if (!keep) return std::string_view(kEndClose, sizeof(kEndClose) - 1);
  // HTTP/1.0 keeps the connection only when told so (ab -k), and is told it is kept.
  if (minor == 0) return std::string_view(kEndKeepAlive, sizeof(kEndKeepAlive) - 1);
  return std::string_view(kEndKeep, sizeof(kEndKeep) - 1);
}

}  // namespace

ServeOutcome serve_requests(const ServeCtx& ctx, SessionState& conn, const char* data,
                            size_t len, OutBatch& out) {
  ServeOutcome o;
  size_t pos = 0;
  const std::string_view close_end(kEndClose, sizeof(kEndClose) - 1);
  for (;;) {
    if (conn.chunked) {
      // A chunked body is decoded and discarded before its request is answered, so a body
      // that turns out malformed or too large gets its 400/413 as the answer, not after one.
      ChunkedBody& b = *conn.chunked;
      if (!b.finished) {
        if (pos == len) break;
        ChunkedDecoder::Result res =
            b.decoder.feed(data + pos, len - pos, ctx.limits->max_body, ctx.limits->max_header);
        pos += res.consumed;
        if (res.step == ChunkedDecoder::Step::more) break;
        b.finished = true;
        if (res.step == ChunkedDecoder::Step::error) b.error_status = res.error_status;
      }
      if (b.error_status) {
        const LogSrc src{conn, std::string_view(b.head.get(), b.head_len), nullptr};
        if (!append(ctx, {&ctx.table->error(b.error_status)}, true, close_end, out, src)) {
          o.batch_full = true;  // the decoder is done: the same error is appended next call
          break;
        }
        bump(ctx.stats->parse_errors);
        delete conn.chunked;
        conn.chunked = nullptr;
        o.close = o.linger = true;  // the rest of the body may still be arriving
        pos = len;
        break;
      }
      // The request's head was kept: parse it again (a pure function, same answer) and route
      // it against the table of now, which a reload during the body may have replaced.
      Request req;
      size_t scan = 0;
      parse_request(b.head.get(), b.head_len, ctx.limits->max_header, scan, req);
      bool keep = ctx.keepalive && !req.conn_close && (req.minor == 1 || req.conn_keepalive);
      const LogSrc src{conn, std::string_view(b.head.get(), b.head_len), &req};
      if (!append(ctx, route(*ctx.table, req, ctx.date->now()), req.method != Method::head,
                  end_for(keep, req.minor), out, src)) {
        o.batch_full = true;  // answered on the next call; the body is already consumed
        break;
      }
      delete conn.chunked;
      conn.chunked = nullptr;
      if (!keep) {
        o.close = true;
        o.linger = pos < len;
        pos = len;
        break;
      }
      continue;
    }
    if (pos >= len) break;
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
      const LogSrc src{conn, std::string_view(data + pos, len - pos), nullptr};
      if (!append(ctx, {&ctx.table->error(pr.error_status)}, true, close_end, out, src)) {
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
    if (req.transfer == TransferCoding::chunked) {
      // Keep the head (at most max_header bytes) until the body has been read: allocated for
      // a chunked request only, never on the plain path.
      conn.chunked = new ChunkedBody();
      conn.chunked->head.reset(new char[pr.consumed]);
      std::memcpy(conn.chunked->head.get(), data + pos, pr.consumed);
      conn.chunked->head_len = pr.consumed;
      conn.scan_from = 0;
      conn.header_started = false;
      pos += pr.consumed;
      continue;
    }

    // Framing problems end the connection: the next request's start is unknowable.
    Reply rep{nullptr};
    bool must_close = false;
    if (req.transfer == TransferCoding::unsupported) {
      rep.r = &ctx.table->error(501);  // a coding before chunked vw cannot decode (RFC 9112 §6.1)
      must_close = true;
    } else if (req.content_length > ctx.limits->max_body) {
      rep.r = &ctx.table->error(413);
      must_close = true;
    } else {
      rep = route(*ctx.table, req, ctx.date->now());
    }
    bool keep = ctx.keepalive && !must_close && !req.conn_close &&
                (req.minor == 1 || req.conn_keepalive);
    const LogSrc src{conn, std::string_view(data + pos, len - pos), &req};
    if (!append(ctx, rep, req.method != Method::head, end_for(keep, req.minor), out, src)) {
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
