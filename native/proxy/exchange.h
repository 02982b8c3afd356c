// exchange.h: the relay's private state (proxy.h), shared by its two files: an exchange per
// client connection (proxy.cc), an upstream connection and a backend with its pool
// (upstream_pool.cc). Worker thread only.
#pragma once
#include <deque>
#include <string>
#include <vector>

#include "proxy/proxy.h"

namespace vw {

constexpr size_t kRelayBuf = Relay::kRelayBufSize;
constexpr uint64_t kDownMs = 1000;       // a failed backend is skipped this long
constexpr uint64_t kNever = UINT64_MAX;  // a deadline the engine's sweep leaves to the relay

struct Relay::Exchange {
  int fd = -1;             // the client; -1: an orphan (its client closed, its answer still due)
  Phase phase = Phase::idle;
  Watch cw = Watch::read;  // the client's interest now (engines add clients for reading)
  int up = -1;             // the upstream connection this exchange is queued on
  uint16_t backend = 0;
  uint16_t status = 0;
  bool keep = false;         // the client connection stays open after this response
  bool keepalive10 = false;  // ... for an HTTP/1.0 client that asked for keep-alive
  bool head_request = false;
  bool req_chunked = false;
  bool req_done = false;     // the whole request is in to_up (or already sent)
  bool head_done = false;    // the final response head was parsed
  bool resp_done = false;    // the whole response is in out (or already written)
  bool up_reusable = false;  // the upstream may serve another request afterwards
  bool sent = false;         // response bytes were queued for the client
  bool reused = false;       // the upstream came from the pool (or was already busy)
  bool replayable = false;   // GET/HEAD whose whole request is still in to_up (see flush_up)
  bool pipelined = false;    // its request went out in an upstream connection's pipeline
  bool solo = false;         // a retry: never pipelined (RFC 9112 §9.3.2)
  bool own_answer = false;   // vw answered (an error) itself: the rest of the request may follow
  uint64_t body_left = 0;    // request body bytes (Content-Length) still to forward
  uint64_t deadline = 0;     // --proxy-timeout: no progress by then ends the exchange
  uint64_t read_ns = 0;      // when the request was taken from the client's bytes (latency)
  uint64_t body_out = 0;     // --access-log: response body bytes relayed to the client
  std::string log_line;      // --access-log: the request line (and, combined, two fields)
  std::string log_referer, log_agent;
  ChunkedDecoder req_dec;
  BodyFramer body;
  std::string in;     // client bytes not dealt with yet (the next requests)
  std::string to_up;  // request bytes for the backend (kept whole while a retry may need them)
  std::string head;   // a response head still arriving
  std::string out;    // response bytes for the client
  size_t to_up_off = 0, out_off = 0;

  void reset_request() {
    status = 0;
    body_out = 0;
    req_done = head_done = resp_done = up_reusable = sent = reused = replayable = false;
    pipelined = solo = own_answer = false;
    body_left = 0;
    head.clear();
    to_up.clear();
    out.clear();
    to_up_off = out_off = 0;
  }
};

struct Relay::Upstream {
  uint16_t backend = 0;
  Watch watching = Watch::read;
  bool closing = false;        // a response said the backend closes: nothing more is sent on it
  bool write_blocked = false;  // pipelined bytes met EAGAIN: wait until writable
  bool dirty = false;          // on _dirty: `out` goes out at end_pass
  // --proxy-fresh: the response is whole and the backend was asked to close; the connection
  // waits for its FIN until then (ms), so the TIME_WAIT is the backend's, not ours. 0: not.
  uint64_t linger_until = 0;
  std::vector<Exchange*> queue;  // answered on it in this order; front: being answered now
  // (at most --proxy-pipeline long: popping the front moves a few pointers)
  std::string out;              // pipelined request bytes not yet written
  size_t out_off = 0;
};

struct Relay::Backend {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  uint32_t open = 0;             // upstream connections open now (busy or idle)
  int filling = -1;              // --proxy-pipeline: the connection new requests join
  std::vector<int> idle;         // pooled keep-alive connections, last in first out
  std::deque<uint64_t> waiting;  // clients waiting for a connection: fd | gen << 32
  uint64_t down_until = 0;       // a failed backend is skipped until then (ms)
};

}  // namespace vw
