// engine_epoll.cc: the epoll engine. One blocking point per worker (epoll_wait over listeners,
// connections, a 1 s timerfd and the stop eventfd), level-triggered so one read per readiness
// is enough (no read that ends in EAGAIN), one write per batch of pipelined responses.
// Everything here runs on the worker thread.
#include <fcntl.h>
#include <limits.h>
#include <sys/timerfd.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "engine.h"
#include "session.h"
#include "sys.h"

namespace vw {
namespace {

constexpr size_t kReadBuf = 64 * 1024;
constexpr int kMaxEvents = 512;
constexpr uint32_t kMinInCap = 1024;

// epoll data: a connection is fd | gen << 32; the top bit marks the worker's own fds.
constexpr uint64_t kSpecial = 1ull << 63;
constexpr uint64_t kTagWake = kSpecial | 1;
constexpr uint64_t kTagTimer = kSpecial | 2;
constexpr uint64_t kTagListener = kSpecial | 0x100;  // + listener index
constexpr uint32_t kGenMask = 0x7fffffff;

uint64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // vDSO: no system call
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

enum class WriteResult { done, pending, failed };

class EpollEngine final : public Engine {
 public:
  explicit EpollEngine(WorkerEnv& env) : _env(env), _sys(env.stats), _lim(env.config.limits) {}
  ~EpollEngine() override;
  int prepare(std::string& what) override;
  void run() override;

 private:
  bool stopping() const { return _stop != kRunning; }
  void on_stop_message();
  void on_tick();
  void on_accept(size_t listener);
  void on_conn_event(int fd, Conn& c, uint32_t events);
  void on_readable(int fd, Conn& c);
  void on_writable(int fd, Conn& c);
  void serve(int fd, Conn& c, const char* data, size_t len);
  WriteResult write_batch(int fd, Conn& c, const ResponseTable* table);
  WriteResult write_pending(int fd, Conn& c);
  void keep_input(Conn& c, const char* p, size_t n);
  void finish_response(int fd, Conn& c);
  void close_conn(int fd, Conn& c);
  void count_locality(int fd);
  bool watch(int fd, Conn& c, uint32_t events, int op = EPOLL_CTL_MOD);
  void set_listening(bool on);
  void close_listeners();
  void begin_graceful();
  int reserve_fd_trick(int lfd);

  WorkerEnv& _env;
  Sys _sys;
  const Limits& _lim;
  Fd _ep;
  Fd _timer;
  Fd _reserve;  // a spare fd, given up to accept-and-close when the process runs out (EMFILE)
  std::vector<Conn> _conns;  // indexed by fd
  uint32_t _open = 0;
  bool _listening = true;
  int _stop = kRunning;
  uint64_t _now_ms = 0;
  uint64_t _drain_deadline_ms = 0;
  DateCache _date;
  std::unique_ptr<OutBatch> _out;
  std::unique_ptr<char[]> _rbuf;  // shared by every connection: a read lands here first
  epoll_event _events[kMaxEvents];
};

EpollEngine::~EpollEngine() {
  // Teardown, not the hot path: plain close, not counted.
  for (size_t fd = 0; fd < _conns.size(); fd++) {
    if (_conns[fd].state == ConnState::free) continue;
    ::close(static_cast<int>(fd));
    _conns[fd].release_buffers();
  }
  drop(_env.stats.conns_open, _open);
  bump(_env.stats.conns_closed, _open);
}

int EpollEngine::prepare(std::string& what) {
  _out = std::make_unique<OutBatch>();
  _rbuf = std::make_unique<char[]>(kReadBuf);
  _ep.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!_ep.valid()) {
    what = "epoll_create1";
    return errno;
  }
  _timer.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  itimerspec every_second{{1, 0}, {1, 0}};
  if (!_timer.valid() || timerfd_settime(_timer.get(), 0, &every_second, nullptr)) {
    what = "timerfd";
    return errno;
  }
  _reserve.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto add = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return epoll_ctl(_ep.get(), EPOLL_CTL_ADD, fd, &ev);
  };
  if (add(_env.wake_fd, kTagWake) || add(_timer.get(), kTagTimer)) {
    what = "epoll_ctl";
    return errno;
  }
  for (size_t i = 0; i < _env.listeners.size(); i++) {
    if (add(_env.listeners[i].get(), kTagListener + i)) {
      what = "epoll_ctl listener";
      return errno;
    }
  }
  _date.refresh();
  return 0;
}

