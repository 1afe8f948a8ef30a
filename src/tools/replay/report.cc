#include "tools/replay/report.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "base/timeutil.h"
#include "base/utf8.h"

namespace ccmon {
namespace {

const char* GroupName(GroupBy by) {
  switch (by) {
    case GroupBy::kDay:
      return "day";
    case GroupBy::kMonth:
      return "month";
    case GroupBy::kSession:
      return "session";
    case GroupBy::kProject:
      return "project";
    case GroupBy::kModel:
      return "model";
    case GroupBy::kDevice:
      return "device";
  }
  return "day";
}

void AddTo(ReportRow* row, const PricedRequest& r, const std::string& model) {
  if (row->requests == 0 || r.timestamp_ms < row->first_ms) row->first_ms = r.timestamp_ms;
  row->last_ms = std::max(row->last_ms, r.timestamp_ms);
  row->models.insert(model);
  row->tokens.input += r.tokens.input;
  row->tokens.output += r.tokens.output;
  row->tokens.cache_write_5m += r.tokens.cache_write_5m;
  row->tokens.cache_write_1h += r.tokens.cache_write_1h;
  row->tokens.cache_read += r.tokens.cache_read;
  ++row->requests;
  if (r.sidechain) ++row->subagent_requests;
  row->web_search_requests += r.web_search_requests;
  row->cost += r.cost.cost;
}

std::string Thousands(uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Money(PicoSum pico) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "$%.2f", PicoToUsd(pico));
  return buf;
}

nlohmann::json RowJson(const ReportRow& r, bool with_key, bool with_prompts) {
  nlohmann::json j;
  if (with_key) j["key"] = r.key;
  j["models"] = std::vector<std::string>(r.models.begin(), r.models.end());
  if (!r.project.empty()) j["project"] = r.project;
  j["input"] = r.tokens.input;
  j["output"] = r.tokens.output;
  j["cache_creation_5m"] = r.tokens.cache_write_5m;
  j["cache_creation_1h"] = r.tokens.cache_write_1h;
  j["cache_read"] = r.tokens.cache_read;
  j["total_tokens"] = r.tokens.Total();
  j["requests"] = r.requests;
  if (with_prompts) j["prompts"] = r.prompts;
  j["subagent_requests"] = r.subagent_requests;
  j["web_search_requests"] = r.web_search_requests;
  j["cost_usd"] = PicoToUsd(r.cost);
  j["cost_pusd"] = FormatInt(r.cost);  // exact, as a decimal string of pico-dollars
  return j;
}

}  // namespace

Report BuildReport(const Accounting& a, GroupBy by, const std::string& device, LocalDays* days) {
  Report rep;
  rep.group_by = GroupName(by);
  rep.timezone = days->name();
  std::map<std::string, ReportRow> rows;
  std::unordered_map<uint32_t, uint32_t> session_project;
  for (const SessionStart& s : a.sessions()) session_project[s.session] = s.project;
  // By day or month: each row's first local day, for calendar order (the keys' string order is
  // not, once a year has five digits: 9999-12-31 in UTC is in 10000 east of Greenwich).
  std::unordered_map<std::string, int64_t> first_day;
  auto key_of = [&](int64_t ts, uint32_t session, uint32_t project, uint32_t model) {
    switch (by) {
      case GroupBy::kDay:
      case GroupBy::kMonth: {
        const int64_t day = days->DayOf(ts);
        std::string key = FormatDay(day);  // YYYY-MM-DD, the year four or more digits
        if (by == GroupBy::kMonth) key.resize(key.size() - 3);
        auto [it, fresh] = first_day.try_emplace(key, day);
        if (!fresh && day < it->second) it->second = day;
        return key;
      }
      case GroupBy::kSession:
        return a.label(session);
      case GroupBy::kProject:
        return a.label(project);
      case GroupBy::kModel:
        return a.label(model);
      case GroupBy::kDevice:
        return device;
    }
    return std::string();
  };
  for (const PricedRequest& r : a.requests()) {
    const std::string key = key_of(r.timestamp_ms, r.session, r.project, r.model);
    const std::string& model = a.label(r.model);
    ReportRow& row = rows[key];
    row.key = key;
    if (by == GroupBy::kSession) {
      auto it = session_project.find(r.session);
      row.project = a.label(it != session_project.end() ? it->second : r.project);
    }
    AddTo(&row, r, model);
    AddTo(&rep.totals, r, model);
    if (!r.cost.priced) rep.unpriced_tokens[model] += r.tokens.Total();
  }
  // Prompts (A38): in the row of their day, session, project or device; a prompt has no model.
  rep.prompts_by_row = by != GroupBy::kModel;
  for (const PromptEvent& p : a.prompts()) {
    ++rep.totals.prompts;
    if (!rep.prompts_by_row) continue;
    const std::string key = key_of(p.timestamp_ms, p.session, p.project, 0);
    ReportRow& row = rows[key];
    if (row.key.empty()) row.key = key;
    if (by == GroupBy::kSession && row.requests == 0 && row.prompts == 0) {
      auto it = session_project.find(p.session);
      row.project = a.label(it != session_project.end() ? it->second : p.project);
    }
    ++row.prompts;
  }
  for (auto& [k, row] : rows) rep.rows.push_back(std::move(row));
  if (!first_day.empty()) {
    std::stable_sort(rep.rows.begin(), rep.rows.end(), [&](const ReportRow& a, const ReportRow& b) {
      return first_day.at(a.key) < first_day.at(b.key);
    });
  }
  rep.sessions = a.sessions().size();
  rep.api_errors = a.api_errors().size();
  for (const ToolCall& t : a.tool_calls()) ++rep.tool_calls[a.label(t.tool)];
  return rep;
}

