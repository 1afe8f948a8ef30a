// Blocking HTTP(S) exchanges on Boost.Beast (system CA store, timeouts on every step), one
// connection per exchange. Used by ccmon-pricing (GET of LiteLLM's price file) and by
// ccmon-replay's remote-write backfill (POST); the agent's keep-alive client comes later.
// Thread-safe: no shared state.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ccmon {

struct HttpGetOptions {
  std::chrono::seconds timeout{30};  // per step: resolve, connect, handshake, write, read
  size_t max_body_bytes = size_t(64) << 20;
  int max_redirects = 5;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http://host[:port]/path or https://...; [IPv6] hosts allowed
  std::vector<std::pair<std::string, std::string>> headers;  // added as given
  std::string body;
};

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::string location;     // Location header, if any
  std::string retry_after;  // Retry-After header, if any
};

// One request and its response (no redirects). A non-OK Status means no response: bad URL,
// resolve/connect/TLS failure, a timeout, or a body over options.max_body_bytes. Every HTTP
// status, 4xx and 5xx included, is a response.
Status HttpExchange(const HttpRequest& request, const HttpGetOptions& options,
                    HttpResponse* response);

// Fetches `url` (http:// or https://) and returns the body of a 200 response. Follows redirects.
Status HttpGet(const std::string& url, const HttpGetOptions& options, std::string* body);

// Sends one HTTP request. The real one is HttpExchange; tests use fakes.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual Status Exchange(const HttpRequest& request, HttpResponse* response) = 0;
};

class RealHttpTransport : public HttpTransport {
 public:
  explicit RealHttpTransport(HttpGetOptions options) : options_(options) {}
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    return HttpExchange(request, options_, response);
  }

 private:
  HttpGetOptions options_;
};

}  // namespace ccmon
