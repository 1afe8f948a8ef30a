// Shared helpers of the core unit tests: temp dirs, real-shaped transcript lines, owned copies of
// ParsedLine and a canonical dump of a Ledger (for order-independence comparisons).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/money.h"
#include "ledger/ledger.h"
#include "testing/temp_dir.h"
#include "transcript/line_parser.h"
#include "transcript/usage.h"

namespace ccmon {
namespace testing_util {

inline void MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  ASSERT_FALSE(ec) << path << ": " << ec.message();
}

// Writes `content` to `path` (creating parent dirs), byte for byte.
inline void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) MakeDirs(p.parent_path().string());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), std::streamsize(content.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Sets a file's mtime (and atime) to `epoch_ms`.
inline void SetMtimeMs(const std::string& path, int64_t epoch_ms) {
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = epoch_ms / 1000;
  ts[0].tv_nsec = ts[1].tv_nsec = (epoch_ms % 1000) * 1000000;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0) << path;
}

// The parameters of one real-shaped assistant line (docs: claude-code-transcripts.md section 4).
struct Msg {
  std::string id = "msg_013C6yBZTawT46T1EpQpWtGN";
  std::optional<std::string> request_id = std::string("req_011CTaJz5ss7W9GKaVmBxwTV");
  std::string model = "claude-sonnet-4-5-20250929";
  std::string session = "ed8cd0a3-962b-4a71-aebd-73edfe16cdd3";
  std::string cwd = "/Users/USER/src/webapp";
  std::string timestamp = "2025-09-28T06:17:23.678Z";
  uint64_t input = 4, output = 6, cache_creation = 0, cache_read = 0;
  std::optional<std::pair<uint64_t, uint64_t>> split;  // ephemeral 5m / 1h
  bool sidechain = false;
  bool api_error = false;
  std::string speed;                                       // "" = absent
  std::string inference_geo;                               // "" = absent
  uint64_t web_search = 0;                                 // > 0 adds server_tool_use
  std::string cost_usd;                                    // raw JSON number token; "" = absent
  std::vector<std::pair<std::string, std::string>> tools;  // tool_use blocks (id, name)
};

inline std::string Line(const Msg& m) {
  std::ostringstream o;
  o << R"({"parentUuid":"18b7c636-19c0-4199-8f42-ee2f5e8d22a2","isSidechain":)"
    << (m.sidechain ? "true" : "false") << R"(,"userType":"external","cwd":")" << m.cwd
    << R"(","sessionId":")" << m.session << R"(","version":"2.1.114","gitBranch":"main",)";
  if (m.api_error) o << R"("isApiErrorMessage":true,"error":"rate_limit","apiErrorStatus":429,)";
  if (!m.cost_usd.empty()) o << R"("costUSD":)" << m.cost_usd << ",";
  o << R"("message":{"id":")" << m.id << R"(","type":"message","role":"assistant","model":")"
    << m.model << R"(","content":[)";
  if (m.tools.empty()) {
    o << R"({"type":"text","text":"Let me look at the test."})";
  } else {
    for (size_t i = 0; i < m.tools.size(); ++i) {
      if (i) o << ",";
      o << R"({"type":"tool_use","id":")" << m.tools[i].first << R"(","name":")"
        << m.tools[i].second << R"(","input":{"file_path":"/Users/USER/src/webapp/a.ts"}})";
    }
  }
  o << R"(],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":)" << m.input
    << R"(,"cache_creation_input_tokens":)" << m.cache_creation << R"(,"cache_read_input_tokens":)"
    << m.cache_read;
  if (m.split) {
    o << R"(,"cache_creation":{"ephemeral_5m_input_tokens":)" << m.split->first
      << R"(,"ephemeral_1h_input_tokens":)" << m.split->second << "}";
  }
  o << R"(,"output_tokens":)" << m.output;
  if (m.web_search > 0) {
    o << R"(,"server_tool_use":{"web_search_requests":)" << m.web_search
      << R"(,"web_fetch_requests":0})";
  }
  o << R"(,"service_tier":"standard")";
  if (!m.speed.empty()) o << R"(,"speed":")" << m.speed << R"(")";
  if (!m.inference_geo.empty()) o << R"(,"inference_geo":")" << m.inference_geo << R"(")";
  o << "}}";
  if (m.request_id) o << R"(,"requestId":")" << *m.request_id << R"(")";
  o << R"(,"type":"assistant","uuid":"73820097-c377-4b90-997f-c6bbc6575f80","timestamp":")"
    << m.timestamp << R"("})";
  return o.str();
}

// An owned, comparable copy of a ParsedLine (its views die with the next Parse()).
struct Owned {
  LineKind kind = LineKind::kOther;
  SkipReason reason = SkipReason::kInvalidJson;
  std::string id, request_id;
  bool has_request_id = false;
  std::string model, session, cwd;
  int64_t timestamp_ms = 0;
  bool sidechain = false, api_error = false, fast = false, has_cost = false;
  bool us = false, progress_copy = false;
  Pico cost = 0;
  uint64_t web_search = 0;
  TokenCounts tokens;
  std::vector<std::pair<std::string, std::string>> tools;
  std::string uuid;
  bool operator==(const Owned&) const = default;
};

