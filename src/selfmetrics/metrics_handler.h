// MetricsHandler: a ready HttpHandler for a /metrics endpoint (the agent's --listen, and the
// gateway's /metrics and /api/metrics): the exposition format negotiated from Accept, the body
// from a callback, and /healthz.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "exposition/negotiate.h"
#include "http/server.h"

namespace ccmon {

// Produces the whole /metrics body in `format` (ComposeMetricsBody in selfmetrics/
// self_metrics.h joins the claude_* families and the self-metrics). Called on the server's io
// threads, possibly concurrently. A non-OK Status is answered 500 with its message.
using MetricsBodyFn = std::function<Status(ExpositionFormat format, std::string* body)>;

struct MetricsHandlerOptions {
  std::vector<std::string> metrics_paths = {"/metrics"};
  std::string health_path = "/healthz";  // "" for none
};

// GET (and HEAD) on a metrics path: 200 with the negotiated Content-Type; on the health path:
// 200 "ok". Any other method there: 405 with "Allow: GET, HEAD". Any other path: 404. The query
// string is ignored. Thread-safe when the callback is.
class MetricsHandler : public HttpHandler {
 public:
  explicit MetricsHandler(MetricsBodyFn body, MetricsHandlerOptions options = {});
  ServerResponse Handle(const ServerRequest& request) override;

 private:
  MetricsBodyFn body_;
  MetricsHandlerOptions options_;
};

}  // namespace ccmon