void EpollEngine::run() {
  StatsSlot& s = _env.stats;
  for (;;) {
    int n = _sys.epoll_wait(_ep.get(), _events, kMaxEvents, -1);
    _env.pass_quiescent_point();  // no table pointer is held across iterations
    bump(s.loops);
    if (n < 0) continue;  // EINTR: signals are blocked, but a debugger can still cause it
    bump(s.events, static_cast<uint64_t>(n));
    _date.refresh();
    _now_ms = mono_ms();
    for (int i = 0; i < n; i++) {
      uint64_t tag = _events[i].data.u64;
      if (tag & kSpecial) {
        if (tag == kTagWake) on_stop_message();
        else if (tag == kTagTimer) on_tick();
        else on_accept(static_cast<size_t>(tag - kTagListener));
        if (_stop == kImmediate) return;
        continue;
      }
      int fd = static_cast<int>(tag & 0xffffffff);
      Conn& c = _conns[static_cast<size_t>(fd)];
      // Hazard: an earlier event of this batch may have closed fd, and an accept may have
      // reused it. The generation tells the old connection's event from the new one's.
      if (c.state == ConnState::free || c.gen != static_cast<uint32_t>(tag >> 32)) continue;
      on_conn_event(fd, c, _events[i].events);
    }
    if (stopping() && _open == 0) return;
  }
}

void EpollEngine::on_stop_message() {
  uint64_t v;
  _sys.read(_env.wake_fd, &v, sizeof(v));
  int mode = _env.stop_mode.load();
  if (mode == _stop) return;
  if (mode == kGraceful) begin_graceful();
  _stop = mode;
}

void EpollEngine::begin_graceful() {
  close_listeners();
  _drain_deadline_ms = _now_ms + _lim.drain_timeout_ms;
  // Tick every 100 ms while draining, so the deadline holds to within a tenth of a second.
  itimerspec fast{{0, 100 * 1000 * 1000}, {0, 100 * 1000 * 1000}};
  _sys.timerfd_settime(_timer.get(), &fast);
  for (size_t fd = 0; fd < _conns.size(); fd++) {
    Conn& c = _conns[fd];
    if (c.state == ConnState::free) continue;
    if (c.out) {
      c.close_after_write = true;  // an in-flight response is finished, then the connection ends
      c.linger_after_write = false;
    } else {
      close_conn(static_cast<int>(fd), c);
    }
  }
}

void EpollEngine::close_listeners() {
  for (Fd& l : _env.listeners) {
    if (!l.valid()) continue;
    _sys.close(l.release());  // closing removes it from the epoll set too
  }
}

void EpollEngine::on_tick() {
  uint64_t expirations;
  _sys.read(_timer.get(), &expirations, sizeof(expirations));
  store_relaxed(_env.stats.cpu, static_cast<uint64_t>(sched_getcpu()));
  if (stopping() && _now_ms >= _drain_deadline_ms) {
    for (size_t fd = 0; fd < _conns.size(); fd++)
      if (_conns[fd].state != ConnState::free) close_conn(static_cast<int>(fd), _conns[fd]);
    return;
  }
  if (!_listening && !stopping()) set_listening(true);
  // Coarse sweep: one pass a second over the table instead of a timer per connection.
  for (size_t fd = 0; fd < _conns.size(); fd++) {
    Conn& c = _conns[fd];
    if (c.state == ConnState::free || c.deadline_ms > _now_ms) continue;
    if (c.state == ConnState::open) bump(_env.stats.timeouts);
    close_conn(static_cast<int>(fd), c);
  }
}

