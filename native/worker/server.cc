// server.cc: starting every worker behind the gate, and stopping them.
#include "worker/server.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <new>

#include "worker/net.h"

namespace vw {

StatsBlock::StatsBlock(size_t workers) : _count(workers) {
  void* mem = std::aligned_alloc(alignof(StatsSlot), workers * sizeof(StatsSlot));
  if (!mem) std::abort();  // a few hundred bytes per worker: out of memory at start is fatal
  _slots = new (mem) StatsSlot[workers];
}

StatsBlock::~StatsBlock() {
  for (size_t i = 0; i < _count; i++) _slots[i].~StatsSlot();
  std::free(_slots);
}

Server::~Server() {
  request_stop(kImmediate);
  join();
}

int Server::start(Config config, std::unique_ptr<ResponseTable> table, Failure& failure) {
  _config = std::move(config);
  if (_config.access_log_fd >= 0) {
    // First, so the fd is the log's (closed by it) whatever fails next. The blocking engine's
    // connection threads share their worker's ring: their claims take a compare-and-swap.
    _log = std::make_unique<AccessLog>(_config.cpus.size(), _config.engine == "blocking",
                                       _config.log_combined ? LogFormat::combined : LogFormat::common,
                                       _config.access_log_fd, _config.access_log_owned);
    _config.access_log_fd = -1;
    _log->start(_config.cpus);
  }
  for (ListenAddr& addr : _config.listen) {
    if (int err = probe_listen_addr(addr, failure)) return err;
  }
  _table_owner = std::move(table);
  _table.store(_table_owner.get(), std::memory_order_release);
  size_t n = _config.cpus.size();
  _stats = std::make_shared<StatsBlock>(n);
  _gate = std::make_unique<StartGate>();
  int spawned = 0, err = 0;
  for (size_t i = 0; i < n; i++) {
    _workers.push_back(std::make_unique<Worker>(static_cast<int>(i), _config.cpus[i], _config,
                                                _table, _epoch, _stats->slot(i), *_gate,
                                                _log ? &_log->ring(i) : nullptr));
    if ((err = _workers.back()->spawn())) {
      failure.err = err;
      failure.step = "thread";
      failure.worker = static_cast<int>(i);
      _workers.pop_back();
      break;
    }
    spawned++;
  }
  _gate->wait_reports(spawned);
  for (auto& w : _workers) {
    _statuses.push_back(w->status());
    if (!err && w->status().failure.err) {
      failure = w->status().failure;
      failure.worker = static_cast<int>(_statuses.size() - 1);
      err = failure.err;
    }
  }
  _gate->decide(err == 0);
  if (err) join();
  return err;
}

void Server::request_stop(StopMode mode) {
  for (auto& w : _workers) w->request_stop(mode);
}

void Server::reload(std::unique_ptr<ResponseTable> table) {
  const ResponseTable* old = _table.exchange(table.get(), std::memory_order_acq_rel);
  // The epoch moves after the new table is visible: a worker that sees the new epoch also
  // sees the new table, so passing a quiescent point in it proves it dropped the old one.
  uint64_t e = _epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  _retired.push_back({std::unique_ptr<ResponseTable>(const_cast<ResponseTable*>(old)), e});
  _table_owner.release();  // ownership of the old table moved to _retired
  _table_owner = std::move(table);
  for (auto& w : _workers) w->wake();  // an idle worker passes its quiescent point now
}

size_t Server::reclaim() {
  for (auto it = _retired.begin(); it != _retired.end();) {
    bool passed = true;
    for (auto& w : _workers) passed = passed && w->quiescent() >= it->epoch;
    if (passed && !it->table->pinned()) it = _retired.erase(it);
    else ++it;
  }
  return _retired.size();
}

void Server::join() {
  std::lock_guard<std::mutex> lock(_join_mu);
  for (auto& w : _workers) w->join();
  if (_log) _log->stop();  // every worker is gone: the last records are drained and written
}

void Server::reopen_log(int fd) {
  if (_log) _log->reopen(fd);
  else ::close(fd);
}

}  // namespace vw
