// pending_out.cc: keeping and consuming the output declared in pending_out.h.
#include "engine/pending_out.h"

#include <cstring>

namespace vw {

PendingOut* pending_from_batch(const OutBatch& out, size_t written, const ResponseTable* table) {
  const iovec* iov = out.iov();
  int cnt = out.iovcnt();
  size_t skip = written, staged = 0;
  for (int i = 0; i < cnt; i++) {
    size_t len = iov[i].iov_len, off = skip < len ? skip : len;
    skip -= off;
    if (out.in_stage(iov[i].iov_base)) staged += len - off;
  }
  auto p = new PendingOut();
  p->copied.reset(new char[staged ? staged : 1]);
  p->iov.reserve(static_cast<size_t>(cnt));
  char* dst = p->copied.get();
  skip = written;
  for (int i = 0; i < cnt; i++) {
    size_t len = iov[i].iov_len, off = skip < len ? skip : len;
    skip -= off;
    if (off == len) continue;
    const char* src = static_cast<const char*>(iov[i].iov_base) + off;
    if (out.in_stage(iov[i].iov_base)) {
      std::memcpy(dst, src, len - off);
      p->iov.push_back({dst, len - off});
      dst += len - off;
    } else {
      p->iov.push_back({const_cast<char*>(src), len - off});
      if (!p->pinned) p->pin(table);
    }
  }
  return p;
}

bool pending_advance(PendingOut& p, size_t n) {
  while (p.first < p.iov.size() && n >= p.iov[p.first].iov_len) n -= p.iov[p.first++].iov_len;
  if (p.first == p.iov.size()) return true;
  p.iov[p.first].iov_base = static_cast<char*>(p.iov[p.first].iov_base) + n;
  p.iov[p.first].iov_len -= n;
  return false;
}

}  // namespace vw
