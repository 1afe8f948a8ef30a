// Summary reports (ccusage-like) over an Accounting.
#pragma once

#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "base/timezone.h"
#include "metrics/accounting.h"
#include "metrics/metrics.h"
#include "tools/replay/replay.h"

namespace ccmon {

struct ReportRow {
  std::string key;
  std::set<std::string> models;
  std::string project;  // session rows: the session's project label
  int64_t first_ms = 0, last_ms = 0;
  TokenCounts tokens;
  uint64_t requests = 0;
  uint64_t prompts = 0;  // prompts a person typed (A38)
  uint64_t subagent_requests = 0;
  uint64_t web_search_requests = 0;
  PicoSum cost = 0;
};

struct Report {
  std::string group_by;
  std::string timezone;
  std::vector<ReportRow> rows;  // sorted by key: rows with requests or prompts
  // False for --by model: a prompt has no model, so rows carry no prompts (the totals do).
  bool prompts_by_row = true;
  ReportRow totals;
  uint64_t sessions = 0;
  uint64_t api_errors = 0;
  std::map<std::string, uint64_t> tool_calls;
  std::map<std::string, uint64_t> unpriced_tokens;  // model -> tokens
};

Report BuildReport(const Accounting& a, GroupBy by, const std::string& device, LocalDays* days);

struct ReportInputs {
  uint64_t files = 0, bytes = 0, lines = 0, files_skipped = 0;
  const SkipCounts* skipped = nullptr;
  double seconds = 0;
};
void WriteReportTable(const Report& r, const ReportInputs& in, std::ostream& out);
void WriteReportJson(const Report& r, const ReportInputs& in, std::ostream& out);

}  // namespace ccmon
