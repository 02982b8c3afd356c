// proxy.h: --proxy, the relay: each client request is forwarded to a backend (round-robin per
// worker) over an upstream connection of the worker's own pool, and the backend's response is
// relayed back, one exchange at a time per client connection (so pipelined responses keep their
// order). With --proxy-pipeline N, whole GET and HEAD requests of several clients share an
// upstream connection, up to N in flight (RFC 9112 §9.3.2), written once per loop pass. Engine-neutral: an engine lends it its fd table and interest set through RelayHost and
// calls on_client / on_upstream for readiness, client_closed when it closes a client, tick once
// a second. Framing lives in upstream_http.h. Worker thread only: no lock, nothing shared.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "http/chunked.h"
#include "http/http.h"
#include "worker/config.h"
#include "engine/conn.h"
#include "http/responses.h"
#include "worker/stats.h"
#include "worker/access_log.h"
#include "worker/sys.h"
#include "proxy/upstream_http.h"

namespace vw {

enum class Watch : uint8_t { read, write, none };

// What an engine lends the relay. Upstream fds live in the engine's own fd table (state
// ConnState::upstream), so its stale-event guard covers them too. Hazard: slot() may grow the
// table, so the relay never keeps a Conn& across a call; it asks again.
class RelayHost {
 public:
  virtual Conn& slot(int fd) = 0;                  // the table entry of fd (the table grows)
  virtual bool admit(int fd) = 0;                  // can the interest set hold this fd?
  virtual bool add(int fd) = 0;                    // watch a new upstream fd, for reading
  virtual bool watch(int fd, Watch w) = 0;         // change an fd's interest
  virtual void forget(int fd) = 0;                 // an upstream fd is about to be closed
  virtual void close_client(int fd) = 0;           // close a client (it calls client_closed)
  // The client's last response is out and unread input may follow (an error answered before
  // its body was read, pipelined requests): the engine's lingering close, as after its own
  // last response (shut writing, read and drop until the client's FIN or the linger deadline,
  // RFC 9112 §9.6), so the client reads the answer instead of a reset. The fd is watched for
  // reading; the engine calls client_closed when it closes.
  virtual void linger_client(int fd) = 0;

 protected:
  ~RelayHost() = default;
};

// Readiness bits, as readiness.h passes them.
constexpr uint32_t kRelayReadable = 1, kRelayWritable = 2, kRelayHangup = 4;

class Relay {
 public:
  static constexpr size_t kRelayBufSize = 64 * 1024;  // one read from either side

  // `log`: --access-log's ring of this worker (null without it): a record per response relayed.
  Relay(const Config& cfg, StatsSlot& stats, Sys& sys, const DateCache& date,
        const uint64_t& now_ms, RelayHost& host, LogRing* log);
  ~Relay();  // frees state; the engine closes the fds in its table
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Before the gate: the backends' addresses and the read buffer. Returns errno, names `what`.
  int prepare(std::string& what);

  void on_client(int fd, uint32_t ready);
  void on_upstream(int fd, uint32_t ready);
  void client_closed(int fd);  // the engine closed client fd (any reason)
  void tick();                 // once a second: --proxy-timeout
  // The end of an event loop pass (every ready fd of one wait handled): the requests pipelined
  // during the pass go out here, one write per upstream connection (--proxy-pipeline).
  void end_pass();
  // Graceful stop: idle pooled connections close, exchanges in flight finish, then their
  // clients close (the engine closes the other clients).
  void begin_graceful();
  bool in_flight(int fd) const;

 private:
  enum class Phase : uint8_t { idle, waiting, sending, receiving };
  struct Exchange;  // one client connection's relay state (exchange.h)
  struct Upstream;  // one upstream connection (exchange.h)
  struct Backend;   // one --proxy address and its pool (exchange.h)
  static constexpr size_t kGone = SIZE_MAX;  // response_bytes: the exchange ended in a failure

  // ---- the client side (proxy.cc) ----
  Exchange& ex(int fd);
  void read_client(Exchange& x);
  void start_request(Exchange& x);
  void keep_for_log(Exchange& x, std::string_view head, const Request* req);
  uint16_t take_body(Exchange& x);
  void flush_up(Exchange& x);
  void read_upstream(int ufd);
  size_t response_bytes(Exchange& x, const char* p, size_t n);
  bool body_bytes(Exchange& x, const char* p, size_t n, size_t& used);
  void broken(Exchange& x);
  void upstream_ended(int ufd);
  void flush_client(Exchange& x);
  void finish(Exchange& x);
  void reply(Exchange& x, uint16_t status);
  void end_client(Exchange& x, bool linger);
  void fail(Exchange& x);  // mid-response: drop the client, never a truncated body that looks whole
  bool update_watches(Exchange& x);

  // ---- upstream connections (upstream_pool.cc) ----
  void dispatch(Exchange& x);
  int pick_upstream(Exchange& x, bool& reused);
  void attach(Exchange& x, int up, bool reused);
  void answered(int ufd, Exchange& x, bool more_bytes);
  void detach(Exchange& x);  // x stops waiting for its answer: its connection closes
  void requeue(Exchange& x);  // x's connection closed before its answer: again, or 502
  void orphan(Exchange& x);   // x's client is gone but its pipelined answer is still coming
  void free_orphan(Exchange* x);
  void flush_pipeline(int ufd);
  Watch upstream_interest(const Upstream& u) const;
  void set_up_watch(int ufd, Watch w);
  void update_up_watch(int ufd);
  int connect_backend(uint16_t b);
  // Back to the pool, or closed; with `backend_closes` (a whole response whose backend said it
  // closes) under --proxy-fresh, left to the backend to close first (linger_until).
  void release_upstream(int ufd, bool reusable, bool backend_closes = false);
  // Closes ufd; the exchanges still queued on it never got their answer (requeue()). Then
  // the clients waiting for a connection to its backend get one, unless !serve_next.
  void close_upstream(int ufd, bool serve_next = true);
  void serve_waiters(uint16_t b);
  bool alive(int ufd, uint32_t gen);  // ufd is still the upstream connection of generation gen
  // System calls on upstream fds: counted by Sys with the rest, and apart (up_sys_*).
  ssize_t up_read(int ufd) {
    bump(_s.up_sys_read);
    return _sys.read(ufd, _buf.get(), kRelayBufSize);
  }
  ssize_t up_write(int ufd, const char* p, size_t n) {
    bump(_s.up_sys_write);
    return _sys.write(ufd, p, n);
  }
  void up_close(int ufd) {
    bump(_s.up_sys_close);
    _sys.close(ufd);
  }

  const Config& _cfg;
  StatsSlot& _s;
  Sys& _sys;
  const DateCache& _date;
  const uint64_t& _now;
  RelayHost& _host;
  LogRing* _log;
  std::vector<Backend> _backends;
  size_t _next = 0;                            // round-robin position
  bool _stopping = false;
  std::vector<std::unique_ptr<Exchange>> _ex;  // by client fd
  std::vector<Upstream> _ups;                  // by upstream fd
  std::vector<int> _dirty;                     // upstream fds with pipelined bytes to write
  std::vector<std::unique_ptr<Exchange>> _orphans;  // exchanges whose clients closed
  std::unique_ptr<char[]> _buf;                // one read lands here (either side)
};

}  // namespace vw
