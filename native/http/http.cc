// http.cc: strict RFC 9112 request parsing. Anything ambiguous is an error, never a guess: a
// lenient parser in front of a strict one is how requests get smuggled.
#include "http/http.h"

#include <cstring>

#include "http/grammar.h"
#include "http/host.h"

namespace vw {
namespace {

// request-target bytes: visible ASCII and obs-text; no controls, no spaces
constexpr bool is_target_char(unsigned char c) { return c > 0x20 && c != 0x7f; }
// field-value bytes: visible, SP, HTAB, obs-text; no other controls (NUL, bare CR, ...)
constexpr bool is_value_char(unsigned char c) { return c >= 0x20 ? c != 0x7f : c == '\t'; }

bool ieq(std::string_view a, const char* lower) {
  size_t n = std::strlen(lower);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = static_cast<unsigned char>(a[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
    if (c != static_cast<unsigned char>(lower[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

Method classify_method(std::string_view m) {
  if (m == "GET") return Method::get;
  if (m == "HEAD") return Method::head;
  static const char* const known[] = {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                                      "PATCH"};
  for (const char* k : known)
    if (m == k) return Method::known_other;
  return Method::unknown;
}

// Splits the next line off [p, end): returns its content without the terminator, or false on a
// bare CR (a CR not followed by LF is never a line end, and never data either).
bool next_line(const char*& p, const char* end, std::string_view& line) {
  const char* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
  if (!lf) return false;  // cannot happen inside a header section already found complete
  const char* stop = lf;
  if (stop > p && stop[-1] == '\r') stop--;
  line = std::string_view(p, static_cast<size_t>(stop - p));
  p = lf + 1;
  return std::memchr(line.data(), '\r', line.size()) == nullptr;
}

// Connection: a comma-separated list of tokens (RFC 9110 §7.6.1).
void read_connection(std::string_view v, Request& req) {
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view opt = trim_ows(v.substr(0, comma));
    if (ieq(opt, "close")) req.conn_close = true;
    else if (ieq(opt, "keep-alive")) req.conn_keepalive = true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

bool read_content_length(std::string_view v, uint64_t& out) {
  if (v.empty() || v.size() > 18) return false;  // 18 digits cannot overflow uint64
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;  // also refuses "5, 5" and signs
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out = n;
  return true;
}

// origin-form "/p?q", absolute-form "http://host/p?q", asterisk-form "*".
bool read_target(std::string_view t, std::string_view& path) {
  if (t.empty()) return false;
  for (char c : t)
    if (!is_target_char(static_cast<unsigned char>(c))) return false;
  if (t[0] != '/') {
    if (t == "*") {
      path = t;
      return true;
    }
    size_t scheme = t.find("://");
    if (scheme == std::string_view::npos ||
        !(ieq(t.substr(0, scheme), "http") || ieq(t.substr(0, scheme), "https")))
      return false;
    t.remove_prefix(scheme + 3);
    size_t slash = t.find_first_of("/?#");
    // The authority is the target's host (RFC 9112 §3.2.2): the same grammar as Host, and an
    // http URI's host is never empty (RFC 9110 §4.2.1), nor has a userinfo (§4.2.4).
    if (!valid_authority(t.substr(0, slash))) return false;
    if (slash == std::string_view::npos || t[slash] != '/') {
      path = "/";
      return true;
    }
    t.remove_prefix(slash);
  }
  path = t.substr(0, t.find_first_of("?#"));
  return true;
}

void note(Field& f, std::string_view value) {
  f.value = value;
  if (f.lines < 255) f.lines++;
}

constexpr ParseResult error(uint16_t status) { return {Parse::error, 0, status}; }

}  // namespace

bool next_field_value(std::string_view& fields, const char* lower_name, std::string_view& value) {
  while (!fields.empty()) {
    size_t lf = fields.find('\n');
    std::string_view line = fields.substr(0, lf);
    fields.remove_prefix(lf == std::string_view::npos ? fields.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !ieq(line.substr(0, colon), lower_name)) continue;
    value = trim_ows(line.substr(colon + 1));
    return true;
  }
  return false;
}

ParseResult parse_request(const char* buf, size_t len, uint32_t max_header, size_t& scan_from,
                          Request& req) {
  // RFC 9112 §2.2: ignore empty lines before the request line.
  size_t lead = 0;
  while (lead < len && (buf[lead] == '\r' || buf[lead] == '\n')) {
    if (buf[lead] == '\r' && (lead + 1 >= len || buf[lead + 1] != '\n')) {
      if (lead + 1 >= len) return {Parse::need_more, 0, 0};
      return error(400);
    }
    lead += buf[lead] == '\r' ? 2 : 1;
  }
  if (lead == len) return {Parse::need_more, static_cast<uint32_t>(lead), 0};

  // Find the end of the header section: an LF, an optional CR, and an LF.
  size_t i = scan_from > lead ? scan_from : lead;
  size_t end = 0;
  size_t limit = len;
  while (i < limit) {
    const void* lf = std::memchr(buf + i, '\n', limit - i);
    if (!lf) {
      i = limit;
      break;
    }
    size_t at = static_cast<size_t>(static_cast<const char*>(lf) - buf);
    if (at + 1 < len && buf[at + 1] == '\n') {
      end = at + 2;
      break;
    }
    if (at + 2 < len && buf[at + 1] == '\r' && buf[at + 2] == '\n') {
      end = at + 3;
      break;
    }
    if (at + 2 >= len) {  // the blank line may still be arriving: rescan from this LF
      i = at;
      break;
    }
    i = at + 1;
  }
  if (end == 0) {
    scan_from = i;
    if (len - lead >= max_header) {
      // Look only within the limit, as below: the answer must not depend on how the bytes
      // arrived (found by fuzz/regressions/long-request-line-414-or-431).
      bool line_done = std::memchr(buf + lead, '\n', max_header) != nullptr;
      return error(line_done ? 431 : 414);
    }
    return {Parse::need_more, 0, 0};
  }
  if (end - lead > max_header) {
    bool line_done = std::memchr(buf + lead, '\n', max_header) != nullptr;
    return error(line_done ? 431 : 414);
  }

  const char* p = buf + lead;
  const char* stop = buf + end;
  std::string_view line;
  if (!next_line(p, stop, line)) return error(400);

  // request-line = method SP request-target SP HTTP-version: exactly single spaces.
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return error(400);
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return error(400);
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  for (char c : method)
    if (!is_tchar(static_cast<unsigned char>(c))) return error(400);
  if (version.size() != 8 || version.compare(0, 5, "HTTP/") != 0 || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return error(400);
  if (version[5] != '1') return error(505);
  req = Request{};
  req.minor = version[7] == '0' ? 0 : 1;
  req.method = classify_method(method);
  // CONNECT names host:port (authority-form); it is refused with 405 like any other method.
  if (!read_target(target, req.path) && method != "CONNECT") return error(400);

  int hosts = 0;
  uint8_t te = 0;
  req.fields = std::string_view(p, static_cast<size_t>(stop - p));
  while (p < stop) {
    if (!next_line(p, stop, line)) return error(400);
    if (line.empty()) break;  // the blank line ending the section
    // obs-fold (a line starting with whitespace) is refused (RFC 9112 §5.2).
    if (line[0] == ' ' || line[0] == '\t') return error(400);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return error(400);
    std::string_view name = line.substr(0, colon);
    for (char c : name)  // also refuses whitespace before the colon (RFC 9112 §5.1)
      if (!is_tchar(static_cast<unsigned char>(c))) return error(400);
    std::string_view value = line.substr(colon + 1);
    for (char c : value)
      if (!is_value_char(static_cast<unsigned char>(c))) return error(400);
    value = trim_ows(value);

    // Dispatch on the first letter: a plain request's few fields cost one compare each.
    switch (name[0] | 0x20) {
      case 'h':
        if (ieq(name, "host")) {
          hosts++;
          if (!valid_host(value)) return error(400);  // RFC 9112 §3.2
        }
        break;
      case 'c':
        if (ieq(name, "connection")) {
          read_connection(value, req);
        } else if (ieq(name, "content-length")) {
          uint64_t n = 0;
          if (!read_content_length(value, n)) return error(400);
          if (req.has_content_length && n != req.content_length) return error(400);
          req.has_content_length = true;
          req.content_length = n;
        }
        break;
      case 't':
        if (ieq(name, "transfer-encoding")) {
          req.has_transfer_encoding = true;
          read_transfer_encoding(value, te);
        }
        break;
      case 'i':
        if (ieq(name, "if-match")) note(req.if_match, value);
        else if (ieq(name, "if-none-match")) note(req.if_none_match, value);
        else if (ieq(name, "if-modified-since")) note(req.if_modified_since, value);
        else if (ieq(name, "if-unmodified-since")) note(req.if_unmodified_since, value);
        else if (ieq(name, "if-range")) note(req.if_range, value);
        break;
      case 'r':
        if (ieq(name, "range")) note(req.range, value);
        break;
    }
  }
  req.fields = std::string_view(req.fields.data(), static_cast<size_t>(p - req.fields.data()));
  req.conditional = req.if_match.present() || req.if_none_match.present() ||
                    req.if_modified_since.present() || req.if_unmodified_since.present();
  req.transfer = transfer_coding(te);
  // Both framings at once is the classic smuggling vector (RFC 9112 §6.1): refuse it.
  if (req.has_transfer_encoding && req.has_content_length) return error(400);
  // Chunked not final (or malformed): the body's end is unknowable (RFC 9112 §6.3). HTTP/1.0
  // has no Transfer-Encoding: its framing is faulty whatever the value (§6.1).
  if (req.transfer == TransferCoding::bad || (req.has_transfer_encoding && req.minor == 0))
    return error(400);
  if (hosts > 1 || (hosts == 0 && req.minor == 1)) return error(400);
  return {Parse::done, static_cast<uint32_t>(end), 0};
}

}  // namespace vw
