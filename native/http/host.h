// host.h: the grammar of a Host field value and of an http URI's authority (RFC 9112 §3.2,
// RFC 3986 §3.2.2, §3.2.3). Pure functions over borrowed bytes; worker thread.
#pragma once
#include <string_view>

namespace vw {

// Whether `v` (OWS already trimmed) is `uri-host [ ":" port ]`: uri-host is an IP-literal in
// brackets (IPv6address or IPvFuture, RFC 3986 §3.2.2), an IPv4address or a reg-name (unreserved,
// pct-encoded, sub-delims; possibly empty), port is *DIGIT (possibly empty). An empty value is
// valid (RFC 9112 §3.2: a request whose target has no authority sends an empty Host).
// RFC 9112 §3.2: a server answers 400 to a Host value outside this grammar.
bool valid_host(std::string_view v);

// The same grammar for the authority of an absolute-form request target, where an http URI
// also needs a non-empty host (RFC 9110 §4.2.1) and a userinfo is an error (§4.2.4).
bool valid_authority(std::string_view v);

}  // namespace vw
