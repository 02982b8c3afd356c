// parser_fuzz.cc: libFuzzer harness for the request parser (native/http/http.cc) and the connection
// logic on top of it (native/http/session.cc), built from the addon's own sources by fuzz/run.sh.
//
// For every input it checks:
//   1. parse_request over the whole input, for several max_header values, against the same bytes
//      arriving in pieces (one byte at a time, and in sizes taken from the input's first bytes)
//      through the scan_from resume path: same status, consumed, error status and request fields.
//   2. serve_requests fed the input as an engine would (unconsumed tail kept, next chunk appended,
//      batch cleared when full, stop at close): consumed <= length, every response a complete
//      "HTTP/1.1 " response with a known status, the requests counter equal to the responses seen,
//      nothing after a Connection: close, and the same responses whether the bytes came at once or
//      in pieces.
// Any violation prints what differed and traps, so libFuzzer saves the input as a crash.
#include <sanitizer/asan_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "http/http.h"
#include "http/responses.h"
#include "http/session.h"

using namespace vw;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "\nvw fuzz invariant violated: %s\n", what);
  __builtin_trap();
}
[[noreturn]] void fail(const char* what, long a, long b) {  // with the two values compared
  std::fprintf(stderr, "\nvw fuzz invariant violated: %s (%ld vs %ld)\n", what, a, b);
  __builtin_trap();
}
#define CHECK(cond, ...)                                 \
  do {                                                   \
    if (!(cond)) fail("CHECK(" #cond ")", ##__VA_ARGS__); \
  } while (0)

// Chunk sizes: a xorshift generator seeded by the input's first bytes, so the same input always
// splits the same way and mutating its start explores other splits.
struct Splitter {
  uint64_t s;
  explicit Splitter(const uint8_t* d, size_t n, uint64_t salt) {
    s = 0x9E3779B97F4A7C15ull ^ salt;
    for (size_t i = 0; i < n && i < 8; i++) s = (s ^ d[i]) * 0x100000001B3ull;
    if (!s) s = 1;
  }
  size_t next(size_t max_chunk) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    // Mostly small pieces (the interesting splits are near line ends), sometimes large ones.
    size_t r = static_cast<size_t>(s >> 8);
    return (s & 3) ? 1 + r % 8 : 1 + r % max_chunk;
  }
};


// ---------------------------------------------------------------- 1. parse_request

struct Parsed {
  ParseResult r;
  Request req;
};

void same(const Parsed& whole, const Parsed& part, const char* how, uint32_t max_header) {
  if (whole.r.status != part.r.status || whole.r.consumed != part.r.consumed ||
      whole.r.error_status != part.r.error_status) {
    std::fprintf(stderr,
                 "\nparse %s, max_header %u: whole status %d consumed %u error %u, "
                 "pieces status %d consumed %u error %u\n",
                 how, max_header, int(whole.r.status), whole.r.consumed, whole.r.error_status,
                 int(part.r.status), part.r.consumed, part.r.error_status);
    fail("whole and piecewise parse disagree", whole.r.error_status, part.r.error_status);
  }
  if (whole.r.status != Parse::done) return;
  const Request& a = whole.req;
  const Request& b = part.req;
  CHECK(a.method == b.method);
  CHECK(a.path == b.path);
  CHECK(a.minor == b.minor);
  CHECK(a.content_length == b.content_length);
  CHECK(a.conn_close == b.conn_close);
  CHECK(a.conn_keepalive == b.conn_keepalive);
  CHECK(a.has_content_length == b.has_content_length);
  CHECK(a.has_transfer_encoding == b.has_transfer_encoding);
  CHECK(a.transfer == b.transfer);
  CHECK(a.conditional == b.conditional);
  for (auto f : {&Request::if_match, &Request::if_none_match, &Request::if_modified_since,
                 &Request::if_unmodified_since, &Request::range, &Request::if_range}) {
    CHECK((a.*f).lines == (b.*f).lines);
    CHECK((a.*f).value == (b.*f).value);
  }
}

