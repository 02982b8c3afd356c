// session.h: HTTP/1.1 semantics for one connection, apart from any engine: given the bytes a
// connection sent, choose the responses and append them, in order, to an output batch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "worker/access_log.h"
#include "http/chunked.h"
#include "worker/config.h"
#include "http/out_batch.h"
#include "http/responses.h"
#include "worker/stats.h"

namespace vw {

// A request whose chunked body is being read: its head, kept to be answered once the body has
// been decoded (and discarded), and the decoder's place. Allocated per chunked request only.
struct ChunkedBody {
  ChunkedDecoder decoder;
  std::unique_ptr<char[]> head;  // the request line and header section, as received
  uint32_t head_len = 0;
  bool finished = false;       // the body is over (or broken): answer next
  uint16_t error_status = 0;   // the body was malformed (400) or too large (413, 431)
};

// What HTTP keeps of one connection between two calls: where the parser stopped, the body still
// to skip, a chunked body being decoded, and the peer's address for the access log. The engine
// holds it (Conn::http) and never reads it; the session sees nothing else of the connection.
struct SessionState {
  bool header_started = false;     // some bytes of a request header have arrived
  uint8_t peer_family = 0;         // --access-log: 4 or 6 (0: unknown), and the address
  uint8_t peer[16];
  uint32_t scan_from = 0;          // parser resume offset inside the kept input
  uint64_t body_left = 0;          // request body bytes still to skip
  ChunkedBody* chunked = nullptr;  // non-null only while a chunked request body is read

  // The connection is over (or its slot is reused): drop what a request left behind.
  void reset() {
    delete chunked;
    chunked = nullptr;
    scan_from = 0;
    body_left = 0;
    header_started = false;
  }
};

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
// left unconsumed (conn.scan_from remembers how far the parser looked). Thread of the connection.
ServeOutcome serve_requests(const ServeCtx& ctx, SessionState& conn, const char* data,
                            size_t len, OutBatch& out);

}  // namespace vw
