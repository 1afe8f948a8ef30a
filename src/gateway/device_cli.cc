// ccmon-gateway device add|list|revoke|rotate: over a running gateway's admin API (--server) or
// on a stopped gateway's --data-dir (cli.h).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/timeutil.h"
#include "gateway/admin_handler.h"
#include "gateway/cli.h"
#include "gateway/devices/device_registry.h"
#include "gateway/store/series_store.h"
#include "http/http_client.h"
#include "store/rocks_store.h"

namespace ccmon::gateway {
namespace {

using nlohmann::json;

constexpr size_t kMaxAdminTokenBytes = 4096;

struct DeviceArgs {
  std::string command;  // add, list, revoke, rotate
  std::string name;
  std::string server;
  std::string token_file;
  std::string data_dir;
  std::string url;      // the write URL for the setup command (offline)
  std::string ca_file;  // --server over https: the CAs to trust instead of the system's
};

Status ParseDeviceArgs(const std::vector<std::string>& args, DeviceArgs* out) {
  DeviceArgs a;
  if (args.empty()) return Status::InvalidArgument("device wants add, list, revoke or rotate");
  a.command = args[0];
  if (a.command != "add" && a.command != "list" && a.command != "revoke" && a.command != "rotate") {
    return Status::InvalidArgument("unknown device command '" + a.command +
                                   "' (add, list, revoke, rotate)");
  }
  size_t i = 1;
  if (a.command != "list") {
    if (i >= args.size() || args[i].starts_with("--")) {
      return Status::InvalidArgument("device " + a.command + " wants a device NAME");
    }
    a.name = args[i++];
    if (a.command == "add" ? !IsValidNewDeviceName(a.name) : !IsValidDeviceName(a.name))
      return Status::InvalidArgument(kDeviceNameRule);
  }
  for (; i < args.size(); ++i) {
    std::string name = args[i], value;
    if (!name.starts_with("--"))
      return Status::InvalidArgument("unexpected argument '" + name + "'");
    name = name.substr(2);
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) return Status::InvalidArgument("--" + name + " wants a value");
      value = args[++i];
    }
    std::string* target = name == "server"             ? &a.server
                          : name == "admin-token-file" ? &a.token_file
                          : name == "data-dir"         ? &a.data_dir
                          : name == "url"              ? &a.url
                          : name == "ca-file"          ? &a.ca_file
                                                       : nullptr;
    if (target == nullptr) return Status::InvalidArgument("unknown flag --" + name);
    if (!target->empty()) return Status::InvalidArgument("--" + name + " given twice");
    if (value.empty()) return Status::InvalidArgument("--" + name + " wants a value");
    *target = value;
  }
  if (a.server.empty() == a.data_dir.empty()) {
    return Status::InvalidArgument(
        "give either --server URL (a running gateway) or --data-dir DIR (a stopped one)");
  }
  if (!a.data_dir.empty() && !a.token_file.empty()) {
    return Status::InvalidArgument("--admin-token-file goes with --server, not --data-dir");
  }
  if (!a.data_dir.empty() && !a.ca_file.empty()) {
    return Status::InvalidArgument("--ca-file goes with --server, not --data-dir");
  }
  *out = std::move(a);
  return Status::Ok();
}

void PrintResult(const DeviceArgs& a, const json& reply, std::ostream& out) {
  if (a.command == "add" || a.command == "rotate") {
    out << reply.value("setup", "") << "\n" << reply.value("key", "") << "\n";
  } else if (a.command == "revoke") {
    out << "revoked " << a.name << "\n";
  } else {
    out << "NAME\tCREATED\tLAST_SEEN\tREVOKED\n";
    for (const json& d : reply.value("devices", json::array())) {
      const json& seen = d.contains("last_seen") ? d["last_seen"] : json(nullptr);
      out << d.value("name", "") << "\t" << d.value("created", "") << "\t"
          << (seen.is_string() ? seen.get<std::string>() : std::string("never")) << "\t"
          << (d.value("revoked", false) ? "yes" : "no") << "\n";
    }
  }
}

