#include "tools/replay/replay.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>

#include "base/clock.h"
#include "base/timeutil.h"
#include "base/utf8.h"
#include "exposition/history.h"
#include "exposition/text_format.h"
#include "http/http_client.h"
#include "metrics/metrics.h"
#include "remote_write/history_backfill.h"
#include "remote_write/remote_write_sender.h"
#include "tools/common/output.h"
#include "tools/replay/progress.h"
#include "tools/replay/report.h"
#include "transcript/discovery.h"

namespace ccmon {
namespace {

std::string Hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0) return "localhost";
  return buf;
}

// CCMON_TIMING=1 prints the time and memory of each phase of the load (benchmarks).
class PhaseTimer {
 public:
  PhaseTimer(std::ostream& err, std::chrono::steady_clock::time_point start)
      : err_(err), enabled_(std::getenv("CCMON_TIMING") != nullptr), last_(start) {}

  void Done(const char* name) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    std::ifstream status("/proc/self/status");
    std::string line, rss;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0 || line.rfind("VmHWM:", 0) == 0) {
        size_t v = line.find_first_not_of(" \t", 6);
        rss += " " + line.substr(0, 5) + " " + (v == std::string::npos ? "" : line.substr(v));
      }
    err_ << "ccmon-replay: " << name << " "
         << std::chrono::duration<double, std::milli>(now - last_).count() << " ms;" << rss << "\n";
    last_ = now;
  }

 private:
  std::ostream& err_;
  bool enabled_;
  std::chrono::steady_clock::time_point last_;
};

// --since/--until as a time window. Returns 0 or 2 (after saying why on `err`).
int SelectDays(const ReplayConfig& cfg, LocalDays* days, TimeWindow* window, std::ostream& err) {
  int64_t since_day = 0, until_day = 0;
  if (!cfg.since.empty() && !ParseDay(cfg.since, &since_day)) {
    err << "ccmon-replay: --since wants YYYY-MM-DD or YYYYMMDD, got '" << cfg.since << "'\n";
    return 2;
  }
  if (!cfg.until.empty() && !ParseDay(cfg.until, &until_day)) {
    err << "ccmon-replay: --until wants YYYY-MM-DD or YYYYMMDD, got '" << cfg.until << "'\n";
    return 2;
  }
  if (!cfg.since.empty() && !cfg.until.empty() && since_day > until_day) {
    err << "ccmon-replay: --since " << cfg.since << " is after --until " << cfg.until << "\n";
    return 2;
  }
  if (!cfg.since.empty()) window->since_ms = days->StartOfDay(since_day);
  if (!cfg.until.empty()) window->until_ms = days->StartOfDay(until_day + 1);
  return 0;
}

// Names the first few models without a price, then says how many more there were: a history
// with thousands of made-up model ids must not bury the other warnings.
class UnpricedModelWarnings {
 public:
  UnpricedModelWarnings(std::ostream& err, const std::string& price_origin)
      : err_(err), origin_(price_origin) {}
  void Warn(const std::string& model) {
    if (named_ == kMaxUnpricedModelWarnings) {
      ++more_;
      return;
    }
    ++named_;
    err_ << "ccmon-replay: warning: no price for model '" << TerminalSafe(model)
         << "': its cost is counted as $0 and its tokens as claude_unpriced_tokens_total "
            "(pricing: "
         << origin_ << ")\n";
  }
  void Finish() {
    if (more_ == 0) return;
    err_ << "ccmon-replay: warning: and " << more_ << " more model" << (more_ == 1 ? "" : "s")
         << " without a price (pricing: " << origin_ << ")\n";
  }

 private:
  std::ostream& err_;
  const std::string& origin_;
  size_t named_ = 0;
  uint64_t more_ = 0;
};

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
    if (n > kMaxStepMs / 1000) return false;
  }
  if (n <= 0 || n * mult < kMinStepMs || n * mult > kMaxStepMs) return false;
  *ms = n * mult;
  return true;
}

