// worker.h: one pinned, real-time worker thread: its start order, its engine, its stop.
#pragma once
#include <atomic>
#include <pthread.h>
#include <string>
#include <vector>

#include "worker/config.h"
#include "engine/engine.h"
#include "worker/fd.h"
#include "worker/stats.h"

namespace vw {

class StartGate;

class Worker {
 public:
  Worker(int id, int cpu, const Config& config, const std::atomic<const ResponseTable*>& table,
         const std::atomic<uint64_t>& epoch, StatsSlot& stats, StartGate& gate, LogRing* log);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  int spawn();  // JS thread: starts the thread; errno on failure
  // JS thread: asks the worker to stop (graceful or immediate); never blocks.
  void request_stop(StopMode mode);
  void join();  // blocks until the thread has exited
  void wake();  // JS thread: makes the worker pass a quiescent point soon (after a reload)
  // The reload epoch this worker last passed a quiescent point in (QSBR).
  uint64_t quiescent() const { return _quiescent.load(std::memory_order_acquire); }
  // Valid once the start gate has seen this worker report.
  const WorkerStatus& status() const { return _status; }

 private:
  static void* thread_main(void* self);
  void run();
  bool start_steps();  // pin, policy, verify CPU, sockets (signals are masked by spawn())

  int _id;
  int _cpu;
  const Config& _config;
  const std::atomic<const ResponseTable*>& _table;
  const std::atomic<uint64_t>& _epoch;
  std::atomic<uint64_t> _quiescent{0};
  StatsSlot& _stats;
  StartGate& _gate;
  LogRing* _log;
  WorkerStatus _status;
  std::vector<Fd> _listeners;
  Fd _wake;
  std::atomic<int> _stop_mode{kRunning};
  pthread_t _thread{};
  bool _spawned = false;
};

}  // namespace vw