int RunOverServer(const DeviceArgs& a, std::ostream& out, std::ostream& err) {
  std::string token;
  if (!a.token_file.empty()) {
    std::ifstream f(a.token_file, std::ios::binary);
    if (!f) {
      err << "ccmon-gateway: cannot read --admin-token-file " << a.token_file << "\n";
      return kExitFailure;
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    token = ss.str();
  } else if (const char* env = std::getenv("CCMON_GATEWAY_ADMIN_TOKEN"); env != nullptr) {
    token = env;
  }
  Status s = ParseAdminToken(token, &token);
  if (!s.ok()) {
    err << "ccmon-gateway: " << s.message() << " (--admin-token-file F or "
        << "CCMON_GATEWAY_ADMIN_TOKEN)\n";
    return kExitFailure;
  }
  std::string base = a.server;
  while (base.ends_with('/')) base.pop_back();
  HttpRequest req;
  req.url = base + std::string(kDevicesPath);
  if (a.command == "add") {
    req.method = "POST";
    req.body = json{{"name", a.name}}.dump();
    req.headers.emplace_back("Content-Type", "application/json");
  } else if (a.command == "list") {
    req.method = "GET";
  } else if (a.command == "revoke") {
    req.method = "DELETE";
    req.url += "/" + a.name;
  } else {
    req.method = "POST";
    req.url += "/" + a.name + "/rotate";
  }
  req.headers.emplace_back("Authorization", "Bearer " + token);
  HttpClientOptions ho;
  ho.timeout = std::chrono::seconds(30);
  ho.max_body_bytes = size_t(64) << 20;
  ho.ca_file = a.ca_file;
  HttpResponse resp;
  if (s = HttpExchange(req, ho, &resp); !s.ok()) {
    err << "ccmon-gateway: " << req.method << " " << req.url << ": " << s.message() << "\n";
    return kExitFailure;
  }
  json reply = json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
  if (resp.status < 200 || resp.status > 299) {
    err << "ccmon-gateway: the gateway answered " << resp.status << ": "
        << (reply.is_object() && reply.contains("error") && reply["error"].is_string()
                ? reply["error"].get<std::string>()
                : resp.body.substr(0, 200))
        << "\n";
    return kExitFailure;
  }
  if (!reply.is_object()) {
    err << "ccmon-gateway: the gateway's answer is not JSON\n";
    return kExitFailure;
  }
  PrintResult(a, reply, out);
  return kExitOk;
}

int RunOffline(const DeviceArgs& a, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  if (!std::filesystem::is_directory(a.data_dir, ec)) {
    err << "ccmon-gateway: --data-dir " << a.data_dir << " is not a directory\n";
    return kExitFailure;
  }
  std::unique_ptr<KvStore> kv;
  // RocksDB's LOCK is held by a running gateway, or for a moment by another offline command
  // (devices added in parallel by a script): wait up to kOfflineLockWait for the latter.
  constexpr auto kOfflineLockWait = std::chrono::seconds(3);
  const auto give_up = std::chrono::steady_clock::now() + kOfflineLockWait;
  auto pause = std::chrono::milliseconds(10);
  Status s;
  for (;;) {
    s = OpenRocksStore(a.data_dir, RocksStoreOptions{}, &kv);
    if (s.ok() || s.message().find("(RocksDB LOCK)") == std::string::npos ||
        std::chrono::steady_clock::now() + pause > give_up) {
      break;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
  if (!s.ok()) {
    if (s.message().find("(RocksDB LOCK)") != std::string::npos) {
      err << "ccmon-gateway: the gateway is running; use --server (" << s.message() << ")\n";
    } else {
      err << "ccmon-gateway: cannot open --data-dir " << a.data_dir << ": " << s.message() << "\n";
    }
    return kExitFailure;
  }
  std::unique_ptr<GatewayStore> store;  // checks the directory is a gateway's
  std::unique_ptr<DeviceRegistry> devices;
  if ((s = GatewayStore::Open(kv.get(), &store)).ok()) {
    s = DeviceRegistry::Open(kv.get(), nullptr, &devices);
  }
  if (!s.ok()) {
    err << "ccmon-gateway: cannot read --data-dir " << a.data_dir << ": " << s.message() << "\n";
    return kExitFailure;
  }
  json reply = json::object();
  std::string key;
  if (a.command == "add") {
    s = devices->Add(a.name, &key);
  } else if (a.command == "rotate") {
    s = devices->Rotate(a.name, &key);
  } else if (a.command == "revoke") {
    s = devices->Revoke(a.name);
  } else {
    json list = json::array();
    for (const DeviceInfo& d : devices->List()) {
      list.push_back({{"name", d.name},
                      {"created", FormatUtcSeconds(d.created_ms)},
                      {"last_seen",
                       d.last_seen_ms > 0 ? json(FormatUtcSeconds(d.last_seen_ms)) : json(nullptr)},
                      {"revoked", d.revoked}});
    }
    reply["devices"] = std::move(list);
  }
  if (!s.ok()) {
    err << "ccmon-gateway: " << s.message() << "\n";
    return kExitFailure;
  }
  if (!key.empty()) {
    reply["key"] = key;
    reply["setup"] = AgentSetupCommand(a.url.empty() ? "URL" : a.url, key, a.name);
  }
  PrintResult(a, reply, out);
  return kExitOk;
}

}  // namespace

Status ParseAdminToken(std::string_view text, std::string* token) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.remove_suffix(1);
  }
  if (text.empty()) return Status::InvalidArgument("the admin token is empty");
  if (text.size() > kMaxAdminTokenBytes) {
    return Status::InvalidArgument("the admin token is over " +
                                   std::to_string(kMaxAdminTokenBytes) + " bytes");
  }
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Status::InvalidArgument(
          "the admin token has a space or control character (one line of printable text)");
    }
  }
  *token = std::string(text);
  return Status::Ok();
}

int RunDeviceCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")) {
    out << kDeviceUsage;
    return kExitOk;
  }
  DeviceArgs a;
  if (Status s = ParseDeviceArgs(args, &a); !s.ok()) {
    err << "ccmon-gateway: " << s.message() << "\n" << kDeviceUsage;
    return kExitUsage;
  }
  return a.server.empty() ? RunOffline(a, out, err) : RunOverServer(a, out, err);
}

}  // namespace ccmon::gateway