void check_result(const Parsed& p, const char* buf, size_t len) {
  const ParseResult& r = p.r;
  switch (r.status) {
    case Parse::done: {
      CHECK(r.consumed > 0 && r.consumed <= len, long(r.consumed), long(len));
      CHECK(buf[r.consumed - 1] == '\n');
      CHECK(r.error_status == 0);
      const Request& q = p.req;
      CHECK(q.minor <= 1);
      CHECK(!q.path.empty());
      CHECK(!(q.has_content_length && q.has_transfer_encoding));
      CHECK(q.transfer != TransferCoding::bad);  // chunked not final is a 400, never parsed on
      CHECK(q.has_transfer_encoding == (q.transfer != TransferCoding::none));
      CHECK(!q.has_transfer_encoding || q.minor == 1);
      // The path points into the header section (or is a literal "/" or "*").
      const char* d = q.path.data();
      if (d >= buf && d < buf + len) CHECK(d + q.path.size() <= buf + r.consumed);
      else CHECK(q.path == "/");
      for (char c : q.path) CHECK(c != '?' && c != '#' && static_cast<unsigned char>(c) > 0x20);
      break;
    }
    case Parse::need_more:
      CHECK(r.consumed <= len, long(r.consumed), long(len));
      CHECK(r.error_status == 0);
      break;
    case Parse::error:
      CHECK(r.error_status == 400 || r.error_status == 414 || r.error_status == 431 ||
                r.error_status == 505,
            long(r.error_status), 0);
      break;
    default: fail("unknown Parse value", long(r.status), 0);
  }
}

// The bytes in a heap block of exactly `len` bytes: ASan catches any read past the end.
struct Exact {
  char* p;
  size_t n;
  size_t shown;
  Exact(const uint8_t* d, size_t len)
      : p(static_cast<char*>(std::malloc(len ? len : 1))), n(len), shown(len) {
    if (len) std::memcpy(p, d, len);
  }
  ~Exact() {
    show(n);
    std::free(p);
  }
  // Makes only [0, len) readable, as if the rest had not arrived yet. Growing costs only the
  // newly shown bytes, so showing one more byte at a time stays linear.
  void show(size_t len) {
    if (len < shown) {
      ASAN_POISON_MEMORY_REGION(p + len, n - len);
    } else if (len > shown) {
      size_t from = shown & ~size_t(7);  // whole shadow granules (malloc aligns p)
      ASAN_UNPOISON_MEMORY_REGION(p + from, len - from);
    }
    shown = len;
  }
};

// Feeds growing prefixes of the buffer, keeping scan_from, until the parser decides.
Parsed parse_in_pieces(Exact& buf, uint32_t max_header, Splitter* split) {
  size_t scan = 0;
  size_t have = 0;
  Parsed p{};
  buf.show(0);
  while (have < buf.n) {
    have += split ? split->next(512) : 1;
    if (have > buf.n) have = buf.n;
    buf.show(have);
    size_t before = scan;
    p.r = parse_request(buf.p, have, max_header, scan, p.req);
    check_result(p, buf.p, have);
    if (p.r.status != Parse::need_more) break;
    CHECK(scan <= have, long(scan), long(have));
    CHECK(scan >= before || scan == 0, long(scan), long(before));  // never moves back (but a reset)
  }
  buf.show(buf.n);
  return p;
}

void fuzz_parser(const uint8_t* data, size_t size) {
  Exact buf(data, size);
  static const uint32_t kMaxHeaders[] = {8192, 256, 40};
  for (uint32_t max_header : kMaxHeaders) {
    Parsed whole{};
    size_t scan = 0;
    whole.r = parse_request(buf.p, size, max_header, scan, whole.req);
    check_result(whole, buf.p, size);
    if (size == 0) continue;
    Parsed bytes = parse_in_pieces(buf, max_header, nullptr);
    same(whole, bytes, "one byte at a time", max_header);
    Splitter split(data, size, max_header);
    Parsed chunks = parse_in_pieces(buf, max_header, &split);
    same(whole, chunks, "in chunks", max_header);
    // A second parse of the same bytes gives the same answer (no hidden state).
    Parsed again{};
    scan = 0;
    again.r = parse_request(buf.p, size, max_header, scan, again.req);
    same(whole, again, "twice", max_header);
  }
}

