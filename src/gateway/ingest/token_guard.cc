#include "gateway/ingest/token_guard.h"

#include <utility>

namespace ccmon::gateway {

TokenGuard::TokenGuard(std::string_view token, std::vector<std::string> guarded_paths,
                       HttpHandler* inner)
    : enabled_(!token.empty()), guarded_paths_(std::move(guarded_paths)), inner_(inner) {
  if (enabled_) token_hash_ = HashDeviceKey(token);
}

ServerResponse TokenGuard::Handle(const ServerRequest& request) {
  if (!enabled_) return inner_->Handle(request);
  const std::string_view path = request.Path();
  bool guarded = false;
  for (const std::string& p : guarded_paths_) guarded = guarded || p == path;
  if (!guarded) return inner_->Handle(request);
  // Hash whatever was presented (nothing, too) so that every refusal takes the same path.
  const std::string_view presented = BearerToken(request.Header("Authorization"));
  const bool ok = !presented.empty() && HashesEqual(HashDeviceKey(presented), token_hash_);
  if (ok) return inner_->Handle(request);
  refused_.fetch_add(1, std::memory_order_relaxed);
  ServerResponse r = ServerResponse::Text(
      401, "this endpoint needs Authorization: Bearer <the gateway's metrics token>\n");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ccmon-gateway metrics\"");
  return r;
}

uint64_t TokenGuard::refused() const { return refused_.load(std::memory_order_relaxed); }

}  // namespace ccmon::gateway
