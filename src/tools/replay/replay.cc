#include "tools/replay/replay.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>

#include "transcript/discovery.h"
#include "exposition/history.h"
#include "exposition/text_format.h"
#include "metrics/metrics.h"
#include "pricing/pricing.h"
#include "ledger/scanner.h"
#include "base/timeutil.h"
#include "base/clock.h"
#include "base/timezone.h"
#include "http/http_client.h"
#include "remote_write/remote_write_sender.h"
#include "tools/replay/progress.h"
#include "tools/replay/remote_write_backfill.h"
#include "tools/replay/report.h"

namespace ccmon {
namespace {

std::string Hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0) return "localhost";
  return buf;
}

}  // namespace

bool ParseGroupBy(const std::string& s, GroupBy* out) {
  if (s == "day")
    *out = GroupBy::kDay;
  else if (s == "month")
    *out = GroupBy::kMonth;
  else if (s == "session")
    *out = GroupBy::kSession;
  else if (s == "project")
    *out = GroupBy::kProject;
  else if (s == "model")
    *out = GroupBy::kModel;
  else if (s == "device")
    *out = GroupBy::kDevice;
  else
    return false;
  return true;
}

bool ParseStep(const std::string& s, int64_t* ms) {
  if (s.size() < 2) return false;
  char unit = s.back();
  int64_t mult = unit == 's'   ? 1000
                 : unit == 'm' ? 60000
                 : unit == 'h' ? 3600000
                 : unit == 'd' ? 86400000
                               : 0;
  if (mult == 0) return false;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    n = n * 10 + (s[i] - '0');
    if (n > 1000000) return false;
  }
  if (n <= 0) return false;
  *ms = n * mult;
  return true;
}