void EpollEngine::set_listening(bool on) {
  _listening = on;
  for (size_t i = 0; i < _env.listeners.size(); i++) {
    if (!_env.listeners[i].valid()) continue;
    epoll_event ev{};
    ev.events = on ? static_cast<uint32_t>(EPOLLIN) : 0u;
    ev.data.u64 = kTagListener + i;
    _sys.epoll_ctl(_ep.get(), EPOLL_CTL_MOD, _env.listeners[i].get(), &ev);
  }
}

// Out of fds: give the spare back, accept the waiting connection and close it at once, so the
// client hears a clean close and the listener stops being readable instead of spinning.
int EpollEngine::reserve_fd_trick(int lfd) {
  if (!_reserve.valid()) return -1;
  _sys.close(_reserve.release());
  int fd = _sys.accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) _sys.close(fd);
  _reserve.reset(_sys.open("/dev/null", O_RDONLY | O_CLOEXEC));
  return fd;
}

void EpollEngine::on_accept(size_t li) {
  if (li >= _env.listeners.size() || !_env.listeners[li].valid()) return;
  int lfd = _env.listeners[li].get();
  StatsSlot& s = _env.stats;
  const std::vector<Cidr>& acl = _env.config.allow;
  for (;;) {  // until EAGAIN: the backlog must not fill
    sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    int fd = _sys.accept4(lfd, acl.empty() ? nullptr : reinterpret_cast<sockaddr*>(&peer),
                          acl.empty() ? nullptr : &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      bump(s.accept_errors);
      if ((err == EMFILE || err == ENFILE) && reserve_fd_trick(lfd) >= 0) {
        bump(s.rejected);
        continue;
      }
      // ENOBUFS, ENOMEM, or no spare fd: stop listening until the next tick rather than
      // spin on a listener that stays readable.
      set_listening(false);
      return;
    }
    if (_open >= _lim.max_conns) {
      bump(s.rejected);
      _sys.close(fd);
      continue;
    }
    if (!acl_allows(acl, peer)) {
      bump(s.denied);
      _sys.close(fd);
      continue;
    }
    if (static_cast<size_t>(fd) >= _conns.size()) _conns.resize(static_cast<size_t>(fd) * 2 + 64);
    Conn& c = _conns[static_cast<size_t>(fd)];
    c.gen = (c.gen + 1) & kGenMask;
    c.state = ConnState::open;
    c.close_after_write = c.linger_after_write = c.header_started = c.out_was_pending = false;
    c.body_left = 0;
    c.deadline_ms = _now_ms + _lim.header_timeout_ms;
    if (!watch(fd, c, EPOLLIN, EPOLL_CTL_ADD)) {
      c.state = ConnState::free;
      _sys.close(fd);
      continue;
    }
    if (_env.config.locality) count_locality(fd);
    _open++;
    bump(s.conns_accepted);
    bump(s.conns_open);
  }
}

// Which CPU processed this connection's packets (RSS/RPS steering), against the worker's own.
void EpollEngine::count_locality(int fd) {
  int cpu = -1;
  socklen_t len = sizeof(cpu);
  if (_sys.getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) != 0 || cpu < 0) return;
  if (static_cast<uint64_t>(cpu) == _env.stats.cpu.load(std::memory_order_relaxed))
    bump(_env.stats.incoming_local);
  else
    bump(_env.stats.incoming_remote);
}

bool EpollEngine::watch(int fd, Conn& c, uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = static_cast<uint64_t>(fd) | (static_cast<uint64_t>(c.gen) << 32);
  return _sys.epoll_ctl(_ep.get(), op, fd, &ev) == 0;
}

void EpollEngine::on_conn_event(int fd, Conn& c, uint32_t events) {
  if (c.out) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(fd, c);
    return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(fd, c);
}

