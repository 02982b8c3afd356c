// proxy.h: --proxy, the relay: each client request is forwarded to a backend (round-robin per
// worker) over an upstream connection of the worker's own pool, and the backend's response is
// relayed back, one exchange at a time per client connection (so pipelined responses keep their
// order). Engine-neutral: an engine lends it its fd table and interest set through RelayHost and
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

 protected:
  ~RelayHost() = default;
};

// Readiness bits, as readiness.h passes them.
constexpr uint32_t kRelayReadable = 1, kRelayWritable = 2, kRelayHangup = 4;

class Relay {
 public:
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
  // The end of an event loop pass (every ready fd of one wait handled): upstream bytes queued
  // during the pass go out here, one write per upstream connection (--proxy-pipeline).
  void end_pass();
  // Graceful stop: idle pooled connections close, exchanges in flight finish, then their
  // clients close (the engine closes the other clients).
  void begin_graceful();
  bool in_flight(int fd) const;

 private:
  enum class Phase : uint8_t { idle, waiting, sending, receiving };
  struct Exchange;  // one client connection's relay state (proxy.cc)
  struct Backend {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    uint32_t open = 0;             // upstream connections open now (busy or idle)
    std::vector<int> idle;         // pooled keep-alive connections, last in first out
    std::deque<uint64_t> waiting;  // clients waiting for a connection: fd | gen << 32
    uint64_t down_until = 0;       // a failed backend is skipped until then (ms)
  };
  struct Upstream {
    uint16_t backend = 0;
    int client = -1;  // the client whose exchange uses it; -1: idle in the pool (or lingering)
    Watch watching = Watch::read;
    // --proxy-fresh: the response is whole and the backend was asked to close; the connection
    // waits for its FIN until then (ms), so the TIME_WAIT is the backend's, not ours. 0: not.
    uint64_t linger_until = 0;
  };

  Exchange& ex(int fd);
  void read_client(int fd, Exchange& x);
  void start_request(int fd, Exchange& x);
  void keep_for_log(Exchange& x, std::string_view head, const Request* req);
  uint16_t take_body(Exchange& x);
  void dispatch(int fd, Exchange& x);
  void attach(int fd, Exchange& x, int up, bool reused);
  void flush_up(int fd, Exchange& x);
  void read_upstream(int ufd, int fd, Exchange& x);
  void response_bytes(int fd, Exchange& x, const char* p, size_t n);
  bool body_bytes(Exchange& x, const char* p, size_t n);
  void upstream_ended(int fd, Exchange& x);
  void flush_client(int fd, Exchange& x);
  void finish(int fd, Exchange& x);
  void reply(int fd, Exchange& x, uint16_t status);
  void fail(int fd);  // mid-response: drop the client, never a truncated body that looks whole
  bool update_watches(int fd, Exchange& x);
  void set_up_watch(int ufd, Watch w);
  int connect_backend(uint16_t b);
  // Back to the pool, or closed; with `backend_closes` (a whole response whose backend said it
  // closes) under --proxy-fresh, left to the backend to close first (linger_until).
  void release_upstream(int ufd, bool reusable, bool backend_closes = false);
  void close_upstream(int ufd);
  void serve_waiters(uint16_t b);

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
  std::unique_ptr<char[]> _buf;                // one read lands here (either side)
};

}  // namespace vw
