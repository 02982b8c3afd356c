// stats.h: the per-worker counter slot, declared once as an X-macro list that yields the struct,
// the field names and the byte offsets the addon exports to JS (so TS never hard-codes a layout).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

// Each counter: X(name, kind, unit, metric, label, help). Order is the ABI with src/stats/stats.ts
// only through names: TS looks fields up by name, and takes everything else it shows (the
// Prometheus family, its labels, HELP, gauge or counter, units) from this list through
// statsLayout(). Adding a counter means a line here and the bump() that counts it.
//   kind    counter (only grows) | gauge (a value now) | internal (feeds other figures only)
//   unit    count | bytes | us (µs; exported in seconds) | id (a number that names something)
//   metric  the Prometheus family (base units, `_total` on counters); "" for internal
//   label   "key=value" that tells this counter from the family's other series, or ""
#define VW_HELP_SYSCALLS                                                                      \
  "System calls the worker made, by kind (counted by the worker through one wrapper per "    \
  "call; agrees with perf's raw_syscalls:sys_enter). Sum over syscall for the total."
#define VW_SYSCALL(X, kind) X(sys_##kind, counter, count, "vw_syscalls_total", "syscall=" #kind, VW_HELP_SYSCALLS)
#define VW_HELP_RESPONSES "Responses the worker sent, by status class (code=\"2xx\" ... \"5xx\")."
#define VW_HELP_REJECTED                                                                      \
  "Connections the worker closed at accept, unread: reason=\"limit\" over --max-conns or out " \
  "of file descriptors, reason=\"allow\" from a peer outside --allow."
#define VW_HELP_LOCALITY                                                                      \
  "With --locality: accepted connections whose packets the worker's own CPU handled "         \
  "(locality=\"local\") or another CPU (locality=\"remote\"), from SO_INCOMING_CPU."
#define VW_HELP_UP_SYSCALLS                                                                   \
  "--proxy: the read, write and close calls made on upstream connections; a part of "       \
  "vw_syscalls_total (connect is upstream only, in vw_syscalls_total{syscall=\"connect\"})."
#define VW_HELP_UP_BYTES "--proxy: bytes read from (direction=\"in\") and written to (direction=\"out\") backends."
#define VW_HELP_PROXY_ERRORS                                                                  \
  "--proxy: answers vw gave for its backends: 502 (refused, reset, unusable) and 504 (no "   \
  "response within --proxy-timeout)."
#define VW_INTERNAL(X, name) X(name, internal, count, "", "", "")

