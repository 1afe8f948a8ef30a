#include "gateway/admin_handler.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/timeutil.h"

namespace ccmon::gateway {
namespace {

using nlohmann::json;

ServerResponse Json(unsigned status, const json& body) {
  return ServerResponse::Text(status, body.dump() + "\n", "application/json");
}

ServerResponse Error(unsigned status, std::string message) {
  ServerResponse r = Json(status, json{{"error", std::move(message)}});
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ccmon-admin\"");
  if (status == 503) r.headers.emplace_back("Retry-After", "5");
  return r;
}

ServerResponse MethodNotAllowed(const char* allow) {
  ServerResponse r = Error(405, std::string("use ") + allow);
  r.headers.emplace_back("Allow", allow);
  return r;
}

ServerResponse StoreError(const Status& s) {
  if (s.code() == Status::Code::kNotFound) return Error(404, s.message());
  return Error(503, "storage unavailable: " + s.message());
}

}  // namespace

std::string AdminHandler::WriteUrl(const ServerRequest& request) const {
  if (!options_.write_url.empty()) return options_.write_url;
  // The Host header goes into a shell command line: only host[:port] characters.
  const std::string_view host = request.Header("Host");
  bool plain = !host.empty() && host.size() <= 255;
  for (char c : host) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    plain = plain && ok;
  }
  if (!plain) return "URL";
  return std::string(request.tls ? "https://" : "http://") + std::string(host) + "/api/v1/write";
}

std::string AgentSetupCommand(std::string_view write_url, std::string_view key,
                              std::string_view device) {
  return "ccmon-agent setup --url " + std::string(write_url) + " --key " + std::string(key) +
         " --device " + std::string(device);
}

AdminHandler::AdminHandler(DeviceRegistry* devices, AdminOptions options)
    : devices_(devices), options_(std::move(options)) {
  token_hash_ = HashDeviceKey(options_.admin_token);
}

ServerResponse AdminHandler::Handle(const ServerRequest& request) {
  if (options_.admin_token.empty()) {
    return Error(403,
                 "no admin token configured (--admin-token-file or "
                 "CCMON_GATEWAY_ADMIN_TOKEN)");
  }
  if (!HashesEqual(HashDeviceKey(BearerToken(request.Header("Authorization"))), token_hash_)) {
    return Error(401, "a valid admin token is required: Authorization: Bearer <token>");
  }
  std::string_view rest = request.Path();
  if (!rest.starts_with(kDevicesPath)) return Error(404, "not found");
  rest.remove_prefix(kDevicesPath.size());
  if (rest.empty() || rest == "/") {
    if (request.method == "GET") {
      json list = json::array();
      for (const DeviceInfo& d : devices_->List()) {
        list.push_back({{"name", d.name},
                        {"created", FormatUtcSeconds(d.created_ms)},
                        {"last_seen", d.last_seen_ms > 0 ? json(FormatUtcSeconds(d.last_seen_ms))
                                                         : json(nullptr)},
                        {"revoked", d.revoked}});
      }
      return Json(200, json{{"devices", std::move(list)}});
    }
    if (request.method != "POST") return MethodNotAllowed("GET, POST");
    json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() || !body.contains("name") || !body["name"].is_string()) {
      return Error(400, "want a JSON object {\"name\": \"DEVICE\"}");
    }
    const std::string name = body["name"].get<std::string>();
    if (!IsValidNewDeviceName(name)) return Error(400, kDeviceNameRule);
    std::string key;
    if (Status s = devices_->Add(name, &key); !s.ok()) {
      if (s.code() == Status::Code::kInvalidArgument) return Error(409, s.message());
      return StoreError(s);
    }
    return Json(201, json{{"name", name},
                          {"key", key},
                          {"setup", AgentSetupCommand(WriteUrl(request), key, name)}});
  }
  rest.remove_prefix(1);  // the '/'
  std::string_view name = rest;
  bool rotate = false;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/rotate") return Error(404, "not found");
    name = rest.substr(0, slash);
    rotate = true;
  }
  if (!IsValidDeviceName(name)) return Error(404, "no device " + std::string(name.substr(0, 64)));
  if (rotate) {
    if (request.method != "POST") return MethodNotAllowed("POST");
    std::string key;
    if (Status s = devices_->Rotate(name, &key); !s.ok()) return StoreError(s);
    return Json(200, json{{"name", name},
                          {"key", key},
                          {"setup", AgentSetupCommand(WriteUrl(request), key, name)}});
  }
  if (request.method != "DELETE") return MethodNotAllowed("DELETE");
  if (Status s = devices_->Revoke(name); !s.ok()) return StoreError(s);
  return Json(200, json{{"name", name}, {"revoked", true}});
}

}  // namespace ccmon::gateway
