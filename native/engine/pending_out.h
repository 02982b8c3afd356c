// pending_out.h: output the socket has not taken yet, kept past the batch that made it: copies
// of staged bytes (the stage is reused by the next connection), references into the immutable
// response table for large bodies, which the pending output pins against a reload.
// Owned by the thread that serves the connection.
#pragma once
#include <limits.h>
#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "http/out_batch.h"
#include "http/responses.h"

namespace vw {

struct PendingOut {
  std::unique_ptr<char[]> copied;
  std::vector<iovec> iov;
  size_t first = 0;  // first iovec not yet fully written
  const ResponseTable* pinned = nullptr;  // the table its references point into, kept alive

  PendingOut() = default;
  PendingOut(const PendingOut&) = delete;
  PendingOut& operator=(const PendingOut&) = delete;
  ~PendingOut() {
    if (pinned) pinned->unpin();
  }
  void pin(const ResponseTable* t) {
    if (!t) return;  // the caller keeps the table alive by other means (blocking engine)
    pinned = t;
    t->pin();
  }
};

// What `written` bytes of `out` left over, kept past the batch: staged parts are copied (the
// stage is reused by the next connection), body references stay references into the table.
// written == 0 keeps the whole batch (an engine whose send completes later).
// `table` is the table the batch's references point into: the pending output pins it, so a
// reload cannot free it while the socket still owes the client those bytes.
PendingOut* pending_from_batch(const OutBatch& out, size_t written, const ResponseTable* table);

// Consumes n written bytes from p; true when nothing is left.
bool pending_advance(PendingOut& p, size_t n);

// The next iovecs of p to hand to one writev (at most IOV_MAX).
inline int pending_iov(const PendingOut& p, const iovec** iov) {
  *iov = p.iov.data() + p.first;
  size_t cnt = p.iov.size() - p.first;
  return cnt > IOV_MAX ? IOV_MAX : static_cast<int>(cnt);
}

}  // namespace vw