#define VW_STATS_FIELDS(X)                                                                     \
  X(conns_accepted, counter, count, "vw_connections_accepted_total", "",                       \
    "Connections the worker accepted (accept4 returned a socket).")                           \
  X(conns_closed, counter, count, "vw_connections_closed_total", "",                           \
    "Connections the worker closed, for any reason.")                                         \
  X(conns_open, gauge, count, "vw_connections_open", "", "Connections open on the worker now.") \
  X(requests, counter, count, "vw_requests_total", "",                                         \
    "Requests the worker answered, error responses included.")                                \
  X(resp_2xx, counter, count, "vw_responses_total", "code=2xx", VW_HELP_RESPONSES)             \
  X(resp_3xx, counter, count, "vw_responses_total", "code=3xx", VW_HELP_RESPONSES)             \
  X(resp_4xx, counter, count, "vw_responses_total", "code=4xx", VW_HELP_RESPONSES)             \
  X(resp_5xx, counter, count, "vw_responses_total", "code=5xx", VW_HELP_RESPONSES)             \
  X(bytes_in, counter, bytes, "vw_received_bytes_total", "", "Bytes the worker read from clients.") \
  X(bytes_out, counter, bytes, "vw_sent_bytes_total", "",                                      \
    "Bytes the worker wrote to clients (status lines, headers and bodies).")                  \
  /* every system call the worker made, through sys.h: the sum of the kinds below */           \
  VW_INTERNAL(X, sys_total)                                                                       \
  VW_SYSCALL(X, epoll_wait) VW_SYSCALL(X, accept) VW_SYSCALL(X, read) VW_SYSCALL(X, write)                 \
  VW_SYSCALL(X, close) VW_SYSCALL(X, epoll_ctl) VW_SYSCALL(X, other)                                    \
  VW_SYSCALL(X, poll) VW_SYSCALL(X, select) VW_SYSCALL(X, io_uring_enter) /* the other engines' waits */ \
  VW_SYSCALL(X, nanosleep) /* --coalesce: the pauses that hold a readiness engine's wake-up back */ \
  VW_SYSCALL(X, connect)   /* --proxy: connect calls for upstream connections */                  \
  X(loops, counter, count, "vw_wakeups_total", "",                                             \
    "Wake-ups of the worker: returns from its blocking wait (event loop iterations). "        \
    "Requests per wake-up is what --coalesce raises.")                                        \
  X(coalesced_waits, counter, count, "vw_coalesced_waits_total", "",                           \
    "Waits whose wake-up --coalesce held back so that requests arriving close together were " \
    "answered in one pass.")                                                                  \
  X(coalesce_hold_us, gauge, us, "vw_coalesce_hold_seconds", "",                               \
    "How long the worker's next wait may hold its wake-up back (--coalesce), in seconds; 0 "  \
    "when it holds none.")                                                                    \
  X(events, counter, count, "vw_events_total", "",                                             \
    "Readiness events (io_uring: completions) the worker's waits returned.")                  \
  X(partial_writes, counter, count, "vw_partial_writes_total", "",                             \
    "Writes the socket took only part of (the rest waited for the socket to drain).")         \
  X(parse_errors, counter, count, "vw_parse_errors_total", "",                                 \
    "Requests the parser refused (answered 4xx/5xx, connection closed).")                     \
  X(timeouts, counter, count, "vw_timeouts_total", "",                                         \
    "Connections closed by --header-timeout or --idle-timeout.")                              \
  X(accept_errors, counter, count, "vw_accept_errors_total", "",                               \
    "accept4 failures other than EAGAIN (EMFILE, ENFILE, ENOBUFS, ...).")                     \
  X(rejected, counter, count, "vw_connections_rejected_total", "reason=limit", VW_HELP_REJECTED) \
  X(denied, counter, count, "vw_connections_rejected_total", "reason=allow", VW_HELP_REJECTED)  \
  X(incoming_local, counter, count, "vw_connections_locality_total", "locality=local",         \
    VW_HELP_LOCALITY)                                                                         \
  X(incoming_remote, counter, count, "vw_connections_locality_total", "locality=remote",       \
    VW_HELP_LOCALITY)                                                                         \
  X(cpu, gauge, id, "vw_worker_cpu", "",                                                       \
    "The CPU the worker runs on, as getcpu reported it at start and at each 1 s tick.")       \
  /* blocking engine: CPU time and context switches of connection threads that have ended,   \
     folded into vw_cpu_seconds_total and vw_context_switches_total (live ones come from      \
     /proc) */                                                                                \
  VW_INTERNAL(X, thread_user_us) VW_INTERNAL(X, thread_sys_us)                                      \
  VW_INTERNAL(X, thread_cs_voluntary) VW_INTERNAL(X, thread_cs_involuntary)                         \
  X(uring_setup_flags, gauge, id, "vw_io_uring_setup_flags", "",                               \
    "With --engine uring: the IORING_SETUP_* bits the worker's ring got (SQPOLL 2, "          \
    "COOP_TASKRUN 256, SINGLE_ISSUER 4096, DEFER_TASKRUN 8192); 0 otherwise.")                \
  X(uring_features, gauge, id, "vw_io_uring_features", "",                                     \
    "With --engine uring: the IORING_FEAT_* bits the kernel offers (MIN_TIMEOUT 32768: it "   \
    "can hold a wait's wake-up back itself); 0 otherwise.")                                   \
  X(wait_errno, gauge, id, "vw_worker_wait_errno", "",                                         \
    "The errno of a failed wait that stopped the worker (it stops rather than spin at "       \
    "real-time priority); 0 while it is fine.")                                               \
  X(up_opened, counter, count, "vw_proxy_upstream_connections_total", "",                      \
    "--proxy: upstream connections the worker opened.")                                       \
  X(up_reused, counter, count, "vw_proxy_pooled_requests_total", "",                           \
    "--proxy: requests sent on an upstream connection opened before (pooled keep-alive, or a "\
    "--proxy-pipeline connection being filled).")                                             \
  X(up_pipelined, counter, count, "vw_proxy_pipelined_requests_total", "",                     \
    "--proxy-pipeline: requests sent on an upstream connection that still owed an answer to "  \
    "another.")                                                                               \
  X(up_failed, counter, count, "vw_proxy_upstream_failures_total", "",                         \
    "--proxy: upstream failures (refused, reset, closed before or during a response, "        \
    "unparsable).")                                                                           \
  X(up_retried, counter, count, "vw_proxy_retries_total", "",                                  \
    "--proxy: GET/HEAD requests resent on a new connection because their pooled one turned "  \
    "out closed.")                                                                            \
  X(up_sys_read, counter, count, "vw_proxy_upstream_syscalls_total", "syscall=read", VW_HELP_UP_SYSCALLS) \
  X(up_sys_write, counter, count, "vw_proxy_upstream_syscalls_total", "syscall=write", VW_HELP_UP_SYSCALLS) \
  X(up_sys_close, counter, count, "vw_proxy_upstream_syscalls_total", "syscall=close", VW_HELP_UP_SYSCALLS) \
  X(up_bytes_in, counter, bytes, "vw_proxy_upstream_bytes_total", "direction=in", VW_HELP_UP_BYTES) \
  X(up_bytes_out, counter, bytes, "vw_proxy_upstream_bytes_total", "direction=out", VW_HELP_UP_BYTES) \
  X(proxy_502, counter, count, "vw_proxy_errors_total", "code=502", VW_HELP_PROXY_ERRORS)      \
  X(proxy_504, counter, count, "vw_proxy_errors_total", "code=504", VW_HELP_PROXY_ERRORS)      \
  X(log_dropped, counter, count, "vw_access_log_dropped_total", "",                            \
    "Access-log records the worker dropped because its ring was full (--access-log); the "    \
    "worker never waits for the log.")

