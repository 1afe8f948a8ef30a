// StatusHandler: the gateway's status page on HttpServer (issue 9 §3).
//   GET /, GET /status     the page (RenderStatusHtml), text/html
//   GET /api/v1/status     its JSON twin (RenderStatusJson), application/json
//   other methods          405 with Allow: GET, HEAD (HEAD: the server drops the body)
// Each request takes a fresh snapshot from `snapshot` (CollectGatewayStatus in the gateway).
//
// Access: with no token configured the page is open, as /metrics is without
// --metrics-token-file. Otherwise a request needs one of `tokens` (the gateway passes its
// metrics token and, when set, its admin token: whoever holds the admin token can already list
// every device, so refusing it would only make an operator keep a second secret at hand), as
// "Authorization: Bearer <token>" (scripts, like /metrics) or as the password of
// "Authorization: Basic" with any user name — what a browser sends after its login prompt, and
// then with the page's own refresh requests. A refusal is 401 with a Basic and a Bearer
// challenge, the same for every failure; tokens are compared as SHA-256 digests in constant time
// (HashesEqual), against every configured token whatever matched.
//
// Responses carry Cache-Control: no-store, X-Content-Type-Options: nosniff, Referrer-Policy:
// no-referrer, and the page the Content-Security-Policy of status_page.h.
//
// Thread-safe when `snapshot` is (immutable after construction; the refusal count is atomic).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/devices/device_key.h"
#include "gateway/status/status_snapshot.h"
#include "http/server.h"

namespace ccmon::gateway {

inline constexpr std::string_view kStatusJsonPath = "/api/v1/status";

// The paths StatusHandler answers.
bool IsStatusPath(std::string_view path);

class StatusHandler : public HttpHandler {
 public:
  // `tokens`: empty ones are ignored; none left: the page is open.
  StatusHandler(std::function<GatewayStatus()> snapshot, const std::vector<std::string>& tokens);
  ServerResponse Handle(const ServerRequest& request) override;

  bool guarded() const { return !token_hashes_.empty(); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  bool Authorized(std::string_view authorization) const;

  std::function<GatewayStatus()> snapshot_;
  std::vector<DeviceKeyHash> token_hashes_;
  mutable std::atomic<uint64_t> refused_{0};
};

}  // namespace ccmon::gateway
