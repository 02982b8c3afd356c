// proxy.cc: the relay declared in proxy.h. Per client connection one exchange at a time:
// request head (hop-by-hop fields dropped) and body forwarded, response head and body relayed,
// then the next pipelined request. Bounded: a client is read only while its request needs
// bytes, a backend only while the client has taken what came before (backpressure both ways).
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "worker/clock.h"
#include "http/http.h"

namespace vw {
namespace {

constexpr size_t kBuf = 64 * 1024;       // one read from either side
constexpr size_t kMaxHead = 64 * 1024;   // a backend's response head
constexpr uint64_t kDownMs = 1000;       // a failed backend is skipped this long
constexpr uint64_t kNever = UINT64_MAX;  // a client's deadline while the relay owns its timing

}  // namespace

struct Relay::Exchange {
  Phase phase = Phase::idle;
  Watch cw = Watch::read;  // the client's interest now (engines add clients for reading)
  int up = -1;             // the upstream connection this exchange uses
  uint16_t backend = 0;
  uint16_t status = 0;
  bool keep = false;         // the client connection stays open after this response
  bool keepalive10 = false;  // ... for an HTTP/1.0 client that asked for keep-alive
  bool head_request = false;
  bool req_chunked = false;
  bool req_done = false;     // the whole request is in to_up (or already sent)
  bool head_done = false;    // the final response head was parsed
  bool resp_done = false;    // the whole response is in out (or already written)
  bool up_reusable = false;  // the upstream may serve another request afterwards
  bool sent = false;         // response bytes were queued for the client
  bool reused = false;       // the upstream came from the pool
  bool replayable = false;   // GET/HEAD whose whole request is still in to_up (see flush_up)
  uint64_t body_left = 0;    // request body bytes (Content-Length) still to forward
  uint64_t deadline = 0;     // --proxy-timeout: no progress by then ends the exchange
  uint64_t read_ns = 0;      // when the request was taken from the client's bytes (latency)
  uint64_t body_out = 0;     // --access-log: response body bytes relayed to the client
  std::string log_line;      // --access-log: the request line (and, combined, two fields)
  std::string log_referer, log_agent;
  ChunkedDecoder req_dec;
  BodyFramer body;
  std::string in;     // client bytes not dealt with yet (the next requests)
  std::string to_up;  // request bytes for the backend
  std::string head;   // a response head still arriving
  std::string out;    // response bytes for the client
  size_t to_up_off = 0, out_off = 0;

  void reset_request() {
    status = 0;
    body_out = 0;
    req_done = head_done = resp_done = up_reusable = sent = reused = replayable = false;
    body_left = 0;
    head.clear();
    to_up.clear();
    out.clear();
    to_up_off = out_off = 0;
  }
};

Relay::Relay(const Config& cfg, StatsSlot& stats, Sys& sys, const DateCache& date,
             const uint64_t& now_ms, RelayHost& host, LogRing* log)
    : _cfg(cfg), _s(stats), _sys(sys), _date(date), _now(now_ms), _host(host), _log(log) {}

Relay::~Relay() = default;

int Relay::prepare(std::string& what) {
  _buf = std::make_unique<char[]>(kBuf);
  for (const ListenAddr& a : _cfg.proxy) {
    Backend b;
    if (a.family == AF_INET6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&b.addr);
      sa->sin6_family = AF_INET6;
      sa->sin6_port = htons(a.port);
      if (inet_pton(AF_INET6, a.host.c_str(), &sa->sin6_addr) != 1) {
        what = "proxy address " + a.host;
        return EINVAL;
      }
      b.addr_len = sizeof(sockaddr_in6);
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&b.addr);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(a.port);
      if (inet_pton(AF_INET, a.host.c_str(), &sa->sin_addr) != 1) {
        what = "proxy address " + a.host;
        return EINVAL;
      }
      b.addr_len = sizeof(sockaddr_in);
    }
    _backends.push_back(std::move(b));
  }
  return 0;
}

Relay::Exchange& Relay::ex(int fd) {
  size_t i = static_cast<size_t>(fd);
  if (i >= _ex.size()) _ex.resize(i * 2 + 64);
  if (!_ex[i]) _ex[i] = std::make_unique<Exchange>();
  return *_ex[i];
}

