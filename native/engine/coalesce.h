// coalesce.h: when a real-time worker should hold its next wake-up back so that requests pile up
// and are answered in one pass (--coalesce), decided the same way for every engine. Worker
// thread only.
//
// Why: a SCHED_FIFO worker preempts whatever shares its CPU the instant one request arrives.
// When the load generator shares that CPU (the VW experiment), waking per request costs two
// context switches per request and starves the very client that feeds the worker. Holding the
// wake-up back for a bounded time, like a NIC's interrupt moderation, lets the client run and
// turns many wake-ups into one. A lone request after an idle spell is never held: every engine
// applies the hold only to events that arrive within `hold` of the previous pass (uring: the
// kernel's min-wait timer starts when the wait does; readiness engines pause, then wait).
//
// The controller (mode auto): the hold starts when passes come close together, then follows the
// batch it yields towards kTargetBatch requests per pass (proportional, at most x2 or /2 a
// step), within [kMinHoldUs, bound]. A hold that has grown large and still yields tiny batches
// for kFutilePasses passes (few connections: holding only adds latency) is dropped and retried
// after a back-off that doubles up to kMaxBackoffUs.
#pragma once
#include <cstdint>

#include "worker/clock.h"
#include "worker/config.h"
#include "worker/stats.h"

namespace vw {

class Coalescer {
 public:
  static constexpr uint32_t kTargetBatch = 48;      // requests per pass the hold aims for
  static constexpr uint32_t kMinHoldUs = 16;        // smaller holds cost a timer for nothing
  static constexpr uint64_t kBusyGapUs = 200;       // passes closer than this: the worker is busy
  static constexpr uint32_t kFutileHoldUs = 100;    // by this hold, a useful batch shows
  static constexpr uint32_t kFutileBatch = 6;       // ... at least this many requests per pass
  static constexpr uint32_t kFutilePasses = 3;      // ... or, this many passes in a row, it is dropped
  static constexpr uint64_t kMinBackoffUs = 50000;  // first retry after a futile hold
  static constexpr uint64_t kMaxBackoffUs = 1000000;

  explicit Coalescer(const CoalesceConfig& c) : _mode(c.mode), _bound_us(c.bound_us) {}

  bool enabled() const { return _mode != CoalesceMode::off; }

  // How long the next wait may hold its wake-up back, µs (0: wake on the first event).
  uint32_t hold_us() const { return _hold_us; }
  // The batch size worth waking early for: a wait that holds may return once this many
  // requests (uring: completions) are ready, before the hold ends.
  static constexpr uint32_t batch() { return kTargetBatch; }

  // Just before the worker's blocking wait: tells the controller what the pass that just ended
  // served, publishes the hold (stats `coalesce_hold_us`, `coalesced_waits`) and returns it: how
  // long, µs, this wait may hold its wake-up back (0: wake on the first event).
  uint32_t begin_wait(StatsSlot& s) {
    if (!enabled()) return 0;
    uint64_t now = mono_us();
    uint64_t requests = s.requests.load(std::memory_order_relaxed);
    if (_woke_us) after_pass(requests - _requests_at_wake, _woke_us - _wait_began_us, now);
    store_relaxed(s.coalesce_hold_us, _hold_us);
    if (_hold_us) bump(s.coalesced_waits);
    _wait_began_us = now;
    return _hold_us;
  }
  // Just after the wait returned: the pass begins.
  void end_wait(const StatsSlot& s) {
    if (!enabled()) return;
    _woke_us = mono_us();
    _requests_at_wake = s.requests.load(std::memory_order_relaxed);
  }

  // After each pass: `served` requests answered in it; `waited_us` how long the wait before it
  // blocked (hold included); `now_us` CLOCK_MONOTONIC.
  void after_pass(uint64_t served, uint64_t waited_us, uint64_t now_us) {
    switch (_mode) {
      case CoalesceMode::off:
        return;
      case CoalesceMode::fixed:
        // A fixed bound, but only between passes that served something: a tick or an idle
        // spell still leaves the next lone request unheld.
        _hold_us = served ? _bound_us : 0;
        return;
      case CoalesceMode::adaptive:
        adapt(served, waited_us, now_us);
        return;
    }
  }

 private:
  void adapt(uint64_t served, uint64_t waited_us, uint64_t now_us) {
    if (served == 0) return;  // a tick, an accept or a send completion: says nothing of the load
    if (_hold_us == 0) {
      // Unheld: start holding when passes come close together, unless backing off.
      if (waited_us < kBusyGapUs && now_us >= _retry_at_us) {
        _hold_us = kMinHoldUs;
        _futile = 0;
      }
      return;
    }
    if (waited_us > 4ull * _hold_us + kBusyGapUs) {
      _hold_us = 0;  // the worker idled long after its hold: light load, answer at once again
      return;
    }
    uint32_t n = served > 4096 ? 4096 : static_cast<uint32_t>(served);
    if (_hold_us >= kFutileHoldUs && n < kFutileBatch) {
      if (++_futile >= kFutilePasses) {
        _hold_us = 0;  // holding buys no batch here: it would only add latency
        _retry_at_us = now_us + _backoff_us;
        _backoff_us = _backoff_us * 2 > kMaxBackoffUs ? kMaxBackoffUs : _backoff_us * 2;
        return;
      }
    } else if (n >= 2 * kFutileBatch) {
      _futile = 0;
      _backoff_us = kMinBackoffUs;
    }
    // Proportional step towards the target batch, at most doubling or halving.
    uint64_t next = static_cast<uint64_t>(_hold_us) * kTargetBatch / (n ? n : 1);
    if (next > 2ull * _hold_us) next = 2ull * _hold_us;
    if (next < _hold_us / 2) next = _hold_us / 2;
    if (next < kMinHoldUs) next = kMinHoldUs;
    if (next > _bound_us) next = _bound_us;
    _hold_us = static_cast<uint32_t>(next);
  }

  CoalesceMode _mode;
  uint32_t _bound_us;
  uint32_t _hold_us = 0;
  uint32_t _futile = 0;  // consecutive passes a large hold left small
  uint64_t _retry_at_us = 0;
  uint64_t _wait_began_us = 0;  // when the last wait (with its hold) began
  uint64_t _woke_us = 0;        // ... when it returned
  uint64_t _requests_at_wake = 0;
  uint64_t _backoff_us = kMinBackoffUs;
};

}  // namespace vw
