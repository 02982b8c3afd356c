// admission.h: what a worker decides about a connection accept returned, before it serves it:
// --max-conns, --allow (on the address accept returned, no system call) and --locality (which
// CPU processed its packets). Worker thread.
#pragma once
#include <sys/socket.h>

#include <cstdint>

#include "worker/config.h"
#include "worker/stats.h"
#include "worker/sys.h"

namespace vw {

enum class Admit { ok, over_limit, denied };

// --max-conns (against `open`) and --allow.
inline Admit admit(const Config& cfg, uint32_t open, const sockaddr_storage& peer) {
  if (open >= cfg.limits.max_conns) return Admit::over_limit;
  if (!acl_allows(cfg.allow, peer)) return Admit::denied;
  return Admit::ok;
}

// --locality: which CPU processed this connection's packets (RSS/RPS steering) against the
// worker's own; one getsockopt per accepted connection.
void count_locality(Sys& sys, StatsSlot& stats, int worker_cpu, int fd);

}  // namespace vw