// ---- the client side ----

void Relay::on_client(int fd, uint32_t ready) {
  Exchange& x = ex(fd);
  if (x.out_off < x.out.size()) {
    if (ready & (kRelayWritable | kRelayHangup)) flush_client(fd, x);
    return;
  }
  if (ready & (kRelayReadable | kRelayHangup)) read_client(fd, x);
}

void Relay::read_client(int fd, Exchange& x) {
  ssize_t n = _sys.read(fd, _buf.get(), kBuf);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    _host.close_client(fd);  // EOF or reset: whatever this client's exchange held goes too
    return;
  }
  bump(_s.bytes_in, static_cast<uint64_t>(n));
  x.in.append(_buf.get(), static_cast<size_t>(n));
  if (x.phase == Phase::idle) {
    start_request(fd, x);
  } else if (x.phase == Phase::sending && !x.req_done && x.to_up_off == x.to_up.size()) {
    flush_up(fd, x);  // takes the body bytes that came
  } else {
    update_watches(fd, x);  // the next requests (or more body): kept, up to kBuf
  }
}

// --access-log: what finish() will log of this request, kept before its bytes are forwarded.
// The strings keep their capacity from one request to the next.
void Relay::keep_for_log(Exchange& x, std::string_view head, const Request* req) {
  // log_response cuts it at the end of the request line; more than a record holds is not kept.
  x.log_line.assign(head.data(), std::min(head.size(), sizeof(LogRecord::line) + 8));
  x.log_referer.clear();
  x.log_agent.clear();
  if (!req || !_cfg.log_combined) return;
  std::string_view f = req->fields, v;
  if (next_field_value(f, "referer", v)) x.log_referer.assign(v.data(), v.size());
  f = req->fields;
  if (next_field_value(f, "user-agent", v)) x.log_agent.assign(v.data(), v.size());
}

void Relay::start_request(int fd, Exchange& x) {
  const Limits& lim = _cfg.limits;
  Conn& c = _host.slot(fd);
  if (x.in.empty()) {
    c.http.header_started = false;
    c.deadline_ms = _now + lim.idle_timeout_ms;
    update_watches(fd, x);
    return;
  }
  Request req;
  size_t scan = 0;
  ParseResult pr = parse_request(x.in.data(), x.in.size(), lim.max_header, scan, req);
  if (pr.status == Parse::need_more) {
    x.in.erase(0, pr.consumed);  // empty lines before a request line
    if (x.in.empty()) {
      c.http.header_started = false;
      c.deadline_ms = _now + lim.idle_timeout_ms;
    } else if (!c.http.header_started) {
      c.http.header_started = true;  // the slowloris bound starts at the first byte
      c.deadline_ms = _now + lim.header_timeout_ms;
    }
    update_watches(fd, x);
    return;
  }
  x.reset_request();
  x.read_ns = mono_ns();
  if (_log) keep_for_log(x, std::string_view(x.in.data(), pr.consumed ? pr.consumed : x.in.size()),
                         pr.status == Parse::error ? nullptr : &req);
  if (pr.status == Parse::error) {
    bump(_s.parse_errors);
    reply(fd, x, pr.error_status);
    return;
  }
  uint16_t refuse = req.transfer == TransferCoding::unsupported ? 501
                    : req.content_length > lim.max_body          ? 413
                                                                 : 0;
  if (refuse) {
    bump(_s.parse_errors);
    reply(fd, x, refuse);
    return;
  }
  x.keep = _cfg.keepalive && !req.conn_close && (req.minor == 1 || req.conn_keepalive);
  x.keepalive10 = x.keep && req.minor == 0;
  x.head_request = req.method == Method::head;
  x.req_chunked = req.transfer == TransferCoding::chunked;
  x.body_left = x.req_chunked ? 0 : req.content_length;
  x.req_dec = ChunkedDecoder();
  // The request line and fields as received, minus the hop-by-hop ones (RFC 9110 §7.6.1).
  // --proxy-fresh asks the backend to close after its response, so the side that closes first,
  // and keeps the TIME_WAIT, is the backend (as nginx's HTTP/1.0 upstreams do): a proxy that
  // closed first would soon search a port range full of TIME_WAIT at every connect.
  copy_end_to_end(std::string_view(x.in.data(), pr.consumed), false,
                  _cfg.proxy_fresh ? std::string_view("Connection: close\r\n") : std::string_view(),
                  x.to_up);
  x.in.erase(0, pr.consumed);  // (req's views pointed into it: not used past here)
  c.http.header_started = false;
  c.deadline_ms = kNever;  // the exchange's own deadline governs until the response is out
  x.deadline = _now + _cfg.proxy_timeout_ms;
  if (uint16_t err = take_body(x)) {
    bump(_s.parse_errors);
    reply(fd, x, err);
    return;
  }
  // A pooled connection the backend closes just as the request goes out (its keep-alive
  // timeout) is retried once on a new one: only for a GET or HEAD held whole (RFC 9112 §9.3.1).
  x.replayable = x.req_done && (req.method == Method::get || req.method == Method::head);
  dispatch(fd, x);
}

