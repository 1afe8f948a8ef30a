// AgentConfig: every setting of ccmon-agent, and where each comes from.
//
// One table (AgentSettings()) names every setting once. The same name is
//   - the command-line flag:   --max-samples-per-send 2000
//   - the config-file key:     max-samples-per-send = 2000
//   - the environment variable CCMON_AGENT_MAX_SAMPLES_PER_SEND=2000 ('-' -> '_', upper case)
// Precedence, per setting: flags > environment > config file > defaults. A repeatable setting
// (config-dir, label, header) takes all its values from the highest source that gives any (the
// sources are not merged); in the environment its values are separated by ',' (header has no
// environment variable: a header value may hold commas).
//
// Config file (README "Agent"; parsed by tools/common/config_file.h, the format ccmon-gateway's
// --config shares): UTF-8 text, one `key = value` per line; blank lines and lines
// starting with '#' are ignored; the value is the rest of the line with surrounding blanks
// removed (no quoting, so a value may hold '=' and '#'); a repeatable key may appear on several
// lines, any other key at most once. An unknown key, a line without '=' or a second value for a
// single-valued key is an error naming the file, the line and the key. `setup` writes it with
// mode 0600 (it may hold a device key); the default path is $XDG_CONFIG_HOME/ccmon/agent.conf,
// else ~/.config/ccmon/agent.conf; --config FILE or $CCMON_AGENT_CONFIG choose another.
//
// Values are checked strictly whatever their source: numbers are plain decimal digits within a
// range, durations are a whole number with one unit (500ms, 15s, 5m, 1h, 1d) within a range,
// booleans true|false (also 1|0, yes|no). Errors name the source ("--shards", "CCMON_AGENT_SHARDS",
// "/path/agent.conf:3") and never echo a secret (key, header values).
//
// Nothing here is thread-safe or needs to be: the CLI builds one AgentConfig before starting the
// engine, which then only reads it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "http/http_client.h"
#include "http/transport.h"
#include "metrics/accounting.h"

namespace ccmon {

enum class AgentWatchMode : uint8_t { kInotify, kPoll };
const char* AgentWatchModeName(AgentWatchMode mode);

struct AgentConfig {
  // --- target ---
  std::string url;  // remote-write URL (http:// or https://); required to start
  // Authorization, at most one of: a bearer token file, a gateway device key (sent as bearer),
  // basic auth (user + password file), or an Authorization header in `headers`.
  std::string bearer_token_file;
  std::string key;  // "dk_…": a ccmon-gateway device key (secret: never printed or logged)
  std::string basic_auth_user;
  std::string basic_auth_password_file;
  std::vector<std::string> headers;  // "Name: value" (e.g. "X-Scope-OrgID: team-a")
  std::string ca_file, client_cert_file, client_key_file;
  bool insecure_skip_verify = false;

  // --- identity ---
  std::string device;  // the device label; default: the host name
  // Static labels added to every series, in the order given; names are Prometheus label names,
  // never `device`, `__name__`/`__…` or a label name of the claude_* families.
  std::vector<std::pair<std::string, std::string>> labels;

  // --- input and state ---
  std::vector<std::string> config_dirs;  // Claude config dirs (empty: replay's discovery rules)
  std::string state_dir;                 // default $XDG_STATE_HOME/ccmon/agent
  AgentWatchMode watch = AgentWatchMode::kInotify;
  std::chrono::seconds rescan_interval{300};  // the safety-net rescan
  std::string listen;                         // pull mode: "host:port" serving /metrics; "" off
  std::string pricing_file;                   // "" = $CCMON_PRICING, pricing.json, embedded
  LabelOptions label_options;                 // project label mode and the caps
  bool backfill = false;                      // first start: send the whole history first
  // A ccmon-gateway target keeps a mirror of the state; an agent starting with an empty state
  // resumes from it (docs/agent-design.md "Resume"). false: --resume off.
  bool resume = true;
  std::chrono::seconds state_mirror_interval{15};  // staged state deltas are sent this often

  // --- sending ---
  unsigned shards = 1;
  size_t max_samples_per_send = 2000;
  std::chrono::milliseconds batch_send_deadline{1000};
  std::chrono::seconds resend_interval{15};
  std::chrono::seconds max_sample_age{3600};
  // A request is observed in claude_cost_per_request_usd once its session moved on or it has
  // been quiet this long (docs/accounting.md A40).
  std::chrono::seconds settle_after{60};
  uint64_t outbox_max_bytes = uint64_t(256) << 20;
  std::chrono::seconds outbox_max_age{7 * 24 * 3600};

