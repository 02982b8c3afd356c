// worker.cc: a worker's life: fixed start order, report at the gate, run the engine, tear down.
#include "worker/worker.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "worker/cpu.h"
#include "worker/net.h"
#include "worker/start_gate.h"

namespace vw {

Worker::Worker(int id, int cpu, const Config& config,
               const std::atomic<const ResponseTable*>& table, const std::atomic<uint64_t>& epoch,
               StatsSlot& stats, StartGate& gate, LogRing* log)
    : _id(id),
      _cpu(cpu),
      _config(config),
      _table(table),
      _epoch(epoch),
      _stats(stats),
      _gate(gate),
      _log(log) {}

Worker::~Worker() { join(); }

int Worker::spawn() {
  _wake.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!_wake.valid()) return errno;
  // Created with every signal blocked, so SIGINT/SIGTERM always reach Node's thread.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&_thread, nullptr, &Worker::thread_main, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err) return err;
  _spawned = true;
  return 0;
}

void Worker::request_stop(StopMode mode) {
  int prev = _stop_mode.load();
  if (mode <= prev) return;
  _stop_mode.store(mode);
  wake();
}

void Worker::wake() {
  uint64_t one = 1;
  ssize_t n = ::write(_wake.get(), &one, sizeof(one));
  (void)n;  // EAGAIN means a wake-up is already pending: as good
}

void Worker::join() {
  if (!_spawned) return;
  pthread_join(_thread, nullptr);
  _spawned = false;
}

void* Worker::thread_main(void* self) {
  static_cast<Worker*>(self)->run();
  return nullptr;
}

bool Worker::start_steps() {
  WorkerStatus& st = _status;
  st.cpu = _cpu;
  st.tid = static_cast<int>(syscall(SYS_gettid));
  // "vw-w<id>" in top -H and /proc/PID/task/TID/comm. Threads the worker starts inherit it (the
  // blocking engine's connection threads), which is how the launcher finds them.
  pthread_setname_np(pthread_self(), ("vw-w" + std::to_string(_id)).c_str());
  // Pin before anything else, so every allocation and socket is made on the worker's CPU.
  if (int err = pin_self(_cpu)) {
    st.failure.err = err;
    st.failure.step = "pin";
    st.failure.target = std::to_string(_cpu);
    return false;
  }
  if (_config.policy != Policy::other) {
    // EPERM without CAP_SYS_NICE or RLIMIT_RTPRIO: the caller decides whether that is fatal.
    st.rt_errno = set_policy_self(_config.policy, _config.priority);
  }
  st.policy = current_policy_self(&st.priority);
  st.getcpu = current_cpu();
  store_relaxed(_stats.cpu, static_cast<uint64_t>(st.getcpu));
  for (const ListenAddr& addr : _config.listen) {
    Fd fd;
    if (open_listener(addr, _config, fd, st.failure)) return false;
    _listeners.push_back(std::move(fd));
  }
  return true;
}

void Worker::run() {
  bool ok = start_steps();
  WorkerEnv env{_id, _config, _table, _stats, _listeners, _wake.get(), _stop_mode, _epoch, _quiescent,
                _log};
  std::unique_ptr<Engine> engine;
  if (ok) {
    engine = make_engine(_config.engine, env);
    Failure& f = _status.failure;
    if (!engine) {
      f.err = EINVAL;
      f.step = "engine";
      f.target = _config.engine;
      ok = false;
    } else if ((f.err = engine->prepare(f.detail))) {  // the engine names its own step
      f.step = _config.engine == "uring" ? "uring_setup" : "engine_setup";
      f.target = _config.engine;
      ok = false;
    }
  }
  _status.ready = ok;
  bool go = _gate.report_and_wait();
  if (ok && go) engine->run();
  engine.reset();
  _listeners.clear();
}

}  // namespace vw
