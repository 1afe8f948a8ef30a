#include "gateway/cli.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stop_token>

#include "tools/common/flags.h"

namespace ccmon::gateway {
namespace {

constexpr char kUsage[] =
    "usage: ccmon-gateway serve [--listen ADDR] [--data-dir DIR] [--allow-anonymous]\n"
    "                           [--admin-token-file F] [limits]\n"
    "       ccmon-gateway device add|list|revoke|rotate ... (ccmon-gateway device --help)\n"
    "\n"
    "Receives Prometheus remote-write (1.0 and 2.0) on POST /api/v1/write, keeps every series'\n"
    "last sample in RocksDB (--data-dir) and serves them on /metrics.\n"
    "\n"
    "  --listen ADDR                host:port to listen on (default 127.0.0.1:9469; port 0 picks "
    "one)\n"
    "  --data-dir DIR               the gateway's RocksDB (default ./data)\n"
    "  --allow-anonymous            accept writes without an Authorization header (a single-\n"
    "                               user setup); off by default: writes need a device key\n"
    "  --admin-token-file F         the admin API's token (else $CCMON_GATEWAY_ADMIN_TOKEN;\n"
    "                               neither: the admin API answers 403)\n"
    "  --max-body-bytes N           1024..1073741824 (default 16777216), larger bodies: 413\n"
    "  --max-decoded-bytes N        1024..4294967296 (default 67108864), checked from snappy's\n"
    "                               declared length before decompressing: 400\n"
    "  --max-series-per-request N   1..10000000 (default 50000)\n"
    "  --max-labels-per-series N    1..10000 (default 64)\n"
    "  --max-label-name-bytes N     1..65536 (default 256)\n"
    "  --max-label-value-bytes N    1..1048576 (default 4096)\n"
    "  --max-future DURATION        samples further ahead are refused (400); 0s..1d (default 10m)\n"
    "  --max-connections N          1..100000 (default 1024)\n"
    "  --io-threads N               1..256 (default 2)\n"
    "  --online-window DURATION     claude_device_online is 1 while a device's last write is\n"
    "                               younger than this; 1s..1d (default 45s: 3x the agent's\n"
    "                               --resend-interval)\n";

// "30s", "10m", "1h", "1d" or plain seconds, 0 .. max_seconds.
Status ParseDuration(std::string_view flag, std::string_view text, uint64_t max_seconds,
                     std::chrono::milliseconds* out) {
  uint64_t unit = 1;
  std::string_view digits = text;
  if (!text.empty()) {
    switch (text.back()) {
      case 's':
        unit = 1;
        digits.remove_suffix(1);
        break;
      case 'm':
        unit = 60;
        digits.remove_suffix(1);
        break;
      case 'h':
        unit = 3600;
        digits.remove_suffix(1);
        break;
      case 'd':
        unit = 86400;
        digits.remove_suffix(1);
        break;
      default:
        break;
    }
  }
  uint64_t n = 0;
  Status s = ParseUnsignedFlag(flag, digits, 0, max_seconds / unit, &n);
  if (!s.ok()) {
    return Status::InvalidArgument(
        "--" + std::string(flag) + " wants a duration such as 30s, 10m or 1h, at most " +
        std::to_string(max_seconds) + "s, got '" + std::string(text) + "'");
  }
  *out = std::chrono::milliseconds(int64_t(n * unit * 1000));
  return Status::Ok();
}

}  // namespace

const char* GatewayVersion() { return "0.1.0"; }

Status ParseServeFlags(const std::vector<std::string>& args, GatewayConfig* config) {
  GatewayConfig c = *config;
  struct SizeFlag {
    const char* name;
    uint64_t min, max;
    size_t* target;
  };
  size_t io_threads_sz = size_t(c.io_threads);
  const SizeFlag sizes[] = {
      {"max-body-bytes", 1024, uint64_t(1) << 30, &c.limits.max_body_bytes},
      {"max-decoded-bytes", 1024, uint64_t(4) << 30, &c.limits.max_decoded_bytes},
      {"max-series-per-request", 1, 10'000'000, &c.limits.max_series_per_request},
      {"max-labels-per-series", 1, 10'000, &c.limits.max_labels_per_series},
      {"max-label-name-bytes", 1, 65'536, &c.limits.max_label_name_bytes},
      {"max-label-value-bytes", 1, 1 << 20, &c.limits.max_label_value_bytes},
      {"max-connections", 1, 100'000, &c.max_connections},
      {"io-threads", 1, 256, &io_threads_sz},
  };
  std::vector<std::string> seen;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (!arg.starts_with("--")) {
      return Status::InvalidArgument("unexpected argument '" + arg + "'");
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    for (const std::string& s : seen) {
      if (s == name) return Status::InvalidArgument("--" + name + " given twice");
    }
    seen.push_back(name);
    if (name == "allow-anonymous") {
      if (has_value) return Status::InvalidArgument("--allow-anonymous takes no value");
      c.allow_anonymous = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) return Status::InvalidArgument("--" + name + " wants a value");
      value = args[++i];
    }
    if (name == "listen") {
      if (value.empty()) return Status::InvalidArgument("--listen wants host:port");
      c.listen = value;
      continue;
    }
    if (name == "admin-token-file") {
      std::ifstream f(value, std::ios::binary);
      std::ostringstream text;
      if (!f || !(text << f.rdbuf())) {
        return Status::InvalidArgument("--admin-token-file: cannot read " + value);
      }
      if (Status s = ParseAdminToken(text.str(), &c.admin_token); !s.ok()) {
        return Status::InvalidArgument("--admin-token-file " + value + ": " + s.message());
      }
      continue;
    }
    if (name == "data-dir") {
      if (value.empty()) return Status::InvalidArgument("--data-dir wants a directory");
      c.data_dir = value;
      continue;
    }
    if (name == "online-window") {
      if (Status s = ParseDuration(name, value, 86400, &c.online_window); !s.ok()) return s;
      if (c.online_window.count() == 0) {
        return Status::InvalidArgument("--online-window wants a duration from 1s to 1d, got 0");
      }
      continue;
    }
    if (name == "max-future") {
      if (Status s = ParseDuration(name, value, 86400, &c.limits.max_future); !s.ok()) return s;
      continue;
    }
    bool known = false;
    for (const SizeFlag& f : sizes) {
      if (name != f.name) continue;
      uint64_t n = 0;
      if (Status s = ParseUnsignedFlag(name, value, f.min, f.max, &n); !s.ok()) return s;
      *f.target = size_t(n);
      known = true;
    }
    if (!known) return Status::InvalidArgument("unknown flag --" + name);
  }
  c.io_threads = int(io_threads_sz);
  *config = c;
  return Status::Ok();
}

int RunGatewayCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  StopSignals* signals) {
  if (args.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    out << kUsage;
    return kExitOk;
  }
  if (args[0] == "--version") {
    out << "ccmon-gateway " << GatewayVersion() << "\n";
    return kExitOk;
  }
  if (args[0] == "device") {
    return RunDeviceCli(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
  }
  if (args[0] != "serve") {
    err << "ccmon-gateway: unknown command '" << args[0] << "' (serve, device)\n" << kUsage;
    return kExitUsage;
  }
  GatewayConfig config;
  if (const char* env = std::getenv("CCMON_GATEWAY_ADMIN_TOKEN"); env != nullptr && *env) {
    if (Status s = ParseAdminToken(env, &config.admin_token); !s.ok()) {
      err << "ccmon-gateway: CCMON_GATEWAY_ADMIN_TOKEN: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  const std::vector<std::string> flags(args.begin() + 1, args.end());
  for (const std::string& f : flags) {
    if (f == "--help" || f == "-h") {
      out << kUsage;
      return kExitOk;
    }
  }
  if (Status s = ParseServeFlags(flags, &config); !s.ok()) {
    err << "ccmon-gateway: " << s.message() << "\n";
    return kExitUsage;
  }
  std::mutex log_mu;
  auto log = [&](std::string_view line) {
    std::lock_guard<std::mutex> lock(log_mu);
    err << line << "\n";
    err.flush();
  };
  StopSignals::Scope scope(signals);
  return RunGateway(config, scope.token(), log);
}

}  // namespace ccmon::gateway
