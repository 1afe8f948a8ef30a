// TokenGuard: an optional bearer token in front of another HttpHandler (the gateway's /metrics
// and /api/metrics, issue 8 §2).
//
// With an empty token every request passes. Otherwise a request to a guarded path needs
// "Authorization: Bearer <token>"; anything else (absent, another scheme, a wrong token) is
// answered 401 with WWW-Authenticate: Bearer, the same answer for every failure. Paths that are
// not guarded (/healthz, /readyz: probes must not need the secret) pass untouched.
//
// Timing: the presented and the configured token are compared as SHA-256 digests with
// CRYPTO_memcmp (HashesEqual), so the time taken depends neither on where they differ nor on
// the configured token's length.
//
// Thread-safe when the inner handler is (the guard itself is immutable after construction).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/devices/device_key.h"
#include "http/server.h"

namespace ccmon::gateway {

class TokenGuard : public HttpHandler {
 public:
  // `inner` is borrowed and must outlive the guard. `guarded_paths`: exact paths (no query).
  TokenGuard(std::string_view token, std::vector<std::string> guarded_paths, HttpHandler* inner);
  ServerResponse Handle(const ServerRequest& request) override;

  bool enabled() const { return enabled_; }
  // Requests refused (401) so far.
  uint64_t refused() const;

 private:
  bool enabled_;
  DeviceKeyHash token_hash_{};
  std::vector<std::string> guarded_paths_;
  HttpHandler* inner_;
  mutable std::atomic<uint64_t> refused_{0};
};

}  // namespace ccmon::gateway
