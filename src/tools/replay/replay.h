// ccmon-replay: whole-history reports, snapshots and backfills.
//
// A run is one shared step, LoadReplayHistory (time zone, price table, discovery, scan,
// accounting), and one function per subcommand over the result and the shared ReplayConfig.
// RunReplay does both; main.cc only turns the command line into a ReplayConfig (flags.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/timezone.h"
#include "ledger/scanner.h"
#include "metrics/accounting.h"
#include "pricing/pricing.h"
#include "tools/common/stop_signals.h"

namespace ccmon {

enum class ReplayCommand { kSummary, kOpenMetrics, kMetrics, kRemoteWrite };
enum class GroupBy { kDay, kMonth, kSession, kProject, kModel, kDevice };
bool ParseGroupBy(const std::string& s, GroupBy* out);

// The ranges of the numeric settings, enforced by the flag parser (flags.h) and documented in
// --help and README.
inline constexpr uint64_t kMaxThreads = 1024;
inline constexpr uint64_t kMinLineBytes = uint64_t(1) << 10;  // 1 KiB
inline constexpr uint64_t kMaxLineBytes = uint64_t(1) << 30;  // 1 GiB
inline constexpr uint64_t kMaxProjectsLimit = 1'000'000;
inline constexpr uint64_t kMaxModelsLimit = 1'000'000;
inline constexpr uint64_t kMaxToolsLimit = 1'000'000;
inline constexpr uint64_t kMaxSamplesPerSendLimit = 1'000'000;
inline constexpr uint64_t kMaxRetrySecondsLimit = 1'000'000;
inline constexpr int64_t kMinStepMs = 1000;      // 1s
inline constexpr int64_t kMaxStepMs = 86400000;  // 1d
// With --since, files last modified more than this before the window starts are not opened
// (A36): copies of one response are written within seconds of each other, and resume copies go
// to newer files, so a copy that decides a request of the window is not in such a file.
inline constexpr int64_t kSinceFileMarginMs = 86400000;  // 1 day
// The unpriced-model warnings name at most this many models, then say how many more (A26).
inline constexpr size_t kMaxUnpricedModelWarnings = 10;

struct ReplayConfig {
  ReplayCommand command = ReplayCommand::kSummary;
  // Every subcommand.
  std::vector<std::string> config_dirs;  // empty: CLAUDE_CONFIG_DIR or the default dirs
  std::string device;                    // empty: hostname
  std::string pricing_file;  // empty: $CCMON_PRICING, ~/.config/ccmon/pricing.json, embedded
  LabelOptions labels;
  std::string since, until;  // YYYY-MM-DD or YYYYMMDD, inclusive, in `timezone`
  std::string timezone;      // IANA name; empty = local
  unsigned threads = 0;      // 0: all cores
  size_t max_line_bytes = size_t(64) << 20;
  std::string progress = "auto";  // auto | always | never
  // summary
  GroupBy group_by = GroupBy::kDay;
  bool json = false;
  // metrics
  std::string metrics_format = "text";  // text | openmetrics
  // openmetrics: the file to write ("" or "-" = the `out` stream)
  std::string output;
  // openmetrics and remote-write
  int64_t step_ms = 60000;
  // remote-write: the target and how to send.
  std::string remote_write_url;
  std::vector<std::pair<std::string, std::string>> remote_write_headers;
  size_t max_samples_per_send = 2000;
  int64_t max_retry_seconds = 300;  // 0: retry forever
};

// What every subcommand works on. Filled in place by LoadReplayHistory and neither copied nor
// moved: `accounting` points into `scan.ledger` and `prices`.
struct ReplayHistory {
  ReplayHistory() = default;
  ReplayHistory(const ReplayHistory&) = delete;
  ReplayHistory& operator=(const ReplayHistory&) = delete;

  std::chrono::steady_clock::time_point started;  // when the run began (summary's timing)
  LocalDays days;                                 // the zone of --since/--until and of days
  TimeWindow window;                              // --since/--until as instants
  PriceTable prices;
  std::string price_origin;
  ScanResult scan;
  std::string device;  // the device label
  std::optional<Accounting> accounting;
  // Some directories or transcripts could not be read (the warnings say which): the figures
  // are incomplete, and a run that is otherwise fine exits 4.
  bool incomplete = false;
};

// The shared step: zone, --since/--until, price table, discovery, scan and accounting, every
// file read through `env` (borrowed). --since/--until are applied to the accounting (every
// output sees the same window); the scan skips only files last modified more than
// kSinceFileMarginMs before --since. Warnings (unreadable directories and files, unknown models,
// at most kMaxUnpricedModelWarnings of them by name) go to `err`; unreadable ones also set
// history->incomplete. Returns 0, or the exit code
// after saying why on `err`: 2 for a bad zone, day, day range (--since after --until) or price
// table, 3 when no projects directory is found.
int LoadReplayHistory(const ReplayConfig& config, Env* env, std::ostream& err,
                      ReplayHistory* history);

// The subcommands. Each returns the process exit code (0, or 1 after saying why on `err`);
// reports go to `out` (whose write errors are the caller's to check: RunReplay does).
int RunSummary(const ReplayConfig& config, ReplayHistory& history, std::ostream& out);
int RunMetrics(const ReplayConfig& config, const ReplayHistory& history, std::ostream& out);
// `signals` (may be null) lets a signal stop the two that must not be cut short: the output
// file and the remote-write backfill run in a StopSignals::Scope.
// Writes `config.output` through WriteOutputFile (atomically for a regular file), or to `out`
// when it is "" or "-". A signal during the write leaves a regular file as it was (exit 1).
int RunOpenMetrics(const ReplayConfig& config, const ReplayHistory& history, Env* env,
                   std::ostream& out, std::ostream& err, StopSignals* signals = nullptr);
// A signal during the backfill stops it after the exchange in flight (bounded by the HTTP
// timeouts) and says how many samples were stored (exit 1).
int RunRemoteWrite(const ReplayConfig& config, const ReplayHistory& history, std::ostream& err,
                   StopSignals* signals = nullptr);

// Loads the history and runs `config.command`, then flushes `out` and fails (exit 1) if any write
// to it failed. Returns the process exit code (README): 0 done; 1 the output could not be
// written or sent; 2 bad arguments; 3 no projects/ directory; 4 done, but some transcripts could
// not be read whole, as the warnings say: the figures are incomplete. Every file is read and
// written through `env` (borrowed); the overload without it uses Env::Default(). `signals`
// (borrowed, may be null): see RunOpenMetrics and RunRemoteWrite.
int RunReplay(const ReplayConfig& config, std::ostream& out, std::ostream& err, Env* env,
              StopSignals* signals = nullptr);
int RunReplay(const ReplayConfig& config, std::ostream& out, std::ostream& err);

// "1m", "30s", "1h", "1d" -> ms: whole seconds, from 1s to 1d.
bool ParseStep(const std::string& s, int64_t* ms);

}  // namespace ccmon
