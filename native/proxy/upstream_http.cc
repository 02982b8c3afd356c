// upstream_http.cc: response-head parsing, body framing and hop-by-hop filtering for the relay.
#include "proxy/upstream_http.h"

#include <cstring>

namespace vw {
namespace {

bool tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Calls f(token) for each element of a comma-separated list (empty elements skipped).
template <class F>
void each_token(std::string_view list, F&& f) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view t = trim(list.substr(0, comma));
    if (!t.empty()) f(t);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// A field line "name: value" split; false when it is not one.
bool split_field(std::string_view line, std::string_view& name, std::string_view& value) {
  size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  name = line.substr(0, colon);
  for (char c : name)
    if (!tchar(static_cast<unsigned char>(c))) return false;
  value = trim(line.substr(colon + 1));
  return true;
}

}  // namespace

HeadParse parse_upstream_head(const char* p, size_t n, size_t max_head, UpstreamHead& h) {
  std::string_view all(p, n);
  size_t end = all.find("\r\n\r\n");
  if (end == std::string_view::npos) return n > max_head ? HeadParse::error : HeadParse::need_more;
  if (end + 4 > max_head) return HeadParse::error;
  h = UpstreamHead{};
  h.len = static_cast<uint32_t>(end + 4);
  std::string_view head = all.substr(0, end + 2);  // every line with its CRLF
  size_t eol = head.find("\r\n");
  std::string_view status = head.substr(0, eol);
  // status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]  (RFC 9112 §4)
  if (status.size() < 12 || status.compare(0, 7, "HTTP/1.") != 0 || status[7] < '0' ||
      status[7] > '9' || status[8] != ' ')
    return HeadParse::error;
  h.minor = static_cast<uint8_t>(status[7] - '0');
  for (int i = 9; i < 12; i++)
    if (status[static_cast<size_t>(i)] < '0' || status[static_cast<size_t>(i)] > '9')
      return HeadParse::error;
  if (status.size() > 12 && status[12] != ' ') return HeadParse::error;
  h.status = static_cast<uint16_t>((status[9] - '0') * 100 + (status[10] - '0') * 10 + (status[11] - '0'));
  if (h.status < 100) return HeadParse::error;
  head.remove_prefix(eol + 2);
  uint8_t te_state = 0;
  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    std::string_view name, value;
    if (!split_field(line, name, value)) return HeadParse::error;  // obs-fold included
    if (iequals(name, "content-length")) {
      if (value.empty() || value.size() > 19) return HeadParse::error;
      uint64_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return HeadParse::error;
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      if (h.has_length && v != h.length) return HeadParse::error;
      h.has_length = true;
      h.length = v;
    } else if (iequals(name, "transfer-encoding")) {
      read_transfer_encoding(value, te_state);
    } else if (iequals(name, "connection")) {
      each_token(value, [&](std::string_view t) {
        if (iequals(t, "close")) h.conn_close = true;
        if (iequals(t, "keep-alive")) h.conn_keepalive = true;
      });
    }
  }
  if (te_state) {
    // A response whose codings do not end in chunked is read until the connection closes
    // (RFC 9112 §6.3, rule 4); Transfer-Encoding overrides Content-Length (rule 3).
    h.chunked = transfer_coding(te_state) == TransferCoding::chunked;
    h.other_coding = !h.chunked;
  }
  return HeadParse::done;
}

BodyKind body_kind(const UpstreamHead& h, bool head_request) {
  if (head_request || h.status < 200 || h.status == 204 || h.status == 304) return BodyKind::none;
  if (h.chunked) return BodyKind::chunked;
  if (h.other_coding) return BodyKind::close;
  if (h.has_length) return h.length ? BodyKind::length : BodyKind::none;
  return BodyKind::close;
}

void BodyFramer::start(BodyKind kind, uint64_t length) {
  _kind = kind;
  _left = length;
  _chunked = ChunkedDecoder();
  _done = kind == BodyKind::none;
}

BodyFramer::Step BodyFramer::feed(const char* p, size_t n) {
  switch (_kind) {
    case BodyKind::none:
      return {0, true, false};
    case BodyKind::length: {
      size_t k = n < _left ? n : static_cast<size_t>(_left);
      _left -= k;
      _done = _left == 0;
      return {k, _done, false};
    }
    case BodyKind::chunked: {
      // No size bound on the data (the relay streams it); trailers bounded at 64 KiB.
      ChunkedDecoder::Result r = _chunked.feed(p, n, UINT64_MAX, 64 * 1024);
      if (r.step == ChunkedDecoder::Step::error) return {r.consumed, false, true};
      _done = r.step == ChunkedDecoder::Step::done;
      return {r.consumed, _done, false};
    }
    case BodyKind::close:
      return {n, false, false};
  }
  return {0, false, true};
}

void copy_end_to_end(std::string_view head, std::string_view add, std::string& out) {
  while (!head.empty() && (head.front() == '\r' || head.front() == '\n')) head.remove_prefix(1);
  // The fields Connection names are hop-by-hop too: collect them first (a few at most).
  constexpr int kMaxNamed = 16;
  std::string_view named[kMaxNamed];
  int n_named = 0;
  size_t eol = head.find("\r\n");
  std::string_view first = head.substr(0, eol == std::string_view::npos ? head.size() : eol);
  std::string_view fields = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  for (std::string_view rest = fields; !rest.empty();) {
    size_t e = rest.find("\r\n");
    std::string_view line = rest.substr(0, e);
    rest.remove_prefix(e == std::string_view::npos ? rest.size() : e + 2);
    std::string_view name, value;
    if (split_field(line, name, value) && iequals(name, "connection"))
      each_token(value, [&](std::string_view t) {
        // The message's framing and its Host are never dropped, whatever Connection names:
        // a body forwarded without its framing would be the next request (smuggling).
        if (iequals(t, "content-length") || iequals(t, "transfer-encoding") || iequals(t, "host"))
          return;
        if (n_named < kMaxNamed) named[n_named++] = t;
      });
  }
  out.reserve(out.size() + head.size() + add.size() + 2);
  constexpr std::string_view kVersion = "HTTP/1.1";
  if (first.substr(0, 5) == "HTTP/" && first.size() >= 8) {  // a status line: version first
    out.append(kVersion);
    out.append(first.substr(8));
  } else if (first.size() >= 8 && first.substr(first.size() - 8, 5) == "HTTP/") {  // a request line
    out.append(first.substr(0, first.size() - 8));
    out.append(kVersion);
  } else {
    out.append(first);
  }
  out.append("\r\n");
  for (std::string_view rest = fields; !rest.empty();) {
    size_t e = rest.find("\r\n");
    std::string_view line = rest.substr(0, e);
    rest.remove_prefix(e == std::string_view::npos ? rest.size() : e + 2);
    if (line.empty()) break;  // the end of the head
    std::string_view name, value;
    if (split_field(line, name, value)) {
      bool hop = iequals(name, "connection") || iequals(name, "keep-alive") ||
                 iequals(name, "proxy-connection");
      for (int i = 0; i < n_named && !hop; i++) hop = iequals(name, named[i]);
      if (hop) continue;
    }
    out.append(line);
    out.append("\r\n");
  }
  out.append(add);
  out.append("\r\n");
}

}  // namespace vw
