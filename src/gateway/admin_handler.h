// AdminHandler: the gateway's device administration API, guarded by the admin token.
//
//   POST   /api/v1/devices               {"name": NAME} -> 201 {"name", "key", "setup"}
//   GET    /api/v1/devices               200 {"devices": [{"name", "created", "last_seen",
//                                        "revoked"}]} (times RFC 3339 UTC; last_seen null
//                                        when never used). Never keys or hashes.
//   DELETE /api/v1/devices/NAME          200 {"name", "revoked": true} (revoke; idempotent)
//   POST   /api/v1/devices/NAME/rotate   200 {"name", "key", "setup"}: the old key stops working
//
// "setup" is the ready command line for the device's machine:
//   ccmon-agent setup --url WRITE_URL --key KEY --device NAME
// where WRITE_URL is options.write_url, or else http(s)://<Host header>/api/v1/write (the
// word URL when the Host header is absent or not a plain host[:port]).
//
// Statuses (bodies are JSON {"error": "..."} for errors):
//   403  no admin token configured (the API is off), whatever the request;
//   401  no "Authorization: Bearer <admin token>" or a wrong one (compared in constant time:
//        SHA-256 of both, then CRYPTO_memcmp), WWW-Authenticate: Bearer;
//   400  a body that is not a JSON object with a string "name", or an invalid name
//        (1..64 of [A-Za-z0-9._-]); 404 an unknown device or path; 405 a wrong method (Allow);
//   409  a name already registered (revoked devices keep their names);
//   503  the store failed (nothing changed; Retry-After: 5).
//
// Thread-safe (the registry is). Borrowed pointers must outlive the handler.
#pragma once

#include <string>

#include "gateway/devices/device_registry.h"
#include "http/server.h"

namespace ccmon::gateway {

inline constexpr std::string_view kDevicesPath = "/api/v1/devices";

struct AdminOptions {
  std::string admin_token;  // empty: no admin token configured (every request 403)
  std::string write_url;    // for "setup"; empty: from the request's Host header
};

class AdminHandler : public HttpHandler {
 public:
  AdminHandler(DeviceRegistry* devices, AdminOptions options);
  // Requests whose path is kDevicesPath or under it (the router decides).
  ServerResponse Handle(const ServerRequest& request) override;

 private:
  std::string WriteUrl(const ServerRequest& request) const;

  DeviceRegistry* devices_;
  AdminOptions options_;
  DeviceKeyHash token_hash_{};
};

// The agent's setup command for a device (shared by the API and the offline command line).
std::string AgentSetupCommand(std::string_view write_url, std::string_view key,
                              std::string_view device);

}  // namespace ccmon::gateway