// Moves the request body's bytes that have arrived from `in` to `to_up`; an error status when
// a chunked body turns out malformed (400) or too large (413).
uint16_t Relay::take_body(Exchange& x) {
  if (x.req_done) return 0;
  if (x.req_chunked) {
    if (x.in.empty()) return 0;
    ChunkedDecoder::Result r = x.req_dec.feed(x.in.data(), x.in.size(), _cfg.limits.max_body,
                                              _cfg.limits.max_header);
    x.to_up.append(x.in.data(), r.consumed);
    x.in.erase(0, r.consumed);
    if (r.step == ChunkedDecoder::Step::error) return r.error_status;
    x.req_done = r.step == ChunkedDecoder::Step::done;
    return 0;
  }
  size_t k = x.in.size() < x.body_left ? x.in.size() : static_cast<size_t>(x.body_left);
  x.to_up.append(x.in.data(), k);
  x.in.erase(0, k);
  x.body_left -= k;
  x.req_done = x.body_left == 0;
  return 0;
}

// ---- choosing an upstream ----

void Relay::dispatch(int fd, Exchange& x) {
  size_t nb = _backends.size();
  size_t b = nb;
  for (size_t i = 0; i < nb; i++) {
    size_t k = (_next + i) % nb;
    if (_backends[k].down_until <= _now) {
      b = k;
      break;
    }
  }
  if (b == nb) {  // every backend failed within the last second
    reply(fd, x, 502);
    return;
  }
  _next = (b + 1) % nb;
  x.backend = static_cast<uint16_t>(b);
  Backend& be = _backends[b];
  if (!_cfg.proxy_fresh && !be.idle.empty()) {
    int up = be.idle.back();
    be.idle.pop_back();
    attach(fd, x, up, true);
    return;
  }
  if (be.open < _cfg.proxy_conns) {
    int up = connect_backend(x.backend);
    if (up < 0) {
      reply(fd, x, 502);
      return;
    }
    attach(fd, x, up, false);
    return;
  }
  x.phase = Phase::waiting;  // every connection to this backend is busy: first come, first served
  be.waiting.push_back(static_cast<uint64_t>(fd) |
                       static_cast<uint64_t>(_host.slot(fd).gen) << 32);
  update_watches(fd, x);
}

int Relay::connect_backend(uint16_t b) {
  Backend& be = _backends[b];
  int s = _sys.socket(be.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    bump(_s.up_failed);  // out of fds: not the backend's fault
    return -1;
  }
  if (!_host.admit(s)) {  // select: over FD_SETSIZE
    _sys.close(s);
    bump(_s.up_failed);
    return -1;
  }
  int one = 1;
  _sys.setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (_sys.connect(s, reinterpret_cast<const sockaddr*>(&be.addr), be.addr_len) != 0 &&
      errno != EINPROGRESS) {
    _sys.close(s);
    bump(_s.up_failed);
    be.down_until = _now + kDownMs;
    return -1;
  }
  Conn& u = _host.slot(s);
  u.gen = (u.gen + 1) & 0x7fffffff;
  u.state = ConnState::upstream;
  u.watched = false;
  u.deadline_ms = kNever;  // the engine's sweep leaves it to the relay
  if (!_host.add(s)) {
    u.state = ConnState::free;
    _sys.close(s);
    bump(_s.up_failed);
    return -1;
  }
  size_t i = static_cast<size_t>(s);
  if (i >= _ups.size()) _ups.resize(i * 2 + 64);
  _ups[i] = Upstream{b, -1, Watch::read};
  be.open++;
  bump(_s.up_opened);
  return s;
}

