// config.h: the plain structs that cross the seam. vw.cc fills them once from validated JS
// values; nothing below vw.cc ever sees a JS value.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/acl.h"

namespace vw {

struct ListenAddr {
  int family = 0;    // AF_INET or AF_INET6
  std::string host;  // numeric address, e.g. "0.0.0.0", "::", "127.0.0.1"
  uint16_t port = 0;
  bool dual_stack = false;  // AF_INET6 only: also accept IPv4 (IPV6_V6ONLY off)
};

// The scheduling policies: X(enumerator, name from the launcher, name reported back). One list
// for the enum, read_config/trialCpus (policy_from_name) and the reports (policy_sched_name).
#define VW_POLICIES(X)                  \
  X(other, "other", "SCHED_OTHER")      \
  X(fifo, "fifo", "SCHED_FIFO")         \
  X(rr, "rr", "SCHED_RR")

#define VW_POLICY_ENUM(e, name, sched) e,
enum class Policy { VW_POLICIES(VW_POLICY_ENUM) };
#undef VW_POLICY_ENUM

// "fifo" → Policy::fifo; false for a name not in VW_POLICIES.
inline bool policy_from_name(const std::string& name, Policy& out) {
#define VW_POLICY_MATCH(e, n, sched) \
  if (name == n) {                   \
    out = Policy::e;                 \
    return true;                     \
  }
  VW_POLICIES(VW_POLICY_MATCH)
#undef VW_POLICY_MATCH
  return false;
}

// Policy::fifo → "SCHED_FIFO", as the kernel's headers and tools name it.
inline const char* policy_sched_name(Policy p) {
#define VW_POLICY_SCHED(e, n, sched) \
  if (p == Policy::e) return sched;
  VW_POLICIES(VW_POLICY_SCHED)
#undef VW_POLICY_SCHED
  return "SCHED_OTHER";
}

// --coalesce: how a worker holds its wake-ups back under load (coalesce.h). The launcher sends
// { mode: "auto" | "fixed" | "off", boundUs }.
enum class CoalesceMode { off, fixed, adaptive };
struct CoalesceConfig {
  CoalesceMode mode = CoalesceMode::adaptive;
  uint32_t bound_us = 250;  // the most a wake-up is held back, µs (fixed: always this)
};

// The config fields, one X(type, name, default) line each. `name` is the member below AND the
// key vw.cc's read_config reads from the launcher's object; for a flag it is the snake_case of
// the flag and its unit in src/cli/flags.ts (--idle-timeout, unit ms → idle_timeout_ms). A new flag
// the workers need: one line here and the entry in src/cli/flags.ts with `native: true`.
// The per-connection limits, grouped as `Config::limits`:
#define VW_LIMITS_FIELDS(X)                                                              \
  X(uint32_t, max_header, 8 * 1024)    /* request line + header fields, bytes (431 above) */ \
  X(uint64_t, max_body, 1024 * 1024)   /* Content-Length accepted and skipped (413 above) */ \
  X(uint32_t, max_conns, 65536)        /* per worker; excess closed at accept */            \
  X(uint32_t, header_timeout_ms, 10000) /* a request header must complete within this */     \
  X(uint32_t, idle_timeout_ms, 60000)   /* an idle keep-alive connection lives this long */  \
  X(uint32_t, linger_timeout_ms, 2000)  /* draining unread input after a closing response */ \
  X(uint32_t, drain_timeout_ms, 5000)   /* graceful stop: in-flight responses get this long */

// Everything else (the access log, an fd the launcher opened, is read apart: access_log_*).
#define VW_CONFIG_FIELDS(X)                                                                  \
  X(std::string, engine, "epoll")    /* how workers drive their sockets (engines.cc) */      \
  X(bool, sqpoll, false)             /* uring engine: a kernel thread polls the SQ */        \
  X(CoalesceConfig, coalesce, {})                                                            \
  X(std::vector<int>, cpus, {})      /* one worker per entry, pinned to that CPU */          \
  X(std::vector<ListenAddr>, listen, {})                                                     \
  X(Policy, policy, Policy::fifo)                                                            \
  X(int, priority, 50)                                                                       \
  X(bool, keepalive, true)                                                                   \
  X(bool, locality, false)           /* read SO_INCOMING_CPU once per accepted connection */ \
  X(int, backlog, 4096)                                                                      \
  /* TCP_DEFER_ACCEPT seconds on each listener (0: off). On, a connection reaches accept */  \
  /* once its first bytes are there (or the timeout passed): the engines read it at once. */ \
  X(uint32_t, defer_accept_s, 1)                                                             \
  X(uint32_t, fastopen, 0)           /* TCP_FASTOPEN queue length on each listener, 0 off */ \
  X(std::vector<Cidr>, allow, {})    /* empty: every peer */                                 \
  /* --proxy: relay every request to these backends (proxy.h) instead of the table. */       \
  X(std::vector<ListenAddr>, proxy, {})                                                      \
  X(uint32_t, proxy_conns, 16)       /* upstream connections per backend per worker */       \
  X(bool, proxy_fresh, false)        /* one upstream connection per request, closed after */ \
  X(uint32_t, proxy_pipeline, 1)     /* GET/HEAD requests in flight per upstream connection */ \
  X(uint32_t, proxy_timeout_ms, 60000) /* no response head within this: 504 */

#define VW_CONFIG_MEMBER(type, name, def) type name = def;

struct Limits {
  VW_LIMITS_FIELDS(VW_CONFIG_MEMBER)
};

struct Config {
  VW_CONFIG_FIELDS(VW_CONFIG_MEMBER)
  Limits limits;
  // --access-log: the fd the vw-log thread writes to (-1: no log); owned fds are closed by it.
  int access_log_fd = -1;
  bool access_log_owned = false;
  bool log_combined = true;  // --log-format combined (else common)
};

#undef VW_CONFIG_MEMBER

// engines.cc: every engine vw knows, in order, whether this build has it or not (engine_names()
// in engine.h: the ones it has).
const std::vector<std::string>& known_engine_names();

// Why start() or reload() failed, as fields the launcher words (src/start-failure.ts): nothing
// to parse. `step` names what failed:
//   address, socket, setsockopt, bind, listen, getsockname   a listener (target: the address)
//   thread        starting the worker's thread
//   pin           pinning the worker to its CPU (target: the CPU)
//   engine        the engine is not in this build (target: its name)
//   engine_setup  the engine's kernel objects (target: the engine, detail: its own step)
//   uring_setup   the same for io_uring, which a kernel may refuse outright
//   table         the response table (detail: what is wrong with it)
//   affinity      sched_getaffinity
struct Failure {
  int err = 0;             // errno
  const char* step = "";   // one of the names above (a string literal)
  int worker = -1;         // the worker that failed; -1: none (before the workers, the table)
  std::string target;      // what the step worked on: "[::]:80", "3", "uring"
  int port = -1;           // a listener's port, else -1
  std::string detail;      // the rest: the socket option, the engine's step, the table's fault
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
  Failure failure;    // why it could not start (failure.err 0: ready)
};

}  // namespace vw