// ---------------------------------------------------------------- 2. serve_requests

// Validators (ETag, Last-Modified, a 304 variant) on a route, where this tree's ResponseSpec
// has them: detected at compile time, so the harness builds before and after that feature.
template <typename S, typename = void>
struct has_validators : std::false_type {};
template <typename S>
struct has_validators<S, std::void_t<decltype(std::declval<S&>().etag),
                                     decltype(std::declval<S&>().last_modified),
                                     decltype(std::declval<S&>().not_modified_headers)>>
    : std::true_type {};

template <typename S>
void add_validators(S& spec) {
  if constexpr (has_validators<S>::value) {
    spec.etag = "\"v1\"";
    spec.last_modified = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
    spec.not_modified_headers = "ETag: \"v1\"\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
  }
}

ResponseSpec spec(std::string path, uint16_t status, std::string headers, std::string body) {
  ResponseSpec s;  // fields by name: new ResponseSpec members keep their defaults
  s.path = std::move(path);
  s.status = status;
  s.headers = std::move(headers);
  s.body = std::move(body);
  return s;
}

const ResponseTable& table() {
  static ResponseTable* t = [] {
    const std::string text = "Content-Type: text/plain; charset=utf-8\r\n";
    std::vector<ResponseSpec> routes = {
        spec("/", 200, text, "vw: index\n"),
        spec("/1b", 200, text, "x"),
        spec("/1000", 200, text, std::string(1000, 'z')),  // copied: ~60 fill the 64 KiB staging
        spec("/2k", 200, text, std::string(2048, 'y')),  // above OutBatch::kCopyBelow: referenced
    };
    add_validators(routes[1]);
    auto page = [&](uint16_t s, const char* reason, const char* extra = "") {
      return spec("", s, text + extra, std::to_string(s) + " " + reason + "\n");
    };
    std::vector<ResponseSpec> errors = {
        page(400, "Bad Request"),        page(404, "Not Found"),
        page(405, "Method Not Allowed", "Allow: GET, HEAD\r\n"),
        page(412, "Precondition Failed"), page(416, "Range Not Satisfiable"),
        page(413, "Content Too Large"),  page(414, "URI Too Long"),
        page(431, "Request Header Fields Too Large"),
        page(501, "Not Implemented"),    page(505, "HTTP Version Not Supported"),
    };
    auto* table = new ResponseTable;
    std::string err = table->build(routes, errors);
    if (!err.empty()) {
      std::fprintf(stderr, "ResponseTable::build: %s\n", err.c_str());
      std::abort();
    }
    return table;
  }();
  return *t;
}

struct Seen {
  uint16_t status;
  char conn;  // 'c' close, 'k' keep-alive, '-' none
  bool body;
  bool operator==(const Seen& o) const {
    return status == o.status && conn == o.conn && body == o.body;
  }
};

struct Run {
  std::vector<Seen> responses;
  bool closed = false;
  uint64_t fed = 0;
  uint64_t consumed = 0;
};

bool known_status(uint16_t s) {
  switch (s) {
    case 200: case 206: case 304: case 400: case 404: case 405: case 412: case 413: case 414:
    case 416: case 431: case 501: case 505:
      return true;
  }
  return false;
}

// Whether iov[i] points into a body of the table (a large body sent by reference).
bool is_table_body(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  for (const char* path : {"/", "/1b", "/1000", "/2k"}) {
    const std::string& b = table().find(path)->body;
    if (c >= b.data() && c + n <= b.data() + b.size()) return true;
  }
  return false;
}

