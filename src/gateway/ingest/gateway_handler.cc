#include "gateway/ingest/gateway_handler.h"

#include <utility>

namespace ccmon::gateway {

GatewayHandler::GatewayHandler(WriteHandler* write, HttpHandler* metrics,
                               std::function<bool()> ready, HttpHandler* admin,
                               HttpHandler* agent_state, HttpHandler* status)
    : write_(write),
      metrics_(metrics),
      ready_(std::move(ready)),
      admin_(admin),
      agent_state_(agent_state),
      status_(status) {}

void GatewayHandler::HandleAsync(ServerRequest request, ResponseCompletion done) {
  if (request.Path() == kWritePath && request.method == "POST") {
    return write_->HandleAsync(std::move(request), std::move(done));
  }
  done(Handle(request));
}

ServerResponse GatewayHandler::Handle(const ServerRequest& request) {
  const std::string_view path = request.Path();
  if (path == kWritePath) {
    if (request.method != "POST") {
      write_->CountStatus(405);
      ServerResponse r = ServerResponse::Text(405, "use POST\n");
      r.headers.emplace_back("Allow", "POST");
      return r;
    }
    return write_->Handle(request);
  }
  if (admin_ != nullptr && (path == "/api/v1/devices" || path.starts_with("/api/v1/devices/"))) {
    return admin_->Handle(request);
  }
  if (agent_state_ != nullptr && path == kAgentStateRoute) return agent_state_->Handle(request);
  if (status_ != nullptr && (path == "/" || path == "/status" || path == "/api/v1/status")) {
    return status_->Handle(request);
  }
  if (path == "/readyz") {
    if (request.method != "GET") {
      ServerResponse r = ServerResponse::Text(405, "use GET\n");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    const bool ready = !ready_ || ready_();
    return ServerResponse::Text(ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
  }
  if (path == "/metrics" || path == "/api/metrics" || path == "/healthz") {
    return metrics_->Handle(request);
  }
  return ServerResponse::Text(404, "not found\n");
}

}  // namespace ccmon::gateway
