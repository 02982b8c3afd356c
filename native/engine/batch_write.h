// batch_write.h: writing a batch of responses to a non-blocking (or blocking) socket with one
// counted write or writev, and resuming what the socket did not take. Thread of the connection.
#pragma once
#include "engine/conn.h"
#include "http/out_batch.h"
#include "http/responses.h"
#include "worker/stats.h"
#include "worker/sys.h"

namespace vw {

enum class WriteResult { done, pending, failed };

// One write of the whole batch (write for one iovec, writev otherwise). A partial write leaves
// the rest in c.out. EAGAIN and EINTR count as nothing written.
WriteResult write_batch(Sys& sys, StatsSlot& stats, int fd, Conn& c, const OutBatch& out,
                        const ResponseTable* table);

// One writev of what c.out still holds; c.out is left for the caller to free when done.
WriteResult write_pending(Sys& sys, StatsSlot& stats, int fd, Conn& c);

}  // namespace vw
