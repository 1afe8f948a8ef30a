// ccmon-replay: parses flags into a ReplayConfig and calls RunReplay().
#include <malloc.h>

#include <boost/program_options.hpp>
#include <iostream>

#include "base/env.h"
#include "http/endpoint_headers.h"
#include "http/url.h"
#include "tools/replay/replay.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  // Big line buffers come and go while reading: keep them mmap'ed so that freeing one returns it
  // to the system (glibc would otherwise raise its threshold and keep them on the heap).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  ccmon::ReplayConfig cfg;
  std::string command = "summary", by = "day", project_label = "basename", step = "1m";
  ccmon::EndpointHeaderOptions auth;  // --header, --bearer-token-file, --basic-auth-*
  po::options_description opts("Options");
  opts.add_options()("help,h", "show this help")(
      "config-dir", po::value<std::vector<std::string>>(&cfg.config_dirs),
      "Claude config dir or projects/ dir (repeatable; default: CLAUDE_CONFIG_DIR, "
      "~/.config/claude and ~/.claude)")("device", po::value<std::string>(&cfg.device),
                                         "device label (default: hostname)")(
      "pricing", po::value<std::string>(&cfg.pricing_file),
      "pricing file (default: $CCMON_PRICING, ~/.config/ccmon/pricing.json, else embedded)")(
      "project-label", po::value<std::string>(&project_label),
      "project label: basename | path | hash | none")(
      "max-projects", po::value<size_t>(&cfg.labels.max_projects),
      "distinct project labels before 'other' (default 100)")(
      "by", po::value<std::string>(&by),
      "summary rows: day | month | session | project | model | device")(
      "since", po::value<std::string>(&cfg.since), "first day (YYYY-MM-DD or YYYYMMDD), inclusive")(
      "until", po::value<std::string>(&cfg.until), "last day, inclusive")(
      "timezone,z", po::value<std::string>(&cfg.timezone), "IANA zone for days (default: local)")(
      "json", po::bool_switch(&cfg.json), "summary as JSON")(
      "output,o", po::value<std::string>(&cfg.output), "openmetrics: output file ('-' = stdout)")(
      "step", po::value<std::string>(&step), "openmetrics: sample step (default 1m)")(
      "format", po::value<std::string>(&cfg.metrics_format), "metrics: text | openmetrics")(
      "threads", po::value<unsigned>(&cfg.threads), "reader threads (default: all cores)")(
      "max-line-bytes", po::value<size_t>(&cfg.max_line_bytes),
      "skip longer lines (default 64 MiB)")("progress", po::value<std::string>(&cfg.progress),
                                            "auto | always | never")(
      "url", po::value<std::string>(&cfg.remote_write_url),
      "remote-write: receiver URL, e.g. http://127.0.0.1:8428/api/v1/write")(
      "header", po::value<std::vector<std::string>>(&auth.headers),
      "remote-write: extra header 'Name: value' (repeatable), e.g. 'X-Scope-OrgID: team'")(
      "bearer-token-file", po::value<std::string>(&auth.bearer_token_file),
      "remote-write: send 'Authorization: Bearer <file content>'")(
      "basic-auth-user", po::value<std::string>(&auth.basic_auth_user),
      "remote-write: basic auth user (with --basic-auth-password-file)")(
      "basic-auth-password-file", po::value<std::string>(&auth.basic_auth_password_file),
      "remote-write: file holding the basic auth password")(
      "max-samples-per-send", po::value<size_t>(&cfg.max_samples_per_send),
      "remote-write: samples per request (default 2000)")(
      "max-retry-time", po::value<int64_t>(&cfg.max_retry_seconds),
      "remote-write: seconds to keep retrying one request (default 300; 0 = forever)");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>(&command));
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "ccmon-replay: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout
        << "usage: ccmon-replay [summary|openmetrics|metrics|remote-write] [options]\n\n"
           "  summary       usage and cost report (default)\n"
           "  openmetrics   the whole history as OpenMetrics for promtool backfill (-o FILE)\n"
           "  metrics       current totals as Prometheus text (--format openmetrics for OM)\n"
           "  remote-write  the whole history, with its timestamps, to a remote-write receiver\n"
           "                that accepts old samples (--url URL)\n\n"
        << opts << "\n";
    return 0;
  }
  if (command == "summary")
    cfg.command = ccmon::ReplayCommand::kSummary;
  else if (command == "openmetrics")
    cfg.command = ccmon::ReplayCommand::kOpenMetrics;
  else if (command == "metrics")
    cfg.command = ccmon::ReplayCommand::kMetrics;
  else if (command == "remote-write")
    cfg.command = ccmon::ReplayCommand::kRemoteWrite;
  else {
    std::cerr << "ccmon-replay: unknown command '" << command << "'\n";
    return 2;
  }
  if (!ccmon::ParseGroupBy(by, &cfg.group_by)) {
    std::cerr << "ccmon-replay: --by must be day, month, session, project, model or device\n";
    return 2;
  }
  if (!ccmon::ParseProjectLabelMode(project_label, &cfg.labels.project_mode)) {
    std::cerr << "ccmon-replay: --project-label must be basename, path, hash or none\n";
    return 2;
  }
  if (!ccmon::ParseStep(step, &cfg.step_ms)) {
    std::cerr << "ccmon-replay: --step wants a duration such as 30s, 1m, 1h\n";
    return 2;
  }
  if (cfg.metrics_format != "text" && cfg.metrics_format != "openmetrics") {
    std::cerr << "ccmon-replay: --format must be text or openmetrics\n";
    return 2;
  }
  if (cfg.progress != "auto" && cfg.progress != "always" && cfg.progress != "never") {
    std::cerr << "ccmon-replay: --progress must be auto, always or never\n";
    return 2;
  }
  if (cfg.command == ccmon::ReplayCommand::kOpenMetrics && cfg.output.empty()) {
    std::cerr << "ccmon-replay: openmetrics needs -o FILE (or -o - for stdout)\n";
    return 2;
  }
  if (cfg.command == ccmon::ReplayCommand::kRemoteWrite) {
    if (cfg.remote_write_url.empty()) {
      std::cerr << "ccmon-replay: remote-write needs --url URL\n";
      return 2;
    }
    if (cfg.max_samples_per_send == 0 || cfg.max_retry_seconds < 0) {
      std::cerr << "ccmon-replay: --max-samples-per-send must be > 0 and --max-retry-time >= 0\n";
      return 2;
    }
    ccmon::HttpUrl url;
    if (ccmon::Status s = ccmon::ParseHttpUrl(cfg.remote_write_url, &url); !s.ok()) {
      std::cerr << "ccmon-replay: --url: " << s.message() << "\n";
      return 2;
    }
    if (ccmon::Status s =
            ccmon::BuildEndpointHeaders(ccmon::Env::Default(), auth, &cfg.remote_write_headers);
        !s.ok()) {
      std::cerr << "ccmon-replay: " << s.message() << "\n";
      return 2;
    }
  }
  return ccmon::RunReplay(cfg, std::cout, std::cerr);
}
