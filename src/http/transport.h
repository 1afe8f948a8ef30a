// HttpTransport: the seam between a sending policy (RemoteWriteSender, later the agent's shards
// and the gateway's forwarder) and the network. The policy decides what to send, when to retry
// and when to give up; the transport performs exactly one HTTP exchange. The real transport is
// RealHttpTransport (http/http_client.h); tests substitute scripted fakes.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ccmon {

using HttpHeader = std::pair<std::string, std::string>;  // name, value

struct HttpRequest {
  std::string method = "GET";
  // http://host[:port][/path][?query] or https://...; [IPv6] hosts allowed (see http/url.h).
  std::string url;
  // Sent in this order after the client's own (Host, User-Agent); a header of the same name
  // (case-insensitive) replaces the client's. Names must be RFC 9110 tokens and values free of
  // control characters other than HTAB (ValidateHeaderField in http/header.h); Content-Length
  // and Transfer-Encoding are the client's to set.
  std::vector<HttpHeader> headers;
  std::string body;
};

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::vector<HttpHeader> headers;  // as received, in order

  // The first header named `name` (ASCII case-insensitive), or "" when absent.
  std::string_view Header(std::string_view name) const;
};

// Contract of Exchange():
// - One request, one response: no redirects, no retries, no caching. Retrying is the caller's
//   policy.
// - OK means a complete response was read; every HTTP status (1xx aside), 4xx and 5xx
//   included, is a response. `response` is fully overwritten.
// - kInvalidArgument means the request can never succeed as given (a malformed URL, method or
//   header) and nothing was sent: a caller must not retry it.
// - Any other error (kIoError) means no usable response: resolve, connect, TLS, write or read
//   failed, a step timed out, or the body was over the transport's limit. The request may or may
//   not have reached the server.
// - Every step is bounded by the transport's own timeouts, so Exchange always returns.
// Implementations state their thread-safety; RealHttpTransport is safe to share.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual Status Exchange(const HttpRequest& request, HttpResponse* response) = 0;
};

}  // namespace ccmon