void Relay::attach(int fd, Exchange& x, int up, bool reused) {
  _ups[static_cast<size_t>(up)].client = fd;
  x.up = up;
  x.reused = reused;
  x.phase = Phase::sending;
  if (reused) bump(_s.up_reused);
  flush_up(fd, x);  // a connect still in progress takes nothing yet (EAGAIN): sent when writable
}

void Relay::serve_waiters(uint16_t b) {
  Backend& be = _backends[b];  // _backends never grows after prepare(): the reference holds
  while (!be.waiting.empty()) {
    bool pooled = !_cfg.proxy_fresh && !be.idle.empty();
    if (!pooled && be.open >= _cfg.proxy_conns) return;
    uint64_t w = be.waiting.front();
    be.waiting.pop_front();
    int fd = static_cast<int>(w & 0xffffffff);
    size_t i = static_cast<size_t>(fd);
    if (i >= _ex.size() || !_ex[i] || _ex[i]->phase != Phase::waiting) continue;
    Conn& c = _host.slot(fd);
    if (c.state != ConnState::open || c.gen != static_cast<uint32_t>(w >> 32)) continue;
    Exchange& x = *_ex[i];
    if (pooled) {
      int up = be.idle.back();
      be.idle.pop_back();
      attach(fd, x, up, true);
      continue;
    }
    int up = connect_backend(b);
    if (up < 0) {
      reply(fd, x, 502);
      continue;
    }
    attach(fd, x, up, false);
  }
}

void Relay::release_upstream(int ufd, bool reusable, bool backend_closes) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  u.client = -1;
  if (_cfg.proxy_fresh && backend_closes && !_stopping) {
    // Wait for the backend's FIN (on_upstream reads it and closes); tick() closes it anyway
    // after --proxy-timeout. It no longer counts against the backend's connections.
    u.linger_until = _now + _cfg.proxy_timeout_ms;
    set_up_watch(ufd, Watch::read);
    _backends[u.backend].open--;
    serve_waiters(u.backend);
    return;
  }
  if (!reusable || _cfg.proxy_fresh || _stopping) {
    close_upstream(ufd);
    return;
  }
  uint16_t b = u.backend;
  set_up_watch(ufd, Watch::read);  // idle: the backend closing it shows as readable
  _backends[b].idle.push_back(ufd);
  serve_waiters(b);
}

void Relay::close_upstream(int ufd) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  uint16_t b = u.backend;
  Backend& be = _backends[b];
  bool lingered = u.linger_until != 0;  // already off the backend's count (release_upstream)
  u.linger_until = 0;
  if (u.client < 0 && !lingered) {
    auto it = std::find(be.idle.begin(), be.idle.end(), ufd);
    if (it != be.idle.end()) be.idle.erase(it);
  }
  u.client = -1;
  _host.forget(ufd);
  _sys.close(ufd);
  Conn& s = _host.slot(ufd);
  s.release_buffers();
  s.state = ConnState::free;
  if (lingered) return;
  be.open--;
  serve_waiters(b);
}

void Relay::set_up_watch(int ufd, Watch w) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  if (u.watching == w) return;
  if (_host.watch(ufd, w)) u.watching = w;
}

