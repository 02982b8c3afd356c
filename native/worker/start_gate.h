// start_gate.h: the start barrier. Every worker reports (ready or failed) before start()
// returns, and none serves a request until the JS thread has seen all reports and said go.
#pragma once
#include <condition_variable>
#include <mutex>

namespace vw {

class StartGate {
 public:
  StartGate() = default;

  // Worker thread: report, then wait for the verdict. Returns true to serve, false to exit.
  bool report_and_wait() {
    std::unique_lock<std::mutex> lock(_mu);
    _reported++;
    _cv.notify_all();
    _cv.wait(lock, [&] { return _decided; });
    return _go;
  }
  // JS thread: wait for every report (or for `spawned` of them, when spawning failed midway).
  void wait_reports(int spawned) {
    std::unique_lock<std::mutex> lock(_mu);
    _cv.wait(lock, [&] { return _reported >= spawned; });
  }
  void decide(bool go) {
    std::lock_guard<std::mutex> lock(_mu);
    _decided = true;
    _go = go;
    _cv.notify_all();
  }

 private:
  std::mutex _mu;
  std::condition_variable _cv;
  int _reported = 0;
  bool _decided = false;
  bool _go = false;
};

}  // namespace vw
