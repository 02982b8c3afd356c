// access_log.h: --access-log off the hot path. Each worker appends one fixed-size record per
// response to its own bounded in-memory ring (no system call, no lock, no allocation); a
// separate SCHED_OTHER thread (vw-log) drains the rings every few milliseconds, formats the
// lines (common or combined log format) and writes them in batches. A full ring drops the
// record and counts it (log_dropped): a worker never waits for the log.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "worker/stats.h"

namespace vw {

// One response, as the worker saw it. The text fields are truncated copies; the drainer
// escapes them. 512 bytes: eight cache lines, one memcpy-ish fill per request.
struct LogRecord {
  int64_t time_s;       // wall-clock second of the response (the Date cache's, no system call)
  uint64_t bytes;       // body bytes sent (0 for HEAD, 304, ...)
  uint16_t status;
  uint8_t family;       // 4, 6, or 0 when the peer is unknown
  uint8_t line_len;     // request line bytes kept (up to sizeof line)
  uint8_t referer_len;
  uint8_t agent_len;
  uint8_t addr[16];     // IPv4 in the first 4 bytes, or IPv6
  char line[192];       // the request line as sent, "GET /x?y HTTP/1.1"
  char referer[112];
  char agent[160];
};
static_assert(sizeof(LogRecord) + 8 <= 512, "a ring slot (sequence + record) stays within eight cache lines");

// A bounded ring of records (Vyukov's sequence-per-slot queue). One consumer (the drainer).
// Producers: one worker, or (blocking engine) its connection threads, which claim a slot with
// a compare-and-swap; the single-producer path claims with a plain store.
class LogRing {
 public:
  LogRing(size_t capacity_pow2, bool multi_producer);
  LogRing(const LogRing&) = delete;
  LogRing& operator=(const LogRing&) = delete;

  // Worker side. A slot to fill, or null (counted in stats.log_dropped) when the ring is full.
  LogRecord* claim(StatsSlot& stats, uint64_t& ticket);
  void publish(uint64_t ticket);

  // Drainer side: the next published record, or null; release() after reading it.
  const LogRecord* peek();
  void release();

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> seq;
    LogRecord rec;
  };
  std::unique_ptr<Slot[]> _slots;
  uint64_t _mask;
  bool _multi;
  alignas(64) std::atomic<uint64_t> _head{0};  // next ticket to claim (producers)
  alignas(64) uint64_t _tail = 0;              // next ticket to read (the drainer only)
};

enum class LogFormat { common, combined };

// The rings of one server and the thread that drains them into one fd.
class AccessLog {
 public:
  // fd: where lines go (owned: closed at the end and on reopen; not owned: stdout).
  AccessLog(size_t workers, bool multi_producer, LogFormat format, int fd, bool owned);
  ~AccessLog();  // stops (final drain) if stop() was not called
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  LogRing& ring(size_t worker) { return *_rings[worker]; }
  // JS thread: starts vw-log with every signal blocked (signals belong to Node), on the CPUs
  // this thread may use minus `worker_cpus` when any are left: a SCHED_FIFO worker kept busy
  // would otherwise hold a SCHED_OTHER drainer off its CPU until its ring overflows. errno or 0.
  int start(const std::vector<int>& worker_cpus);
  // JS thread: lines from now on go to fd (logrotate's reopen); the old fd is closed by the
  // drainer once it has written what it held.
  void reopen(int fd);
  // Any thread, after the workers have exited: drains what is left, ends vw-log. Idempotent.
  void stop();

 private:
  void run();
  size_t drain_once();  // records formatted and written
  void flush();

  LogFormat _format;
  std::vector<std::unique_ptr<LogRing>> _rings;
  int _fd;
  bool _owned;
  std::atomic<int> _next_fd{-1};  // reopen(): taken by the drainer
  std::unique_ptr<char[]> _buf;
  size_t _used = 0;
  std::thread _thread;
  std::mutex _mu;
  std::condition_variable _cv;
  bool _stop = false;  // under _mu
  std::once_flag _stopped;
};

// Fills a record for one response (the worker thread): the request line is cut at its first
// CR or LF; referer and agent may be empty (common format, or absent).
void log_response(LogRing& ring, StatsSlot& stats, int64_t time_s, const uint8_t* addr,
                  uint8_t family, std::string_view line, std::string_view referer,
                  std::string_view agent, uint16_t status, uint64_t bytes);

}  // namespace vw
