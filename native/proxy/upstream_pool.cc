// upstream_pool.cc: the relay's upstream connections (proxy.h): a backend chosen round-robin,
// a connection taken from its keep-alive pool or opened on the worker's own CPU, waiting in
// turn when the pool is at --proxy-conns, back to the pool after a whole response, closed
// otherwise. With --proxy-pipeline N, whole GET and HEAD requests join the connection their
// backend is filling (up to N in flight) and go out together, one write per connection per
// loop pass; their answers come back in order, so each connection keeps a queue of the
// exchanges it owes an answer. A connection that closes before it answered them sends each
// again once, on a connection of its own (RFC 9112 §9.3.2), or answers 502.
#include <arpa/inet.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cerrno>

#include "proxy/exchange.h"

namespace vw {

int Relay::prepare(std::string& what) {
  _buf = std::make_unique<char[]>(kRelayBuf);
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

// ---- choosing a connection ----

void Relay::dispatch(Exchange& x) {
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
    reply(x, 502);
    return;
  }
  _next = (b + 1) % nb;
  x.backend = static_cast<uint16_t>(b);
  x.pipelined = _cfg.proxy_pipeline > 1 && x.replayable && !x.solo && !_cfg.proxy_fresh;
  bool reused = false;
  int up = pick_upstream(x, reused);
  if (up == -2) {
    reply(x, 502);
    return;
  }
  if (up >= 0) {
    attach(x, up, reused);
    return;
  }
  x.phase = Phase::waiting;  // every connection to this backend is busy: first come, first served
  _backends[b].waiting.push_back(static_cast<uint64_t>(x.fd) |
                                 static_cast<uint64_t>(_host.slot(x.fd).gen) << 32);
  update_watches(x);
}

// A connection to x's backend: the one filling a pipeline (x.pipelined), a pooled one (not for
// a retry, which wants a new one), or a new one. -1: none free now; -2: connecting failed.
int Relay::pick_upstream(Exchange& x, bool& reused) {
  Backend& be = _backends[x.backend];  // _backends never grows after prepare()
  if (x.pipelined && be.filling >= 0 &&
      _ups[static_cast<size_t>(be.filling)].queue.size() < _cfg.proxy_pipeline) {
    reused = true;
    return be.filling;
  }
  // A retry wants a new connection: when the pool is full, an idle one makes room for it.
  if (x.solo && be.open >= _cfg.proxy_conns && !be.idle.empty()) close_upstream(be.idle.front(), false);
  int up = -1;
  if (!_cfg.proxy_fresh && !x.solo && !be.idle.empty()) {
    up = be.idle.back();
    be.idle.pop_back();
    reused = true;
  } else if (be.open < _cfg.proxy_conns) {
    up = connect_backend(x.backend);
    if (up < 0) return -2;
    reused = false;
  } else {
    return -1;
  }
  if (x.pipelined) be.filling = up;
  return up;
}

void Relay::attach(Exchange& x, int up, bool reused) {
  Upstream& u = _ups[static_cast<size_t>(up)];
  if (!u.queue.empty()) bump(_s.up_pipelined);  // behind another request on the connection
  u.queue.push_back(&x);
  x.up = up;
  x.reused = reused;
  if (u.queue.size() == 1) x.deadline = _now + _cfg.proxy_timeout_ms;  // its answer is next
  if (reused) bump(_s.up_reused);
  if (!x.pipelined) {
    x.phase = Phase::sending;
    flush_up(x);  // a connect still in progress takes nothing yet (EAGAIN): sent when writable
    return;
  }
  // Pipelined: the whole request joins the connection's bytes, written at the pass's end. x
  // keeps its copy while a retry may need it.
  u.out.append(x.to_up);
  x.to_up_off = x.to_up.size();
  x.phase = Phase::receiving;
  if (!u.dirty) {
    u.dirty = true;
    _dirty.push_back(up);
  }
  update_watches(x);
}

void Relay::serve_waiters(uint16_t b) {
  Backend& be = _backends[b];
  while (!be.waiting.empty()) {
    uint64_t w = be.waiting.front();
    int fd = static_cast<int>(w & 0xffffffff);
    size_t i = static_cast<size_t>(fd);
    if (i >= _ex.size() || !_ex[i] || _ex[i]->phase != Phase::waiting ||
        _host.slot(fd).state != ConnState::open ||
        _host.slot(fd).gen != static_cast<uint32_t>(w >> 32)) {
      be.waiting.pop_front();  // closed, or reused by another client, while it waited
      continue;
    }
    Exchange& x = *_ex[i];
    bool reused = false;
    int up = pick_upstream(x, reused);
    if (up == -1) return;  // still none free: it stays first in line
    be.waiting.pop_front();
    if (up == -2) {
      reply(x, 502);
      continue;
    }
    attach(x, up, reused);
  }
}

int Relay::connect_backend(uint16_t b) {
  Backend& be = _backends[b];
  int s = _sys.socket(be.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    bump(_s.up_failed);  // out of fds: not the backend's fault
    return -1;
  }
  if (!_host.admit(s)) {  // select: over FD_SETSIZE
    up_close(s);
    bump(_s.up_failed);
    return -1;
  }
  int one = 1;
  _sys.setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (_sys.connect(s, reinterpret_cast<const sockaddr*>(&be.addr), be.addr_len) != 0 &&
      errno != EINPROGRESS) {
    up_close(s);
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
    up_close(s);
    bump(_s.up_failed);
    return -1;
  }
  size_t i = static_cast<size_t>(s);
  if (i >= _ups.size()) _ups.resize(i * 2 + 64);
  _ups[i] = Upstream();
  _ups[i].backend = b;
  be.open++;
  bump(_s.up_opened);
  return s;
}

// ---- an answer, and after it ----

// x's whole answer came on ufd (more bytes after it when `more_bytes`): x leaves the queue,
// and the connection goes back to the pool once it owes nothing, unless it cannot be trusted
// or reused any more.
void Relay::answered(int ufd, Exchange& x, bool more_bytes) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  u.queue.erase(u.queue.begin());  // (x was its front)
  x.up = -1;
  bool reusable = x.up_reusable && x.req_done;
  bool backend_closes = !x.up_reusable;
  if (x.fd < 0) free_orphan(&x);  // x is gone from here on
  if (!reusable || (more_bytes && u.queue.empty())) {
    // A backend that closes after this answer will not give the ones queued behind it; bytes
    // after the last answer owed mean its framing cannot be trusted. Nothing more joins it.
    u.closing = true;
    Backend& be = _backends[u.backend];
    if (be.filling == ufd) be.filling = -1;
  }
  if (!u.queue.empty()) {
    u.queue.front()->deadline = _now + _cfg.proxy_timeout_ms;  // its turn starts now
    Backend& be = _backends[u.backend];
    if (!u.closing && !be.waiting.empty() && u.queue.size() < _cfg.proxy_pipeline) {
      be.filling = ufd;  // room in this pipeline again: the clients waiting join it
      serve_waiters(u.backend);
    }
    return;
  }
  if (more_bytes) return;  // read_upstream closes it
  if (u.closing) {
    // A backend that announced its close (as --proxy-fresh asks) is left to close first.
    release_upstream(ufd, false, backend_closes);
    return;
  }
  release_upstream(ufd, true);
}