// The interest each side needs now. Client: writable while it owes output; readable while
// idle, and during an exchange while what it sent ahead is under kBuf (so the steady state
// changes no interest: no epoll_ctl per request), but not while the backend has not taken the
// body so far. Upstream: writable while request bytes wait, nothing while the client has not
// taken the response so far (backpressure), readable otherwise.
bool Relay::update_watches(int fd, Exchange& x) {
  bool out_pending = x.out_off < x.out.size();
  bool to_up_pending = x.to_up_off < x.to_up.size();
  Watch cw = out_pending                                                 ? Watch::write
             : x.phase == Phase::idle                                    ? Watch::read
             : x.phase == Phase::sending && !x.req_done && to_up_pending ? Watch::none
             : x.in.size() < kBuf                                        ? Watch::read
                                                                         : Watch::none;
  if (cw != x.cw) {
    if (!_host.watch(fd, cw)) {
      _host.close_client(fd);
      return false;
    }
    x.cw = cw;
  }
  if (x.up >= 0)
    set_up_watch(x.up, to_up_pending ? Watch::write
                       : out_pending || x.resp_done ? Watch::none
                                                    : Watch::read);
  return true;
}

// ---- the upstream side ----

// Writes what the backend is owed; once it has taken all of it, takes the next body bytes the
// client sent (only then: the body is never read faster than the backend takes it).
void Relay::flush_up(int fd, Exchange& x) {
  for (;;) {
    while (x.to_up_off < x.to_up.size()) {
      ssize_t n = _sys.write(x.up, x.to_up.data() + x.to_up_off, x.to_up.size() - x.to_up_off);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          update_watches(fd, x);
          return;
        }
        upstream_ended(fd, x);  // refused, reset
        return;
      }
      bump(_s.up_bytes_out, static_cast<uint64_t>(n));
      x.to_up_off += static_cast<size_t>(n);
    }
    if (!(x.replayable && x.reused)) {  // (kept for a retry until the answer starts)
      x.to_up.clear();
      x.to_up_off = 0;
    }
    if (x.req_done) {
      if (x.phase == Phase::sending) x.phase = Phase::receiving;
      break;
    }
    if (x.in.empty()) break;
    if (uint16_t err = take_body(x)) {
      bump(_s.parse_errors);
      reply(fd, x, err);
      return;
    }
    if (x.to_up.empty()) break;
  }
  update_watches(fd, x);
}