int LoadReplayHistory(const ReplayConfig& cfg, Env* env, std::ostream& err, ReplayHistory* h) {
  h->started = std::chrono::steady_clock::now();
  Status s = LocalDays::Select(env, cfg.timezone, &h->days);
  if (!s.ok()) {
    err << "ccmon-replay: " << s.message() << "\n";
    return 2;
  }
  ScanOptions scan;
  scan.env = env;
  scan.threads = cfg.threads;
  scan.max_line_bytes = cfg.max_line_bytes;
  if (int code = SelectDays(cfg, &h->days, &h->window, err); code != 0) return code;
  // Copies of one request may sit in files last written a little before the window starts: only
  // files older than the margin are left unread (A36).
  if (h->window.since_ms != std::numeric_limits<int64_t>::min())
    scan.skip_modified_before_ms = h->window.since_ms - kSinceFileMarginMs;
  s = PriceTable::LoadConfigured(env, cfg.pricing_file, &h->prices, &h->price_origin);
  if (!s.ok()) {
    err << "ccmon-replay: " << s.message() << "\n";
    return 2;
  }

  const DiscoveryEnv denv = DiscoveryEnv::FromEnv(env);
  // Directories and files that could not be read: each is named, and the exit status is 4.
  std::vector<std::string> warnings;
  std::vector<std::string> dirs = cfg.config_dirs.empty()
                                      ? ProjectDirs(denv, env, &warnings)
                                      : ProjectDirsFrom(cfg.config_dirs, denv.home, env, &warnings);
  if (dirs.empty()) {
    for (const auto& w : warnings) err << "ccmon-replay: warning: " << TerminalSafe(w) << "\n";
    err << "ccmon-replay: no Claude Code projects/ directory found"
        << (cfg.config_dirs.empty() ? " (looked at CLAUDE_CONFIG_DIR, ~/.config/claude, ~/.claude)"
                                    : "")
        << "\n";
    return 3;
  }
  PhaseTimer phase(err, h->started);
  phase.Done("setup");
  std::vector<TranscriptFile> files = ListTranscripts(dirs, &warnings, env);
  phase.Done("discovery");
  for (const auto& w : warnings) err << "ccmon-replay: warning: " << TerminalSafe(w) << "\n";
  uint64_t total_bytes = 0;
  for (const auto& f : files) total_bytes += f.size;

  ScanProgress progress;
  bool show = cfg.progress == "always" || (cfg.progress == "auto" && ::isatty(2));
  {
    std::optional<ProgressBar> bar;
    if (show) bar.emplace(&progress, files.size(), total_bytes);
    h->scan = ScanFiles(files, scan, &progress);
  }
  phase.Done("scan");
  for (const auto& e : h->scan.errors) err << "ccmon-replay: warning: " << TerminalSafe(e) << "\n";
  h->incomplete = !warnings.empty() || h->scan.incomplete();
  if (h->incomplete) {
    err << "ccmon-replay: some transcripts could not be read (see the warnings above): the "
           "figures are incomplete\n";
  }

  h->device = cfg.device.empty() ? Hostname() : cfg.device;
  UnpricedModelWarnings unpriced(err, h->price_origin);
  h->accounting.emplace(Accounting::Build(h->scan.ledger, h->prices,
                                          AccountingOptions{cfg.labels, h->window},
                                          [&](const std::string& m) { unpriced.Warn(m); }));
  unpriced.Finish();
  phase.Done("accounting");
  return 0;
}

int RunSummary(const ReplayConfig& cfg, ReplayHistory& h, std::ostream& out) {
  Report rep = BuildReport(*h.accounting, cfg.group_by, h.device, &h.days);
  ReportInputs in;
  in.files = h.scan.files;
  in.files_skipped = h.scan.files_skipped;
  in.bytes = h.scan.bytes;
  in.lines = h.scan.lines;
  in.skipped = &h.scan.skipped;
  in.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - h.started).count();
  if (cfg.json)
    WriteReportJson(rep, in, out);
  else
    WriteReportTable(rep, in, out);
  return 0;
}