void Relay::release_upstream(int ufd, bool reusable, bool backend_closes) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  Backend& be = _backends[u.backend];
  if (be.filling == ufd) be.filling = -1;
  if (_cfg.proxy_fresh && backend_closes && !_stopping) {
    // Wait for the backend's FIN (on_upstream reads it and closes); tick() closes it anyway
    // after --proxy-timeout. It no longer counts against the backend's connections.
    u.linger_until = _now + _cfg.proxy_timeout_ms;
    set_up_watch(ufd, Watch::read);
    be.open--;
    serve_waiters(u.backend);
    return;
  }
  if (!reusable || _cfg.proxy_fresh || _stopping) {
    close_upstream(ufd);
    return;
  }
  uint16_t b = u.backend;
  set_up_watch(ufd, Watch::read);  // idle: the backend closing it shows as readable
  be.idle.push_back(ufd);
  serve_waiters(b);
}

// x no longer waits for its answer on its connection (a 502/504, a client gone mid-exchange,
// a failure): the connection's framing is unknown from here, so it closes.
void Relay::detach(Exchange& x) {
  int ufd = x.up;
  if (ufd < 0) return;
  std::vector<Exchange*>& q = _ups[static_cast<size_t>(ufd)].queue;
  auto it = std::find(q.begin(), q.end(), &x);
  if (it != q.end()) q.erase(it);
  x.up = -1;
  close_upstream(ufd);
}