// Splits one batch into responses and checks each: status line, Date, Content-Length, body.
void check_batch(const OutBatch& out, const ServeOutcome& o, const DateCache& date, Run& run) {
  std::string bytes;
  for (int i = 0; i < out.iovcnt(); i++) {
    const iovec& v = out.iov()[i];
    CHECK(v.iov_len > 0);
    CHECK(out.in_stage(v.iov_base) || is_table_body(v.iov_base, v.iov_len));
    bytes.append(static_cast<const char*>(v.iov_base), v.iov_len);
  }
  CHECK(bytes.size() == out.bytes(), long(bytes.size()), long(out.bytes()));
  std::string_view rest(bytes);
  while (!rest.empty()) {
    CHECK(!run.closed);  // nothing may follow a response that closed the connection
    CHECK(rest.substr(0, 9) == "HTTP/1.1 ");
    CHECK(rest.size() > 13 && rest[9] >= '1' && rest[9] <= '5' && rest[10] >= '0' &&
          rest[10] <= '9' && rest[11] >= '0' && rest[11] <= '9' && rest[12] == ' ');
    uint16_t status = static_cast<uint16_t>((rest[9] - '0') * 100 + (rest[10] - '0') * 10 + (rest[11] - '0'));
    CHECK(known_status(status), long(status), 0);
    size_t eol = rest.find("\r\n");
    CHECK(eol != std::string_view::npos);
    CHECK(rest.substr(13, eol - 13) == reason_phrase(status));
    size_t end = rest.find("\r\n\r\n");
    CHECK(end != std::string_view::npos);
    std::string_view head = rest.substr(0, end + 2);  // each line with its CRLF
    rest.remove_prefix(end + 4);

    size_t d = head.find("\r\nDate: ");
    CHECK(d != std::string_view::npos);
    CHECK(head.substr(d + 8, kDateLen) == std::string_view(date.value(), kDateLen));
    // 304 (and 204) carry no body and, from this tree on, no Content-Length.
    bool bodiless = status == 304 || status == 204;
    size_t cl = head.find("\r\nContent-Length: ");
    size_t len = 0;
    if (cl == std::string_view::npos) {
      CHECK(bodiless, long(status), 0);
    } else {
      size_t i = cl + 18;
      CHECK(i < head.size() && head[i] >= '0' && head[i] <= '9');
      for (; i < head.size() && head[i] >= '0' && head[i] <= '9'; i++) len = len * 10 + size_t(head[i] - '0');
      CHECK(head.substr(i, 2) == "\r\n");
      CHECK(!bodiless || len == 0, long(status), long(len));
    }
    char conn = '-';
    if (head.find("\r\nConnection: close\r\n") != std::string_view::npos) conn = 'c';
    if (head.find("\r\nConnection: keep-alive\r\n") != std::string_view::npos) {
      CHECK(conn == '-');
      conn = 'k';
    }
    // No body bytes means a HEAD answer: what follows is the next status line or nothing.
    // (No body of the table starts with "HTTP/".)
    bool body = !bodiless && !rest.empty() && rest.substr(0, 5) != "HTTP/";
    if (body) {
      CHECK(rest.size() >= len, long(rest.size()), long(len));
      rest.remove_prefix(len);
    }
    run.responses.push_back({status, conn, body});
    if (conn == 'c') run.closed = true;
  }
  // The Connection: close response is exactly the last one, and only when the call says close.
  CHECK(run.closed == o.close, long(run.closed), long(o.close));
  CHECK(!o.linger || o.close);
  CHECK(!o.batch_full || !out.empty());  // a full batch with nothing in it would loop forever
}

