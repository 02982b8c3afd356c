// access_log.cc: the log rings (worker side: claim, fill, publish; no system call, no lock) and
// the vw-log drainer thread (SCHED_OTHER, never pinned: it formats and writes in batches).
#include "worker/access_log.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace vw {

namespace {
constexpr size_t kBufBytes = 256 * 1024;  // formatted lines written per write(2)
constexpr size_t kMaxLine = 2048;         // one escaped line is at most this long
constexpr auto kInterval = std::chrono::milliseconds(10);

size_t keep(char* dst, size_t cap, std::string_view src) {
  size_t n = std::min(cap, src.size());
  if (n) std::memcpy(dst, src.data(), n);
  return n;
}
}  // namespace

LogRing::LogRing(size_t capacity_pow2, bool multi_producer)
    : _slots(new Slot[capacity_pow2]), _mask(capacity_pow2 - 1), _multi(multi_producer) {
  for (size_t i = 0; i < capacity_pow2; i++) _slots[i].seq.store(i, std::memory_order_relaxed);
}

LogRecord* LogRing::claim(StatsSlot& stats, uint64_t& ticket) {
  uint64_t pos = _head.load(std::memory_order_relaxed);
  for (;;) {
    Slot& s = _slots[pos & _mask];
    uint64_t seq = s.seq.load(std::memory_order_acquire);
    int64_t dif = static_cast<int64_t>(seq - pos);
    if (dif < 0) {  // the drainer has not read this slot's previous record yet: full
      bump(stats.log_dropped);
      return nullptr;
    }
    if (dif == 0) {
      if (!_multi) {
        _head.store(pos + 1, std::memory_order_relaxed);
      } else if (!_head.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        continue;  // another connection thread took it; pos was reloaded
      }
      ticket = pos;
      return &s.rec;
    }
    pos = _head.load(std::memory_order_relaxed);  // multi: another thread moved on
  }
}

void LogRing::publish(uint64_t ticket) {
  _slots[ticket & _mask].seq.store(ticket + 1, std::memory_order_release);
}

const LogRecord* LogRing::peek() {
  Slot& s = _slots[_tail & _mask];
  if (s.seq.load(std::memory_order_acquire) != _tail + 1) return nullptr;
  return &s.rec;
}

void LogRing::release() {
  _slots[_tail & _mask].seq.store(_tail + _mask + 1, std::memory_order_release);
  _tail++;
}

void log_response(LogRing& ring, StatsSlot& stats, int64_t time_s, const uint8_t* addr,
                  uint8_t family, std::string_view line, std::string_view referer,
                  std::string_view agent, uint16_t status, uint64_t bytes) {
  uint64_t ticket;
  LogRecord* r = ring.claim(stats, ticket);
  if (!r) return;
  r->time_s = time_s;
  r->bytes = bytes;
  r->status = status;
  r->family = family;
  if (family) std::memcpy(r->addr, addr, 16);
  size_t start = line.find_first_not_of("\r\n");  // empty lines before a request line
  line = start == std::string_view::npos ? std::string_view() : line.substr(start);
  size_t eol = line.find_first_of("\r\n");
  if (eol != std::string_view::npos) line = line.substr(0, eol);
  r->line_len = static_cast<uint8_t>(keep(r->line, sizeof(r->line), line));
  r->referer_len = static_cast<uint8_t>(keep(r->referer, sizeof(r->referer), referer));
  r->agent_len = static_cast<uint8_t>(keep(r->agent, sizeof(r->agent), agent));
  ring.publish(ticket);
}

// ---- the drainer ----

AccessLog::AccessLog(size_t workers, bool multi_producer, LogFormat format, int fd, bool owned)
    : _format(format), _fd(fd), _owned(owned), _buf(new char[kBufBytes]) {
  for (size_t i = 0; i < workers; i++)
    _rings.push_back(std::make_unique<LogRing>(8192, multi_producer));
}

AccessLog::~AccessLog() {
  stop();
  int next = _next_fd.exchange(-1);
  if (next >= 0) ::close(next);
}

int AccessLog::start(const std::vector<int>& worker_cpus) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the thread inherits the mask: no signal lands there
  _thread = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  cpu_set_t free_cpus;
  if (sched_getaffinity(0, sizeof free_cpus, &free_cpus) != 0) return errno;
  for (int cpu : worker_cpus) {
    if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_CLR(cpu, &free_cpus);
  }
  if (CPU_COUNT(&free_cpus) == 0) return 0;  // a worker on every CPU: the scheduler places it
  return pthread_setaffinity_np(_thread.native_handle(), sizeof free_cpus, &free_cpus);
}

void AccessLog::reopen(int fd) {
  int old = _next_fd.exchange(fd);
  if (old >= 0) ::close(old);  // a reopen the drainer had not taken yet
}

void AccessLog::stop() {
  std::call_once(_stopped, [this] {
    {
      std::lock_guard<std::mutex> lock(_mu);
      _stop = true;
    }
    _cv.notify_all();
    if (_thread.joinable()) _thread.join();
    while (drain_once()) {
    }
    flush();
    if (_owned && _fd >= 0) ::close(_fd);
    _fd = -1;
  });
}

