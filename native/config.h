// config.h: the plain structs that cross the seam. vw.cc fills them once from validated JS
// values; nothing below vw.cc ever sees a JS value.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "acl.h"

namespace vw {

struct ListenAddr {
  int family = 0;    // AF_INET or AF_INET6
  std::string host;  // numeric address, e.g. "0.0.0.0", "::", "127.0.0.1"
  uint16_t port = 0;
  bool dual_stack = false;  // AF_INET6 only: also accept IPv4 (IPV6_V6ONLY off)
};

enum class Policy { other, fifo, rr };

// --coalesce: how a worker holds its wake-ups back under load (coalesce.h).
enum class CoalesceMode { off, fixed, adaptive };
struct CoalesceConfig {
  CoalesceMode mode = CoalesceMode::adaptive;
  uint32_t bound_us = 250;  // the most a wake-up is held back, µs (fixed: always this)
};

struct Limits {
  uint32_t max_header = 8 * 1024;     // request line + header fields, bytes (431 above)
  uint64_t max_body = 1024 * 1024;    // Content-Length accepted and skipped (413 above)
  uint32_t max_conns = 65536;         // per worker; excess closed at accept
  uint32_t header_timeout_ms = 10000;  // a request header must complete within this
  uint32_t idle_timeout_ms = 60000;    // an idle keep-alive connection lives this long
  uint32_t linger_timeout_ms = 2000;   // draining unread input after a closing response
  uint32_t drain_timeout_ms = 5000;    // graceful stop: in-flight responses get this long
};

struct Config {
  std::string engine = "epoll";  // how workers drive their sockets (engines.cc)
  bool sqpoll = false;           // uring engine: a kernel thread polls the submission queue
  CoalesceConfig coalesce;
  std::vector<int> cpus;  // one worker per entry, pinned to that CPU
  std::vector<ListenAddr> listen;
  Policy policy = Policy::fifo;
  int priority = 50;
  bool keepalive = true;
  bool locality = false;  // read SO_INCOMING_CPU once per accepted connection
  int backlog = 4096;
  std::vector<Cidr> allow;  // empty: every peer
  Limits limits;
};

// What each worker reports once it has started (or failed to).
struct WorkerStatus {
  bool ready = false;
  int cpu = -1;        // the CPU it pinned itself to
  int getcpu = -1;     // the CPU getcpu said it runs on after pinning
  int tid = 0;
  Policy policy = Policy::other;  // the policy it actually got
  int priority = 0;
  int rt_errno = 0;   // why the requested real-time policy was refused (0: granted)
  int err = 0;        // fatal start error (errno), 0 when ready
  std::string err_what;  // which step failed, e.g. "bind 0.0.0.0:80"
};

}  // namespace vw