// One connection fed `data` in chunks (chunk sizes from `split`, or all at once when null).
Run serve(const uint8_t* data, size_t size, const Limits& lim, bool keepalive, Splitter* split,
          const DateCache& date, OutBatch& out) {
  StatsSlot stats;
  ServeCtx ctx{&table(), &date, &lim, keepalive, &stats};
  SessionState conn;  // all the session sees of a connection
  Run run;
  std::string tail;  // what the engine keeps in conn.in
  size_t off = 0;
  while (off < size && !run.closed) {
    size_t n = split ? split->next(4096) : size;
    if (n > size - off) n = size - off;
    tail.append(reinterpret_cast<const char*>(data) + off, n);
    off += n;
    run.fed += n;
    Exact buf(reinterpret_cast<const uint8_t*>(tail.data()), tail.size());
    size_t pos = 0;
    for (;;) {
      out.clear();
      uint64_t before = stats.requests.load();
      ServeOutcome o = serve_requests(ctx, conn, buf.p + pos, buf.n - pos, out);
      CHECK(o.consumed <= buf.n - pos, long(o.consumed), long(buf.n - pos));
      size_t seen = run.responses.size();
      check_batch(out, o, date, run);
      CHECK(stats.requests.load() - before == run.responses.size() - seen,
            long(stats.requests.load() - before), long(run.responses.size() - seen));
      pos += o.consumed;
      run.consumed += o.consumed;
      if (o.close || !o.batch_full) break;
    }
    tail.erase(0, pos);
    if (!run.closed) {
      // Unanswered input is bounded: leading blank lines plus less than max_header bytes.
      size_t blank = 0;
      while (blank < tail.size() && (tail[blank] == '\r' || tail[blank] == '\n')) blank++;
      CHECK(tail.size() - blank < lim.max_header, long(tail.size() - blank), long(lim.max_header));
      CHECK(conn.scan_from <= tail.size(), long(conn.scan_from), long(tail.size()));
    }
  }
  conn.reset();  // a chunked body still being read owns its kept head
  uint64_t counted = stats.resp_2xx.load() + stats.resp_3xx.load() + stats.resp_4xx.load() +
                     stats.resp_5xx.load();
  CHECK(stats.requests.load() == run.responses.size(), long(stats.requests.load()), long(run.responses.size()));
  CHECK(counted == run.responses.size(), long(counted), long(run.responses.size()));
  uint64_t ok = 0;
  for (const Seen& s : run.responses) ok += s.status / 100 == 2;
  CHECK(stats.resp_2xx.load() == ok, long(stats.resp_2xx.load()), long(ok));
  CHECK(run.consumed <= run.fed);
  return run;
}

void same_runs(const Run& a, const Run& b, const char* what) {
  bool eq = a.closed == b.closed && a.responses.size() == b.responses.size();
  for (size_t i = 0; eq && i < a.responses.size(); i++) eq = a.responses[i] == b.responses[i];
  if (eq) return;
  auto dump = [](const char* name, const Run& r) {
    std::fprintf(stderr, "  %s:%s", name, r.closed ? " (closed)" : "");
    for (const Seen& s : r.responses) std::fprintf(stderr, " %u%c%s", s.status, s.conn, s.body ? "" : "/nobody");
    std::fprintf(stderr, "\n");
  };
  std::fprintf(stderr, "\nserve_requests, %s: the answers depend on how the bytes arrived\n", what);
  dump("at once  ", a);
  dump("in pieces", b);
  fail("whole and chunked serve disagree", long(a.responses.size()), long(b.responses.size()));
}

void fuzz_session(const uint8_t* data, size_t size) {
  static DateCache* date = new DateCache;
  static OutBatch* out = new OutBatch;  // 64 KiB of staging: not on the stack
  date->refresh();
  Limits defaults;  // 8 KiB header, 1 MiB body
  Limits tight;
  tight.max_header = 256;  // the smallest src/config.ts accepts
  tight.max_body = 16;
  struct Case {
    const Limits* lim;
    bool keepalive;
    const char* name;
  } cases[] = {{&defaults, true, "default limits"}, {&tight, true, "tight limits"},
               {&tight, false, "tight limits, keep-alive off"}};
  for (const Case& c : cases) {
    Run whole = serve(data, size, *c.lim, c.keepalive, nullptr, *date, *out);
    Splitter split(data, size, c.lim->max_header + c.keepalive);
    Run pieces = serve(data, size, *c.lim, c.keepalive, &split, *date, *out);
    same_runs(whole, pieces, c.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_parser(data, size);
  fuzz_session(data, size);
  return 0;
}
