// chunked.cc: a byte-at-a-time state machine for chunked bodies, strict where framing is
// decided (CRLF only, hex sizes, no whitespace without a ';' after it): a proxy in front that
// reads the same bytes differently is how requests get smuggled.
#include "http/chunked.h"

#include "http/grammar.h"

namespace vw {
namespace {

// qdtext (RFC 9110 §5.6.4): HTAB, SP, !, #-[, ]-~, obs-text
constexpr bool is_qdtext(unsigned char c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}
// quoted-pair's second byte: HTAB, SP, VCHAR, obs-text
constexpr bool is_qpchar(unsigned char c) { return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f); }
// field-value bytes: visible, SP, HTAB, obs-text
constexpr bool is_value_char(unsigned char c) { return c >= 0x20 ? c != 0x7f : c == '\t'; }

bool is_chunked(std::string_view name) {
  static const char kChunked[] = "chunked";
  if (name.size() != 7) return false;
  for (size_t i = 0; i < 7; i++) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
    if (c != static_cast<unsigned char>(kChunked[i])) return false;
  }
  return true;
}

// Bits of the Transfer-Encoding fold.
constexpr uint8_t kSeen = 1;         // a field line was present
constexpr uint8_t kLastChunked = 2;  // the last coding so far is chunked
constexpr uint8_t kOther = 4;        // a coding other than chunked came before it
constexpr uint8_t kBad = 8;          // chunked not final or repeated, or a malformed list
constexpr uint8_t kAny = 16;         // some line named a coding (1#transfer-coding, all lines)

// Skips OWS from i.
size_t ows(std::string_view v, size_t i) {
  while (i < v.size() && is_ws(static_cast<unsigned char>(v[i]))) i++;
  return i;
}
size_t token_end(std::string_view v, size_t i) {
  while (i < v.size() && is_tchar(static_cast<unsigned char>(v[i]))) i++;
  return i;
}
// A quoted-string starting at v[i] == '"'; returns the index after it, or npos.
size_t quoted_end(std::string_view v, size_t i) {
  for (i++; i < v.size(); i++) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (++i >= v.size() || !is_qpchar(static_cast<unsigned char>(v[i]))) return std::string_view::npos;
    } else if (!is_qdtext(c)) {
      return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

}  // namespace

void read_transfer_encoding(std::string_view v, uint8_t& state) {
  state |= kSeen;
  size_t i = 0;
  while (i < v.size()) {
    i = ows(v, i);
    if (i < v.size() && v[i] == ',') {  // empty list elements are allowed (RFC 9110 §5.6.1)
      i++;
      continue;
    }
    if (i == v.size()) break;
    size_t name_end = token_end(v, i);
    if (name_end == i) {
      state |= kBad;
      return;
    }
    std::string_view name = v.substr(i, name_end - i);
    i = name_end;
    bool params = false;
    for (;;) {  // *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )
      size_t j = ows(v, i);
      if (j >= v.size() || v[j] != ';') {
        i = j;
        break;
      }
      j = ows(v, j + 1);
      size_t pn = token_end(v, j);
      if (pn == j) {
        state |= kBad;
        return;
      }
      j = ows(v, pn);
      if (j >= v.size() || v[j] != '=') {
        state |= kBad;
        return;
      }
      j = ows(v, j + 1);
      size_t end = j < v.size() && v[j] == '"' ? quoted_end(v, j) : token_end(v, j);
      if (end == std::string_view::npos || end == j) {
        state |= kBad;
        return;
      }
      i = end;
      params = true;
    }
    if (i < v.size() && v[i] != ',') {
      state |= kBad;
      return;
    }
    state |= kAny;
    // RFC 9112 §6.1: chunked is applied once, last; it takes no parameters.
    if (state & kLastChunked) state |= kBad;
    if (is_chunked(name)) {
      if (params) state |= kBad;
      state |= kLastChunked;
    } else {
      state = static_cast<uint8_t>((state & ~kLastChunked) | kOther);
    }
  }
}

TransferCoding transfer_coding(uint8_t state) {
  if (!(state & kSeen)) return TransferCoding::none;
  // 1#transfer-coding: the lines together name at least one (empty elements are ignored).
  if ((state & kBad) || !(state & kAny) || !(state & kLastChunked)) return TransferCoding::bad;
  return (state & kOther) ? TransferCoding::unsupported : TransferCoding::chunked;
}

