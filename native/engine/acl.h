// acl.h: --allow: the networks a worker accepts connections from. Checked on the address
// accept4 already returns, so it costs no system call; a refused peer is closed unread.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace vw {

struct Cidr {
  uint8_t addr[16] = {};  // IPv4 as an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
  int prefix = 0;         // in bits of the 128-bit form
};

// Empty list: everyone is allowed.
inline bool acl_allows(const std::vector<Cidr>& acl, const sockaddr_storage& peer) {
  if (acl.empty()) return true;
  uint8_t a[16] = {};
  if (peer.ss_family == AF_INET) {
    a[10] = a[11] = 0xff;
    std::memcpy(a + 12, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, 4);
  } else if (peer.ss_family == AF_INET6) {
    std::memcpy(a, &reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr, 16);
  } else {
    return false;
  }
  for (const Cidr& c : acl) {
    int bits = c.prefix, i = 0;
    for (; bits >= 8; bits -= 8, i++)
      if (a[i] != c.addr[i]) goto next;
    if (bits && ((a[i] ^ c.addr[i]) & static_cast<uint8_t>(0xff << (8 - bits)))) goto next;
    return true;
  next:;
  }
  return false;
}

}  // namespace vw
