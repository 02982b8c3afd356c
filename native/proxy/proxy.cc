// proxy.cc: the relay declared in proxy.h, its client side. Per client connection one exchange
// at a time: request head (hop-by-hop fields dropped) and body forwarded, response head and
// body relayed, then the next pipelined request. Bounded: a client is read only while its
// request needs bytes, a backend only while the client has taken what came before
// (backpressure both ways). Choosing, pipelining and closing upstream connections is
// upstream_pool.cc's.
#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "http/http.h"
#include "proxy/exchange.h"
#include "worker/clock.h"

namespace vw {
namespace {

constexpr size_t kMaxHead = 64 * 1024;   // a backend's response head

}  // namespace

Relay::Relay(const Config& cfg, StatsSlot& stats, Sys& sys, const DateCache& date,
             const uint64_t& now_ms, RelayHost& host, LogRing* log)
    : _cfg(cfg), _s(stats), _sys(sys), _date(date), _now(now_ms), _host(host), _log(log) {}

Relay::~Relay() = default;

Relay::Exchange& Relay::ex(int fd) {
  size_t i = static_cast<size_t>(fd);
  if (i >= _ex.size()) _ex.resize(i * 2 + 64);
  if (!_ex[i]) {
    _ex[i] = std::make_unique<Exchange>();
    _ex[i]->fd = fd;
  }
  return *_ex[i];
}

// ---- the client side ----

void Relay::on_client(int fd, uint32_t ready) {
  Exchange& x = ex(fd);
  if (x.out_off < x.out.size()) {
    if (ready & (kRelayWritable | kRelayHangup)) flush_client(x);
    return;
  }
  if (ready & (kRelayReadable | kRelayHangup)) read_client(x);
}

void Relay::read_client(Exchange& x) {
  ssize_t n = _sys.read(x.fd, _buf.get(), kRelayBuf);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    _host.close_client(x.fd);  // EOF or reset: whatever this client's exchange held goes too
    return;
  }
  bump(_s.bytes_in, static_cast<uint64_t>(n));
  x.in.append(_buf.get(), static_cast<size_t>(n));
  if (x.phase == Phase::idle) {
    start_request(x);
  } else if (x.phase == Phase::sending && !x.req_done && x.to_up_off == x.to_up.size()) {
    flush_up(x);  // takes the body bytes that came
  } else {
    update_watches(x);  // the next requests (or more body): kept, up to kRelayBuf
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

void Relay::start_request(Exchange& x) {
  const Limits& lim = _cfg.limits;
  Conn& c = _host.slot(x.fd);
  if (x.in.empty()) {
    c.http.header_started = false;
    c.deadline_ms = _now + lim.idle_timeout_ms;
    update_watches(x);
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
    update_watches(x);
    return;
  }
  x.reset_request();
  x.read_ns = mono_ns();
  if (_log) keep_for_log(x, std::string_view(x.in.data(), pr.consumed ? pr.consumed : x.in.size()),
                         pr.status == Parse::error ? nullptr : &req);
  if (pr.status == Parse::error) {
    bump(_s.parse_errors);
    reply(x, pr.error_status);
    return;
  }
  uint16_t refuse = req.transfer == TransferCoding::unsupported ? 501
                    : req.content_length > lim.max_body          ? 413
                                                                 : 0;
  if (refuse) {
    bump(_s.parse_errors);
    reply(x, refuse);
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
  // An HTTP/1.0 request goes up as HTTP/1.1 (copy_end_to_end), which must carry a Host: one
  // that came without gets an empty one, as for a target without authority (RFC 9112 §3.2).
  std::string_view v;
  std::string_view f = req.fields;
  bool add_host = req.minor == 0 && !next_field_value(f, "host", v);
  static constexpr std::string_view kAdd[2][2] = {
      {"", "Connection: close\r\n"}, {"Host: \r\n", "Host: \r\nConnection: close\r\n"}};
  copy_end_to_end(std::string_view(x.in.data(), pr.consumed), kAdd[add_host][_cfg.proxy_fresh],
                  x.to_up);
  x.in.erase(0, pr.consumed);  // (req's views pointed into it: not used past here)
  c.http.header_started = false;
  c.deadline_ms = kNever;  // the exchange's own deadline governs until the response is out
  x.deadline = _now + _cfg.proxy_timeout_ms;
  if (uint16_t err = take_body(x)) {
    bump(_s.parse_errors);
    reply(x, err);
    return;
  }
  // A GET or HEAD held whole may be sent again when its connection closes before the answer
  // begins (RFC 9112 §9.3.1), and only such a request is pipelined (§9.3.2).
  x.replayable = x.req_done && (req.method == Method::get || req.method == Method::head);
  dispatch(x);
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

// The interest each side needs now. Client: writable while it owes output; readable while
// idle, and during an exchange while what it sent ahead is under kRelayBuf (so the steady
// state changes no interest: no epoll_ctl per request), but not while the backend has not
// taken the body so far. Upstream: upstream_interest().
bool Relay::update_watches(Exchange& x) {
  if (x.fd < 0) return true;  // an orphan has no client to watch
  bool out_pending = x.out_off < x.out.size();
  bool to_up_pending = x.to_up_off < x.to_up.size();
  Watch cw = out_pending                                                 ? Watch::write
             : x.phase == Phase::idle                                    ? Watch::read
             : x.phase == Phase::sending && !x.req_done && to_up_pending ? Watch::none
             : x.in.size() < kRelayBuf                                   ? Watch::read
                                                                         : Watch::none;
  if (cw != x.cw) {
    if (!_host.watch(x.fd, cw)) {
      _host.close_client(x.fd);
      return false;
    }
    x.cw = cw;
  }
  if (x.up >= 0) update_up_watch(x.up);
  return true;
}

// ---- the upstream side of an exchange ----

// Writes what the backend is owed on x's own connection (not pipelined); once it has taken all
// of it, takes the next body bytes the client sent (only then: the body is never read faster
// than the backend takes it).
void Relay::flush_up(Exchange& x) {
  for (;;) {
    while (x.to_up_off < x.to_up.size()) {
      ssize_t n = up_write(x.up, x.to_up.data() + x.to_up_off, x.to_up.size() - x.to_up_off);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          update_watches(x);
          return;
        }
        upstream_ended(x.up);  // refused, reset
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
      reply(x, err);
      return;
    }
    if (x.to_up.empty()) break;
  }
  update_watches(x);
}

void Relay::on_upstream(int ufd, uint32_t ready) {
  size_t i = static_cast<size_t>(ufd);
  if (i >= _ups.size()) return;
  Upstream& u = _ups[i];
  if (u.queue.empty()) {  // idle in the pool: the backend closed it (or sent what nobody asked)
    ssize_t n = up_read(ufd);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close_upstream(ufd);
    return;
  }
  if (u.write_blocked) {
    if (ready & (kRelayWritable | kRelayHangup)) flush_pipeline(ufd);
    return;
  }
  Exchange& x = *u.queue.front();
  if (!x.pipelined && x.to_up_off < x.to_up.size()) {
    if (ready & (kRelayWritable | kRelayHangup)) flush_up(x);
    return;
  }
  if (ready & (kRelayReadable | kRelayHangup)) read_upstream(ufd);
}

// One read from a backend; its bytes are the answers of the exchanges queued on the connection,
// in order (more than one when pipelined).
void Relay::read_upstream(int ufd) {
  ssize_t n = up_read(ufd);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    upstream_ended(ufd);
    return;
  }
  bump(_s.up_bytes_in, static_cast<uint64_t>(n));
  const uint32_t gen = _host.slot(ufd).gen;
  const char* p = _buf.get();
  size_t left = static_cast<size_t>(n);
  while (left > 0) {
    Upstream& u = _ups[static_cast<size_t>(ufd)];
    if (u.queue.empty()) {  // bytes nobody asked for: its framing cannot be trusted
      close_upstream(ufd);
      return;
    }
    Exchange& x = *u.queue.front();
    x.deadline = _now + _cfg.proxy_timeout_ms;  // progress
    size_t used = response_bytes(x, p, left);
    if (used == kGone) return;
    p += used;
    left -= used;
    bool done = x.resp_done, orphaned = x.fd < 0;
    if (done) answered(ufd, x, left > 0);  // x leaves the queue (an orphan is freed: x is gone)
    if (orphaned) continue;
    flush_client(x);  // (it may start x's next request, on this connection too)
    if (!alive(ufd, gen)) return;
  }
}

// Takes x's response from n bytes of its connection. Returns how many were x's (the rest
// begin the next response on a pipelined connection), or kGone when they ended x in a failure
// (a malformed head: 502; malformed chunked framing: the client closes), its connection too.
size_t Relay::response_bytes(Exchange& x, const char* p, size_t n) {
  if (x.replayable) {  // the answer has begun: no retry any more
    x.replayable = false;
    x.to_up.clear();
    x.to_up_off = 0;
  }
  size_t used = 0;
  if (x.head_done) {
    if (body_bytes(x, p, n, used)) return used;
    broken(x);
    return kGone;
  }
  // The head is parsed where it lies: in p, or (when it began in an earlier read) in x.head.
  bool held = !x.head.empty();
  if (held) x.head.append(p, n);  // no complete head before these bytes: it ends within them
  const char* b = held ? x.head.data() : p;
  size_t bn = held ? x.head.size() : n;
  size_t at = 0;  // past the 1xx heads skipped
  for (;;) {
    UpstreamHead h;
    HeadParse hp = parse_upstream_head(b + at, bn - at, kMaxHead, h);
    if (hp == HeadParse::need_more) {
      if (held) x.head.erase(0, at);
      else x.head.assign(b + at, bn - at);
      update_watches(x);
      return n;
    }
    if (hp == HeadParse::error || h.status == 101) {  // vw never asks to switch protocols
      broken(x);
      return kGone;
    }
    if (h.status < 200) {  // 1xx: interim, not relayed
      at += h.len;
      continue;
    }
    BodyKind k = body_kind(h, x.head_request);
    x.status = h.status;
    x.up_reusable = k != BodyKind::close && !h.conn_close && (h.minor >= 1 || h.conn_keepalive);
    if (k == BodyKind::close) x.keep = false;  // its end is the close: the client's too
    std::string_view add = !x.keep         ? std::string_view("Connection: close\r\n")
                           : x.keepalive10 ? std::string_view("Connection: keep-alive\r\n")
                                           : std::string_view();
    if (x.fd >= 0) copy_end_to_end(std::string_view(b + at, h.len), add, x.out);
    x.head_done = x.sent = true;
    x.body.start(k, h.length);
    x.resp_done = x.body.done();
    size_t rest = bn - at - h.len;
    bool ok = body_bytes(x, b + at + h.len, rest, used);
    if (held) x.head.clear();
    if (!ok) {
      broken(x);
      return kGone;
    }
    return n - (rest - used);  // what is left over ends the buffer, so it ends p
  }
}

// x's backend broke the framing (a malformed head or chunked body): its connection closes, and
// the client gets a 502, or a close when part of the answer was relayed already.
void Relay::broken(Exchange& x) {
  bump(_s.up_failed);
  if (x.fd < 0) {
    close_upstream(x.up);  // (it frees the orphan)
    return;
  }
  reply(x, 502);  // (a close when x.sent)
}

// Body bytes of x's response: `used` of them are x's. False: malformed chunked framing.
bool Relay::body_bytes(Exchange& x, const char* p, size_t n, size_t& used) {
  used = 0;
  if (n == 0 || x.resp_done) return true;
  BodyFramer::Step st = x.body.feed(p, n);
  if (st.error) return false;
  if (x.fd >= 0) x.out.append(p, st.consumed);  // an orphan's answer is read and dropped
  x.body_out += st.consumed;
  used = st.consumed;
  if (st.done) x.resp_done = true;
  return true;
}

// The backend closed ufd (EOF), or a read or write on it failed. The exchange it was answering
// learns how (below); those queued behind it never got an answer (close_upstream).
void Relay::upstream_ended(int ufd) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  if (u.queue.empty()) {
    close_upstream(ufd);
    return;
  }
  Exchange& x = *u.queue.front();
  if (x.fd < 0) {  // an orphan: nobody to tell
    close_upstream(ufd);
    return;
  }
  if (!x.head_done && x.head.empty() && (x.reused || x.pipelined) && x.replayable) {
    // A pooled or shared connection closed before a byte of the answer: once more, on a new
    // connection of its own (detach closes this one; requeue sends it again).
    detach(x);
    requeue(x);
    return;
  }
  if (!x.head_done) {  // refused, reset or closed before a response: 502
    bump(_s.up_failed);
    if (!x.reused && !x.pipelined) _backends[x.backend].down_until = _now + kDownMs;
    reply(x, 502);
    return;
  }
  if (x.body.kind() == BodyKind::close && !x.resp_done) {  // the close is the body's end
    x.resp_done = true;
    detach(x);
    flush_client(x);
    return;
  }
  bump(_s.up_failed);
  detach(x);
  fail(x);  // mid-body: the client must see a close, not a short body that looks whole
}

// ---- answering the client ----

void Relay::flush_client(Exchange& x) {
  while (x.out_off < x.out.size()) {
    ssize_t n = _sys.write(x.fd, x.out.data() + x.out_off, x.out.size() - x.out_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      _host.close_client(x.fd);  // EPIPE, ECONNRESET
      return;
    }
    bump(_s.bytes_out, static_cast<uint64_t>(n));
    x.out_off += static_cast<size_t>(n);
    x.deadline = _now + _cfg.proxy_timeout_ms;  // progress: a slow reader, not a dead one
  }
  if (x.out_off < x.out.size()) {
    bump(_s.partial_writes);
    update_watches(x);
    return;
  }
  x.out.clear();
  x.out_off = 0;
  if (x.resp_done) {
    finish(x);
    return;
  }
  update_watches(x);
}

void Relay::finish(Exchange& x) {
  count_response(_s, x.status);
  // Server-side latency of a relayed request: its backend's round trip included, to the last
  // response byte offered to the client's socket.
  record_latency(_s, mono_ns() - x.read_ns, 1);
  if (_log) {  // no system call, no lock: a full ring drops the record and counts it
    const SessionState& h = _host.slot(x.fd).http;
    log_response(*_log, _s, _date.now(), h.peer, h.peer_family, x.log_line, x.log_referer,
                 x.log_agent, x.status, x.head_request ? 0 : x.body_out);
  }
  if (x.up >= 0) detach(x);  // (answered() normally let it go already)
  // A response that came before its request's body was all read leaves the rest of that body
  // in flight: it cannot be told from the next request, so the connection ends.
  bool keep = x.keep && x.req_done && !_stopping;
  bool linger = x.own_answer || !x.req_done || !x.in.empty();  // unread input may follow
  x.phase = Phase::idle;
  x.reset_request();
  if (!keep) {
    end_client(x, linger);
    return;
  }
  start_request(x);  // a pipelined request may be waiting already
}

void Relay::reply(Exchange& x, uint16_t status) {
  if (x.sent) {
    if (x.up >= 0) detach(x);
    fail(x);
    return;
  }
  if (x.up >= 0) detach(x);
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
  x.own_answer = true;
  flush_client(x);
}

// The client's connection ends after its last response: closed, or with `linger` (input may
// still come) handed to the engine's lingering close, watched for reading (a shut socket
// reports writable forever).
void Relay::end_client(Exchange& x, bool linger) {
  if (!linger || _stopping) {
    _host.close_client(x.fd);
    return;
  }
  if (x.cw != Watch::read) {
    if (!_host.watch(x.fd, Watch::read)) {
      _host.close_client(x.fd);
      return;
    }
    x.cw = Watch::read;
  }
  _host.linger_client(x.fd);
}

void Relay::fail(Exchange& x) {
  if (x.fd >= 0) _host.close_client(x.fd);
}

void Relay::client_closed(int fd) {
  size_t i = static_cast<size_t>(fd);
  if (i >= _ex.size() || !_ex[i]) return;
  Exchange& x = *_ex[i];
  if (x.up >= 0 && x.pipelined && x.req_done) {
    // Its answer still comes on a connection other clients share: read and dropped there.
    orphan(x);  // _ex[i] is empty now; the next client on fd gets a new exchange
    return;
  }
  if (x.up >= 0) detach(x);  // mid-exchange: its framing is unknown, never pooled
  x.phase = Phase::idle;
  x.cw = Watch::read;
  x.reset_request();
  x.in.clear();
  if (x.in.capacity() > kRelayBuf) x.in.shrink_to_fit();
  if (x.out.capacity() > 2 * kRelayBuf) x.out.shrink_to_fit();
}

void Relay::begin_graceful() {
  _stopping = true;
  for (Backend& be : _backends) {
    be.filling = -1;  // nothing more joins a pipeline
    while (!be.idle.empty()) close_upstream(be.idle.back());  // (it leaves the idle list)
  }
}

bool Relay::in_flight(int fd) const {
  size_t i = static_cast<size_t>(fd);
  return i < _ex.size() && _ex[i] && _ex[i]->phase != Phase::idle;
}

void Relay::tick() {
  for (size_t i = 0; i < _ups.size(); i++) {
    Upstream& u = _ups[i];
    // A backend that never closed after its response (--proxy-fresh).
    if (u.linger_until != 0 && u.linger_until <= _now) close_upstream(static_cast<int>(i));
    // An orphan whose answer stopped coming holds up those queued behind it.
    else if (!u.queue.empty() && u.queue.front()->fd < 0 && u.queue.front()->deadline <= _now)
      close_upstream(static_cast<int>(i));
  }
  for (size_t i = 0; i < _ex.size(); i++) {
    Exchange* x = _ex[i].get();
    if (!x || x->phase == Phase::idle || x->deadline > _now) continue;
    // Queued behind another answer on a pipelined connection: the one answered now times out.
    if (x->up >= 0 && _ups[static_cast<size_t>(x->up)].queue.front() != x) continue;
    if (!x->sent) {
      reply(*x, 504);  // no response within --proxy-timeout
    } else {
      fail(*x);  // a response that stopped coming, or a client that stopped reading
    }
  }
}

}  // namespace vw
