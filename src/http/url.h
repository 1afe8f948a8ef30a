// http:// and https:// URLs as the HTTP client accepts them, checked strictly so that a typo
// gets a clear error instead of a connection somewhere else (":99999" once wrapped to port
// 34463) and nothing in a URL can end the request line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ccmon {

struct HttpUrl {
  bool tls = false;          // https
  std::string host;          // a name or IPv4 address, or an IPv6 address without its brackets
  bool ipv6 = false;         // host is an IPv6 literal (written [..] in the URL)
  uint16_t port = 0;         // the URL's port, or 80 / 443
  bool default_port = true;  // no port in the URL
  std::string target;        // path and query as sent on the request line; at least "/"

  // The Host header: host, [v6] in brackets, ":port" when the URL named one.
  std::string HostHeader() const;
  // scheme://host:port (for resolving relative redirects).
  std::string Origin() const;
};

// Accepts scheme://host[:port][/path][?query][#fragment] where
// - scheme is http or https (any case);
// - host is a name or IPv4 address of ALPHA DIGIT - . _, or an IPv6 address in brackets
//   (no zone id); user info (user:pass@) is refused, so credentials never sit in a URL;
// - port, when present, is 1 to 5 digits with a value of 1..65535 (no sign, no empty port);
// - path and query hold only URI characters (RFC 3986 unreserved, sub-delims, : @ / ?) and
//   well-formed %XX escapes: no spaces, controls or non-ASCII bytes;
// - a fragment is dropped (it is never sent).
// Errors say which part is wrong; they never echo user info.
Status ParseHttpUrl(std::string_view url, HttpUrl* out);

}  // namespace ccmon
