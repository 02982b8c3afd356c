// stats.h: the per-worker counter slot, declared once as an X-macro list that yields the struct,
// the field names and the byte offsets the addon exports to JS (so TS never hard-codes a layout).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

// Order is the ABI with src/stats.ts only through names: TS looks fields up by name.
#define VW_STATS_FIELDS(X)                                                                     \
  X(conns_accepted)  /* connections accepted */                                                \
  X(conns_closed)    /* connections closed, for any reason */                                  \
  X(conns_open)      /* connections open now (a gauge) */                                      \
  X(requests)        /* requests answered, errors included */                                  \
  X(resp_2xx) X(resp_3xx) X(resp_4xx) X(resp_5xx)                                              \
  X(bytes_in)        /* bytes read from clients */                                             \
  X(bytes_out)       /* bytes written to clients */                                            \
  X(sys_total)       /* every system call the worker made, through sys.h */                    \
  X(sys_epoll_wait) X(sys_accept) X(sys_read) X(sys_write) X(sys_close) X(sys_epoll_ctl)       \
  X(sys_other)                                                                                 \
  X(sys_poll) X(sys_select) X(sys_io_uring_enter) /* the waits of the other engines */          \
  X(sys_nanosleep)   /* --coalesce: the pauses that hold a readiness engine's wake-up back */  \
  X(loops)           /* event-loop iterations (one blocking wait, a wake-up, each) */          \
  X(coalesced_waits) /* waits that held their wake-up back (--coalesce) */                     \
  X(coalesce_hold_us) /* the hold the worker's next wait uses, µs (a gauge; 0: none) */         \
  X(events)          /* readiness events returned by all waits */                              \
  X(partial_writes)  /* writes the socket took only part of */                                 \
  X(parse_errors)    /* requests answered 4xx/5xx by the parser and closed */                  \
  X(timeouts)        /* connections closed by the header or idle timeout */                    \
  X(accept_errors)   /* accept4 failures other than EAGAIN (EMFILE, ENOBUFS, ...) */           \
  X(rejected)        /* connections closed at accept (over --max-conns, out of fds) */         \
  X(denied)          /* connections closed at accept: peer outside --allow */                  \
  X(incoming_local)  /* --locality: accepted connections whose packets the worker's CPU handled */ \
  X(incoming_remote) /* --locality: ... handled on another CPU (SO_INCOMING_CPU) */             \
  X(cpu)             /* the CPU getcpu reported at start and at each 1 s tick */              \
  X(thread_user_us)  /* blocking engine: user CPU of connection threads that have ended */   \
  X(thread_sys_us)   /* ... their system CPU (live threads are read from /proc) */             \
  X(thread_cs_voluntary) X(thread_cs_involuntary) /* ... their context switches */             \
  X(uring_setup_flags) /* io_uring engine: the IORING_SETUP_* flags the ring got (a gauge) */ \
  X(uring_features)  /* io_uring engine: the IORING_FEAT_* flags the kernel offers (a gauge) */ \
  X(wait_errno)      /* the errno of a failed wait that stopped this worker (a gauge; 0: fine) */

namespace vw {

// One slot per worker, written only by that worker (relaxed: JS reads a snapshot, never a
// consistent cut). Aligned to 128 bytes, so the adjacent-line prefetcher never pairs the
// last line of one worker's slot with the first of the next.
struct alignas(128) StatsSlot {
#define VW_STATS_MEMBER(name) std::atomic<uint64_t> name{0};
  VW_STATS_FIELDS(VW_STATS_MEMBER)
#undef VW_STATS_MEMBER
};

struct StatsField {
  const char* name;
  size_t offset;
};

inline const StatsField* stats_fields(size_t* count) {
  static const StatsField fields[] = {
#define VW_STATS_ENTRY(name) {#name, offsetof(StatsSlot, name)},
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

}  // namespace vw
