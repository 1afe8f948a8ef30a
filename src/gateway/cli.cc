#include "gateway/cli.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stop_token>

#include "base/env.h"
#include "http/endpoint_headers.h"
#include "http/server.h"
#include "http/url.h"
#include "remote_write/queue_manager.h"
#include "tools/common/config_file.h"
#include "tools/common/flags.h"
#include "tools/common/stop_signals.h"

namespace ccmon::gateway {
namespace {

constexpr char kUsage[] =
    "usage: ccmon-gateway serve [--config FILE] [--listen ADDR] [--data-dir DIR]\n"
    "                           [--allow-anonymous] [--admin-token-file F]\n"
    "                           [--metrics-token-file F] [--tls-cert-file F --tls-key-file F]\n"
    "                           [limits]\n"
    "       ccmon-gateway device add|list|revoke|rotate ... (ccmon-gateway device --help)\n"
    "\n"
    "Receives Prometheus remote-write (1.0 and 2.0) on POST /api/v1/write, keeps every series'\n"
    "last sample in RocksDB (--data-dir) and serves them on /metrics.\n"
    "\n"
    "Every setting is also a config-file key (--config FILE, else $CCMON_GATEWAY_CONFIG: lines\n"
    "of `key = value`, the key being the flag without '--') and an environment variable\n"
    "(CCMON_GATEWAY_ + the name in upper case, '-' as '_'; switches take true or false).\n"
    "Flags win over the environment, the environment over the file. Unknown keys are errors.\n"
    "\n"
    "  --config FILE                read settings from FILE (see above)\n"
    "  --listen ADDR                host:port to listen on (default 127.0.0.1:9469; port 0 picks "
    "one)\n"
    "  --data-dir DIR               the gateway's RocksDB (default ./data)\n"
    "  --allow-anonymous            accept writes without an Authorization header (a single-\n"
    "                               user setup); off by default: writes need a device key\n"
    "  --admin-token-file F         the admin API's token (else $CCMON_GATEWAY_ADMIN_TOKEN;\n"
    "                               neither: the admin API answers 403)\n"
    "  --metrics-token-file F       /metrics and /api/metrics need Authorization: Bearer <token>\n"
    "                               (else $CCMON_GATEWAY_METRICS_TOKEN; neither: open)\n"
    "  --tls-cert-file F            serve HTTPS with this PEM certificate chain; needs\n"
    "  --tls-key-file F             its PEM private key (both or neither)\n"
    "  --max-body-bytes N           1024..1073741824 (default 16777216), larger bodies: 413\n"
    "  --max-decoded-bytes N        1024..4294967296 (default 67108864), checked from snappy's\n"
    "                               declared length before decompressing: 400\n"
    "  --max-series-per-request N   1..10000000 (default 50000)\n"
    "  --max-labels-per-series N    1..10000 (default 64)\n"
    "  --max-label-name-bytes N     1..65536 (default 256)\n"
    "  --max-label-value-bytes N    1..1048576 (default 4096)\n"
    "  --max-future DURATION        samples further ahead are refused (400); 0s..1d (default 10m)\n"
    "  --max-series-per-device N    0..1000000000 (default 0: no limit); new series beyond it are\n"
    "                               refused (400), existing ones keep updating\n"
    "  --max-requests-per-device-per-second R\n"
    "                               0..1000000 (default 0: no limit); over it: 429 Retry-After\n"
    "  --device-burst N             0..10000000 requests a device may send at once (default 0:\n"
    "                               2 x the rate)\n"
    "  --max-pending-writes N       0..100000 writes decoding or waiting for the store (default\n"
    "                               0: no limit; the writes in flight are not bound by\n"
    "                               --io-threads); over: 429\n"
    "  --series-cache-entries N     0..16777216 series remembered by their label bytes as sent\n"
    "                               (default 131072; 0: off): a known series skips its labels'\n"
    "                               checks and key; ~56 B + its label bytes each\n"
    "  --max-agent-state-bytes N    0..1099511627776 (default 268435456; 0: no limit): an\n"
    "                               agent's mirrored state (for its resume) at most; over: 413\n"
    "  --max-connections N          1..100000 (default 1024)\n"
    "  --io-threads N               1..256 (default 4; no thread waits for a write's fsync: a\n"
    "                               store thread writes each group)\n"
    "  --read-timeout DURATION      a request's header and body once begun, and a TLS handshake\n"
    "                               (default 30s; 1s..1h): a client that dribbles bytes is\n"
    "                               dropped\n"
    "  --idle-timeout DURATION      an open connection waiting for a request (default 60s;\n"
    "                               1s..1d)\n"
    "  --online-window DURATION     claude_device_online is 1 while a device's last write is\n"
    "                               younger than this; 1s..1d (default 45s: 3x the agent's\n"
    "                               --resend-interval)\n"
    "\n"
    "Forwarding (every stored sample is queued durably in --data-dir, in the same synced write\n"
    "as the series, once per destination, and sent with Prometheus's remote-write rules):\n"
    "  --forward URL                a remote-write receiver to forward to (repeatable); the\n"
    "                               --forward-* flags below until the next --forward apply to it\n"
    "                               (in a config file: forward = URL, then its forward-* lines;\n"
    "                               any on the command line replace the file's; not in the\n"
    "                               environment):\n"
    "  --forward-header 'Name: value'     an extra header (repeatable), e.g.\n"
    "                                     'X-Scope-OrgID: team-a' for Mimir\n"
    "  --forward-bearer-token-file F      Authorization: Bearer <the file's one line>\n"
    "  --forward-basic-auth-user U        basic auth, with the password from\n"
    "  --forward-basic-auth-password-file F\n"
    "  --forward-label NAME=VALUE         a label added to every series sent there (repeatable),\n"
    "                                     replacing the series' own; e.g. cluster=eu and\n"
    "                                     replica=gw-1 for Mimir's HA tracker (ha_replica_label:\n"
    "                                     replica); not __…, device, model, project, type, tool,\n"
    "                                     reason, le, quantile\n"
    "  --forward-queue-max-bytes N  per destination, 0..1099511627776 (default 1073741824; 0: no\n"
    "                               limit); the oldest queued samples beyond it are dropped,\n"
    "                               logged and counted (ccmon_gateway_forward_samples_dropped)\n"
    "  --forward-queue-max-age D    the same for samples queued longer (default 7d; 0s: none)\n"
    "  --forward-shards N           parallel connections per destination, 1..64 (default 4)\n"
    "  --forward-max-samples-per-send N   1..100000 (default 2000)\n"
    "  --forward-batch-send-deadline D    how long a small batch waits to fill (default 5s)\n"
    "A removed --forward URL's queue is dropped at start (logged); a new one starts empty.\n";

// "30s", "10m", "1h", "1d" or plain seconds, min_seconds .. max_seconds.
Status ParseDuration(std::string_view flag, std::string_view text, uint64_t max_seconds,
                     std::chrono::milliseconds* out, uint64_t min_seconds = 0) {
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
  if (!s.ok() || n * unit < min_seconds) {
    return Status::InvalidArgument(
        "--" + std::string(flag) + " wants a duration such as 30s, 10m or 1h, from " +
        std::to_string(min_seconds) + "s to " + std::to_string(max_seconds) + "s, got '" +
        std::string(text) + "'");
  }
  *out = std::chrono::milliseconds(int64_t(n * unit * 1000));
  return Status::Ok();
}

// Where a serve setting may come from. Every one is a config-file key and an environment
// variable except where said.
struct ServeSetting {
  const char* name;
  bool is_switch = false;
  bool is_flag = true;  // false: environment only (a secret: never on a command line)
  bool in_file = true;
};

// The settings, in the order their values are applied within one layer.
const std::vector<ServeSetting>& ServeSettings() {
  static const std::vector<ServeSetting> kSettings = {
      {"config", false, true, false},
      {"listen"},
      {"data-dir"},
      {"allow-anonymous", true},
      // The tokens themselves: environment only (CCMON_GATEWAY_ADMIN_TOKEN, …), before the
      // *-token-file settings of the same layer, which win over them.
      {"admin-token", false, false, false},
      {"admin-token-file"},
      {"metrics-token", false, false, false},
      {"metrics-token-file"},
      {"tls-cert-file"},
      {"tls-key-file"},
      {"max-body-bytes"},
      {"max-decoded-bytes"},
      {"max-series-per-request"},
      {"max-labels-per-series"},
      {"max-label-name-bytes"},
      {"max-label-value-bytes"},
      {"max-future"},
      {"max-series-per-device"},
      {"max-requests-per-device-per-second"},
      {"device-burst"},
      {"max-pending-writes"},
      {"series-cache-entries"},
      {"max-connections"},
      {"io-threads"},
      {"read-timeout"},
      {"idle-timeout"},
      // Per destination, in their order (IsForwardFlag): the command line and the config file,
      // not the environment (ForwardDestinations).
      {"forward"},
      {"forward-header"},
      {"forward-bearer-token-file"},
      {"forward-basic-auth-user"},
      {"forward-basic-auth-password-file"},
      {"forward-label"},
      {"forward-queue-max-bytes"},
      {"forward-queue-max-age"},
      {"forward-shards"},
      {"forward-max-samples-per-send"},
      {"forward-batch-send-deadline"},
      {"online-window"},
      {"max-agent-state-bytes"},
  };
  return kSettings;
}

const ServeSetting* FindServeSetting(std::string_view name) {
  for (const ServeSetting& s : ServeSettings()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

// One value as a source gave it; `origin` names the source in messages.
struct GivenSetting {
  std::string name, value, origin;
};

// --forward and the flags that apply to the --forward before them: repeatable, their order
// carries their meaning, so they come from one layer only (the command line's when it has any,
// else the config file's; never the environment), turned into GatewayConfig::forward by
// ForwardDestinations.
bool IsForwardFlag(std::string_view name) {
  return name == "forward" || name == "forward-header" || name == "forward-bearer-token-file" ||
         name == "forward-basic-auth-user" || name == "forward-basic-auth-password-file" ||
         name == "forward-label";
}

// Whether `layer` sets any destination setting.
bool HasForwardSettings(const std::vector<GivenSetting>& layer) {
  return std::any_of(layer.begin(), layer.end(),
                     [](const GivenSetting& g) { return IsForwardFlag(g.name); });
}

// The destinations of one layer (the command line, or a config file whose lines are the flags
// without "--"); messages about a file's line start with its "PATH:LINE".
Status ForwardDestinations(Env* env, const std::vector<GivenSetting>& flags,
                           std::vector<ForwardDestination>* out) {
  struct Pending {
    std::string url;
    EndpointHeaderOptions auth;
    std::vector<std::string> seen;  // its once-only flags
    Labels labels = {};             // --forward-label
    std::string where;              // "PATH:LINE: " of its forward line in a file, else ""
  };
  std::vector<Pending> forwards;
  for (const GivenSetting& g : flags) {
    const std::string& name = g.name;
    const std::string& value = g.value;
    if (!IsForwardFlag(name)) continue;
    const std::string where = g.origin == "--" + name ? "" : g.origin + ": ";
    auto at = [&](Status s) { return Status::InvalidArgument(where + s.message()); };
    if (name == "forward") {
      if (value.empty()) return at(Status::InvalidArgument("--forward wants a URL"));
      // The sender's own rules (credentials never in the URL: use the --forward-* flags).
      HttpUrl parsed;
      if (Status s = ParseHttpUrl(value, &parsed); !s.ok()) {
        return at(Status::InvalidArgument(
            "--forward wants the http:// or https:// URL of a remote-write receiver: " +
            s.message()));
      }
      for (const Pending& f : forwards) {
        if (f.url == value) {
          return at(Status::InvalidArgument("--forward " + RedactedUrl(value) + " given twice"));
        }
      }
      forwards.push_back(Pending{value, {}, {}, {}, where});
      continue;
    }
    if (forwards.empty()) {
      return at(Status::InvalidArgument("--" + name +
                                        " applies to the --forward before it; give --forward URL "
                                        "first"));
    }
    Pending& f = forwards.back();
    if (name == "forward-header") {
      f.auth.headers.push_back(value);
      continue;
    }
    if (name == "forward-label") {
      const size_t eq = value.find('=');
      if (eq == std::string::npos) {
        return at(Status::InvalidArgument("--forward " + RedactedUrl(f.url) +
                                          ": --forward-label wants NAME=VALUE, got '" + value +
                                          "'"));
      }
      f.labels.emplace_back(value.substr(0, eq), value.substr(eq + 1));
      if (Status s = CheckForwardLabels(f.labels); !s.ok()) {
        return at(Status::InvalidArgument("--forward " + RedactedUrl(f.url) + ": --forward-label " +
                                          value + ": " + s.message()));
      }
      continue;
    }
    for (const std::string& s : f.seen) {
      if (s == name) {
        return at(Status::InvalidArgument("--" + name + " given twice for --forward " +
                                          RedactedUrl(f.url)));
      }
    }
    f.seen.push_back(name);
    if (name == "forward-bearer-token-file") f.auth.bearer_token_file = value;
    if (name == "forward-basic-auth-user") f.auth.basic_auth_user = value;
    if (name == "forward-basic-auth-password-file") f.auth.basic_auth_password_file = value;
  }
  std::vector<ForwardDestination> built;
  for (const Pending& f : forwards) {
    ForwardDestination d;
    d.url = f.url;
    d.labels = f.labels;
    if (Status s = BuildEndpointHeaders(env, f.auth, &d.headers); !s.ok()) {
      return Status::InvalidArgument(f.where + "--forward " + RedactedUrl(f.url) + ": " +
                                     s.message());
    }
    built.push_back(std::move(d));
  }
  *out = std::move(built);
  return Status::Ok();
}

// A token from a file (through `env`): ParseAdminToken's rules.
Status ReadTokenFile(Env* env, std::string_view setting, const std::string& path,
                     std::string* token) {
  std::string text;
  if (Status s = ReadFileToString(env, path, 64 << 10, &text); !s.ok()) {
    return Status::InvalidArgument("--" + std::string(setting) + ": cannot read " + path + ": " +
                                   s.message());
  }
  if (Status s = ParseAdminToken(text, token); !s.ok()) {
    return Status::InvalidArgument("--" + std::string(setting) + " " + path + ": " + s.message());
  }
  return Status::Ok();
}

// Applies one value to *c. Messages start with the origin when it is not the flag itself.
Status ApplyServeSetting(Env* env, const GivenSetting& g, GatewayConfig* c) {
  const std::string& name = g.name;
  const std::string& value = g.value;
  auto from = [&](Status s) {
    if (s.ok() || g.origin == "--" + name) return s;
    return Status::InvalidArgument(g.origin + ": " + s.message());
  };
  if (name == "allow-anonymous") {
    if (value == "true" || value == "1" || value == "yes") {
      c->allow_anonymous = true;
    } else if (value == "false" || value == "0" || value == "no") {
      c->allow_anonymous = false;
    } else {
      return from(
          Status::InvalidArgument("allow-anonymous wants true or false, got '" + value + "'"));
    }
    return Status::Ok();
  }
  if (name == "listen") {
    if (value.empty()) return from(Status::InvalidArgument("--listen wants host:port"));
    if (Status s = CheckListenAddress(value); !s.ok()) return from(s);
    c->listen = value;
    return Status::Ok();
  }
  if (name == "data-dir") {
    if (value.empty()) return from(Status::InvalidArgument("--data-dir wants a directory"));
    c->data_dir = value;
    return Status::Ok();
  }
  if (name == "admin-token" || name == "metrics-token") {
    std::string* token = name == "admin-token" ? &c->admin_token : &c->metrics_token;
    if (Status s = ParseAdminToken(value, token); !s.ok()) {
      return Status::InvalidArgument(g.origin + ": " + s.message());
    }
    return Status::Ok();
  }
  if (name == "admin-token-file" || name == "metrics-token-file") {
    std::string* token = name == "admin-token-file" ? &c->admin_token : &c->metrics_token;
    return from(ReadTokenFile(env, name, value, token));
  }
  if (name == "tls-cert-file" || name == "tls-key-file") {
    if (value.empty()) return from(Status::InvalidArgument("--" + name + " wants a file"));
    (name == "tls-cert-file" ? c->tls_cert_file : c->tls_key_file) = value;
    return Status::Ok();
  }
  if (name == "max-future") return from(ParseDuration(name, value, 86400, &c->limits.max_future));
  if (name == "read-timeout") return from(ParseDuration(name, value, 3600, &c->read_timeout, 1));
  if (name == "idle-timeout") return from(ParseDuration(name, value, 86400, &c->idle_timeout, 1));
  if (name == "forward-queue-max-age") {
    return from(ParseDuration(name, value, 365 * 86400, &c->forward_queue_max_age));
  }
  if (name == "forward-batch-send-deadline") {
    return from(ParseDuration(name, value, 3600, &c->forward_batch_send_deadline));
  }
  if (name == "online-window") {
    return from(ParseDuration(name, value, 86400, &c->online_window, 1));
  }
  struct NumberFlag {
    const char* name;
    uint64_t min, max;
  };
  static constexpr NumberFlag kNumbers[] = {
      {"max-body-bytes", 1024, uint64_t(1) << 30},
      {"max-decoded-bytes", 1024, uint64_t(4) << 30},
      {"max-series-per-request", 1, 10'000'000},
      {"max-labels-per-series", 1, 10'000},
      {"max-label-name-bytes", 1, 65'536},
      {"max-label-value-bytes", 1, 1 << 20},
      {"max-series-per-device", 0, 1'000'000'000},
      {"max-requests-per-device-per-second", 0, 1'000'000},
      {"device-burst", 0, 10'000'000},
      {"max-pending-writes", 0, 100'000},
      {"series-cache-entries", 0, 16'777'216},
      {"max-connections", 1, 100'000},
      {"io-threads", 1, 256},
      {"forward-queue-max-bytes", 0, uint64_t(1) << 40},
      {"forward-shards", 1, kMaxShards},
      {"forward-max-samples-per-send", 1, 100'000},
      {"max-agent-state-bytes", 0, uint64_t(1) << 40},
  };
  for (const NumberFlag& f : kNumbers) {
    if (name != f.name) continue;
    uint64_t n = 0;
    if (Status s = ParseUnsignedFlag(name, value, f.min, f.max, &n); !s.ok()) return from(s);
    IngestLimits& l = c->limits;
    if (name == "max-body-bytes") l.max_body_bytes = size_t(n);
    if (name == "max-decoded-bytes") l.max_decoded_bytes = size_t(n);
    if (name == "max-series-per-request") l.max_series_per_request = size_t(n);
    if (name == "max-labels-per-series") l.max_labels_per_series = size_t(n);
    if (name == "max-label-name-bytes") l.max_label_name_bytes = size_t(n);
    if (name == "max-label-value-bytes") l.max_label_value_bytes = size_t(n);
    if (name == "max-series-per-device") l.max_series_per_device = size_t(n);
    if (name == "max-requests-per-device-per-second") l.max_requests_per_device_per_second = n;
    if (name == "device-burst") l.device_burst = n;
    if (name == "max-pending-writes") l.max_pending_writes = size_t(n);
    if (name == "series-cache-entries") l.series_cache_entries = size_t(n);
    if (name == "max-connections") c->max_connections = size_t(n);
    if (name == "io-threads") c->io_threads = int(n);
    if (name == "forward-queue-max-bytes") c->forward_queue_max_bytes = n;
    if (name == "forward-shards") c->forward_shards = size_t(n);
    if (name == "forward-max-samples-per-send") c->forward_max_samples_per_send = size_t(n);
    if (name == "max-agent-state-bytes") c->max_agent_state_bytes = n;
    return Status::Ok();
  }
  return from(Status::InvalidArgument("unknown setting '" + name + "'"));
}

// The command line's settings, in order (a setting at most once).
Status FlagLayer(const std::vector<std::string>& args, std::vector<GivenSetting>* out) {
  std::vector<GivenSetting> given;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
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
    const ServeSetting* setting = FindServeSetting(name);
    if (setting == nullptr || !setting->is_flag) {
      return Status::InvalidArgument("unknown flag --" + name);
    }
    for (const GivenSetting& g : given) {
      if (g.name == name && !IsForwardFlag(name)) {
        return Status::InvalidArgument("--" + name + " given twice");
      }
    }
    if (setting->is_switch) {
      if (has_value) return Status::InvalidArgument("--" + name + " takes no value");
      value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) return Status::InvalidArgument("--" + name + " wants a value");
      value = args[++i];
    }
    given.push_back({name, value, "--" + name});
  }
  *out = std::move(given);
  return Status::Ok();
}

// The CCMON_GATEWAY_* variables that are set (an empty one counts as unset). A destination
// setting in the environment is an error: one variable cannot say which destination a header or
// a token belongs to, and ignoring CCMON_GATEWAY_FORWARD would silently forward nothing. Other
// CCMON_GATEWAY_* names that are no setting (a misspelling, or Kubernetes' service links of a
// Service named ccmon-gateway) are named in *warnings.
Status EnvLayer(Env* env, std::vector<GivenSetting>* out, std::vector<std::string>* warnings) {
  std::vector<GivenSetting> given;
  for (const ServeSetting& s : ServeSettings()) {
    const std::string var = ServeSettingEnvVar(s.name);
    std::optional<std::string> value = env->GetEnvVar(var);
    if (!value || value->empty()) continue;
    if (IsForwardFlag(s.name)) {
      return Status::InvalidArgument(var + ": forwarding is set on the command line (--" + s.name +
                                     ") or in the config file (" + s.name +
                                     " = …), not in the environment");
    }
    given.push_back({s.name, *value, var});
  }
  for (const std::string& var : env->GetEnvVarNames("CCMON_GATEWAY_")) {
    const bool known =
        std::any_of(ServeSettings().begin(), ServeSettings().end(),
                    [&](const ServeSetting& s) { return ServeSettingEnvVar(s.name) == var; });
    if (!known) {
      warnings->push_back(var + " is set but is no ccmon-gateway setting (ignored)");
    }
  }
  *out = std::move(given);
  return Status::Ok();
}

// Settings that name a file or directory: a relative one in a config file is relative to the
// file's directory (`~/` is $HOME), not to where the gateway runs.
bool IsPathSetting(std::string_view name) {
  return name == "data-dir" || name == "admin-token-file" || name == "metrics-token-file" ||
         name == "tls-cert-file" || name == "tls-key-file" || name == "forward-bearer-token-file" ||
         name == "forward-basic-auth-password-file";
}

Status FileLayer(Env* env, const std::string& path, std::vector<GivenSetting>* out) {
  std::string text;
  if (Status s = ReadFileToString(env, path, 1 << 20, &text); !s.ok()) {
    return Status::InvalidArgument("--config: cannot read " + path + ": " + s.message());
  }
  std::vector<ConfigFileEntry> entries;
  Status s = ParseConfigFileEntries(
      text, path,
      [](std::string_view key) {
        const ServeSetting* setting = FindServeSetting(key);
        if (setting == nullptr || !setting->in_file) return ConfigKeyKind::kUnknown;
        // A destination's lines repeat, one group per forward line (ForwardDestinations).
        return IsForwardFlag(key) ? ConfigKeyKind::kRepeatable : ConfigKeyKind::kSingle;
      },
      &entries);
  if (!s.ok()) return s;
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) return Status::InvalidArgument("--config: " + path + ": " + ec.message());
  const std::string base = DirName(absolute.string());
  const std::string home = env->GetEnvVar("HOME").value_or("");
  for (ConfigFileEntry& e : entries) {
    if (IsPathSetting(e.key)) e.value = AbsoluteSettingPath(e.value, base, home);
    out->push_back({std::move(e.key), std::move(e.value), std::move(e.origin)});
  }
  return Status::Ok();
}

// Whole-configuration checks (after every layer).
Status CheckServeConfig(Env* env, const GatewayConfig& c) {
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return Status::InvalidArgument(
        "--tls-cert-file and --tls-key-file go together: give both (HTTPS) or neither (HTTP)");
  }
  for (const std::string* f : {&c.tls_cert_file, &c.tls_key_file}) {
    if (!f->empty() && !env->IsReadable(*f)) {
      return Status::InvalidArgument(
          std::string(f == &c.tls_cert_file ? "--tls-cert-file" : "--tls-key-file") +
          ": cannot read " + *f);
    }
  }
  return Status::Ok();
}

}  // namespace

const char* GatewayVersion() { return "0.1.0"; }

std::string ServeSettingEnvVar(std::string_view name) {
  std::string var = "CCMON_GATEWAY_";
  for (char ch : name) var += ch == '-' ? '_' : char(std::toupper(static_cast<unsigned char>(ch)));
  return var;
}

Status ParseServeFlags(const std::vector<std::string>& args, GatewayConfig* config) {
  std::vector<GivenSetting> flags;
  if (Status s = FlagLayer(args, &flags); !s.ok()) return s;
  GatewayConfig c = *config;
  for (const GivenSetting& g : flags) {
    if (g.name == "config" || IsForwardFlag(g.name)) continue;  // ParseServeConfig's; below
    if (Status s = ApplyServeSetting(Env::Default(), g, &c); !s.ok()) return s;
  }
  if (Status s = ForwardDestinations(Env::Default(), flags, &c.forward); !s.ok()) return s;
  *config = c;
  return Status::Ok();
}

Status ParseServeConfig(const std::vector<std::string>& args, Env* env, GatewayConfig* config) {
  std::vector<GivenSetting> flags;
  if (Status s = FlagLayer(args, &flags); !s.ok()) return s;
  std::vector<GivenSetting> from_env;
  std::vector<std::string> warnings;
  if (Status s = EnvLayer(env, &from_env, &warnings); !s.ok()) return s;
  // The config file: --config, else $CCMON_GATEWAY_CONFIG; none by default.
  std::string config_file;
  for (const auto* layer : {&from_env, &flags}) {
    for (const GivenSetting& g : *layer) {
      if (g.name == "config") config_file = g.value;
    }
  }
  std::vector<GivenSetting> from_file;
  if (!config_file.empty()) {
    if (Status s = FileLayer(env, config_file, &from_file); !s.ok()) return s;
  }
  GatewayConfig c = *config;
  for (const auto* layer : {&from_file, &from_env, &flags}) {
    for (const GivenSetting& g : *layer) {
      if (g.name == "config" || IsForwardFlag(g.name)) continue;
      if (Status s = ApplyServeSetting(env, g, &c); !s.ok()) return s;
    }
  }
  // The destinations of the command line replace the file's whole (their order is their meaning).
  if (HasForwardSettings(flags) || !HasForwardSettings(from_file)) {
    if (Status s = ForwardDestinations(env, flags, &c.forward); !s.ok()) return s;
  } else {
    if (Status s = ForwardDestinations(env, from_file, &c.forward); !s.ok()) return s;
  }
  if (Status s = CheckServeConfig(env, c); !s.ok()) return s;
  c.config_file = config_file;
  c.config_warnings = std::move(warnings);
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
  const std::vector<std::string> flags(args.begin() + 1, args.end());
  for (const std::string& f : flags) {
    if (f == "--help" || f == "-h") {
      out << kUsage;
      return kExitOk;
    }
  }
  if (Status s = ParseServeConfig(flags, Env::Default(), &config); !s.ok()) {
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
  IgnoreBrokenPipes();  // a log reader that goes away must not end the server
  return RunGateway(config, scope.token(), log);
}

}  // namespace ccmon::gateway
