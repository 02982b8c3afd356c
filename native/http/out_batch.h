// out_batch.h: the responses of one batch of requests, gathered for a single write. Small parts
// (heads with the Date patched in, short bodies) are copied into a staging area; large bodies
// are referenced where the response table holds them.
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <cstring>

namespace vw {

class OutBatch {
 public:
  static constexpr size_t kStage = 64 * 1024;
  static constexpr int kIov = 256;
  static constexpr size_t kCopyBelow = 1024;  // bodies shorter than this are copied

  void clear() {
    _stage_len = 0;
    _iovcnt = 0;
    _bytes = 0;
  }
  bool empty() const { return _iovcnt == 0; }
  size_t bytes() const { return _bytes; }
  const iovec* iov() const { return _iov; }
  int iovcnt() const { return _iovcnt; }

  // Whether copying `copy` more bytes and adding `refs` references still fits.
  bool fits(size_t copy, int refs) const {
    return _stage_len + copy <= kStage && _iovcnt + refs + 1 <= kIov;
  }

  // Reserves n bytes of staging for the caller to fill; fits() must have said yes.
  char* copy_slot(size_t n) {
    char* at = _stage + _stage_len;
    iovec* last = _iovcnt ? &_iov[_iovcnt - 1] : nullptr;
    if (last && static_cast<char*>(last->iov_base) + last->iov_len == at) {
      last->iov_len += n;  // contiguous with the previous copy: one iovec
    } else {
      _iov[_iovcnt++] = {at, n};
    }
    _stage_len += n;
    _bytes += n;
    return at;
  }
  void copy(const void* p, size_t n) { std::memcpy(copy_slot(n), p, n); }
  void ref(const void* p, size_t n) {
    _iov[_iovcnt++] = {const_cast<void*>(p), n};
    _bytes += n;
  }
  bool in_stage(const void* p) const {
    auto c = static_cast<const char*>(p);
    return c >= _stage && c < _stage + kStage;
  }

 private:
  char _stage[kStage];
  size_t _stage_len = 0;
  iovec _iov[kIov];
  int _iovcnt = 0;
  size_t _bytes = 0;
};

}  // namespace vw