inline Owned Own(const ParsedLine& p) {
  Owned o;
  o.kind = p.kind;
  o.reason = p.skip_reason;
  o.id = std::string(p.message_id);
  o.request_id = std::string(p.request_id);
  o.has_request_id = p.has_request_id;
  o.model = std::string(p.model);
  o.session = std::string(p.session_id);
  o.cwd = std::string(p.cwd);
  o.timestamp_ms = p.timestamp_ms;
  o.sidechain = p.is_sidechain;
  o.api_error = p.is_api_error;
  o.fast = p.fast;
  o.us = p.us_inference;
  o.progress_copy = p.progress_copy;
  o.uuid = std::string(p.uuid);
  o.has_cost = p.has_cost_usd;
  o.cost = p.cost_usd;
  o.web_search = p.web_search_requests;
  o.tokens = p.tokens;
  for (const ToolUse& t : p.tool_uses) o.tools.emplace_back(std::string(t.id), std::string(t.name));
  return o;
}

inline const char* KindName(LineKind k) {
  switch (k) {
    case LineKind::kOther:
      return "other";
    case LineKind::kUsage:
      return "usage";
    case LineKind::kSkipped:
      return "skipped";
    case LineKind::kPrompt:
      return "prompt";
  }
  return "?";
}

inline std::ostream& operator<<(std::ostream& os, const Owned& o) {
  os << "{kind=" << KindName(o.kind);
  if (o.kind == LineKind::kSkipped) os << " reason=" << SkipReasonName(o.reason);
  os << " id=" << o.id << " req=" << (o.has_request_id ? o.request_id : "<none>")
     << " model=" << o.model << " session=" << o.session << " cwd=" << o.cwd
     << " ts=" << o.timestamp_ms << " side=" << o.sidechain << " err=" << o.api_error
     << " fast=" << o.fast << " us=" << o.us << " copy=" << o.progress_copy << " uuid=" << o.uuid
     << " cost=" << (o.has_cost ? std::to_string(o.cost) : "-") << " web=" << o.web_search
     << " tok=" << o.tokens.input << "/" << o.tokens.output << "/" << o.tokens.cache_write_5m << "/"
     << o.tokens.cache_write_1h << "/" << o.tokens.cache_read << " tools=" << o.tools.size() << "}";
  return os;
}

// One line through Parse(); returns an owned copy.
inline Owned ParseOwned(LineParser& parser, std::string_view line) {
  ParsedLine out;
  parser.Parse(line, &out);
  return Own(out);
}

// Parses `line` and adds it to `ledger` when it is a usage record. Returns the line's kind.
inline LineKind AddLine(Ledger* ledger, LineParser& parser, const std::string& line) {
  ParsedLine out;
  parser.Parse(line, &out);
  if (out.kind == LineKind::kUsage) ledger->Add(out);
  return out.kind;
}

inline std::string Printable(std::string s) {
  std::replace(s.begin(), s.end(), '\0', '|');
  return s;
}

// A canonical, order-free text of everything a Ledger holds (strings resolved, entries sorted).
inline std::string DumpLedger(const Ledger& l) {
  const StringPool& s = l.strings();
  std::vector<std::string> rows;
  for (uint32_t i = 0; i < l.requests().size(); ++i) {
    const RequestEntry& e = l.requests()[i];
    std::ostringstream o;
    o << "R " << Printable(std::string(l.request_key(i))) << " ts=" << e.timestamp_ms
      << " model=" << s.Get(e.model) << " cwd=" << s.Get(e.cwd) << " session=" << s.Get(e.session)
      << " tok=" << e.tokens.input << "/" << e.tokens.output << "/" << e.tokens.cache_write_5m
      << "/" << e.tokens.cache_write_1h << "/" << e.tokens.cache_read
      << " web=" << e.web_search_requests
      << " cost=" << (e.has_cost_usd ? std::to_string(e.cost_usd) : "-") << " fast=" << e.fast
      << " us=" << e.us_inference << " side=" << e.sidechain;
    if (l.spans_enabled()) o << " newest=" << l.request_newest_ms(i);
    rows.push_back(o.str());
  }
  for (const auto& [sid, sp] : l.session_spans()) {
    rows.push_back("W " + s.Get(sid) + " first=" + std::to_string(sp.first_ms) +
                   " last=" + std::to_string(sp.last_ms) +
                   " last_request=" + std::to_string(sp.last_request_ms) +
                   " has_request=" + std::to_string(sp.has_request));
  }
  for (const auto& [sid, se] : l.sessions()) {
    rows.push_back("S " + s.Get(sid) + " first=" + std::to_string(se.first_ms) +
                   " cwd=" + s.Get(se.cwd));
  }
  for (const auto& [id, t] : l.tool_uses()) {
    rows.push_back("T " + std::string(id) + " ts=" + std::to_string(t.timestamp_ms) +
                   " name=" + s.Get(t.name));
  }
  for (const auto& [key, ts] : l.api_errors()) {
    rows.push_back("E " + Printable(key) + " ts=" + std::to_string(ts));
  }
  for (const auto& [uuid, p] : l.prompts()) {
    rows.push_back("P " + Printable(uuid) + " ts=" + std::to_string(p.timestamp_ms) +
                   " session=" + s.Get(p.session) + " cwd=" + s.Get(p.cwd));
  }
  std::sort(rows.begin(), rows.end());
  std::string out;
  for (const auto& r : rows) out += r + "\n";
  return out;
}

}  // namespace testing_util
}  // namespace ccmon
