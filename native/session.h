// session.h: HTTP/1.1 semantics for one connection, apart from any engine: given the bytes a
// connection sent, choose the responses and append them, in order, to an output batch.
#pragma once
#include <cstddef>

#include "access_log.h"
#include "config.h"
#include "conn.h"
#include "out_batch.h"
#include "responses.h"
#include "stats.h"

namespace vw {

struct ServeCtx {
  const ResponseTable* table;
  const DateCache* date;
  const Limits* limits;
  bool keepalive;
  StatsSlot* stats;
  LogRing* log = nullptr;  // --access-log: a record per response into the worker's ring
  bool log_combined = false;  // ... with Referer and User-Agent
};

struct ServeOutcome {
  size_t consumed = 0;      // input bytes dealt with (requests answered, bodies skipped)
  bool close = false;       // the last response appended ends the connection
  bool linger = false;      // unread input may follow: shut writing, drain, then close
  bool batch_full = false;  // stopped early: write the batch, then call again with the rest
};

// Answers every complete request in data[0, len), in order. An incomplete request at the end is
// left unconsumed (conn.scan_from remembers how far the parser looked). Worker thread only.
ServeOutcome serve_requests(const ServeCtx& ctx, Conn& conn, const char* data, size_t len,
                            OutBatch& out);

}  // namespace vw