ChunkedDecoder::Result ChunkedDecoder::feed(const char* p, size_t n, uint64_t max_body,
                                            uint32_t max_line) {
  auto fail = [&](size_t at, uint16_t status) { return Result{Step::error, at, status}; };
  size_t i = 0;
  while (i < n) {
    if (_s == S::data) {  // the bulk: skipped in one step, never looked at
      size_t take = n - i < _chunk ? n - i : static_cast<size_t>(_chunk);
      i += take;
      _chunk -= take;
      if (_chunk == 0) _s = S::data_cr;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(p[i++]);
    if (_s <= S::size_lf || _s >= S::trailer_start) {
      // Metadata, not data: bounded per chunk-size line and for the whole trailer section.
      if (++_line > max_line) return fail(i, _s >= S::trailer_start ? 431 : 400);
    }
    switch (_s) {
      case S::size_first:
      case S::size: {
        int h = hex_value(c);
        if (h >= 0) {
          // Over the limit already: no need to see the rest (and no overflow).
          if (_chunk > (max_body - _total) / 16 || _chunk * 16 + static_cast<uint64_t>(h) > max_body - _total)
            return fail(i, 413);
          _chunk = _chunk * 16 + static_cast<uint64_t>(h);
          _s = S::size;
        } else if (_s == S::size_first) {
          return fail(i, 400);  // chunk-size = 1*HEXDIG
        } else if (c == ';') {
          _s = S::ext_name_pre;
        } else if (is_ws(c)) {
          _s = S::ext_ws;
        } else if (c == '\r') {
          _s = S::size_lf;
        } else {
          return fail(i, 400);
        }
        break;
      }
      // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
      case S::ext_ws:  // BWS before a ';': whitespace must lead to one
        if (c == ';') _s = S::ext_name_pre;
        else if (!is_ws(c)) return fail(i, 400);
        break;
      case S::ext_name_pre:
        if (is_tchar(c)) _s = S::ext_name;
        else if (!is_ws(c)) return fail(i, 400);
        break;
      case S::ext_name:
        if (c == '=') _s = S::ext_val_pre;
        else if (c == ';') _s = S::ext_name_pre;
        else if (c == '\r') _s = S::size_lf;
        else if (is_ws(c)) _s = S::ext_name_ws;
        else if (!is_tchar(c)) return fail(i, 400);
        break;
      case S::ext_name_ws:
        if (c == '=') _s = S::ext_val_pre;
        else if (c == ';') _s = S::ext_name_pre;
        else if (!is_ws(c)) return fail(i, 400);
        break;
      case S::ext_val_pre:
        if (c == '"') _s = S::ext_quoted;
        else if (is_tchar(c)) _s = S::ext_token;
        else if (!is_ws(c)) return fail(i, 400);
        break;
      case S::ext_token:
        if (c == ';') _s = S::ext_name_pre;
        else if (c == '\r') _s = S::size_lf;
        else if (is_ws(c)) _s = S::ext_ws;
        else if (!is_tchar(c)) return fail(i, 400);
        break;
      case S::ext_quoted:
        if (c == '"') _s = S::ext_val_ws;
        else if (c == '\\') _s = S::ext_quoted_pair;
        else if (!is_qdtext(c)) return fail(i, 400);
        break;
      case S::ext_quoted_pair:
        if (!is_qpchar(c)) return fail(i, 400);
        _s = S::ext_quoted;
        break;
      case S::ext_val_ws:  // right after a quoted value
        if (c == ';') _s = S::ext_name_pre;
        else if (c == '\r') _s = S::size_lf;
        else if (is_ws(c)) _s = S::ext_ws;
        else return fail(i, 400);
        break;
      case S::size_lf:
        if (c != '\n') return fail(i, 400);
        _line = 0;
        if (_chunk == 0) {
          _s = S::trailer_start;  // last-chunk: the trailer section follows
        } else {
          _total += _chunk;
          _s = S::data;
        }
        break;
      case S::data_cr:
        if (c != '\r') return fail(i, 400);
        _s = S::data_lf;
        break;
      case S::data_lf:
        if (c != '\n') return fail(i, 400);
        _s = S::size_first;
        _chunk = 0;
        _line = 0;
        break;
      // trailer-section = *( field-line CRLF ), then the CRLF that ends the message.
      case S::trailer_start:
        if (c == '\r') _s = S::final_lf;
        else if (is_tchar(c)) _s = S::trailer_name;
        else return fail(i, 400);  // obs-fold, a bare LF, a control byte
        break;
      case S::trailer_name:
        if (c == ':') _s = S::trailer_value;
        else if (!is_tchar(c)) return fail(i, 400);  // also whitespace before the colon
        break;
      case S::trailer_value:
        if (c == '\r') _s = S::trailer_lf;
        else if (!is_value_char(c)) return fail(i, 400);
        break;
      case S::trailer_lf:
        if (c != '\n') return fail(i, 400);
        _s = S::trailer_start;
        break;
      case S::final_lf:
        if (c != '\n') return fail(i, 400);
        return {Step::done, i, 0};
      case S::data:
        break;  // handled above
    }
  }
  return {Step::more, i, 0};
}

}  // namespace vw
