// upstream_http.h: the HTTP/1.1 framing a relay needs on both of its sides, apart from any I/O:
// a backend's response head (status, version, Connection, Content-Length, Transfer-Encoding),
// the body that follows it (RFC 9112 §6.3: none, a length, chunked or until close), and the
// hop-by-hop filtering of a head that crosses the relay (RFC 9110 §7.6.1). Pure functions and
// one small incremental state machine; the worker thread that owns the relay calls them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/chunked.h"

namespace vw {

// A response head as the backend sent it.
struct UpstreamHead {
  uint32_t len = 0;         // bytes of status line and header section, final CRLF included
  uint16_t status = 0;
  uint8_t minor = 1;        // HTTP/1.<minor>
  bool conn_close = false;  // Connection: close
  bool conn_keepalive = false;
  bool chunked = false;     // Transfer-Encoding whose final coding is chunked
  bool other_coding = false;  // Transfer-Encoding without a final chunked: read until close
  bool has_length = false;
  uint64_t length = 0;
};

enum class HeadParse : uint8_t { done, need_more, error };

// Parses one response head from p[0, n): done (h filled), need_more, or error (a malformed
// status line or field, differing Content-Lengths, a head over max_head bytes).
HeadParse parse_upstream_head(const char* p, size_t n, size_t max_head, UpstreamHead& h);

// How the body after a head ends (RFC 9112 §6.3), given the request's method.
enum class BodyKind : uint8_t { none, length, chunked, close };
BodyKind body_kind(const UpstreamHead& h, bool head_request);

// Follows a body through its framing, bytes as they come, without keeping them.
class BodyFramer {
 public:
  void start(BodyKind kind, uint64_t length);
  struct Step {
    size_t consumed;  // bytes of p that belong to this body
    bool done;        // the body is complete (never for `close`: that ends at EOF)
    bool error;       // malformed chunked framing
  };
  Step feed(const char* p, size_t n);
  BodyKind kind() const { return _kind; }
  bool done() const { return _done; }

 private:
  BodyKind _kind = BodyKind::none;
  bool _done = true;
  uint64_t _left = 0;
  ChunkedDecoder _chunked;
};

// Copies a head (request or response) into `out` without the hop-by-hop fields: Connection,
// the fields it names, Keep-Alive and Proxy-Connection. Leading empty lines are dropped. The
// start line's version becomes HTTP/1.1, the relay's own, on both sides (RFC 9110 §2.5: an
// intermediary sends its own version in what it forwards). `add` (header lines, each ending in
// CRLF) goes last, before the empty line.
void copy_end_to_end(std::string_view head, std::string_view add,
                     std::string& out);

}  // namespace vw