int RunReplay(const ReplayConfig& cfg, std::ostream& out, std::ostream& err) {
  auto started = std::chrono::steady_clock::now();
  LocalDays days;
  Status s = LocalDays::Select(cfg.timezone, &days);
  if (!s.ok()) {
    err << "ccmon-replay: " << s.message() << "\n";
    return 2;
  }
  ScanOptions scan;
  scan.threads = cfg.threads;
  scan.max_line_bytes = cfg.max_line_bytes;
  if (!cfg.since.empty()) {
    int64_t day;
    if (!ParseDay(cfg.since, &day)) {
      err << "ccmon-replay: --since wants YYYY-MM-DD or YYYYMMDD, got '" << cfg.since << "'\n";
      return 2;
    }
    scan.since_ms = days.StartOfDay(day);
  }
  if (!cfg.until.empty()) {
    int64_t day;
    if (!ParseDay(cfg.until, &day)) {
      err << "ccmon-replay: --until wants YYYY-MM-DD or YYYYMMDD, got '" << cfg.until << "'\n";
      return 2;
    }
    scan.until_ms = days.StartOfDay(day + 1);
  }
  PriceTable prices;
  std::string price_origin;
  s = PriceTable::LoadConfigured(cfg.pricing_file, &prices, &price_origin);
  if (!s.ok()) {
    err << "ccmon-replay: " << s.message() << "\n";
    return 2;
  }

  const DiscoveryEnv env = DiscoveryEnv::FromProcess();
  // Directories and files that could not be read: each is named, and the exit status is 4.
  std::vector<std::string> warnings;
  std::vector<std::string> dirs =
      cfg.config_dirs.empty()
          ? ProjectDirs(env, Env::Default(), &warnings)
          : ProjectDirsFrom(cfg.config_dirs, env.home, Env::Default(), &warnings);
  if (dirs.empty()) {
    for (const auto& w : warnings) err << "ccmon-replay: warning: " << w << "\n";
    err << "ccmon-replay: no Claude Code projects/ directory found"
        << (cfg.config_dirs.empty() ? " (looked at CLAUDE_CONFIG_DIR, ~/.config/claude, ~/.claude)"
                                    : "")
        << "\n";
    return 3;
  }
  // CCMON_TIMING=1 prints the time of each phase (benchmarks).
  const bool timing = std::getenv("CCMON_TIMING") != nullptr;
  auto phase = [&, last = started](const char* name) mutable {
    if (!timing) return;
    auto now = std::chrono::steady_clock::now();
    std::ifstream status("/proc/self/status");
    std::string line, rss;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0 || line.rfind("VmHWM:", 0) == 0) {
        size_t v = line.find_first_not_of(" \t", 6);
        rss += " " + line.substr(0, 5) + " " + (v == std::string::npos ? "" : line.substr(v));
      }
    err << "ccmon-replay: " << name << " "
        << std::chrono::duration<double, std::milli>(now - last).count() << " ms;" << rss << "\n";
    last = now;
  };
  phase("setup");
  std::vector<TranscriptFile> files = ListTranscripts(dirs, &warnings);
  phase("discovery");
  for (const auto& w : warnings) err << "ccmon-replay: warning: " << w << "\n";
  uint64_t total_bytes = 0;
  for (const auto& f : files) total_bytes += f.size;

  ScanProgress progress;
  bool show = cfg.progress == "always" || (cfg.progress == "auto" && ::isatty(2));
  ScanResult result;
  {
    std::optional<ProgressBar> bar;
    if (show) bar.emplace(&progress, files.size(), total_bytes);
    result = ScanFiles(files, scan, &progress);
  }
  phase("scan");
  for (const auto& e : result.errors) err << "ccmon-replay: warning: " << e << "\n";
  const bool incomplete = !warnings.empty() || result.incomplete();
  if (incomplete) {
    err << "ccmon-replay: some transcripts could not be read (see the warnings above): the "
           "figures are incomplete\n";
  }
  const int done = incomplete ? 4 : 0;  // the report is still written

  const std::string device = cfg.device.empty() ? Hostname() : cfg.device;
  Accounting acc = Accounting::Build(result.ledger, prices, cfg.labels, [&](const std::string& m) {
    err << "ccmon-replay: warning: no price for model '" << m
        << "': its cost is counted as $0 and its tokens as claude_unpriced_tokens_total (pricing: "
        << price_origin << ")\n";
  });
  phase("accounting");

  switch (cfg.command) {
    case ReplayCommand::kSummary: {
      Report rep = BuildReport(acc, cfg.group_by, device, &days);
      ReportInputs in;
      in.files = result.files;
      in.files_skipped = result.files_skipped;
      in.bytes = result.bytes;
      in.lines = result.lines;
      in.skipped = &result.skipped;
      in.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (cfg.json)
        WriteReportJson(rep, in, out);
      else
        WriteReportTable(rep, in, out);
      return done;
    }
    case ReplayCommand::kMetrics: {
      auto fams = CollectEvents(acc, device);
      fams.push_back(SkippedLinesFamily(result.skipped));
      out << (cfg.metrics_format == "openmetrics" ? SnapshotOpenMetrics(fams) : SnapshotText(fams));
      return done;
    }
    case ReplayCommand::kRemoteWrite: {
      auto fams = CollectEvents(acc, device);
      RemoteWriteSenderOptions so;
      so.url = cfg.remote_write_url;
      so.headers = cfg.remote_write_headers;
      so.user_agent = "ccmon-replay/0.1";
      so.max_retry_time = std::chrono::seconds(cfg.max_retry_seconds);
      RealHttpTransport transport(HttpClientOptions{});
      std::random_device seed;
      std::mt19937_64 rng(seed());
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      RemoteWriteSender sender(so, &transport, Clock::Real(), [&] { return uniform(rng); });
      BackfillStats bs;
      Status st = BackfillRemoteWrite(fams, cfg.step_ms, cfg.max_samples_per_send, &sender, &bs);
      if (!st.ok()) {
        err << "ccmon-replay: " << st.message() << "\n";
        if (IsTooOldForReceiver(bs.failed_send.last.reason)) {
          err << "ccmon-replay: this Prometheus does not take samples older than its newest data "
                 "(or its out-of-order window); backfill it with `ccmon-replay openmetrics` and "
                 "`promtool tsdb create-blocks-from openmetrics` instead (README)\n";
        }
        return 1;
      }
      err << "ccmon-replay: sent " << bs.series << " series, " << bs.samples_sent << " samples in "
          << bs.requests << " requests to " << cfg.remote_write_url << " (history ends at "
          << bs.end_ms / 1000 << ")\n";
      return done;
    }
    case ReplayCommand::kOpenMetrics: {
      auto fams = CollectEvents(acc, device);
      // A regular file is written as FILE.tmp and renamed when complete, so that a failed run
      // (full disk, killed) never leaves a truncated history for promtool to import.
      const bool to_stdout = cfg.output.empty() || cfg.output == "-";
      struct stat st;
      const bool special =
          !to_stdout && ::stat(cfg.output.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
      const std::string target = to_stdout || special ? cfg.output : cfg.output + ".tmp";
      std::ofstream file;
      std::ostream* dst = &out;
      if (!to_stdout) {
        file.open(target, std::ios::binary | std::ios::trunc);
        if (!file) {
          err << "ccmon-replay: cannot write " << target << ": " << std::strerror(errno) << "\n";
          return 1;
        }
        dst = &file;
      }
      HistoryStats hs = WriteOpenMetricsHistory(fams, cfg.step_ms, *dst);
      dst->flush();
      if (!to_stdout) file.close();  // fails (failbit) if any write or the final flush failed
      if (to_stdout ? out.fail() : file.fail()) {
        err << "ccmon-replay: write failed for " << cfg.output << "\n";
        if (!to_stdout && !special) std::remove(target.c_str());
        return 1;
      }
      if (!to_stdout && !special && std::rename(target.c_str(), cfg.output.c_str()) != 0) {
        err << "ccmon-replay: cannot rename " << target << " to " << cfg.output << ": "
            << std::strerror(errno) << "\n";
        std::remove(target.c_str());
        return 1;
      }
      if (!to_stdout) {
        err << "ccmon-replay: wrote " << hs.series << " series, " << hs.samples << " samples to "
            << cfg.output << " (history ends at " << hs.end_ms / 1000 << ")\n";
      }
      return done;
    }
  }
  return 0;
}

}  // namespace ccmon
