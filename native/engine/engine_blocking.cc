// engine_blocking.cc: the blocking engine: one thread per connection, blocking reads and writes.
// The worker thread only accepts (it blocks in poll on its listeners, the stop eventfd, a 1 s
// timerfd and a "thread ended" eventfd), starts a thread per connection, sweeps deadlines once a
// second and stops the threads. HTTP and the connection rules are the shared ones; the stop, the
// tick, the accept policy and admission are the lifecycle's (lifecycle.h).
//
// Threads. A connection thread is created by the worker with default (inherit) scheduling, so
// the kernel copies the worker's CPU affinity (pinned to the worker's CPU) and its policy and
// priority (SCHED_FIFO 50 by default) at clone: exactly what pthread_getschedparam of the
// worker says, at no cost. Setting them explicitly through the attribute would make glibc start
// the thread stopped and call sched_setaffinity and sched_setscheduler for it, then wake it with
// a futex: three more system calls per connection for the same result. Threads per worker are
// bounded by --max-conns (the excess is closed at accept, counted in `rejected`). Threads are
// joinable: the worker joins each one once it has ended, which returns its stack to glibc's
// cache, and joins all of them before run() returns, so nothing outlives the engine.
//
// Stats. StatsSlot is single-writer (relaxed load+store), but here many threads count into one
// worker's slot. Each thread (the worker included) therefore counts into a private StatsSlot of
// its own, with the usual single-writer bump(), and folds it into the worker's slot with a
// relaxed fetch_add per non-zero counter before each blocking read (and at its end). All these
// threads share one CPU, so the locked adds never bounce a cache line between cores; a reader
// sees each thread's counts at most one request late. serve_requests() gets the private slot
// too. When a thread ends it adds its own CPU time and context switches (clock_gettime
// CLOCK_THREAD_CPUTIME_ID and getrusage RUSAGE_THREAD, two counted calls) to thread_* counters:
// /proc forgets a thread once it exits, so the launcher reads live threads from /proc and ended
// ones from these counters. What no thread can measure is its own exit after that (glibc's
// madvise of the stack, exit, the kernel's teardown): it shows in the process's CPU time only.
//
// Stacks. The engine gives each thread a stack of its own (pthread_attr_setstack) from a pool
// it keeps: mmap'd once, reused after the thread is joined, the pool trimmed to kKeepStacks
// spare ones. With a stack of its own, glibc skips the madvise(MADV_DONTNEED) it makes on a
// dying thread's stack: in a VM that TLB shootdown was most of a short connection's CPU cost.
//
// System calls glibc makes for us. pthread_create and thread exit cost a fixed set of calls we
// cannot route through Sys (glibc 2.36, a stack of ours): rt_sigprocmask, clone3,
// rt_sigprocmask in the creator; rseq, set_robust_list, rt_sigprocmask when the thread starts;
// rt_sigprocmask and exit when it ends. They are part of this engine's per-connection cost, so
// the worker counts them (sys_other) when it creates the thread. Not counted: the futex calls
// of a contended mutex or of joining a thread that has not quite exited (both rare).
//
// Timeouts and stop. Deadlines are published by each thread (an atomic) and swept by the worker
// once a second, like the other engines. Expired: the worker calls shutdown(fd, SHUT_RDWR),
// which wakes the blocked read (0) or write (EPIPE), and the thread closes. A thread that is
// writing past its deadline is left alone while the client keeps taking bytes (TCP_INFO
// bytes_acked grows): a slow reader, not a dead one. Only the thread closes its fd; the worker
// shuts a socket down under the thread's mutex, so it can never hit a reused fd number.
// Graceful stop: listeners closed, every thread that is not writing is shut down, a writing one
// finishes its response and then closes; the 100 ms tick enforces the drain deadline.
// Immediate stop: every socket is shut down and every thread joined.
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_acked (glibc's copy lacks it)
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <vector>

#include "engine/input_buffer.h"
#include "engine/lifecycle.h"
#include "engine/tick_timer.h"

namespace vw {
namespace {

constexpr size_t kThreadStack = 256 * 1024;  // read buffer and output batch live on it
constexpr size_t kGuard = 4096;               // below each stack, PROT_NONE
constexpr size_t kKeepStacks = 128;           // stacks kept for reuse beyond the threads alive
constexpr uint64_t kGlibcThreadCalls = 8;     // see "System calls glibc makes for us" above

enum Phase : int { kReading = 0, kWriting = 1 };
enum Killed : int { kAlive = 0, kKilledTimeout = 1, kKilledStop = 2 };

void fold_one(std::atomic<uint64_t>& into, std::atomic<uint64_t>& mine) {
  uint64_t v = mine.load(std::memory_order_relaxed);
  if (!v) return;
  into.fetch_add(v, std::memory_order_relaxed);  // wraps: a dropped gauge subtracts
  mine.store(0, std::memory_order_relaxed);
}

// Adds a thread's private counts to the worker's slot and zeroes them. `cpu` and other gauges
// set by store are never written to a private slot, so they stay 0 there and are skipped.
void fold(StatsSlot& into, StatsSlot& mine) {
#define VW_FOLD(name, ...) fold_one(into.name, mine.name);
  VW_STATS_FIELDS(VW_FOLD)
#undef VW_FOLD
  for (int i = 0; i < kLatencyBuckets; i++) fold_one(into.latency_bucket[i], mine.latency_bucket[i]);
  fold_one(into.latency_sum_ns, mine.latency_sum_ns);
}

class BlockingEngine;

// One connection's thread, as the worker sees it. Created and deleted by the worker; the thread
// only reads `engine` and `fd` and writes the atomics.
struct ConnThread {
  BlockingEngine* engine = nullptr;
  pthread_t thread{};
  void* stack = nullptr;  // kGuard + kThreadStack bytes from the engine's pool
  int fd = -1;
  sockaddr_storage peer;  // what accept returned (--allow, --access-log), else AF_UNSPEC
  std::mutex mu;        // held by the thread to close fd, by the worker to shut it down
  bool fd_open = true;  // under mu
  std::atomic<uint64_t> deadline_ms{0};
  std::atomic<int> phase{kReading};
  std::atomic<int> killed{kAlive};
  ConnThread* next_done = nullptr;  // link in the engine's list of ended threads
  size_t index = 0;                 // worker only: position in _threads
  uint64_t acked = 0;               // worker only: TCP_INFO bytes_acked when last swept
};

// The worker thread's own counts, folded into the worker's slot each iteration. A base, so it
// exists before the lifecycle's counted Sys is made from it.
struct PrivateCounts {
  StatsSlot _mine;
};

class BlockingEngine final : private PrivateCounts, public Lifecycle<BlockingEngine> {
  friend Lifecycle<BlockingEngine>;

 public:
  explicit BlockingEngine(WorkerEnv& env) : Lifecycle(env, _mine) {}
  ~BlockingEngine() override;
  int prepare(std::string& what) override;
  void run() override;

 private:
  static void* thread_main(void* arg);
  void serve_connection(ConnThread& t);

  void spawn(int fd, const sockaddr_storage& peer);
  void reap();
  void kill(ConnThread& t, Killed why);
  bool still_progressing(ConnThread& t);
  void stop_all_now();
  void* take_stack();
  void give_stack(void* stack);

  // ---- the lifecycle's hooks (lifecycle.h): the table is _threads ----
  uint32_t m_open_count() { return static_cast<uint32_t>(_threads.size()); }
  void m_accepted(int fd, const sockaddr_storage& peer) { spawn(fd, peer); }
  void m_listen(size_t i, bool on) { _pfds[3 + i].events = on ? POLLIN : 0; }
  void m_close_listener(size_t i) {
    _pfds[3 + i].fd = -1;
    _sys.close(_env.listeners[i].release());
  }
  void m_tick_faster() { _timer.faster(_sys); }
  void close_all() {
    for (ConnThread* t : _threads) kill(*t, kKilledStop);
  }
  void sweep();
  void drain();

  TickTimer _timer;
  Fd _ended;  // eventfd: a thread ended while stopping
  pthread_attr_t _attr;
  bool _attr_ready = false;
  std::vector<pollfd> _pfds;  // [wake, timer, ended, listeners...]
  std::vector<ConnThread*> _threads;        // started and not yet joined
  std::vector<void*> _stacks;               // spare thread stacks
  std::atomic<ConnThread*> _done{nullptr};  // ended threads, pushed by themselves
  std::atomic<bool> _stopping{false};
  // Reload safety (QSBR) with many threads: a connection thread counts itself in _readers[e & 1]
  // (e: the reload epoch it saw) while it holds a table pointer; the worker thread passes its
  // quiescent point for epoch q + 1 only once no thread that saw q is left.
  std::atomic<uint64_t> _readers[2] = {{0}, {0}};
  uint64_t _passed = 0;
  void advance_quiescence();
};

BlockingEngine::~BlockingEngine() {
  stop_all_now();  // run() normally leaves nothing; a failed start may have left listeners only
  if (_attr_ready) pthread_attr_destroy(&_attr);
  for (void* st : _stacks) munmap(st, kGuard + kThreadStack);  // teardown: not counted
  fold(_env.stats, _mine);
}

int BlockingEngine::prepare(std::string& what) {
  prepare_lifecycle();
  if (int err = _timer.open(what)) return err;
  _ended.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!_ended.valid()) {
    what = "eventfd";
    return errno;
  }
  if (int err = pthread_attr_init(&_attr)) {
    what = "pthread_attr_init";
    return err;
  }
  _attr_ready = true;
  pthread_attr_setinheritsched(&_attr, PTHREAD_INHERIT_SCHED);  // the default, said out loud
  _pfds.push_back({_env.wake_fd, POLLIN, 0});
  _pfds.push_back({_timer.fd(), POLLIN, 0});
  _pfds.push_back({_ended.get(), POLLIN, 0});
  for (const Fd& l : _env.listeners) _pfds.push_back({l.get(), POLLIN, 0});
  return 0;
}

void BlockingEngine::run() {
  StatsSlot& s = _mine;
  for (;;) {
    int n = _sys.poll(_pfds.data(), static_cast<nfds_t>(_pfds.size()), -1);
    bump(s.loops);
    if (n < 0 && wait_failed(errno)) {
      stop_all_now();
      fold(_env.stats, _mine);
      return;
    }
    if (n > 0) bump(s.events, static_cast<uint64_t>(n));
    _now_ms = mono_ms();
    reap();
    advance_quiescence();
    if (n > 0) {
      if (_pfds[0].revents) on_stop_message();
      if (_stop == kImmediate) {
        stop_all_now();
        fold(_env.stats, _mine);
        return;
      }
      if (_pfds[1].revents) {
        _timer.consume(_sys);
        tick();
      }
      if (_pfds[2].revents) {
        uint64_t v;
        _sys.read(_ended.get(), &v, sizeof(v));
        reap();
      }
      for (size_t i = 3; i < _pfds.size(); i++)
        if (_pfds[i].revents) accept_all(i - 3, 0);  // blocking sockets: the threads wait
    }
    fold(_env.stats, _mine);
    if (finished()) return;
  }
}

void BlockingEngine::advance_quiescence() {
  uint64_t now = _env.epoch.load(std::memory_order_seq_cst);
  // One epoch at a time: threads that saw _passed share a counter with none that came later.
  while (_passed < now && _readers[_passed & 1].load(std::memory_order_seq_cst) == 0) {
    _passed++;
    _env.quiescent.store(_passed, std::memory_order_release);
  }
}

// The lifecycle's sweep over the threads: a writing thread past its deadline is left alone
// while the client keeps taking bytes; the others are shut down (the thread counts the timeout).
void BlockingEngine::sweep() {
  for (ConnThread* t : _threads) {
    if (t->killed.load(std::memory_order_relaxed) != kAlive) continue;
    if (t->deadline_ms.load(std::memory_order_relaxed) > _now_ms) continue;
    if (t->phase.load(std::memory_order_relaxed) == kWriting && still_progressing(*t)) {
      t->deadline_ms.store(_now_ms + _lim.idle_timeout_ms, std::memory_order_relaxed);
      continue;
    }
    kill(*t, kKilledTimeout);
  }
}

// A writing thread past its deadline: has the client taken bytes since we last looked?
bool BlockingEngine::still_progressing(ConnThread& t) {
  std::lock_guard<std::mutex> lock(t.mu);
  if (!t.fd_open) return false;
  tcp_info ti{};
  socklen_t len = sizeof(ti);
  if (_sys.getsockopt(t.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return false;
  uint64_t acked = ti.tcpi_bytes_acked;
  bool progressed = acked != t.acked;
  t.acked = acked;
  return progressed;
}

void BlockingEngine::kill(ConnThread& t, Killed why) {
  std::lock_guard<std::mutex> lock(t.mu);
  if (!t.fd_open || t.killed.load(std::memory_order_relaxed) != kAlive) return;
  t.killed.store(why, std::memory_order_relaxed);
  _sys.shutdown(t.fd, SHUT_RDWR);  // the blocked read returns 0, a blocked write EPIPE
}

// Graceful stop, after the listeners are closed and the tick made faster.
void BlockingEngine::drain() {
  // Pairs with the thread's phase store then _stopping load (both seq_cst): either the thread
  // sees _stopping before it writes (and closes instead), or this sees it writing (and lets it
  // finish). A thread that is not writing has no response in flight: it is shut down now.
  _stopping.store(true);
  for (ConnThread* t : _threads)
    if (t->phase.load() != kWriting) kill(*t, kKilledStop);
}

void BlockingEngine::stop_all_now() {
  _stopping.store(true);
  for (ConnThread* t : _threads) kill(*t, kKilledStop);
  for (ConnThread* t : _threads) {
    pthread_join(t->thread, nullptr);
    give_stack(t->stack);
    delete t;
  }
  _threads.clear();
  _done.store(nullptr);  // every thread on it was in _threads and is joined
}

// Joins the threads that have ended (each pushed itself on _done as its last step).
void BlockingEngine::reap() {
  ConnThread* t = _done.exchange(nullptr, std::memory_order_acquire);
  while (t) {
    ConnThread* next = t->next_done;
    pthread_join(t->thread, nullptr);  // at most a moment: it was on its way out
    ConnThread* last = _threads.back();
    _threads[t->index] = last;
    last->index = t->index;
    _threads.pop_back();
    give_stack(t->stack);
    delete t;
    t = next;
  }
}

// A stack for a new thread: a spare one, or a fresh mapping with a guard page below it.
void* BlockingEngine::take_stack() {
  if (!_stacks.empty()) {
    void* st = _stacks.back();
    _stacks.pop_back();
    return st;
  }
  void* st = _sys.mmap_stack(kGuard + kThreadStack);
  if (st == MAP_FAILED) return nullptr;
  if (_sys.mprotect(st, kGuard, PROT_NONE) != 0) {
    _sys.munmap(st, kGuard + kThreadStack);
    return nullptr;
  }
  return st;
}

// The thread that used it has been joined: nothing runs on it any more.
void BlockingEngine::give_stack(void* stack) {
  if (!stack) return;
  if (_stacks.size() < kKeepStacks) {
    _stacks.push_back(stack);
    return;
  }
  _sys.munmap(stack, kGuard + kThreadStack);
}

void BlockingEngine::spawn(int fd, const sockaddr_storage& peer) {
  auto* t = new ConnThread();
  t->engine = this;
  t->fd = fd;
  t->peer = peer;
  t->deadline_ms.store(_now_ms + _lim.header_timeout_ms, std::memory_order_relaxed);
  t->index = _threads.size();
  _threads.push_back(t);
  t->stack = take_stack();
  int err = t->stack ? pthread_attr_setstack(&_attr, static_cast<char*>(t->stack) + kGuard, kThreadStack)
                     : ENOMEM;
  if (!err) err = pthread_create(&t->thread, &_attr, &BlockingEngine::thread_main, t);
  if (err) {  // EAGAIN, ENOMEM: out of threads or memory. The client hears a close.
    _threads.pop_back();
    give_stack(t->stack);
    delete t;
    bump(_mine.rejected);
    _sys.close(fd);
    return;
  }
  _sys.counted_other(kGlibcThreadCalls);
  count_accepted();
}

void* BlockingEngine::thread_main(void* arg) {
  auto* t = static_cast<ConnThread*>(arg);
  t->engine->serve_connection(*t);
  return nullptr;
}

// The connection thread: read, answer, write, until EOF, an error, a close, a kill.
void BlockingEngine::serve_connection(ConnThread& t) {
  StatsSlot mine;  // this thread's counts, folded into the worker's slot
  Sys sys(mine);
  DateCache date;
  OutBatch out;
  char rbuf[kReadBuf];
  const int fd = t.fd;
  uint64_t now = mono_ms();
  Conn c;
  reset_for_accept(c, t.deadline_ms.load(std::memory_order_relaxed));
  set_peer(c, t.peer);
  auto write = [&] {
    // The graceful-stop handshake (see begin_graceful): a response starts only if the worker
    // has not begun stopping; once started, the worker lets it finish.
    t.phase.store(kWriting);
    if (_stopping.load()) return WriteResult::failed;
    t.deadline_ms.store(now + _lim.idle_timeout_ms, std::memory_order_relaxed);
    // Blocks until all is taken, inside this thread's reader window: no pin needed.
    WriteResult w = write_batch(sys, mine, fd, c, out, nullptr);
    while (w == WriteResult::pending) w = write_pending(sys, mine, fd, c);  // after a kill: fails
    delete c.out;
    c.out = nullptr;
    t.phase.store(kReading);
    return w;
  };
  for (;;) {
    // Seen after phase went back to reading (both seq_cst): a thread the graceful stop left
    // writing closes here once its response is out, instead of waiting in read.
    if (_stopping.load()) break;
    t.deadline_ms.store(c.deadline_ms, std::memory_order_relaxed);
    fold(_env.stats, mine);
    ReadSpan span = read_span(c, rbuf, kReadBuf, _lim);
    ssize_t n = sys.read(fd, span.dst, span.room);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;  // EOF (also after a kill), ECONNRESET
    }
    bump(mine.bytes_in, static_cast<uint64_t>(n));
    if (c.state == ConnState::lingering) continue;  // discarded: the answer was already final
    if (_stopping.load(std::memory_order_relaxed)) break;  // stopping: no new requests
    now = mono_ms();
    date.refresh();
    size_t len;
    const char* data = read_landed(c, span.dst, rbuf, static_cast<size_t>(n), &len);
    // Counted as a reader from before the table is loaded until its bytes are all written.
    uint64_t e = _env.epoch.load(std::memory_order_seq_cst);
    _readers[e & 1].fetch_add(1, std::memory_order_seq_cst);
    Served r = serve_input(serve_ctx(_env, date, mine), c, data, len, out, now, write);
    _readers[e & 1].fetch_sub(1, std::memory_order_release);
    if (r == Served::failed || r == Served::pending) break;
    if (r == Served::finish) {
      if (!c.linger_after_write || _stopping.load(std::memory_order_relaxed)) break;
      sys.shutdown(fd, SHUT_WR);
      start_linger(c, now, _lim);
    }
  }
  {
    std::lock_guard<std::mutex> lock(t.mu);
    t.fd_open = false;
  }
  sys.close(fd);
  if (t.killed.load(std::memory_order_relaxed) == kKilledTimeout && c.state == ConnState::open)
    bump(mine.timeouts);
  c.release_buffers();
  drop(mine.conns_open);
  bump(mine.conns_closed);
  // getrusage(RUSAGE_THREAD) splits the scheduler's runtime as of this thread's last context
  // switch: a short connection that never blocked would read as ~0. Reading the thread CPU
  // clock first brings that runtime up to date (and is the exact total).
  timespec cpu{};
  rusage ru{};
  if (sys.thread_cputime(&cpu) == 0 && sys.getrusage_thread(&ru) == 0) {
    uint64_t total = static_cast<uint64_t>(cpu.tv_sec) * 1000000 + static_cast<uint64_t>(cpu.tv_nsec) / 1000;
    uint64_t user = static_cast<uint64_t>(ru.ru_utime.tv_sec) * 1000000 + static_cast<uint64_t>(ru.ru_utime.tv_usec);
    if (user > total) user = total;
    bump(mine.thread_user_us, user);
    bump(mine.thread_sys_us, total - user);
    bump(mine.thread_cs_voluntary, static_cast<uint64_t>(ru.ru_nvcsw));
    bump(mine.thread_cs_involuntary, static_cast<uint64_t>(ru.ru_nivcsw));
  }
  // Last: tell the worker this thread may be joined. Touching the engine after this is safe,
  // because the worker joins (waits for this thread to exit) before it frees anything.
  t.next_done = _done.load(std::memory_order_relaxed);
  while (!_done.compare_exchange_weak(t.next_done, &t, std::memory_order_release,
                                      std::memory_order_relaxed)) {
  }
  if (_stopping.load()) {
    uint64_t one = 1;
    sys.write(_ended.get(), &one, sizeof(one));
  }
  fold(_env.stats, mine);
}

}  // namespace

std::unique_ptr<Engine> make_blocking_engine(WorkerEnv& env) {
  return std::make_unique<BlockingEngine>(env);
}

}  // namespace vw