void EpollEngine::on_readable(int fd, Conn& c) {
  char* dst = _rbuf.get();
  size_t room = kReadBuf;
  if (c.state == ConnState::open && c.in_len) {
    // An unfinished header continues where it stopped, in the connection's own buffer.
    if (c.in_len == c.in_cap) {
      uint32_t cap = c.in_cap * 2 > _lim.max_header ? _lim.max_header : c.in_cap * 2;
      if (cap <= c.in_cap) cap = c.in_cap + kMinInCap;  // parser answers 431 before this grows far
      c.in = static_cast<char*>(std::realloc(c.in, cap));
      c.in_cap = cap;
    }
    dst = c.in + c.in_len;
    room = c.in_cap - c.in_len;
  }
  ssize_t n = _sys.read(fd, dst, room);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close_conn(fd, c);  // EOF, ECONNRESET
    return;
  }
  bump(_env.stats.bytes_in, static_cast<uint64_t>(n));
  if (c.state == ConnState::lingering) return;  // discarded: the answer was already final
  if (dst == _rbuf.get()) {
    serve(fd, c, dst, static_cast<size_t>(n));
  } else {
    c.in_len += static_cast<uint32_t>(n);
    serve(fd, c, c.in, c.in_len);
  }
}

void EpollEngine::serve(int fd, Conn& c, const char* data, size_t len) {
  ServeCtx ctx{_env.table.load(std::memory_order_acquire), &_date, &_lim, _env.config.keepalive,
               &_env.stats};
  bool was_started = c.header_started;
  size_t pos = 0;
  for (;;) {
    _out->clear();
    ServeOutcome o = serve_requests(ctx, c, data + pos, len - pos, *_out);
    pos += o.consumed;
    if (!_out->empty()) {
      c.close_after_write = o.close;
      c.linger_after_write = o.linger;
      WriteResult w = write_batch(fd, c, ctx.table);
      if (w == WriteResult::failed) {
        close_conn(fd, c);
        return;
      }
      if (w == WriteResult::pending) {
        // Stop reading until the client takes what it asked for: its output stays bounded.
        keep_input(c, data + pos, len - pos);
        c.deadline_ms = _now_ms + _lim.idle_timeout_ms;
        watch(fd, c, EPOLLOUT);
        return;
      }
    }
    if (o.close) {
      finish_response(fd, c);
      return;
    }
    if (!o.batch_full) break;
  }
  keep_input(c, data + pos, len - pos);
  if (!c.header_started) {
    c.deadline_ms = _now_ms + _lim.idle_timeout_ms;
  } else if (!was_started) {
    c.deadline_ms = _now_ms + _lim.header_timeout_ms;  // slowloris bound starts at first byte
  }
}

// Keeps the unanswered tail of the input in the connection's buffer (data may already be it).
void EpollEngine::keep_input(Conn& c, const char* p, size_t n) {
  if (n == 0) {
    if (c.in) {  // idle connections hold no buffer
      std::free(c.in);
      c.in = nullptr;
      c.in_cap = 0;
    }
    c.in_len = 0;
    return;
  }
  if (p == c.in && n == c.in_len) return;
  if (c.in && p >= c.in && p < c.in + c.in_cap) {
    std::memmove(c.in, p, n);
  } else {
    if (n > c.in_cap) {
      uint32_t cap = static_cast<uint32_t>(n) > kMinInCap ? static_cast<uint32_t>(n) : kMinInCap;
      std::free(c.in);
      c.in = static_cast<char*>(std::malloc(cap));
      c.in_cap = cap;
    }
    std::memcpy(c.in, p, n);
  }
  c.in_len = static_cast<uint32_t>(n);
}

