// serve_input.h: the HTTP batch loop every engine runs on the bytes a connection sent: answer
// every complete request, batch by batch, hand each batch to the engine's write, keep the
// unanswered rest and set the connection's deadline. Nothing here waits or knows the engine.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "worker/clock.h"
#include "engine/conn.h"
#include "engine/engine.h"
#include "engine/input_buffer.h"
#include "http/out_batch.h"
#include "engine/batch_write.h"
#include "http/session.h"

namespace vw {

// What serve_requests needs of the worker, for one call: the table as of now (reload QSBR: the
// caller holds no table pointer across iterations), the Date, the limits, the counters.
inline ServeCtx serve_ctx(const WorkerEnv& env, const DateCache& date, StatsSlot& stats) {
  return ServeCtx{env.table.load(std::memory_order_acquire), &date, &env.config.limits,
                  env.config.keepalive, &stats, env.log, env.config.log_combined};
}

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
  bool was_started = c.http.header_started;
  size_t pos = 0;
  const uint64_t read_ns = mono_ns();
  for (;;) {
    out.clear();
    const uint64_t answered = ctx.stats->requests.load(std::memory_order_relaxed);
    ServeOutcome o = serve_requests(ctx, c.http, data + pos, len - pos, out);
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
  if (!c.http.header_started) {
    c.deadline_ms = now_ms + lim.idle_timeout_ms;
  } else if (!was_started) {
    c.deadline_ms = now_ms + lim.header_timeout_ms;  // slowloris bound starts at first byte
  }
  return Served::idle;
}

}  // namespace vw
