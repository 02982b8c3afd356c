// conn_ops.h: the connection handling every engine shares, whatever drives its sockets: where a
// read lands, keeping an unfinished request, answering a read's worth of requests batch by batch,
// keeping the part of a batch the socket did not take, the accept policy (--max-conns, --allow,
// --locality) and the spare fd for EMFILE. Nothing here waits; each engine decides when to call.
#pragma once
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "clock.h"
#include "config.h"
#include "conn.h"
#include "engine.h"
#include "fd.h"
#include "out_batch.h"
#include "session.h"
#include "stats.h"
#include "sys.h"

namespace vw {

constexpr size_t kReadBuf = 64 * 1024;  // one read per readiness takes at most this much
constexpr uint32_t kMinInCap = 1024;    // smallest buffer an unfinished request gets

// Monotonic milliseconds through the vDSO: no system call.
inline uint64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

inline ServeCtx serve_ctx(const WorkerEnv& env, const DateCache& date, StatsSlot& stats) {
  return ServeCtx{env.table.load(std::memory_order_acquire), &date, &env.config.limits,
                  env.config.keepalive, &stats, env.log, env.config.log_combined};
}

// Where the next read of `c` lands: the shared buffer, or (while a header is unfinished) right
// after the bytes already kept in c.in, which grows up to max_header first.
struct ReadSpan {
  char* dst;
  size_t room;
};
ReadSpan read_span(Conn& c, char* rbuf, size_t rbuf_len, const Limits& lim);

// After n > 0 bytes landed where read_span said: the bytes to serve (c.in grew, or rbuf).
inline const char* read_landed(Conn& c, const char* dst, char* rbuf, size_t n, size_t* len) {
  if (dst == rbuf) {
    *len = n;
    return rbuf;
  }
  c.in_len += static_cast<uint32_t>(n);
  *len = c.in_len;
  return c.in;
}

// Keeps the unanswered tail [p, p+n) in c.in (p may point into c.in itself); frees c.in when
// nothing is left, so an idle connection holds no buffer.
void keep_input(Conn& c, const char* p, size_t n);

// Marks a table slot as a fresh connection: new generation, header deadline.
inline void reset_for_accept(Conn& c, uint64_t deadline_ms) {
  c.gen = (c.gen + 1) & 0x7fffffff;
  c.state = ConnState::open;
  c.close_after_write = c.linger_after_write = c.header_started = c.out_was_pending = false;
  c.watched = false;
  c.body_left = 0;
  c.deadline_ms = deadline_ms;
}

// --access-log: the address accept returned, kept for the connection's log lines.
inline void set_peer(Conn& c, const sockaddr_storage& peer) {
  if (peer.ss_family == AF_INET) {
    c.peer_family = 4;
    std::memcpy(c.peer, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, 4);
  } else if (peer.ss_family == AF_INET6) {
    c.peer_family = 6;
    std::memcpy(c.peer, &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, 16);
  } else {
    c.peer_family = 0;
  }
}

// Resets a slot after its fd is closed (the caller closes, counts and frees).
inline void reset_closed(Conn& c) {
  c.release_buffers();
  c.state = ConnState::free;
  c.body_left = 0;
  c.header_started = false;
  c.watched = false;
}

// ---- output ----

enum class WriteResult { done, pending, failed };

// What `written` bytes of `out` left over, kept past the batch: staged parts are copied (the
// stage is reused by the next connection), body references stay references into the table.
// written == 0 keeps the whole batch (an engine whose send completes later).
// `table` is the table the batch's references point into: the pending output pins it, so a
// reload cannot free it while the socket still owes the client those bytes.
PendingOut* pending_from_batch(const OutBatch& out, size_t written, const ResponseTable* table);

// Consumes n written bytes from p; true when nothing is left.
bool pending_advance(PendingOut& p, size_t n);

// The next iovecs of p to hand to one writev (at most IOV_MAX).
inline int pending_iov(const PendingOut& p, const iovec** iov) {
  *iov = p.iov.data() + p.first;
  size_t cnt = p.iov.size() - p.first;
  return cnt > IOV_MAX ? IOV_MAX : static_cast<int>(cnt);
}

// One write of the whole batch (write for one iovec, writev otherwise). A partial write leaves
// the rest in c.out. EAGAIN and EINTR count as nothing written.
WriteResult write_batch(Sys& sys, StatsSlot& stats, int fd, Conn& c, const OutBatch& out,
                        const ResponseTable* table);

// One writev of what c.out still holds; c.out is left for the caller to free when done.
WriteResult write_pending(Sys& sys, StatsSlot& stats, int fd, Conn& c);

// ---- answering ----

enum class Served {
  idle,     // everything answered; the rest (an unfinished request) is kept in c.in
  pending,  // a batch is not fully written: c.out holds it, the unread rest is in c.in
  finish,   // the last response of the connection is out (close or linger next)
  failed,   // the write failed: close
};

// Answers every complete request in data[0, len): fills `out`, hands each batch to `write`
// (which returns a WriteResult and leaves anything unwritten in c.out), keeps the unanswered
// rest and sets the deadline as the epoll engine always has: header timeout from the first byte
// of a request, idle timeout once nothing is half-received or while output waits. Each batch's
// requests go into the latency histogram as taking from this call (the bytes were just read)
// to the return of its write.
template <class Write>
Served serve_input(const ServeCtx& ctx, Conn& c, const char* data, size_t len, OutBatch& out,
                   uint64_t now_ms, Write&& write) {
  const Limits& lim = *ctx.limits;
  bool was_started = c.header_started;
  size_t pos = 0;
  const uint64_t read_ns = mono_ns();
  for (;;) {
    out.clear();
    const uint64_t answered = ctx.stats->requests.load(std::memory_order_relaxed);
    ServeOutcome o = serve_requests(ctx, c, data + pos, len - pos, out);
    pos += o.consumed;
    if (!out.empty()) {
      c.close_after_write = o.close;
      c.linger_after_write = o.linger;
      WriteResult w = write();
      record_latency(*ctx.stats, mono_ns() - read_ns, ctx.stats->requests.load(std::memory_order_relaxed) - answered);
      if (w == WriteResult::failed) return Served::failed;
      if (w == WriteResult::pending) {
        // Stop reading until the client takes what it asked for: its output stays bounded.
        keep_input(c, data + pos, len - pos);
        c.deadline_ms = now_ms + lim.idle_timeout_ms;
        return Served::pending;
      }
    }
    if (o.close) return Served::finish;
    if (!o.batch_full) break;
  }
  keep_input(c, data + pos, len - pos);
  if (!c.header_started) {
    c.deadline_ms = now_ms + lim.idle_timeout_ms;
  } else if (!was_started) {
    c.deadline_ms = now_ms + lim.header_timeout_ms;  // slowloris bound starts at first byte
  }
  return Served::idle;
}

// ---- accepting ----

enum class Admit { ok, over_limit, denied };

// --max-conns (against `open`) and --allow (on the address accept returned, no system call).
inline Admit admit(const Config& cfg, uint32_t open, const sockaddr_storage& peer) {
  if (open >= cfg.limits.max_conns) return Admit::over_limit;
  if (!acl_allows(cfg.allow, peer)) return Admit::denied;
  return Admit::ok;
}

// --locality: which CPU processed this connection's packets (RSS/RPS steering) against the
// worker's own; one getsockopt per accepted connection.
void count_locality(Sys& sys, StatsSlot& stats, int worker_cpu, int fd);

// A spare fd, given up to accept-and-close when the process runs out (EMFILE/ENFILE), so the
// client hears a clean close and the listener stops being readable instead of spinning.
class ReserveFd {
 public:
  void open();  // before the gate: not counted
  // Closes the spare, accepts one connection on lfd and closes it, re-opens the spare.
  // Returns the accepted fd (already closed), or -1 when there was no spare or accept failed.
  int trick(Sys& sys, int lfd);

 private:
  Fd _fd;
};

}  // namespace vw
