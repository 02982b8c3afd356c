// engine.h: the seam between a worker and the I/O strategy that drives its sockets. An engine
// moves bytes; HTTP (session.h) decides what they mean. Add an engine as a new file that
// implements this interface, declare its factory here and name it in engines.cc; never as a
// branch in another engine.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "worker/access_log.h"
#include "worker/config.h"
#include "worker/fd.h"
#include "http/responses.h"
#include "worker/stats.h"

namespace vw {

enum StopMode : int { kRunning = 0, kGraceful = 1, kImmediate = 2 };

// What a worker lends its engine. Everything here outlives the engine.
struct WorkerEnv {
  int id;
  const Config& config;
  const std::atomic<const ResponseTable*>& table;
  StatsSlot& stats;
  std::vector<Fd>& listeners;     // the engine closes them when a graceful stop begins
  int wake_fd;                    // eventfd: readable when stop_mode changed or a reload happened
  const std::atomic<int>& stop_mode;
  // Reload reclamation (QSBR): the engine calls pass_quiescent_point() where it holds no
  // ResponseTable pointer (the top of each loop iteration); a retired table is freed once
  // every worker has passed such a point after its retirement.
  const std::atomic<uint64_t>& epoch;
  std::atomic<uint64_t>& quiescent;
  LogRing* log;  // --access-log: this worker's ring; null when there is no log

  void pass_quiescent_point() {
    quiescent.store(epoch.load(std::memory_order_acquire), std::memory_order_release);
  }
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Before the start barrier: create the engine's kernel objects. Returns errno and names the
  // failing step in `what`.
  virtual int prepare(std::string& what) = 0;
  // Serves until stopped: returns after an immediate stop, or after a graceful one once every
  // connection has finished (or the drain deadline passed).
  virtual void run() = 0;
};

std::unique_ptr<Engine> make_epoll_engine(WorkerEnv& env);
std::unique_ptr<Engine> make_poll_engine(WorkerEnv& env);
std::unique_ptr<Engine> make_select_engine(WorkerEnv& env);
std::unique_ptr<Engine> make_blocking_engine(WorkerEnv& env);
std::unique_ptr<Engine> make_uring_engine(WorkerEnv& env);  // only when built with liburing

// The engine called `name` (Config::engine), or null when this build has no such engine.
std::unique_ptr<Engine> make_engine(const std::string& name, WorkerEnv& env);

// The names make_engine knows in this build (uring only when liburing was found at build time).
const std::vector<std::string>& engine_names();

}  // namespace vw