void AccessLog::run() {
  pthread_setname_np(pthread_self(), "vw-log");
  std::unique_lock<std::mutex> lock(_mu);
  while (!_stop) {
    lock.unlock();
    size_t n = drain_once();
    lock.lock();
    // A busy pass drains again at once; a quiet one sleeps for the interval (or until stop).
    if (n < 1024 && !_stop) _cv.wait_for(lock, kInterval);
  }
}

void AccessLog::flush() {
  size_t off = 0;
  while (off < _used && _fd >= 0) {
    ssize_t n = ::write(_fd, _buf.get() + off, _used - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a full disk or a closed pipe: the lines are lost, the workers go on
    off += static_cast<size_t>(n);
  }
  _used = 0;
}

namespace {

const char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char* put_str(char* p, const char* s) {
  while (*s) *p++ = *s++;
  return p;
}

char* put_num(char* p, uint64_t v, int width = 0) {
  char tmp[20];
  int n = 0;
  do tmp[n++] = static_cast<char>('0' + v % 10);
  while (v /= 10);
  while (n < width) tmp[n++] = '0';
  while (n) *p++ = tmp[--n];
  return p;
}

// Inside quotes: `"` and `\` escaped, control and non-ASCII bytes as \xHH (nginx's escaping),
// so a request line cannot forge a second log line or end its field early.
char* put_escaped(char* p, const char* s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  if (n == 0) return put_str(p, "-");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      *p++ = '\\';
      *p++ = static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      *p++ = '\\';
      *p++ = 'x';
      *p++ = hex[c >> 4];
      *p++ = hex[c & 15];
    } else {
      *p++ = static_cast<char>(c);
    }
  }
  return p;
}

// The drainer's side, so inet_ntop's cost is off the workers. An IPv4 client of a dual-stack
// listener (::ffff:a.b.c.d) is written as a.b.c.d, as nginx does.
char* put_addr(char* p, const LogRecord& r) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char text[INET6_ADDRSTRLEN];
  const char* ok = nullptr;
  if (r.family == 4) ok = inet_ntop(AF_INET, r.addr, text, sizeof(text));
  else if (r.family == 6 && std::memcmp(r.addr, mapped, 12) == 0) ok = inet_ntop(AF_INET, r.addr + 12, text, sizeof(text));
  else if (r.family == 6) ok = inet_ntop(AF_INET6, r.addr, text, sizeof(text));
  return put_str(p, ok ? text : "-");
}

}  // namespace

size_t AccessLog::drain_once() {
  int next = _next_fd.exchange(-1);
  if (next >= 0) {  // reopen: what was formatted for the old file goes there first
    flush();
    if (_owned && _fd >= 0) ::close(_fd);
    _fd = next;
    _owned = true;
  }
  size_t done = 0;
  int64_t cached_s = -1;
  char stamp[32];
  size_t stamp_len = 0;
  for (auto& ring : _rings) {
    while (const LogRecord* r = ring->peek()) {
      if (_used + kMaxLine > kBufBytes) flush();
      if (r->time_s != cached_s) {  // "[10/Oct/2000:13:55:36 +0000]", once per second
        cached_s = r->time_s;
        time_t t = static_cast<time_t>(r->time_s);
        tm u;
        gmtime_r(&t, &u);
        char* q = stamp;
        *q++ = '[';
        q = put_num(q, static_cast<uint64_t>(u.tm_mday), 2);
        *q++ = '/';
        q = put_str(q, kMonths[u.tm_mon]);
        *q++ = '/';
        q = put_num(q, static_cast<uint64_t>(u.tm_year + 1900), 4);
        *q++ = ':';
        q = put_num(q, static_cast<uint64_t>(u.tm_hour), 2);
        *q++ = ':';
        q = put_num(q, static_cast<uint64_t>(u.tm_min), 2);
        *q++ = ':';
        q = put_num(q, static_cast<uint64_t>(u.tm_sec), 2);
        q = put_str(q, " +0000]");
        stamp_len = static_cast<size_t>(q - stamp);
      }
      char* p = _buf.get() + _used;
      p = put_addr(p, *r);
      p = put_str(p, " - - ");
      std::memcpy(p, stamp, stamp_len);
      p += stamp_len;
      p = put_str(p, " \"");
      p = put_escaped(p, r->line, r->line_len);
      p = put_str(p, "\" ");
      p = put_num(p, r->status);
      *p++ = ' ';
      if (r->bytes) p = put_num(p, r->bytes);
      else *p++ = '-';
      if (_format == LogFormat::combined) {
        p = put_str(p, " \"");
        p = put_escaped(p, r->referer, r->referer_len);
        p = put_str(p, "\" \"");
        p = put_escaped(p, r->agent, r->agent_len);
        *p++ = '"';
      }
      *p++ = '\n';
      _used = static_cast<size_t>(p - _buf.get());
      ring->release();
      done++;
    }
  }
  flush();
  return done;
}

}  // namespace vw
