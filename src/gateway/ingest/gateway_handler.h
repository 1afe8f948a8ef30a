// GatewayHandler: the gateway's routes, as one HttpHandler for HttpServer (http/server.h).
//   POST /api/v1/write           WriteHandler (write_handler.h); other methods: 405, Allow: POST
//   GET  /metrics, /api/metrics  `metrics` (a MetricsHandler, selfmetrics/metrics_handler.h;
//                                /api/metrics so that the seed server's scrape configs work)
//   /api/v1/devices[/…]          `admin` (gateway/admin_handler.h; nullptr: 404)
//   /api/v1/agent/state          `agent_state` (gateway/mirror/state_handler.h; nullptr: 404)
//   GET  /healthz                200 "ok" while the process serves
//   GET  /readyz                 200 "ready" while `ready` says so, else 503
//   /, /status, /api/v1/status   `status` (the status page, gateway/status/status_handler.h;
//                                nullptr: 404)
//   anything else                404
// Thread-safe when its parts are. Borrowed pointers must outlive the handler.
// HttpServer calls HandleAsync: a POST to the write path is answered when the store has it
// (WriteHandler::HandleAsync, no io thread waiting for the sync); every other route is answered
// inline, as Handle answers it.
#pragma once

#include <functional>

#include "gateway/ingest/write_handler.h"
#include "http/server.h"

namespace ccmon::gateway {

inline constexpr std::string_view kWritePath = "/api/v1/write";
// state_mirror::kAgentStatePath (not included here: the route is all this layer knows of it).
inline constexpr std::string_view kAgentStateRoute = "/api/v1/agent/state";

class GatewayHandler : public AsyncHttpHandler {
 public:
  // `admin`, `agent_state` and `status` may be null (no admin API, state mirror, status page: 404).
  GatewayHandler(WriteHandler* write, HttpHandler* metrics, std::function<bool()> ready,
                 HttpHandler* admin = nullptr, HttpHandler* agent_state = nullptr,
                 HttpHandler* status = nullptr);
  ServerResponse Handle(const ServerRequest& request) override;
  void HandleAsync(ServerRequest request, ResponseCompletion done) override;

 private:
  WriteHandler* write_;
  HttpHandler* metrics_;
  std::function<bool()> ready_;
  HttpHandler* admin_;
  HttpHandler* agent_state_;
  HttpHandler* status_;
};

}  // namespace ccmon::gateway
