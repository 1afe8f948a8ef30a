// `ccmon-agent test`: one empty remote-write request (no series) to the configured target, with
// the configured headers and TLS settings, and what its answer means. Nothing is stored by the
// receiver; no retry is made (a retry policy would hide what is wrong).
#pragma once

#include <string>
#include <vector>

#include "http/transport.h"

namespace ccmon {

struct TargetTestResult {
  bool ok = false;      // a 2xx
  unsigned status = 0;  // the HTTP status; 0: no response
  std::string summary;  // one line: "HTTP 204: ok, …", "network error: …"
  std::string advice;   // what to check, "" when ok
};

// Sends the request through `transport` (one exchange).
TargetTestResult TestTarget(const std::string& url, const std::vector<HttpHeader>& headers,
                            HttpTransport* transport);

}  // namespace ccmon
