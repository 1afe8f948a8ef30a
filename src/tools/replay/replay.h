// ccmon-replay: whole-history reports, snapshots and OpenMetrics backfill files.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "metrics/accounting.h"

namespace ccmon {

enum class ReplayCommand { kSummary, kOpenMetrics, kMetrics, kRemoteWrite };
enum class GroupBy { kDay, kMonth, kSession, kProject, kModel, kDevice };
bool ParseGroupBy(const std::string& s, GroupBy* out);

struct ReplayConfig {
  ReplayCommand command = ReplayCommand::kSummary;
  std::vector<std::string> config_dirs;  // empty: CLAUDE_CONFIG_DIR or the default dirs
  std::string device;                    // empty: hostname
  std::string pricing_file;              // empty: $CCMON_PRICING, ~/.config/ccmon/pricing.json, embedded
  LabelOptions labels;
  GroupBy group_by = GroupBy::kDay;
  std::string since, until;  // YYYY-MM-DD or YYYYMMDD, inclusive, in `timezone`
  std::string timezone;      // IANA name; empty = local
  bool json = false;
  std::string output;        // openmetrics: file to write ("-" = stdout)
  int64_t step_ms = 60000;
  std::string metrics_format = "text";  // metrics: text | openmetrics
  unsigned threads = 0;
  size_t max_line_bytes = size_t(64) << 20;
  std::string progress = "auto";        // auto | always | never
  // remote-write: the target and how to send.
  std::string remote_write_url;
  std::vector<std::pair<std::string, std::string>> remote_write_headers;
  size_t max_samples_per_send = 2000;
  int64_t max_retry_seconds = 300;
};

// Runs one command. Returns the process exit code (0 done; 1 the output could not be written or
// sent; 2 bad arguments; 3 no projects/ directory; 4 done, but some transcripts could not be read
// whole, as the warnings say: the figures are incomplete); reports go to `out`, diagnostics to
// `err`.
int RunReplay(const ReplayConfig& config, std::ostream& out, std::ostream& err);

// "1m", "30s", "1h", "15m" -> ms (whole seconds, >= 1s).
bool ParseStep(const std::string& s, int64_t* ms);

}  // namespace ccmon
