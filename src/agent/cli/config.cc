#include "agent/cli/config.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "base/utf8.h"
#include "http/endpoint_headers.h"
#include "http/server.h"
#include "http/url.h"
#include "tools/common/config_file.h"
#include "tools/common/flags.h"

namespace ccmon {
namespace {

constexpr uint64_t kSecondMs = 1000, kMinuteMs = 60 * kSecondMs, kHourMs = 60 * kMinuteMs,
                   kDayMs = 24 * kHourMs;

SettingSpec Str(std::string name, std::string value_name, std::string help) {
  SettingSpec s;
  s.name = std::move(name);
  s.kind = SettingKind::kString;
  s.value_name = std::move(value_name);
  s.help = std::move(help);
  return s;
}
SettingSpec Num(std::string name, uint64_t min, uint64_t max, std::string help) {
  SettingSpec s = Str(std::move(name), "N", std::move(help));
  s.kind = SettingKind::kUnsigned;
  s.min = min;
  s.max = max;
  return s;
}
SettingSpec Dur(std::string name, uint64_t min_ms, uint64_t max_ms, std::string help) {
  SettingSpec s = Str(std::move(name), "DURATION", std::move(help));
  s.kind = SettingKind::kDuration;
  s.min = min_ms;
  s.max = max_ms;
  return s;
}
SettingSpec Choice(std::string name, std::vector<std::string> choices, std::string help) {
  SettingSpec s = Str(std::move(name), "MODE", std::move(help));
  s.kind = SettingKind::kChoice;
  s.choices = std::move(choices);
  return s;
}
SettingSpec Bool(std::string name, std::string help) {
  SettingSpec s = Str(std::move(name), "", std::move(help));
  s.kind = SettingKind::kBool;
  return s;
}
SettingSpec Repeatable(SettingSpec s) {
  s.repeatable = true;
  return s;
}
SettingSpec Path(SettingSpec s) {
  s.path = true;
  return s;
}

std::vector<SettingSpec> MakeSettings() {
  std::vector<SettingSpec> v;
  v.push_back(Str("url", "URL", "remote-write URL, e.g. http://127.0.0.1:9090/api/v1/write"));
  v.push_back(
      Path(Str("bearer-token-file", "FILE", "send 'Authorization: Bearer <file content>'")));
  SettingSpec key = Str("key", "KEY", "ccmon-gateway device key dk_… (sent as a bearer token)");
  key.secret = true;
  v.push_back(key);
  v.push_back(Str("basic-auth-user", "USER", "basic auth user (with --basic-auth-password-file)"));
  v.push_back(
      Path(Str("basic-auth-password-file", "FILE", "file holding the basic auth password")));
  SettingSpec header =
      Repeatable(Str("header", "'NAME: VALUE'", "extra header, e.g. 'X-Scope-OrgID: team-a'"));
  header.in_env = false;
  header.secret = true;  // values may be credentials
  v.push_back(header);
  v.push_back(Path(Str("ca-file", "FILE", "PEM CAs to trust instead of the system store")));
  v.push_back(Path(Str("client-cert-file", "FILE", "PEM client certificate (mutual TLS)")));
  v.push_back(Path(Str("client-key-file", "FILE", "PEM client private key (mutual TLS)")));
  v.push_back(Bool("insecure-skip-verify", "accept any server certificate (testing only)"));
  v.push_back(Str("device", "NAME", "device label (default: the host name)"));
  v.push_back(Repeatable(Str("label", "NAME=VALUE", "static label on every series")));
  v.push_back(Path(Repeatable(
      Str("config-dir", "DIR",
          "Claude config dir or projects/ dir (default: CLAUDE_CONFIG_DIR, ~/.config/claude, "
          "~/.claude)"))));
  v.push_back(Path(Str("state-dir", "DIR",
                       "state directory (default $XDG_STATE_HOME/ccmon/agent, else "
                       "~/.local/state/ccmon/agent)")));
  v.push_back(Choice("watch", {"inotify", "poll"}, "inotify (default) | poll"));
  v.push_back(Dur("rescan-interval", 10 * kSecondMs, kDayMs,
                  "safety-net rescan of the transcript dirs, 10s..1d (default 5m)"));
  v.push_back(Str("listen", "ADDR", "serve /metrics on HOST:PORT (pull mode; default off)"));
  v.push_back(Num("shards", 1, kMaxAgentShards, "parallel senders, 1..64 (default 1)"));
  v.push_back(Num("max-samples-per-send", 1, kMaxSamplesPerSendLimit,
                  "samples per request, 1..1000000 (default 2000)"));
  v.push_back(Dur("batch-send-deadline", 10, 60 * kSecondMs,
                  "longest wait to fill a request, 10ms..60s (default 1s)"));
  v.push_back(Dur("resend-interval", kSecondMs, kHourMs,
                  "re-send every series' value, 1s..1h (default 15s)"));
  v.push_back(Dur("settle-after", kSecondMs, kHourMs,
                  "quiet time before a request's cost is observed in "
                  "claude_cost_per_request_usd, 1s..1h (default 60s)"));
  v.push_back(Dur("max-sample-age", kMinuteMs, 365 * kDayMs,
                  "older lines are stamped at read time, 1m..365d (default 1h)"));
  v.push_back(Num("outbox-max-bytes", kMinOutboxBytes, kMaxOutboxBytes,
                  "outbox size before the oldest requests are dropped (counted), 1 MiB..1 TiB "
                  "(default 268435456)"));
  v.push_back(Dur("outbox-max-age", kMinuteMs, 365 * kDayMs,
                  "outbox age before requests are dropped (counted), 1m..365d (default 7d)"));
  v.push_back(Bool("backfill", "first start: send the whole history with its timestamps"));
  v.push_back(Choice("resume", {"auto", "off"},
                     "auto (default): a lost state resumes from a ccmon-gateway's mirror | off"));
  v.push_back(Dur("state-mirror-interval", kSecondMs, kDayMs,
                  "the state's changes are mirrored to a ccmon-gateway this often, 1s..1d "
                  "(default 15s)"));
  v.push_back(Path(Str("pricing", "FILE",
                       "pricing file (default: $CCMON_PRICING, ~/.config/ccmon/pricing.json, "
                       "else embedded)")));
  v.push_back(Choice("project-label", {"basename", "path", "hash", "none"},
                     "project label: basename (default) | path | hash | none"));
  v.push_back(Num("max-projects", 1, kMaxLabelCap, "project labels before 'other' (default 100)"));
  v.push_back(Num("max-models", 1, kMaxLabelCap, "model labels before 'other' (default 50)"));
  v.push_back(Num("max-tools", 1, kMaxLabelCap, "tool labels before 'other' (default 200)"));
  return v;
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string Shown(const SettingSpec& spec, std::string_view value) {
  return spec.secret ? std::string("(hidden)") : "'" + TerminalSafe(value) + "'";
}

Status ParseBool(const SettingSpec& spec, const SettingValue& v, bool* out) {
  if (v.value == "true" || v.value == "1" || v.value == "yes") {
    *out = true;
  } else if (v.value == "false" || v.value == "0" || v.value == "no") {
    *out = false;
  } else {
    return Status::InvalidArgument(v.origin + " wants true or false, got " + Shown(spec, v.value));
  }
  return Status::Ok();
}

// Label names the claude_* families use (and the histogram's): a static label may not shadow them.
const std::set<std::string, std::less<>>& ReservedLabelNames() {
  static const std::set<std::string, std::less<>> names = {
      "device", "model", "project", "type", "tool", "reason", "le", "quantile", "job", "instance"};
  return names;
}

bool IsLabelName(std::string_view s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

}  // namespace

const char* AgentWatchModeName(AgentWatchMode mode) {
  return mode == AgentWatchMode::kPoll ? "poll" : "inotify";
}

const std::vector<SettingSpec>& AgentSettings() {
  static const std::vector<SettingSpec> settings = MakeSettings();
  return settings;
}

const SettingSpec* FindSetting(std::string_view name) {
  for (const SettingSpec& s : AgentSettings())
    if (s.name == name) return &s;
  return nullptr;
}

std::string SettingEnvVar(std::string_view name) {
  std::string out = "CCMON_AGENT_";
  for (char c : name) out += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return out;
}

Status ParseConfigFile(std::string_view text, const std::string& path,
                       std::vector<SettingValue>* out) {
  std::vector<ConfigFileEntry> entries;
  Status s = ParseConfigFileEntries(
      text, path,
      [](std::string_view key) {
        const SettingSpec* spec = FindSetting(key);
        if (spec == nullptr) return ConfigKeyKind::kUnknown;
        return spec->repeatable ? ConfigKeyKind::kRepeatable : ConfigKeyKind::kSingle;
      },
      &entries);
  if (!s.ok()) return s;
  std::vector<SettingValue> values;
  values.reserve(entries.size());
  for (ConfigFileEntry& e : entries)
    values.push_back({std::move(e.key), std::move(e.value), std::move(e.origin)});
  *out = std::move(values);
  return Status::Ok();
}

std::string FormatConfigFile(const std::vector<SettingValue>& values) {
  std::string out =
      "# ccmon-agent configuration, written by `ccmon-agent setup` (mode 0600).\n"
      "# One `key = value` per line; keys are the command-line flags without '--'.\n"
      "# Flags and CCMON_AGENT_* environment variables override these values.\n";
  for (const SettingSpec& spec : AgentSettings())
    for (const SettingValue& v : values)
      if (v.name == spec.name) out += v.name + " = " + v.value + "\n";
  return out;
}

std::vector<SettingValue> SettingsFromEnv(Env* env) {
  std::vector<SettingValue> out;
  for (const SettingSpec& spec : AgentSettings()) {
    if (!spec.in_env) continue;
    const std::string var = SettingEnvVar(spec.name);
    std::optional<std::string> value = env->GetEnvVar(var);
    if (!value || value->empty()) continue;
    if (!spec.repeatable) {
      out.push_back({spec.name, *value, var});
      continue;
    }
    std::string_view rest = *value;
    while (true) {
      const size_t comma = rest.find(',');
      std::string_view item = Trim(rest.substr(0, comma));
      if (!item.empty()) out.push_back({spec.name, std::string(item), var});
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

namespace {
Status XdgPath(Env* env, const char* xdg_var, const char* home_rel, const std::string& tail,
               std::string* out) {
  std::optional<std::string> xdg = env->GetEnvVar(xdg_var);
  // The XDG spec: a relative path in these variables is invalid and must be ignored.
  if (xdg && !xdg->empty() && xdg->front() == '/') {
    *out = *xdg + "/" + tail;
    return Status::Ok();
  }
  std::optional<std::string> home = env->GetEnvVar("HOME");
  if (!home || home->empty())
    return Status::NotFound(std::string("neither $") + xdg_var + " nor $HOME is set");
  *out = *home + "/" + home_rel + "/" + tail;
  return Status::Ok();
}
}  // namespace

Status DefaultConfigFilePath(Env* env, std::string* out) {
  return XdgPath(env, "XDG_CONFIG_HOME", ".config", "ccmon/agent.conf", out);
}

Status DefaultStateDir(Env* env, std::string* out) {
  return XdgPath(env, "XDG_STATE_HOME", ".local/state", "ccmon/agent", out);
}

Status ParseDurationMs(std::string_view what, std::string_view text, uint64_t min_ms,
                       uint64_t max_ms, uint64_t* out_ms) {
  auto fail = [&] {
    return Status::InvalidArgument(std::string(what) + " wants a duration from " +
                                   FormatDurationMs(min_ms) + " to " + FormatDurationMs(max_ms) +
                                   " such as 500ms, 15s, 5m, 1h, 1d, got '" +
                                   TerminalSafe(Utf8Prefix(text, 40)) + "'");
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return fail();  // 12 digits of days still fit in 64 bits
  uint64_t n = 0;
  for (size_t i = 0; i < digits; ++i) n = n * 10 + uint64_t(text[i] - '0');
  const std::string_view unit = text.substr(digits);
  uint64_t scale = 0;
  if (unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = kSecondMs;
  else if (unit == "m")
    scale = kMinuteMs;
  else if (unit == "h")
    scale = kHourMs;
  else if (unit == "d")
    scale = kDayMs;
  else
    return fail();
  const uint64_t ms = n * scale;  // < 10^12 * 8.64e7 < 2^64
  if (ms < min_ms || ms > max_ms) return fail();
  *out_ms = ms;
  return Status::Ok();
}

std::string FormatDurationMs(uint64_t ms) {
  if (ms == 0) return "0s";
  if (ms % kDayMs == 0) return std::to_string(ms / kDayMs) + "d";
  if (ms % kHourMs == 0) return std::to_string(ms / kHourMs) + "h";
  if (ms % kMinuteMs == 0) return std::to_string(ms / kMinuteMs) + "m";
  if (ms % kSecondMs == 0) return std::to_string(ms / kSecondMs) + "s";
  return std::to_string(ms) + "ms";
}

Status ValidateDeviceKey(std::string_view key) {
  const bool chars_ok = std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (key.substr(0, 3) != "dk_" || key.size() < 3 + 16 || key.size() > 3 + 256 || !chars_ok)
    return Status::InvalidArgument(
        "--key wants a device key 'dk_' + 16..256 letters, digits, '_' or '-' (as "
        "ccmon-gateway issues them); the value given is not one (not shown)");
  return Status::Ok();
}

Status ParseStaticLabel(std::string_view text, std::pair<std::string, std::string>* out) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos)
    return Status::InvalidArgument("--label wants NAME=VALUE, got '" +
                                   TerminalSafe(Utf8Prefix(text, 60)) + "'");
  const std::string_view name = text.substr(0, eq), value = text.substr(eq + 1);
  if (!IsLabelName(name))
    return Status::InvalidArgument("--label: '" + TerminalSafe(Utf8Prefix(name, 60)) +
                                   "' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)");
  if (name.substr(0, 2) == "__")
    return Status::InvalidArgument("--label: names starting with '__' are reserved (" +
                                   std::string(name) + ")");
  if (ReservedLabelNames().count(name))
    return Status::InvalidArgument("--label: '" + std::string(name) +
                                   "' is set by ccmon itself (reserved: device, model, project, "
                                   "type, tool, reason, le, quantile, job, instance)");
  if (value.empty() || value.size() > kMaxLabelValueBytes || !IsValidUtf8(value) ||
      HasControl(value))
    return Status::InvalidArgument("--label " + std::string(name) +
                                   ": the value must be 1..1024 bytes of UTF-8 without control "
                                   "characters");
  *out = {std::string(name), std::string(value)};
  return Status::Ok();
}

void ResolveRelativePaths(const std::string& base_dir, const std::string& home,
                          std::vector<SettingValue>* values) {
  for (SettingValue& v : *values) {
    const SettingSpec* spec = FindSetting(v.name);
    if (spec != nullptr && spec->path) v.value = AbsoluteSettingPath(v.value, base_dir, home);
  }
}

Status BuildAgentConfig(const ConfigLayers& layers, Env* env, const std::string& hostname,
                        AgentConfig* out) {
  AgentConfig c;
  // The effective values of each setting: those of the highest layer that has any.
  std::map<std::string, std::vector<const SettingValue*>> chosen;
  for (const std::vector<SettingValue>* layer : {&layers.file, &layers.env, &layers.flags}) {
    std::map<std::string, std::vector<const SettingValue*>> here;
    for (const SettingValue& v : *layer) {
      if (FindSetting(v.name) == nullptr)
        return Status::InvalidArgument(v.origin + ": unknown setting '" + v.name + "'");
      here[v.name].push_back(&v);
    }
    for (auto& [name, values] : here) chosen[name] = std::move(values);
  }

  for (const auto& [name, values] : chosen) {
    const SettingSpec& spec = *FindSetting(name);
    if (!spec.repeatable && values.size() > 1)
      return Status::InvalidArgument(values[1]->origin + ": " + name + " given twice");
    for (const SettingValue* v : values) {
      const std::string& text = v->value;
      if (spec.kind != SettingKind::kBool &&
          (text.empty() || HasControl(text) || !IsValidUtf8(text)))
        return Status::InvalidArgument(v->origin + ": " + name +
                                       " wants a non-empty value without control characters");
      switch (spec.kind) {
        case SettingKind::kBool: {
          bool b = false;
          if (Status s = ParseBool(spec, *v, &b); !s.ok()) return s;
          if (name == "insecure-skip-verify") c.insecure_skip_verify = b;
          if (name == "backfill") c.backfill = b;
          break;
        }
        case SettingKind::kUnsigned: {
          uint64_t n = 0;
          if (Status s = ParseUnsignedFlag(name, text, spec.min, spec.max, &n); !s.ok()) {
            // "--NAME wants ..." -> "ORIGIN wants ..." (the origin may be a file line).
            return Status::InvalidArgument(v->origin + s.message().substr(2 + name.size()));
          }
          if (name == "shards") c.shards = unsigned(n);
          if (name == "max-samples-per-send") c.max_samples_per_send = size_t(n);
          if (name == "outbox-max-bytes") c.outbox_max_bytes = n;
          if (name == "max-projects") c.label_options.max_projects = size_t(n);
          if (name == "max-models") c.label_options.max_models = size_t(n);
          if (name == "max-tools") c.label_options.max_tools = size_t(n);
          break;
        }
        case SettingKind::kDuration: {
          uint64_t ms = 0;
          if (Status s = ParseDurationMs(v->origin, text, spec.min, spec.max, &ms); !s.ok())
            return s;
          const auto secs = std::chrono::seconds(ms / 1000);
          if (name == "rescan-interval") c.rescan_interval = secs;
          if (name == "batch-send-deadline") c.batch_send_deadline = std::chrono::milliseconds(ms);
          if (name == "resend-interval") c.resend_interval = secs;
          if (name == "max-sample-age") c.max_sample_age = secs;
          if (name == "settle-after") c.settle_after = secs;
          if (name == "outbox-max-age") c.outbox_max_age = secs;
          if (name == "state-mirror-interval") c.state_mirror_interval = secs;
          // Whole seconds only where the setting is kept in seconds.
          if (name != "batch-send-deadline" && ms % 1000 != 0)
            return Status::InvalidArgument(v->origin + " wants whole seconds, got '" + text + "'");
          break;
        }
        case SettingKind::kChoice: {
          if (std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end()) {
            std::string all;
            for (const auto& ch : spec.choices) all += (all.empty() ? "" : ", ") + ch;
            return Status::InvalidArgument(v->origin + " must be one of " + all + ", got '" +
                                           TerminalSafe(Utf8Prefix(text, 40)) + "'");
          }
          if (name == "watch")
            c.watch = text == "poll" ? AgentWatchMode::kPoll : AgentWatchMode::kInotify;
          if (name == "project-label") ParseProjectLabelMode(text, &c.label_options.project_mode);
          if (name == "resume") c.resume = text == "auto";
          break;
        }
        case SettingKind::kString: {
          if (name == "url") c.url = text;
          if (name == "bearer-token-file") c.bearer_token_file = text;
          if (name == "key") {
            if (Status s = ValidateDeviceKey(text); !s.ok())
              return Status::InvalidArgument(v->origin + ": " + s.message());
            c.key = text;
          }
          if (name == "basic-auth-user") c.basic_auth_user = text;
          if (name == "basic-auth-password-file") c.basic_auth_password_file = text;
          if (name == "header") {
            HttpHeader h;
            if (Status s = ParseHeaderFlag(text, &h); !s.ok())
              return Status::InvalidArgument(v->origin + ": " + s.message());
            c.headers.push_back(text);
          }
          if (name == "ca-file") c.ca_file = text;
          if (name == "client-cert-file") c.client_cert_file = text;
          if (name == "client-key-file") c.client_key_file = text;
          if (name == "device") {
            if (text.size() > kMaxLabelValueBytes)
              return Status::InvalidArgument(v->origin + ": the device name is longer than " +
                                             std::to_string(kMaxLabelValueBytes) + " bytes");
            c.device = text;
          }
          if (name == "label") {
            std::pair<std::string, std::string> label;
            if (Status s = ParseStaticLabel(text, &label); !s.ok())
              return Status::InvalidArgument(v->origin + ": " + s.message());
            for (const auto& l : c.labels)
              if (l.first == label.first)
                return Status::InvalidArgument(v->origin + ": label '" + l.first + "' given twice");
            if (c.labels.size() == kMaxStaticLabels)
              return Status::InvalidArgument(v->origin + ": at most " +
                                             std::to_string(kMaxStaticLabels) + " labels");
            c.labels.push_back(std::move(label));
          }
          if (name == "config-dir") c.config_dirs.push_back(text);
          if (name == "state-dir") c.state_dir = text;
          if (name == "listen") {
            if (Status s = CheckListenAddress(text); !text.empty() && !s.ok())
              return Status::InvalidArgument(v->origin + ": " + s.message());
            c.listen = text;
          }
          if (name == "pricing") c.pricing_file = text;
          break;
        }
      }
    }
  }

  if (c.device.empty()) c.device = hostname;
  if (c.device.empty() || HasControl(c.device) || !IsValidUtf8(c.device))
    return Status::InvalidArgument("no usable device name: give --device NAME");
  if (c.state_dir.empty()) {
    if (Status s = DefaultStateDir(env, &c.state_dir); !s.ok())
      return Status::InvalidArgument("no state directory: " + s.message() +
                                     "; give --state-dir DIR");
  }
  *out = std::move(c);
  return Status::Ok();
}

Status BuildTargetHeaders(Env* env, const AgentConfig& config, std::vector<HttpHeader>* headers) {
  if (config.url.empty()) return Status::InvalidArgument("no target: give --url URL (or setup)");
  HttpUrl url;
  if (Status s = ParseHttpUrl(config.url, &url); !s.ok())
    return Status::InvalidArgument("--url: " + s.message());
  if (config.client_cert_file.empty() != config.client_key_file.empty())
    return Status::InvalidArgument("--client-cert-file and --client-key-file go together");
  EndpointHeaderOptions options;
  options.headers = config.headers;
  options.bearer_token_file = config.bearer_token_file;
  options.basic_auth_user = config.basic_auth_user;
  options.basic_auth_password_file = config.basic_auth_password_file;
  std::vector<HttpHeader> built;
  if (Status s = BuildEndpointHeaders(env, options, &built); !s.ok()) return s;
  if (!config.key.empty()) {
    if (Status s = ValidateDeviceKey(config.key); !s.ok()) return s;
    for (const HttpHeader& h : built) {
      std::string lower = h.first;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (lower == "authorization")
        return Status::InvalidArgument(
            "--key is a credential of its own: give only one of --key, --bearer-token-file, "
            "basic auth or an Authorization header");
    }
    built.emplace_back("Authorization", "Bearer " + config.key);
  }
  *headers = std::move(built);
  return Status::Ok();
}

HttpClientOptions TargetClientOptions(const AgentConfig& config, Env* env) {
  HttpClientOptions o;
  o.ca_file = config.ca_file;
  o.client_cert_file = config.client_cert_file;
  o.client_key_file = config.client_key_file;
  o.insecure_skip_verify = config.insecure_skip_verify;
  o.env = env;
  return o;
}

}  // namespace ccmon
