// server.h: the set of workers behind one start(): their stats block, the response table they
// read, and their start and stop. Knows nothing of Node: vw.cc drives it from the JS thread.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "worker/access_log.h"
#include "worker/config.h"
#include "engine/engine.h"
#include "http/responses.h"
#include "worker/start_gate.h"
#include "worker/stats.h"
#include "worker/worker.h"

namespace vw {

// Counter slots for every worker, in one aligned allocation. Shared ownership: the server
// writes it through its workers, JS reads it through an ArrayBuffer that may outlive the server.
class StatsBlock {
 public:
  explicit StatsBlock(size_t workers);
  ~StatsBlock();
  StatsBlock(const StatsBlock&) = delete;
  StatsBlock& operator=(const StatsBlock&) = delete;
  StatsSlot& slot(size_t i) { return _slots[i]; }
  void* data() { return _slots; }
  size_t bytes() const { return _count * sizeof(StatsSlot); }

 private:
  StatsSlot* _slots;
  size_t _count;
};

class Server {
 public:
  Server() = default;
  ~Server();  // stops at once and joins: no worker outlives what it reads
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // JS thread. Returns errno with `failure` naming the step (and the worker) that failed; on
  // success every worker has pinned itself, bound its sockets and is serving.
  int start(Config config, std::unique_ptr<ResponseTable> table, Failure& failure);
  void request_stop(StopMode mode);  // never blocks

  // JS thread. Publishes a new table at once (one atomic store); the old one is retired and
  // freed by reclaim() once every worker has passed a quiescent point and no pending write
  // still points into it.
  void reload(std::unique_ptr<ResponseTable> table);
  // Frees what can be freed; returns how many retired tables are still waiting.
  size_t reclaim();
  // Blocks until every worker has exited. Safe from several threads at once (libuv's pool
  // and the environment's cleanup hook may both get here).
  void join();

  // JS thread: --access-log's file was reopened (SIGUSR1); fd is the new one, owned.
  void reopen_log(int fd);

  const Config& config() const { return _config; }
  const std::vector<WorkerStatus>& statuses() const { return _statuses; }
  std::shared_ptr<StatsBlock> stats() const { return _stats; }

 private:
  Config _config;
  std::unique_ptr<ResponseTable> _table_owner;
  std::atomic<const ResponseTable*> _table{nullptr};
  std::atomic<uint64_t> _epoch{0};
  struct Retired {
    std::unique_ptr<ResponseTable> table;
    uint64_t epoch;
  };
  std::vector<Retired> _retired;  // JS thread only
  std::shared_ptr<StatsBlock> _stats;
  std::unique_ptr<AccessLog> _log;  // --access-log; destroyed after the workers (declared before)
  std::unique_ptr<StartGate> _gate;
  std::vector<std::unique_ptr<Worker>> _workers;
  std::vector<WorkerStatus> _statuses;
  std::mutex _join_mu;
};

}  // namespace vw
