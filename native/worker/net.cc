// net.cc: socket creation and address handling for listeners.
#include "worker/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace vw {
namespace {

int to_sockaddr(const ListenAddr& a, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof(ss));
  if (a.family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a.port);
    if (inet_pton(AF_INET6, a.host.c_str(), &s6->sin6_addr) != 1) return EINVAL;
    len = sizeof(*s6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a.port);
    if (inet_pton(AF_INET, a.host.c_str(), &s4->sin_addr) != 1) return EINVAL;
    len = sizeof(*s4);
  }
  return 0;
}

int fail(Failure& f, const char* step, const ListenAddr& a, const char* detail = "") {
  f.err = errno;
  f.step = step;
  f.target = format_addr(a);
  f.port = a.port;
  f.detail = detail;
  return f.err;
}

int bad_address(Failure& f, const ListenAddr& a) {
  f.err = EINVAL;
  f.step = "address";
  f.target = a.host;
  return f.err;
}

}  // namespace

std::string format_addr(const ListenAddr& a) {
  std::string host = a.family == AF_INET6 ? "[" + a.host + "]" : a.host;
  return host + ":" + std::to_string(a.port);
}

int open_listener(const ListenAddr& a, const Config& config, Fd& out, Failure& failure) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (to_sockaddr(a, ss, len)) return bad_address(failure, a);
  Fd fd(::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail(failure, "socket", a);
  int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
    return fail(failure, "setsockopt", a, "SO_REUSEPORT");
  // Accepted sockets inherit TCP_NODELAY from the listener on Linux: no setsockopt per
  // connection. Responses leave in one write per batch, so Nagle can only add delay.
  if (setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
    return fail(failure, "setsockopt", a, "TCP_NODELAY");
  if (a.family == AF_INET6) {
    int v6only = a.dual_stack ? 0 : 1;
    if (setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)))
      return fail(failure, "setsockopt", a, "IPV6_V6ONLY");
  }
  // --defer-accept: the handshake's last ACK does not wake accept; the first data does (or,
  // with none, a SYN-ACK retransmission once the seconds are up, which the client answers).
  int defer = static_cast<int>(config.defer_accept_s);
  if (defer > 0 && setsockopt(fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer)))
    return fail(failure, "setsockopt", a, "TCP_DEFER_ACCEPT");
  // --fastopen: a client holding a cookie may send its request in the SYN (the kernel also
  // needs net.ipv4.tcp_fastopen & 2 for the server side).
  int tfo = static_cast<int>(config.fastopen);
  if (tfo > 0 && setsockopt(fd.get(), IPPROTO_TCP, TCP_FASTOPEN, &tfo, sizeof(tfo)))
    return fail(failure, "setsockopt", a, "TCP_FASTOPEN");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len)) return fail(failure, "bind", a);
  if (::listen(fd.get(), config.backlog)) return fail(failure, "listen", a);
  out = std::move(fd);
  return 0;
}

int probe_listen_addr(ListenAddr& a, Failure& failure) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (to_sockaddr(a, ss, len)) return bad_address(failure, a);
  Fd fd(::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail(failure, "socket", a);
  int one = 1;
  // SO_REUSEADDR only passes over TIME_WAIT leftovers, never over a listening socket.
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (a.family == AF_INET6) {
    int v6only = a.dual_stack ? 0 : 1;
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len)) return fail(failure, "bind", a);
  if (a.port == 0) {
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len))
      return fail(failure, "getsockname", a);
    a.port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  return 0;
}

}  // namespace vw