  // Where the settings were read from ("" when no config file was read).
  std::string config_file;
};

// The ranges (also in the help text and README).
inline constexpr uint64_t kMaxAgentShards = 64;
inline constexpr uint64_t kMaxSamplesPerSendLimit = 1'000'000;
inline constexpr uint64_t kMinOutboxBytes = uint64_t(1) << 20;  // 1 MiB
inline constexpr uint64_t kMaxOutboxBytes = uint64_t(1) << 40;  // 1 TiB
inline constexpr uint64_t kMaxLabelCap = 1'000'000;
inline constexpr size_t kMaxStaticLabels = 32;
inline constexpr size_t kMaxLabelValueBytes = 1024;

enum class SettingKind : uint8_t {
  kString,    // any non-empty text without control characters
  kBool,      // a switch on the command line
  kUnsigned,  // decimal digits in [min, max]
  kDuration,  // N + ms|s|m|h|d in [min, max] milliseconds
  kChoice,    // one of `choices`
};

struct SettingSpec {
  std::string name;  // flag / key name, e.g. "max-samples-per-send"
  SettingKind kind = SettingKind::kString;
  bool repeatable = false;
  bool secret = false;  // never echoed (key): printed as "(hidden)"
  bool in_env = true;   // has a CCMON_AGENT_* variable
  // A file or directory: `setup` writes it absolute, and a relative one in a config file is
  // relative to the file's directory (ResolveRelativePaths), never to where the agent runs.
  bool path = false;
  uint64_t min = 0, max = 0;         // kUnsigned (the value), kDuration (milliseconds)
  std::vector<std::string> choices;  // kChoice
  std::string value_name;            // for --help, e.g. "N", "DURATION"
  std::string help;
};

// Every setting, in help order.
const std::vector<SettingSpec>& AgentSettings();
// The spec named `name`, or nullptr.
const SettingSpec* FindSetting(std::string_view name);
// "max-samples-per-send" -> "CCMON_AGENT_MAX_SAMPLES_PER_SEND".
std::string SettingEnvVar(std::string_view name);
// The environment variable naming the config file.
inline constexpr const char kConfigFileEnvVar[] = "CCMON_AGENT_CONFIG";
// "off" forces the line-by-line first start instead of the bulk one (docs/agent-design.md "Bulk
// first start"; tests compare the two); "on" (the default) or unset. Any other value is a usage
// error, so that "OFF", "0" or "false" is not silently taken for "on".
inline constexpr const char kBulkStartEnvVar[] = "CCMON_AGENT_BULK_START";

// One value of one setting as a source gave it.
struct SettingValue {
  std::string name;    // a name from AgentSettings()
  std::string value;   // as given ("true" for a switch)
  std::string origin;  // for messages: "--url", "CCMON_AGENT_URL", "/home/u/.config/…:3"
};

// Makes the values of path settings (SettingSpec::path) absolute: "~/…" with `home` (when not
// empty), any other relative one against `base_dir` (absolute). Other values, and names that
// are not settings (BuildAgentConfig refuses them), are left as they are.
void ResolveRelativePaths(const std::string& base_dir, const std::string& home,
                          std::vector<SettingValue>* values);

// Parses config-file text (the format above). `path` is used in messages only.
Status ParseConfigFile(std::string_view text, const std::string& path,
                       std::vector<SettingValue>* out);
// The config-file text for `values` (setup): a header comment, then one line per value in the
// order of AgentSettings(). Values must be single lines (BuildAgentConfig has checked them).
std::string FormatConfigFile(const std::vector<SettingValue>& values);

// The CCMON_AGENT_* variables that are set (an empty variable counts as unset).
std::vector<SettingValue> SettingsFromEnv(Env* env);

// The default paths. Both fail (kNotFound) when neither the XDG variable nor HOME is set.
Status DefaultConfigFilePath(Env* env, std::string* out);
Status DefaultStateDir(Env* env, std::string* out);

struct ConfigLayers {
  std::vector<SettingValue> flags, env, file;
};

// Builds the configuration from the layers (precedence above) over the defaults, checking every
// value. `hostname` is the device default. Does not touch the file system: see
// ValidateTargetConfig for what needs it.
Status BuildAgentConfig(const ConfigLayers& layers, Env* env, const std::string& hostname,
                        AgentConfig* out);

// The settings that decide where and how to send, checked as a whole: the URL (required) is a
// valid http(s) URL, at most one kind of authorization, client cert and key both or neither;
// the headers are built (which reads the token and password files). On success *headers is
// what to send with every request (extra headers, then Authorization).
Status BuildTargetHeaders(Env* env, const AgentConfig& config, std::vector<HttpHeader>* headers);
// The HTTP client options (TLS files, insecure_skip_verify) of `config`.
HttpClientOptions TargetClientOptions(const AgentConfig& config, Env* env);

// Parses a duration "N<unit>" (unit ms, s, m, h, d; N decimal digits, no sign) into
// milliseconds, within [min_ms, max_ms]. `what` names the source in the message.
Status ParseDurationMs(std::string_view what, std::string_view text, uint64_t min_ms,
                       uint64_t max_ms, uint64_t* out_ms);
// "15s", "5m", "1h", "1500ms": the shortest exact spelling.
std::string FormatDurationMs(uint64_t ms);

// A device key as the gateway issues it: "dk_" followed by 16..256 characters of
// [A-Za-z0-9_-]. The message never echoes the key.
Status ValidateDeviceKey(std::string_view key);
// A static label "name=value" (--label). See AgentConfig::labels for the name rules; the value
// is non-empty UTF-8 without control characters, at most kMaxLabelValueBytes.
Status ParseStaticLabel(std::string_view text, std::pair<std::string, std::string>* out);

}  // namespace ccmon
