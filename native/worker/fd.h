// fd.h: RAII ownership of a file descriptor (closed exactly once, by its owner).
#pragma once
#include <unistd.h>

#include <utility>

namespace vw {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : _fd(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : _fd(std::exchange(o._fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      _fd = std::exchange(o._fd, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return _fd; }
  bool valid() const { return _fd >= 0; }
  int release() { return std::exchange(_fd, -1); }
  void reset(int fd = -1) {
    if (_fd >= 0) ::close(_fd);
    _fd = fd;
  }

 private:
  int _fd = -1;
};

}  // namespace vw
