// grammar.h: the character classes of RFC 9110/9112 and RFC 3986 that more than one parser
// needs, written once so the request parser, the chunked decoder and the path decoder can never
// disagree on what a token or a hex digit is.
#pragma once

namespace vw {

// tchar (RFC 9110 §5.6.2)
constexpr bool is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
         c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' ||
         c == '~';
}

// OWS/BWS bytes (RFC 9110 §5.6.3): SP and HTAB
constexpr bool is_ws(unsigned char c) { return c == ' ' || c == '\t'; }

// HEXDIG (RFC 5234 B.1, case-insensitive as RFC 9112 §7.1 and RFC 3986 §2.1 read it): its
// value, or -1.
constexpr int hex_value(unsigned char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

}  // namespace vw