namespace vw {

// Server-side latency: each request's time from the read that brought its bytes to the write
// (io_uring: the send queued in the ring) that offered its response to the kernel, counted in
// log2 buckets: bucket i holds the requests that took at most 2^(kLatencyFirstLog2 + i) ns
// (256 ns, 512 ns, ... 2^30 ns = 1.07 s), the last one everything slower.
constexpr int kLatencyBuckets = 24;
constexpr int kLatencyFirstLog2 = 8;

// One slot per worker, written only by that worker (relaxed: JS reads a snapshot, never a
// consistent cut). Aligned to 128 bytes, so the adjacent-line prefetcher never pairs the
// last line of one worker's slot with the first of the next.
struct alignas(128) StatsSlot {
#define VW_STATS_MEMBER(name, ...) std::atomic<uint64_t> name{0};
  VW_STATS_FIELDS(VW_STATS_MEMBER)
#undef VW_STATS_MEMBER
  std::atomic<uint64_t> latency_bucket[kLatencyBuckets] = {};
  std::atomic<uint64_t> latency_sum_ns{0};  // the requests' latencies added up, ns
};

// One counter as statsLayout() describes it to TS (see VW_STATS_FIELDS for the meanings).
struct StatsField {
  const char* name;
  size_t offset;
  const char* kind;
  const char* unit;
  const char* metric;
  const char* label;
  const char* help;
};

inline const StatsField* stats_fields(size_t* count) {
  static const StatsField fields[] = {
#define VW_STATS_ENTRY(name, kind, unit, metric, label, help) \
  {#name, offsetof(StatsSlot, name), #kind, #unit, metric, label, help},
      VW_STATS_FIELDS(VW_STATS_ENTRY)
#undef VW_STATS_ENTRY
  };
  *count = sizeof(fields) / sizeof(fields[0]);
  return fields;
}

// Single writer: a plain load and store, no locked read-modify-write on the hot path.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void store_relaxed(std::atomic<uint64_t>& c, uint64_t v) {
  c.store(v, std::memory_order_relaxed);
}
inline void drop(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

// One response sent: `requests` and its status class (vw_responses_total{code}).
inline void count_response(StatsSlot& s, uint16_t status) {
  bump(s.requests);
  switch (status / 100) {
    case 2: bump(s.resp_2xx); break;
    case 3: bump(s.resp_3xx); break;
    case 4: bump(s.resp_4xx); break;
    default: bump(s.resp_5xx); break;
  }
}

// The latency bucket of `ns`: the smallest i with ns <= 2^(kLatencyFirstLog2 + i), or the last.
inline int latency_bucket_of(uint64_t ns) {
  if (ns <= (1ull << kLatencyFirstLog2)) return 0;
  int log2_ceil = 64 - __builtin_clzll(ns - 1);
  int i = log2_ceil - kLatencyFirstLog2;
  return i < kLatencyBuckets ? i : kLatencyBuckets - 1;
}

// `n` requests answered together, each `ns` after its bytes were read. No lock, no system call.
inline void record_latency(StatsSlot& s, uint64_t ns, uint64_t n) {
  bump(s.latency_bucket[latency_bucket_of(ns)], n);
  bump(s.latency_sum_ns, ns * n);
}

}  // namespace vw