void Relay::close_upstream(int ufd, bool serve_next) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  uint16_t b = u.backend;
  Backend& be = _backends[b];
  bool lingered = u.linger_until != 0;  // already off the backend's count (release_upstream)
  if (be.filling == ufd) be.filling = -1;
  if (u.queue.empty() && !lingered) {
    auto it = std::find(be.idle.begin(), be.idle.end(), ufd);
    if (it != be.idle.end()) be.idle.erase(it);
  }
  std::vector<Exchange*> unanswered;
  unanswered.swap(u.queue);
  u = Upstream();  // (a later connection on this fd starts clean; dirty is off)
  u.backend = b;
  _host.forget(ufd);
  up_close(ufd);
  Conn& s = _host.slot(ufd);
  s.release_buffers();
  s.state = ConnState::free;
  if (!lingered) be.open--;
  for (Exchange* x : unanswered) requeue(*x);
  if (!lingered && serve_next) serve_waiters(b);
}

// x's connection closed before a byte of its answer came: once more on a new connection of its
// own when that is safe (a GET or HEAD not retried before), else a 502.
void Relay::requeue(Exchange& x) {
  x.up = -1;
  if (x.fd < 0) {
    free_orphan(&x);
    return;
  }
  if (!x.replayable || x.solo) {
    bump(_s.up_failed);
    reply(x, 502);
    return;
  }
  bump(_s.up_retried);
  x.deadline = _now + _cfg.proxy_timeout_ms;
  x.solo = true;
  x.reused = false;
  x.to_up_off = 0;
  x.phase = Phase::sending;
  dispatch(x);
}

void Relay::orphan(Exchange& x) {
  std::unique_ptr<Exchange>& slot = _ex[static_cast<size_t>(x.fd)];
  x.fd = -1;
  x.out.clear();
  x.out_off = 0;
  _orphans.push_back(std::move(slot));  // the queue's pointer to x stays valid
}

void Relay::free_orphan(Exchange* x) {
  auto it = std::find_if(_orphans.begin(), _orphans.end(),
                         [x](const std::unique_ptr<Exchange>& o) { return o.get() == x; });
  if (it == _orphans.end()) return;
  std::swap(*it, _orphans.back());
  _orphans.pop_back();
}

bool Relay::alive(int ufd, uint32_t gen) {
  const Conn& c = _host.slot(ufd);
  return c.state == ConnState::upstream && c.gen == gen;
}

// ---- writing pipelined requests ----

void Relay::end_pass() {
  for (size_t i = 0; i < _dirty.size(); i++) {  // (flushing may add to it: looked at again)
    int ufd = _dirty[i];
    if (_ups[static_cast<size_t>(ufd)].dirty) flush_pipeline(ufd);
  }
  _dirty.clear();
}

void Relay::flush_pipeline(int ufd) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  u.dirty = false;
  while (u.out_off < u.out.size()) {
    ssize_t n = up_write(ufd, u.out.data() + u.out_off, u.out.size() - u.out_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        u.write_blocked = true;  // (a connect still in progress, or a backend not reading)
        update_up_watch(ufd);
        return;
      }
      upstream_ended(ufd);  // refused, reset
      return;
    }
    bump(_s.up_bytes_out, static_cast<uint64_t>(n));
    u.out_off += static_cast<size_t>(n);
  }
  u.out.clear();
  u.out_off = 0;
  u.write_blocked = false;
  update_up_watch(ufd);
}

// ---- interest ----

// Writable while request bytes wait after a write that could not take them all; nothing while
// the client being answered has not taken its response so far (backpressure); readable
// otherwise, idle included (the backend closing it shows as readable).
Watch Relay::upstream_interest(const Upstream& u) const {
  if (u.write_blocked) return Watch::write;
  if (u.queue.empty()) return Watch::read;
  const Exchange& f = *u.queue.front();
  if (!f.pipelined && f.to_up_off < f.to_up.size()) return Watch::write;
  if (f.out_off < f.out.size()) return Watch::none;
  return Watch::read;
}

void Relay::update_up_watch(int ufd) {
  set_up_watch(ufd, upstream_interest(_ups[static_cast<size_t>(ufd)]));
}

void Relay::set_up_watch(int ufd, Watch w) {
  Upstream& u = _ups[static_cast<size_t>(ufd)];
  if (u.watching == w) return;
  if (_host.watch(ufd, w)) u.watching = w;
}

}  // namespace vw
