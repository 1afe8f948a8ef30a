#include "tools/replay/flags.h"

#include <boost/program_options.hpp>
#include <sstream>

#include "base/env.h"
#include "http/endpoint_headers.h"
#include "http/url.h"
#include "tools/common/flags.h"

namespace ccmon {
namespace {

namespace po = boost::program_options;

constexpr unsigned kHelpColumns = 100;  // --help line width

const char kUsage[] =
    "usage: ccmon-replay [summary|openmetrics|metrics|remote-write] [options]\n\n"
    "  summary       usage and cost report (default)\n"
    "  openmetrics   the whole history as OpenMetrics for promtool backfill (-o FILE)\n"
    "  metrics       current totals as Prometheus text (--format openmetrics for OM)\n"
    "  remote-write  the whole history, with its timestamps, to a remote-write receiver\n"
    "                that accepts old samples (--url URL)\n\n"
    "A flag given to a command it does not apply to is an error. Exit status: 0 ok, 1 failure\n"
    "(including a failed write), 2 usage error, 3 no projects directory, 4 done but some\n"
    "transcripts could not be read (the figures are incomplete).\n";

// The numeric flags, taken as text and parsed strictly (tools/common/flags.h).
struct NumericText {
  std::string max_projects, max_models, max_tools, threads, max_line_bytes, max_samples_per_send,
      max_retry_time;
};

ReplayFlags Usage(std::string message) {
  ReplayFlags r;
  r.action = ReplayFlags::Action::kUsageError;
  r.text = std::move(message);
  return r;
}

}  // namespace

ReplayFlags ParseReplayFlags(const std::vector<std::string>& args) {
  ReplayFlags result;
  ReplayConfig& cfg = result.config;
  std::string command = "summary", by = "day", project_label = "basename", step = "1m";
  EndpointHeaderOptions auth;  // --header, --bearer-token-file, --basic-auth-*
  NumericText num;

  po::options_description common("Options for every command", kHelpColumns);
  common.add_options()("help,h", "show this help")(
      "config-dir", po::value<std::vector<std::string>>(&cfg.config_dirs)->value_name("DIR"),
      "Claude config dir or projects/ dir (repeatable; default: CLAUDE_CONFIG_DIR, "
      "~/.config/claude and ~/.claude)")("device",
                                         po::value<std::string>(&cfg.device)->value_name("NAME"),
                                         "device label (default: hostname)")(
      "pricing", po::value<std::string>(&cfg.pricing_file)->value_name("FILE"),
      "pricing file (default: $CCMON_PRICING, ~/.config/ccmon/pricing.json, else embedded)")(
      "project-label", po::value<std::string>(&project_label)->value_name("MODE"),
      "project label: basename | path | hash | none")(
      "max-projects", po::value<std::string>(&num.max_projects)->value_name("N"),
      "distinct project labels before 'other', 1..1000000 (default 100)")(
      "max-models", po::value<std::string>(&num.max_models)->value_name("N"),
      "distinct model labels before 'other', 1..1000000 (default 50)")(
      "max-tools", po::value<std::string>(&num.max_tools)->value_name("N"),
      "distinct tool labels before 'other', 1..1000000 (default 200)")(
      "since", po::value<std::string>(&cfg.since)->value_name("DAY"),
      "first day (YYYY-MM-DD or YYYYMMDD), inclusive")(
      "until", po::value<std::string>(&cfg.until)->value_name("DAY"),
      "last day, inclusive (not before --since)")(
      "timezone,z", po::value<std::string>(&cfg.timezone)->value_name("ZONE"),
      "IANA zone for days (default: local)")("threads",
                                             po::value<std::string>(&num.threads)->value_name("N"),
                                             "reader threads, 0..1024 (default 0: all cores)")(
      "max-line-bytes", po::value<std::string>(&num.max_line_bytes)->value_name("N"),
      "skip longer lines, 1024..1073741824 (default 67108864 = 64 MiB)")(
      "progress", po::value<std::string>(&cfg.progress)->value_name("WHEN"),
      "auto | always | never");
  po::options_description summary("summary options", kHelpColumns);
  summary.add_options()("by", po::value<std::string>(&by)->value_name("ROWS"),
                        "rows: day | month | session | project | model | device")(
      "json", po::bool_switch(&cfg.json), "as JSON");
  po::options_description metrics("metrics options", kHelpColumns);
  metrics.add_options()("format", po::value<std::string>(&cfg.metrics_format)->value_name("FORMAT"),
                        "text | openmetrics (default text)");
  po::options_description openmetrics("openmetrics options", kHelpColumns);
  openmetrics.add_options()("output,o", po::value<std::string>(&cfg.output)->value_name("FILE"),
                            "output file ('-' = stdout); a regular file is written as FILE.tmp "
                            "and renamed when complete");
  po::options_description history("openmetrics and remote-write options", kHelpColumns);
  history.add_options()("step", po::value<std::string>(&step)->value_name("DURATION"),
                        "sample step, 1s..1d (default 1m)");
  po::options_description remote_write("remote-write options", kHelpColumns);
  remote_write.add_options()("url",
                             po::value<std::string>(&cfg.remote_write_url)->value_name("URL"),
                             "receiver URL, e.g. http://127.0.0.1:8428/api/v1/write")(
      "header", po::value<std::vector<std::string>>(&auth.headers)->value_name("'NAME: VALUE'"),
      "extra header 'Name: value' (repeatable), e.g. 'X-Scope-OrgID: team'")(
      "bearer-token-file", po::value<std::string>(&auth.bearer_token_file)->value_name("FILE"),
      "send 'Authorization: Bearer <file content>'")(
      "basic-auth-user", po::value<std::string>(&auth.basic_auth_user)->value_name("USER"),
      "basic auth user (with --basic-auth-password-file)")(
      "basic-auth-password-file",
      po::value<std::string>(&auth.basic_auth_password_file)->value_name("FILE"),
      "file holding the basic auth password")(
      "max-samples-per-send", po::value<std::string>(&num.max_samples_per_send)->value_name("N"),
      "samples per request, 1..1000000 (default 2000)")(
      "max-retry-time", po::value<std::string>(&num.max_retry_time)->value_name("SECONDS"),
      "seconds to keep retrying one request, 0..1000000 (default 300; 0 = forever)");
  po::options_description visible;
  visible.add(common).add(summary).add(metrics).add(openmetrics).add(history).add(remote_write);

  // Which command each group's flags belong to (the common group's apply to all).
  std::vector<FlagScope> scopes;
  auto scope = [&](const po::options_description& group, std::vector<std::string> commands) {
    for (const auto& opt : group.options()) scopes.push_back({opt->long_name(), commands});
  };
  scope(summary, {"summary"});
  scope(metrics, {"metrics"});
  scope(openmetrics, {"openmetrics"});
  scope(history, {"openmetrics", "remote-write"});
  scope(remote_write, {"remote-write"});

  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>(&command));
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return Usage(e.what());
  }
  if (vm.count("help")) {
    std::ostringstream help;
    help << kUsage << visible << "\n";
    result.action = ReplayFlags::Action::kHelp;
    result.text = help.str();
    return result;
  }
  if (command == "summary")
    cfg.command = ReplayCommand::kSummary;
  else if (command == "openmetrics")
    cfg.command = ReplayCommand::kOpenMetrics;
  else if (command == "metrics")
    cfg.command = ReplayCommand::kMetrics;
  else if (command == "remote-write")
    cfg.command = ReplayCommand::kRemoteWrite;
  else
    return Usage("unknown command '" + command + "' (summary, openmetrics, metrics, remote-write)");

  std::vector<std::string> given;
  for (const auto& [name, value] : vm)
    if (!value.defaulted() && name != "command") given.push_back(name);
  if (Status s = CheckFlagsApply(command, given, scopes); !s.ok()) return Usage(s.message());

  // Numeric flags: only those given replace the defaults in `cfg`.
  struct Numeric {
    const char* flag;
    const std::string& text;
    uint64_t min, max;
    const char* unit;
    std::function<void(uint64_t)> set;
  };
  const Numeric numerics[] = {
      {"max-projects", num.max_projects, 1, kMaxProjectsLimit, "",
       [&](uint64_t v) { cfg.labels.max_projects = size_t(v); }},
      {"max-models", num.max_models, 1, kMaxModelsLimit, "",
       [&](uint64_t v) { cfg.labels.max_models = size_t(v); }},
      {"max-tools", num.max_tools, 1, kMaxToolsLimit, "",
       [&](uint64_t v) { cfg.labels.max_tools = size_t(v); }},
      {"threads", num.threads, 0, kMaxThreads, "", [&](uint64_t v) { cfg.threads = unsigned(v); }},
      {"max-line-bytes", num.max_line_bytes, kMinLineBytes, kMaxLineBytes, "bytes",
       [&](uint64_t v) { cfg.max_line_bytes = size_t(v); }},
      {"max-samples-per-send", num.max_samples_per_send, 1, kMaxSamplesPerSendLimit, "",
       [&](uint64_t v) { cfg.max_samples_per_send = size_t(v); }},
      {"max-retry-time", num.max_retry_time, 0, kMaxRetrySecondsLimit, "seconds",
       [&](uint64_t v) { cfg.max_retry_seconds = int64_t(v); }},
  };
  for (const Numeric& n : numerics) {
    if (!vm.count(n.flag)) continue;
    uint64_t v = 0;
    if (Status s = ParseUnsignedFlag(n.flag, n.text, n.min, n.max, &v, n.unit); !s.ok())
      return Usage(s.message());
    n.set(v);
  }

  if (!ParseGroupBy(by, &cfg.group_by))
    return Usage("--by must be day, month, session, project, model or device");
  if (!ParseProjectLabelMode(project_label, &cfg.labels.project_mode))
    return Usage("--project-label must be basename, path, hash or none");
  if (!ParseStep(step, &cfg.step_ms))
    return Usage("--step wants a duration from 1s to 1d such as 30s, 1m, 1h, got '" + step + "'");
  if (cfg.metrics_format != "text" && cfg.metrics_format != "openmetrics")
    return Usage("--format must be text or openmetrics");
  if (cfg.progress != "auto" && cfg.progress != "always" && cfg.progress != "never")
    return Usage("--progress must be auto, always or never");
  if (cfg.command == ReplayCommand::kOpenMetrics && cfg.output.empty())
    return Usage("openmetrics needs -o FILE (or -o - for stdout)");
  if (cfg.command == ReplayCommand::kRemoteWrite) {
    if (cfg.remote_write_url.empty()) return Usage("remote-write needs --url URL");
    HttpUrl url;
    if (Status s = ParseHttpUrl(cfg.remote_write_url, &url); !s.ok())
      return Usage("--url: " + s.message());
    if (Status s = BuildEndpointHeaders(Env::Default(), auth, &cfg.remote_write_headers); !s.ok())
      return Usage(s.message());
  }
  return result;
}

}  // namespace ccmon