void WriteReportTable(const Report& r, const ReportInputs& in, std::ostream& out) {
  char line[512];
  const char* fmt = "%-38s %12s %12s %13s %13s %15s %16s %9s %9s %11s\n";
  std::snprintf(line, sizeof line, fmt, r.group_by.c_str(), "input", "output", "cache w 5m",
                "cache w 1h", "cache read", "total tokens", "requests", "prompts", "cost");
  out << line;
  auto print = [&](const std::string& key, const ReportRow& row, bool with_prompts) {
    std::snprintf(
        line, sizeof line, fmt, key.c_str(), Thousands(row.tokens.input).c_str(),
        Thousands(row.tokens.output).c_str(), Thousands(row.tokens.cache_write_5m).c_str(),
        Thousands(row.tokens.cache_write_1h).c_str(), Thousands(row.tokens.cache_read).c_str(),
        Thousands(row.tokens.Total()).c_str(), Thousands(row.requests).c_str(),
        with_prompts ? Thousands(row.prompts).c_str() : "-", Money(row.cost).c_str());
    out << line;
  };
  for (const auto& row : r.rows) {
    // Keys are transcript text (projects, sessions, models): no control character reaches the
    // terminal, and a long key is cut between characters.
    std::string key = TerminalSafe(row.key);
    if (key.size() > 38) key = std::string(Utf8Prefix(key, 35)) + "...";
    print(key, row, r.prompts_by_row);
  }
  out << std::string(156, '-') << "\n";
  print("total", r.totals, true);
  out << "\n"
      << Thousands(r.sessions) << " sessions, " << Thousands(r.api_errors) << " API errors, "
      << Thousands(r.totals.web_search_requests) << " web searches; " << Thousands(in.files)
      << " files, " << Thousands(in.bytes) << " bytes, " << Thousands(in.lines)
      << " complete lines";
  if (in.skipped && in.skipped->total() > 0) {
    out << ", " << Thousands(in.skipped->total()) << " skipped (";
    bool first = true;
    for (int i = 0; i < kSkipReasonCount; ++i) {
      if (!in.skipped->by_reason[i]) continue;
      out << (first ? "" : ", ") << SkipReasonName(SkipReason(i)) << " "
          << in.skipped->by_reason[i];
      first = false;
    }
    out << ")";
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, " in %.2fs", in.seconds);
  out << secs << "; days in " << r.timezone << "\n";
  if (!r.unpriced_tokens.empty()) {
    out << "unpriced (cost counted as $0):";
    for (const auto& [m, n] : r.unpriced_tokens) {
      out << " " << TerminalSafe(m) << " " << Thousands(n) << " tokens;";
    }
    out << " add them with ccmon-pricing\n";
  }
}

void WriteReportJson(const Report& r, const ReportInputs& in, std::ostream& out) {
  nlohmann::json j;
  j["group_by"] = r.group_by;
  j["timezone"] = r.timezone;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : r.rows) rows.push_back(RowJson(row, true, r.prompts_by_row));
  j["rows"] = rows;
  nlohmann::json totals = RowJson(r.totals, false, true);
  totals["sessions"] = r.sessions;
  totals["api_errors"] = r.api_errors;
  j["totals"] = totals;
  j["tool_calls"] = r.tool_calls;
  j["unpriced_tokens"] = r.unpriced_tokens;
  nlohmann::json skipped = nlohmann::json::object();
  if (in.skipped) {
    for (int i = 0; i < kSkipReasonCount; ++i)
      skipped[std::string(SkipReasonName(SkipReason(i)))] = in.skipped->by_reason[i];
  }
  j["skipped_lines"] = skipped;
  j["files"] = in.files;
  j["files_not_opened"] = in.files_skipped;
  j["bytes"] = in.bytes;
  j["lines"] = in.lines;
  out << j.dump(1) << "\n";
}

}  // namespace ccmon
