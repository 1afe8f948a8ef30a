#include "selfmetrics/metrics_handler.h"

#include <algorithm>
#include <utility>

namespace ccmon {

MetricsHandler::MetricsHandler(MetricsBodyFn body, MetricsHandlerOptions options)
    : body_(std::move(body)), options_(std::move(options)) {}

ServerResponse MetricsHandler::Handle(const ServerRequest& request) {
  std::string_view path = request.Path();
  bool metrics = std::find(options_.metrics_paths.begin(), options_.metrics_paths.end(), path) !=
                 options_.metrics_paths.end();
  bool health = !options_.health_path.empty() && path == options_.health_path;
  if (!metrics && !health) return ServerResponse::Text(404, "not found\n");
  if (request.method != "GET") {
    ServerResponse r = ServerResponse::Text(405, "method not allowed\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (health) return ServerResponse::Text(200, "ok\n");
  Negotiated n = NegotiateExposition(request.Header("Accept"));
  std::string body;
  if (Status s = body_(n.format, &body); !s.ok()) {
    return ServerResponse::Text(500, "metrics unavailable: " + s.message() + "\n");
  }
  return ServerResponse::Text(200, std::move(body), std::string(n.content_type));
}

}  // namespace ccmon
