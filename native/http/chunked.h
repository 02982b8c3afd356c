// chunked.h: the chunked transfer coding of a request body (RFC 9112 §7.1) and the
// Transfer-Encoding field that announces it (§6.1, §6.3). Pure, incremental, allocation-free:
// the decoder keeps its place between reads, so a body split anywhere decodes the same.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vw {

// What a request's Transfer-Encoding lines add up to (RFC 9112 §6.3).
enum class TransferCoding : uint8_t {
  none,         // no Transfer-Encoding field
  chunked,      // exactly "chunked": the body is decoded and discarded
  unsupported,  // chunked is final but other codings precede it: 501 (§6.1)
  bad,          // chunked not final, repeated, with parameters, or a malformed list: 400 (§6.3)
};

// Folds one Transfer-Encoding field line into `acc` (the lines of a request, in order, form
// one list, RFC 9110 §5.3). `state` carries what the earlier lines said; start it at 0.
// transfer-coding = token *( OWS ";" OWS transfer-parameter )  (RFC 9110 §10.1.4)
void read_transfer_encoding(std::string_view value, uint8_t& state);
// The verdict once every line was read (state 0 means no field at all).
TransferCoding transfer_coding(uint8_t state);

class ChunkedDecoder {
 public:
  enum class Step : uint8_t { more, done, error };
  struct Result {
    Step step;
    size_t consumed;        // bytes of p taken (done: up to the final CRLF, no further)
    uint16_t error_status;  // error: 400 (malformed), 413 (data over max_body), 431 (trailers)
  };

  // Decodes p[0, n) and discards it. `max_body` bounds the chunk data in total (413 beyond);
  // `max_line` each chunk-size line with its extensions (400 beyond) and the trailer section
  // (431 beyond). Line ends must be CRLF: a bare LF or CR is an error, never a guess.
  Result feed(const char* p, size_t n, uint64_t max_body, uint32_t max_line);

 private:
  enum class S : uint8_t {
    size_first, size, ext_ws, ext_name_pre, ext_name, ext_name_ws, ext_val_pre, ext_token,
    ext_quoted, ext_quoted_pair, ext_val_ws, size_lf, data, data_cr, data_lf,
    trailer_start, trailer_name, trailer_value, trailer_lf, final_lf,
  };
  S _s = S::size_first;
  uint64_t _chunk = 0;  // size: the value so far; data: bytes of this chunk still to come
  uint64_t _total = 0;  // chunk data so far
  uint32_t _line = 0;   // bytes of the current chunk-size line, or of the trailer section
};

}  // namespace vw
