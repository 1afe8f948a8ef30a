// A blocking HTTP(S) GET on Boost.Beast (system CA store, timeouts on every step).
// Used by ccmon-pricing to fetch LiteLLM's price file; the agent's client comes later.
#pragma once

#include <chrono>
#include <string>

#include "core/status.h"

namespace ccmon {

struct HttpGetOptions {
  std::chrono::seconds timeout{30};  // per step: resolve, connect, handshake, write, read
  size_t max_body_bytes = size_t(64) << 20;
  int max_redirects = 5;
};

// Fetches `url` (http:// or https://) and returns the body of a 200 response. Follows redirects.
Status HttpGet(const std::string& url, const HttpGetOptions& options, std::string* body);

}  // namespace ccmon
