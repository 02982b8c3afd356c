// host.cc: Host field validation by the RFC 3986 grammar, byte by byte: a Host value is what
// virtual hosting, caches and proxies key on, so one they would read differently is refused.
#include "http/host.h"

#include <cstddef>

namespace vw {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
// unreserved (RFC 3986 §2.3)
bool is_unreserved(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
// sub-delims (RFC 3986 §2.2)
bool is_sub_delim(char c) {
  switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')':
    case '*': case '+': case ',': case ';': case '=':
      return true;
  }
  return false;
}

// reg-name = *( unreserved / pct-encoded / sub-delims ). IPv4address is a subset of it, so a
// dotted quad needs no separate check to be accepted.
bool valid_reg_name(std::string_view s) {
  for (size_t i = 0; i < s.size(); i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
      i += 2;
    } else if (!is_unreserved(c) && !is_sub_delim(c)) {
      return false;
    }
  }
  return true;
}

// dec-octet "." x4, without leading zeros (RFC 3986 §3.2.2): used inside IPv6 (ls32).
bool valid_ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (parts < 4) {
    size_t start = i;
    int v = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 3) v = v * 10 + (s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || v > 255 || (len > 1 && s[start] == '0')) return false;
    parts++;
    if (parts == 4) break;
    if (i >= s.size() || s[i] != '.') return false;
    i++;
  }
  return i == s.size();
}

// h16 ( ":" h16 )*, possibly ending in an IPv4address (ls32) when `last` allows it; counts
// the 16-bit pieces. An empty side (next to "::") has 0 pieces.
bool h16_list(std::string_view s, bool last, int& pieces) {
  pieces = 0;
  if (s.empty()) return true;
  size_t i = 0;
  for (;;) {
    size_t start = i;
    while (i < s.size() && s[i] != ':') i++;
    std::string_view g = s.substr(start, i - start);
    bool end = i == s.size();
    if (end && last && g.find('.') != std::string_view::npos) {
      if (!valid_ipv4(g)) return false;
      pieces += 2;
      return true;
    }
    if (g.empty() || g.size() > 4) return false;
    for (char c : g)
      if (!is_hex(c)) return false;
    pieces++;
    if (end) return true;
    i++;  // the ':'; a trailing one leaves an empty group, refused above
  }
}

// IPv6address (RFC 3986 §3.2.2): eight 16-bit pieces, or fewer with one "::" standing for
// at least one zero piece; an IPv4address may take the last two pieces.
bool valid_ipv6(std::string_view s) {
  size_t dc = s.find("::");
  int left = 0, right = 0;
  if (dc == std::string_view::npos) return h16_list(s, true, left) && left == 8;
  std::string_view l = s.substr(0, dc), r = s.substr(dc + 2);
  if (r.find("::") != std::string_view::npos) return false;
  return h16_list(l, false, left) && h16_list(r, true, right) && left + right <= 7;
}

// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )  (ABNF: "v" is either case)
bool valid_ipvfuture(std::string_view s) {
  if (s.size() < 4 || (s[0] != 'v' && s[0] != 'V')) return false;
  size_t i = 1;
  while (i < s.size() && is_hex(s[i])) i++;
  if (i == 1 || i >= s.size() || s[i] != '.') return false;
  if (++i == s.size()) return false;
  for (; i < s.size(); i++)
    if (!is_unreserved(s[i]) && !is_sub_delim(s[i]) && s[i] != ':') return false;
  return true;
}

bool valid_port(std::string_view s) {
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

// uri-host [ ":" port ], and whether the host part is empty.
bool split_host(std::string_view v, bool& empty_host) {
  if (!v.empty() && v[0] == '[') {
    size_t close = v.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view lit = v.substr(1, close - 1);
    std::string_view rest = v.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || !valid_port(rest.substr(1)))) return false;
    empty_host = false;
    return valid_ipv6(lit) || valid_ipvfuture(lit);
  }
  size_t colon = v.find(':');
  std::string_view host = v.substr(0, colon);
  if (colon != std::string_view::npos && !valid_port(v.substr(colon + 1))) return false;
  empty_host = host.empty();
  return valid_reg_name(host);
}

}  // namespace

bool valid_host(std::string_view v) {
  bool empty = false;
  return split_host(v, empty);
}

bool valid_authority(std::string_view v) {
  bool empty = true;
  return split_host(v, empty) && !empty;
}

}  // namespace vw