int RunMetrics(const ReplayConfig& cfg, const ReplayHistory& h, std::ostream& out) {
  auto fams = CollectEvents(*h.accounting, h.device);
  fams.push_back(SkippedLinesFamily(h.scan.skipped));
  out << (cfg.metrics_format == "openmetrics" ? SnapshotOpenMetrics(fams) : SnapshotText(fams));
  return 0;
}

int RunOpenMetrics(const ReplayConfig& cfg, const ReplayHistory& h, Env* env, std::ostream& out,
                   std::ostream& err, StopSignals* signals) {
  auto fams = CollectEvents(*h.accounting, h.device);
  if (cfg.output.empty() || cfg.output == "-") {
    WriteOpenMetricsHistory(fams, cfg.step_ms, out);  // RunReplay checks `out`
    return 0;
  }
  HistoryStats hs;
  StopSignals::Scope scope(signals);
  // Permission bits as any new file of the user's (0666 less the umask).
  Status s = WriteOutputFile(
      env, cfg.output, 0666,
      [&](std::ostream& file) { hs = WriteOpenMetricsHistory(fams, cfg.step_ms, file); },
      scope.token());
  if (!s.ok()) {
    err << "ccmon-replay: cannot write " << cfg.output << ": " << s.message();
    if (scope.token().stop_requested()) err << " (stopped by a signal)";
    err << "\n";
    return 1;
  }
  err << "ccmon-replay: wrote " << hs.series << " series, " << hs.samples << " samples to "
      << cfg.output << " (history ends at " << hs.end_ms / 1000 << ")\n";
  return 0;
}

int RunRemoteWrite(const ReplayConfig& cfg, const ReplayHistory& h, std::ostream& err,
                   StopSignals* signals) {
  auto fams = CollectEvents(*h.accounting, h.device);
  // Sent with their timestamps into a receiver that may already hold live data: nothing in its
  // future (ClampEventTimes).
  if (const uint64_t future = ClampEventTimes(&fams, Clock::Real()->NowUnixMs()); future > 0) {
    err << "ccmon-replay: " << future
        << " events are dated after now (a clock ahead of this one); they are sent as of now\n";
  }
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
  StopSignals::Scope scope(signals);
  Status st =
      BackfillRemoteWrite(fams, cfg.step_ms, cfg.max_samples_per_send, &sender, &bs, scope.token());
  if (!st.ok()) {
    err << "ccmon-replay: " << TerminalSafe(st.message()) << "\n";
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
  return 0;
}

int RunReplay(const ReplayConfig& cfg, std::ostream& out, std::ostream& err, Env* env,
              StopSignals* signals) {
  int code = 0;
  {
    ReplayHistory history;
    code = LoadReplayHistory(cfg, env, err, &history);
    if (code == 0) {
      switch (cfg.command) {
        case ReplayCommand::kSummary:
          code = RunSummary(cfg, history, out);
          break;
        case ReplayCommand::kMetrics:
          code = RunMetrics(cfg, history, out);
          break;
        case ReplayCommand::kOpenMetrics:
          code = RunOpenMetrics(cfg, history, env, out, err, signals);
          break;
        case ReplayCommand::kRemoteWrite:
          code = RunRemoteWrite(cfg, history, err, signals);
          break;
      }
      // Done, but on incomplete figures: the output is still written (and worth having).
      if (code == 0 && history.incomplete) code = 4;
    }
  }
  // A report cut short by a full disk must not look like a complete one (nor like one that is
  // merely incomplete).
  if (Status s = FlushOutput(out, "standard output"); !s.ok()) {
    err << "ccmon-replay: " << s.message() << "\n";
    if (code == 0 || code == 4) code = 1;
  }
  return code;
}

int RunReplay(const ReplayConfig& cfg, std::ostream& out, std::ostream& err) {
  return RunReplay(cfg, out, err, Env::Default());
}

}  // namespace ccmon
