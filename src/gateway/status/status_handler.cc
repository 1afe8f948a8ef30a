#include "gateway/status/status_handler.h"

#include <utility>

#include "base/base64.h"
#include "gateway/status/status_page.h"

namespace ccmon::gateway {
namespace {

bool IEqualsPrefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = char(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = char(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void AddCommonHeaders(ServerResponse* r) {
  r->headers.emplace_back("Cache-Control", "no-store");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
}

}  // namespace

bool IsStatusPath(std::string_view path) {
  return path == "/" || path == "/status" || path == kStatusJsonPath;
}

StatusHandler::StatusHandler(std::function<GatewayStatus()> snapshot,
                             const std::vector<std::string>& tokens)
    : snapshot_(std::move(snapshot)) {
  for (const std::string& t : tokens) {
    if (!t.empty()) token_hashes_.push_back(HashDeviceKey(t));
  }
}

bool StatusHandler::Authorized(std::string_view authorization) const {
  std::string_view presented = BearerToken(authorization);
  std::string basic_password;
  if (presented.empty() && IEqualsPrefix(authorization, "basic ")) {
    std::string decoded;
    if (Base64Decode(Trim(authorization.substr(6)), &decoded)) {
      const size_t colon = decoded.find(':');
      if (colon != std::string::npos) basic_password = decoded.substr(colon + 1);
    }
    presented = basic_password;
  }
  // Hash whatever was presented (nothing, too) and compare with every token, so that the time
  // taken says nothing about which token, if any, matched.
  const DeviceKeyHash h = HashDeviceKey(presented);
  bool ok = false;
  for (const DeviceKeyHash& t : token_hashes_) ok = HashesEqual(h, t) || ok;
  return ok && !presented.empty();
}

ServerResponse StatusHandler::Handle(const ServerRequest& request) {
  if (request.method != "GET") {
    ServerResponse r = ServerResponse::Text(405, "use GET\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (guarded() && !Authorized(request.Header("Authorization"))) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    ServerResponse r = ServerResponse::Text(
        401,
        "the status page needs the gateway's metrics (or admin) token: Authorization: Bearer "
        "<token>, or in a browser any user name and the token as the password\n");
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"ccmon-gateway\", charset=\"UTF-8\"");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ccmon-gateway\"");
    AddCommonHeaders(&r);
    return r;
  }
  const GatewayStatus status = snapshot_();
  ServerResponse r;
  if (request.Path() == kStatusJsonPath) {
    r = ServerResponse::Text(200, RenderStatusJson(status), "application/json");
  } else {
    r = ServerResponse::Text(200, RenderStatusHtml(status), "text/html; charset=utf-8");
    r.headers.emplace_back("Content-Security-Policy", StatusContentSecurityPolicy());
  }
  AddCommonHeaders(&r);
  return r;
}

}  // namespace ccmon::gateway
