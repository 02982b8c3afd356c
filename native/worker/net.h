// net.h: listening sockets. Returns errno and fills a Failure; never prints.
#pragma once
#include <string>

#include "worker/config.h"
#include "worker/fd.h"

namespace vw {

// A non-blocking SO_REUSEPORT listener on addr: one per worker and address, so the kernel
// spreads connections across workers with no shared accept queue. Its backlog, TCP_DEFER_ACCEPT
// and TCP_FASTOPEN come from config.
int open_listener(const ListenAddr& addr, const Config& config, Fd& out, Failure& failure);

// Checks, without SO_REUSEPORT, that nobody listens on addr yet (a reuseport group would
// otherwise silently share the port with another server), and resolves port 0.
int probe_listen_addr(ListenAddr& addr, Failure& failure);

std::string format_addr(const ListenAddr& addr);

}  // namespace vw