void Relay::on_upstream(int ufd, uint32_t ready) {
  size_t i = static_cast<size_t>(ufd);
  if (i >= _ups.size()) return;
  Upstream& u = _ups[i];
  if (u.client < 0) {  // idle in the pool: the backend closed it (or sent what nobody asked)
    ssize_t n = _sys.read(ufd, _buf.get(), kBuf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close_upstream(ufd);
    return;
  }
  int fd = u.client;
  Exchange& x = *_ex[static_cast<size_t>(fd)];
  if (x.to_up_off < x.to_up.size()) {
    if (ready & (kRelayWritable | kRelayHangup)) flush_up(fd, x);
    return;
  }
  if (ready & (kRelayReadable | kRelayHangup)) read_upstream(ufd, fd, x);
}

void Relay::read_upstream(int ufd, int fd, Exchange& x) {
  ssize_t n = _sys.read(ufd, _buf.get(), kBuf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    upstream_ended(fd, x);
    return;
  }
  bump(_s.up_bytes_in, static_cast<uint64_t>(n));
  x.deadline = _now + _cfg.proxy_timeout_ms;  // progress
  response_bytes(fd, x, _buf.get(), static_cast<size_t>(n));
}

void Relay::response_bytes(int fd, Exchange& x, const char* p, size_t n) {
  if (x.replayable) {  // the answer has begun: no retry any more
    x.replayable = false;
    x.to_up.clear();
    x.to_up_off = 0;
  }
  if (!x.head_done) {
    x.head.append(p, n);
    for (;;) {
      UpstreamHead h;
      HeadParse hp = parse_upstream_head(x.head.data(), x.head.size(), kMaxHead, h);
      if (hp == HeadParse::need_more) {
        update_watches(fd, x);
        return;
      }
      if (hp == HeadParse::error || h.status == 101) {  // vw never asks to switch protocols
        bump(_s.up_failed);
        reply(fd, x, 502);
        return;
      }
      if (h.status < 200) {  // 1xx: interim, not relayed
        x.head.erase(0, h.len);
        continue;
      }
      BodyKind k = body_kind(h, x.head_request);
      x.status = h.status;
      x.up_reusable = k != BodyKind::close && !h.conn_close && (h.minor >= 1 || h.conn_keepalive);
      if (k == BodyKind::close) x.keep = false;  // its end is the close: the client's too
      std::string_view add = !x.keep         ? std::string_view("Connection: close\r\n")
                             : x.keepalive10 ? std::string_view("Connection: keep-alive\r\n")
                                             : std::string_view();
      copy_end_to_end(std::string_view(x.head.data(), h.len), true, add, x.out);
      x.head_done = x.sent = true;
      x.body.start(k, h.length);
      x.resp_done = x.body.done();
      bool ok = body_bytes(x, x.head.data() + h.len, x.head.size() - h.len);
      x.head.clear();
      if (!ok) {
        fail(fd);
        return;
      }
      break;
    }
  } else if (!body_bytes(x, p, n)) {
    fail(fd);
    return;
  }
  if (x.resp_done && x.up >= 0) {  // the backend is done: its connection goes back at once
    int up = x.up;
    x.up = -1;
    // A backend that announced its close (as --proxy-fresh asks) is left to close first.
    release_upstream(up, x.up_reusable && x.req_done, !x.up_reusable);
  }
  flush_client(fd, x);
}

bool Relay::body_bytes(Exchange& x, const char* p, size_t n) {
  if (n == 0) return true;
  if (x.resp_done) {  // bytes after the response: the connection's framing cannot be trusted
    x.up_reusable = false;
    return true;
  }
  BodyFramer::Step st = x.body.feed(p, n);
  if (st.error) return false;
  x.out.append(p, st.consumed);
  x.body_out += st.consumed;
  if (st.done) {
    x.resp_done = true;
    if (st.consumed < n) x.up_reusable = false;
  }
  return true;
}

// The backend closed (EOF), or a read or write failed.
void Relay::upstream_ended(int fd, Exchange& x) {
  if (!x.head_done && x.reused && x.replayable && x.head.empty()) {
    // A pooled connection closed before a byte of the answer: once more, on a new connection.
    bump(_s.up_retried);
    int up = x.up;
    x.up = -1;
    x.reused = x.replayable = false;
    x.to_up_off = 0;
    close_upstream(up);
    int fresh = _backends[x.backend].open < _cfg.proxy_conns ? connect_backend(x.backend) : -1;
    if (fresh < 0) {
      reply(fd, x, 502);
      return;
    }
    attach(fd, x, fresh, false);
    return;
  }
  if (!x.head_done) {  // refused, reset or closed before a response: 502
    bump(_s.up_failed);
    if (!x.reused) _backends[x.backend].down_until = _now + kDownMs;
    reply(fd, x, 502);
    return;
  }
  if (x.body.kind() == BodyKind::close && !x.resp_done) {  // the close is the body's end
    x.resp_done = true;
    int up = x.up;
    x.up = -1;
    close_upstream(up);
    flush_client(fd, x);
    return;
  }
  bump(_s.up_failed);
  fail(fd);  // mid-body: the client must see a close, not a short body that looks whole
}

// ---- answering the client ----

void Relay::flush_client(int fd, Exchange& x) {
  while (x.out_off < x.out.size()) {
    ssize_t n = _sys.write(fd, x.out.data() + x.out_off, x.out.size() - x.out_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      _host.close_client(fd);  // EPIPE, ECONNRESET
      return;
    }
    bump(_s.bytes_out, static_cast<uint64_t>(n));
    x.out_off += static_cast<size_t>(n);
    x.deadline = _now + _cfg.proxy_timeout_ms;  // progress: a slow reader, not a dead one
  }
  if (x.out_off < x.out.size()) {
    bump(_s.partial_writes);
    update_watches(fd, x);
    return;
  }
  x.out.clear();
  x.out_off = 0;
  if (x.resp_done) {
    finish(fd, x);
    return;
  }
  update_watches(fd, x);
}

void Relay::finish(int fd, Exchange& x) {
  count_response(_s, x.status);
  // Server-side latency of a relayed request: its backend's round trip included, to the last
  // response byte offered to the client's socket.
  record_latency(_s, mono_ns() - x.read_ns, 1);
  if (_log) {  // no system call, no lock: a full ring drops the record and counts it
    const SessionState& h = _host.slot(fd).http;
    log_response(*_log, _s, _date.now(), h.peer, h.peer_family, x.log_line, x.log_referer,
                 x.log_agent, x.status, x.head_request ? 0 : x.body_out);
  }
  if (x.up >= 0) {
    int up = x.up;
    x.up = -1;
    release_upstream(up, x.up_reusable && x.req_done);
  }
  // A response that came before its request's body was all read leaves the rest of that body
  // in flight: it cannot be told from the next request, so the connection ends.
  bool keep = x.keep && x.req_done && !_stopping;
  x.phase = Phase::idle;
  x.reset_request();
  if (!keep) {
    _host.close_client(fd);
    return;
  }
  start_request(fd, x);  // a pipelined request may be waiting already
}

void Relay::reply(int fd, Exchange& x, uint16_t status) {
  if (x.sent) {
    fail(fd);
    return;
  }
  if (x.up >= 0) {
    int up = x.up;
    x.up = -1;
    close_upstream(up);
  }
  if (status == 502) bump(_s.proxy_502);
  if (status == 504) bump(_s.proxy_504);
  const char* reason = reason_phrase(status);
  char body[64];
  int blen = std::snprintf(body, sizeof(body), "%u %s\n", status, reason);
  char head[256];
  int hlen = std::snprintf(head, sizeof(head),
                           "HTTP/1.1 %u %s\r\nServer: vw\r\nDate: %s\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                           "Connection: close\r\n\r\n",
                           status, reason, _date.value(), blen);
  x.out.assign(head, static_cast<size_t>(hlen));
  x.out.append(body, static_cast<size_t>(blen));
  x.body_out = static_cast<uint64_t>(blen);
  x.out_off = 0;
  x.status = status;
  x.deadline = _now + _cfg.proxy_timeout_ms;  // for a client slow to take even this
  x.phase = Phase::receiving;
  x.sent = x.head_done = x.resp_done = true;
  x.keep = false;  // whatever of the request is still arriving cannot be skipped safely
  flush_client(fd, x);
}

void Relay::fail(int fd) { _host.close_client(fd); }

void Relay::client_closed(int fd) {
  size_t i = static_cast<size_t>(fd);
  if (i >= _ex.size() || !_ex[i]) return;
  Exchange& x = *_ex[i];
  int up = x.up;
  x.up = -1;
  x.phase = Phase::idle;
  x.cw = Watch::read;
  x.reset_request();
  x.in.clear();
  if (x.in.capacity() > kBuf) x.in.shrink_to_fit();
  if (x.out.capacity() > 2 * kBuf) x.out.shrink_to_fit();
  if (up >= 0) close_upstream(up);  // mid-exchange: its framing is unknown, never pooled
}

void Relay::end_pass() {}

void Relay::begin_graceful() {
  _stopping = true;
  for (Backend& be : _backends)
    while (!be.idle.empty()) close_upstream(be.idle.back());  // (it leaves the idle list)
}

bool Relay::in_flight(int fd) const {
  size_t i = static_cast<size_t>(fd);
  return i < _ex.size() && _ex[i] && _ex[i]->phase != Phase::idle;
}

void Relay::tick() {
  for (size_t i = 0; i < _ups.size(); i++) {  // a backend that never closed after its response
    if (_ups[i].linger_until != 0 && _ups[i].linger_until <= _now) close_upstream(static_cast<int>(i));
  }
  for (size_t i = 0; i < _ex.size(); i++) {
    Exchange* x = _ex[i].get();
    if (!x || x->phase == Phase::idle || x->deadline > _now) continue;
    if (!x->sent) {
      reply(static_cast<int>(i), *x, 504);  // no response within --proxy-timeout
    } else {
      fail(static_cast<int>(i));  // a response that stopped coming, or a client that stopped reading
    }
  }
}

}  // namespace vw