WriteResult EpollEngine::write_batch(int fd, Conn& c, const ResponseTable* table) {
  OutBatch& out = *_out;
  const iovec* iov = out.iov();
  int cnt = out.iovcnt();
  ssize_t n = cnt == 1 ? _sys.write(fd, iov[0].iov_base, iov[0].iov_len) : _sys.writev(fd, iov, cnt);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) return WriteResult::failed;  // EPIPE, ECONNRESET
    n = 0;
  }
  bump(_env.stats.bytes_out, static_cast<uint64_t>(n));
  size_t written = static_cast<size_t>(n);
  if (written == out.bytes()) return WriteResult::done;
  bump(_env.stats.partial_writes);

  // Keep what is left: staged parts are copied (the stage is reused by the next connection),
  // body references stay references into the immutable table.
  size_t skip = written, staged = 0;
  for (int i = 0; i < cnt; i++) {
    size_t len = iov[i].iov_len, off = skip < len ? skip : len;
    skip -= off;
    if (out.in_stage(iov[i].iov_base)) staged += len - off;
  }
  auto p = new PendingOut();
  p->copied.reset(new char[staged ? staged : 1]);
  char* dst = p->copied.get();
  skip = written;
  for (int i = 0; i < cnt; i++) {
    size_t len = iov[i].iov_len, off = skip < len ? skip : len;
    skip -= off;
    if (off == len) continue;
    const char* src = static_cast<const char*>(iov[i].iov_base) + off;
    if (out.in_stage(iov[i].iov_base)) {
      std::memcpy(dst, src, len - off);
      p->iov.push_back({dst, len - off});
      dst += len - off;
    } else {
      p->iov.push_back({const_cast<char*>(src), len - off});
      if (!p->pinned) p->pin(table);
    }
  }
  c.out = p;
  return WriteResult::pending;
}

WriteResult EpollEngine::write_pending(int fd, Conn& c) {
  PendingOut& p = *c.out;
  int cnt = static_cast<int>(p.iov.size() - p.first);
  if (cnt > IOV_MAX) cnt = IOV_MAX;
  ssize_t n = _sys.writev(fd, p.iov.data() + p.first, cnt);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return WriteResult::pending;
    return WriteResult::failed;
  }
  bump(_env.stats.bytes_out, static_cast<uint64_t>(n));
  size_t left = static_cast<size_t>(n);
  while (p.first < p.iov.size() && left >= p.iov[p.first].iov_len) left -= p.iov[p.first++].iov_len;
  if (p.first == p.iov.size()) return WriteResult::done;
  p.iov[p.first].iov_base = static_cast<char*>(p.iov[p.first].iov_base) + left;
  p.iov[p.first].iov_len -= left;
  bump(_env.stats.partial_writes);
  return WriteResult::pending;
}

void EpollEngine::on_writable(int fd, Conn& c) {
  WriteResult w = write_pending(fd, c);
  if (w == WriteResult::failed) {
    close_conn(fd, c);
    return;
  }
  c.deadline_ms = _now_ms + _lim.idle_timeout_ms;  // progress: a slow reader, not a dead one
  if (w == WriteResult::pending) return;
  delete c.out;
  c.out = nullptr;
  if (c.close_after_write) {
    c.out_was_pending = true;
    finish_response(fd, c);
    return;
  }
  if (!watch(fd, c, EPOLLIN)) {
    close_conn(fd, c);
    return;
  }
  // Requests that arrived with the ones just answered are answered now, without a read.
  if (c.in_len) serve(fd, c, c.in, c.in_len);
}

// The last response of the connection is out: close, or shut writing and drain first.
void EpollEngine::finish_response(int fd, Conn& c) {
  if (!c.linger_after_write || stopping()) {
    close_conn(fd, c);
    return;
  }
  _sys.shutdown(fd, SHUT_WR);
  // After a partial write the interest is EPOLLOUT, which a shut-down socket reports forever:
  // back to EPOLLIN, or the loop would spin (at SCHED_FIFO) until the linger deadline.
  if (c.out_was_pending && !watch(fd, c, EPOLLIN)) {
    close_conn(fd, c);
    return;
  }
  c.state = ConnState::lingering;
  c.deadline_ms = _now_ms + _lim.linger_timeout_ms;
  std::free(c.in);
  c.in = nullptr;
  c.in_len = c.in_cap = 0;
}

void EpollEngine::close_conn(int fd, Conn& c) {
  _sys.close(fd);
  c.release_buffers();
  c.state = ConnState::free;
  c.body_left = 0;
  c.header_started = false;
  _open--;
  drop(_env.stats.conns_open);
  bump(_env.stats.conns_closed);
}

}  // namespace

std::unique_ptr<Engine> make_epoll_engine(WorkerEnv& env) {
  return std::make_unique<EpollEngine>(env);
}

}  // namespace vw
