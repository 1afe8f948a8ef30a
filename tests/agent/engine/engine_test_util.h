// Test helpers of the agent engine's tests: a generated history with every kind of copy, the
// records "store" as a map, and replay's text for the same lines (the oracle).
#pragma once

#include <time.h>

#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "agent/engine/live_accounting.h"
#include "exposition/text_format.h"
#include "ledger/ledger.h"
#include "metrics/accounting.h"
#include "metrics/metrics.h"
#include "transcript/line_parser.h"

namespace ccmon::agent::testing {

using json = nlohmann::json;

// The store, as a map: what TakeChanges hands back is "committed" into it.
class MapRecords : public RecordReader {
 public:
  Status Read(std::string_view key, std::string* value) override {
    ++reads;
    auto it = map.find(std::string(key));
    if (it == map.end()) return Status::NotFound("absent");
    *value = it->second;
    return Status::Ok();
  }
  Status Scan(std::string_view prefix,
              const std::function<Status(std::string_view, std::string_view)>& f) override {
    for (auto it = map.lower_bound(std::string(prefix));
         it != map.end() && it->first.starts_with(prefix); ++it) {
      if (Status s = f(it->first, it->second); !s.ok()) return s;
    }
    return Status::Ok();
  }
  void Commit(LiveAccounting* a) {
    std::vector<std::pair<std::string, std::optional<std::string>>> changes;
    a->TakeChanges(&changes);
    for (auto& [k, v] : changes) {
      if (v)
        map[k] = *v;
      else
        map.erase(k);
    }
    a->TrimCache();  // written: clean records may leave the cache
  }
  std::map<std::string, std::string> map;
  uint64_t reads = 0;
};

inline std::string Ts(int64_t ms) {
  const time_t s = ms / 1000;
  struct tm tm;
  gmtime_r(&s, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  snprintf(out, sizeof out, "%s.%03dZ", buf, int(ms % 1000));
  return out;
}

inline json Assistant(const std::string& session, const std::string& cwd, int64_t ts,
                      const std::string& msg_id, const std::string& model, uint64_t out_tokens,
                      uint64_t cache_read, bool sidechain, const std::vector<std::string>& tools,
                      uint64_t web_searches) {
  json content = json::array();
  for (const auto& t : tools)
    content.push_back({{"type", "tool_use"},
                       {"id", t},
                       {"name", "Tool" + t.substr(t.size() - 1)},
                       {"input", json::object()}});
  if (content.empty()) content.push_back({{"type", "text"}, {"text", "ok"}});
  json usage = {{"input_tokens", 12},
                {"output_tokens", out_tokens},
                {"cache_creation_input_tokens", 300},
                {"cache_read_input_tokens", cache_read}};
  if (web_searches) usage["server_tool_use"] = {{"web_search_requests", web_searches}};
  return {{"type", "assistant"},
          {"sessionId", session},
          {"cwd", cwd},
          {"timestamp", Ts(ts)},
          {"requestId", "req_" + msg_id},
          {"isSidechain", sidechain},
          {"message",
           {{"id", msg_id},
            {"model", model},
            {"role", "assistant"},
            {"content", content},
            {"usage", usage}}}};
}

// A history of several files: sessions with streamed copies of each response (output tokens
// rising), resumed sessions whose files start with copies of earlier requests, subagent files and
// their agent_progress copies in the parent, prompts, tool calls, API errors, web searches and an
// unpriced model. Copies never move a request's model or project (what ccgen's corpora and the
// real transcripts measured show).
inline std::vector<std::vector<std::string>> MakeHistory(uint32_t seed, int sessions) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return int(rng() % uint32_t(n)); };
  const std::vector<std::string> cwds = {"/w/alpha", "/w/beta", "/w/gamma", "/home/u/delta"};
  const std::vector<std::string> models = {"claude-sonnet-4-5-20250929", "claude-opus-4-6",
                                           "claude-haiku-4-5-20251001", "made-up-model-1"};
  std::vector<std::vector<std::string>> files;
  int64_t ts = 1767225600000;  // 2026-01-01
  int msg = 0, tool = 0, uuid = 0;
  std::vector<std::pair<json, std::string>> earlier;  // final copies, by session
  for (int s = 0; s < sessions; ++s) {
    const std::string session = "sess-" + std::to_string(seed) + "-" + std::to_string(s);
    std::string cwd = cwds[pick(int(cwds.size()))];
    std::vector<std::string> file, sub;
    // A resumed session starts with copies of an earlier session's requests, under its own id,
    // in the same project (a session is resumed where it ran).
    if (!earlier.empty() && pick(3) == 0) {
      const std::string resumed = earlier[size_t(pick(int(earlier.size())))].second;
      for (const auto& [line, from] : earlier) {
        if (from != resumed) continue;
        json copy = line;
        copy["sessionId"] = session;
        cwd = copy["cwd"];
        file.push_back(copy.dump());
      }
    }
    const int requests = 2 + pick(6);
    for (int r = 0; r < requests; ++r) {
      ts += 1000 + pick(90000);
      char uid[40];
      snprintf(uid, sizeof uid, "%08x-0000-4000-8000-%012x", seed, ++uuid);
      file.push_back(json{{"type", "user"},
                          {"sessionId", session},
                          {"cwd", cwd},
                          {"timestamp", Ts(ts)},
                          {"uuid", uid},
                          {"isSidechain", false},
                          {"message", {{"role", "user"}, {"content", "go on"}}}}
                         .dump());
      const std::string id = "msg_" + std::to_string(seed) + "_" + std::to_string(++msg);
      const std::string& model = models[pick(int(models.size()))];
      std::vector<std::string> tools;
      if (pick(2) == 0)
        tools.push_back("toolu_" + std::to_string(seed) + "_" + std::to_string(++tool));
      const uint64_t web = pick(5) == 0 ? uint64_t(1 + pick(3)) : 0;
      const uint64_t cache_read = uint64_t(pick(4) == 0 ? 250000 : 20000);  // some over 200k
      const int copies = 1 + pick(3);
      json last;
      for (int c = 0; c < copies; ++c) {  // streamed: one line per block, output rising
        last = Assistant(session, cwd, ts + c * 40, id, model, 5 + uint64_t(c) * 100, cache_read,
                         false, c == copies - 1 ? tools : std::vector<std::string>{}, web);
        file.push_back(last.dump());
      }
      earlier.emplace_back(last, session);
      if (pick(4) == 0) {  // a subagent request, with its agent_progress copy in the parent
        const std::string sid = "msg_sub_" + std::to_string(seed) + "_" + std::to_string(++msg);
        json a = Assistant(session, cwd, ts + 500, sid, models[2], 77, 1000, true, {}, 0);
        sub.push_back(a.dump());
        json progress = {{"type", "progress"},
                         {"sessionId", session},
                         {"cwd", cwd},
                         {"timestamp", Ts(ts + 501)},
                         {"isSidechain", false},
                         {"uuid", "pu" + sid},
                         {"data",
                          {{"type", "agent_progress"},
                           {"message",
                            {{"type", "assistant"},
                             {"message", a["message"]},
                             {"requestId", a["requestId"]},
                             {"timestamp", a["timestamp"]},
                             {"uuid", "u" + sid}}}}}};
        file.push_back(progress.dump());
      }
      if (pick(10) == 0) {  // an API error (synthetic)
        json e = Assistant(session, cwd, ts + 900, "msg_err_" + std::to_string(++msg),
                           "<synthetic>", 0, 0, false, {}, 0);
        e["isApiErrorMessage"] = true;
        file.push_back(e.dump());
      }
    }
    files.push_back(std::move(file));
    if (!sub.empty()) files.push_back(std::move(sub));
  }
  return files;
}

inline std::string ReplayText(const std::vector<std::vector<std::string>>& files,
                              const std::string& device) {
  Ledger ledger;
  LineParser parser;
  ParsedLine line;
  for (const auto& f : files) {
    for (const auto& l : f) {
      parser.Parse(l, &line);
      if (line.kind == LineKind::kUsage) ledger.Add(line);
      if (line.kind == LineKind::kPrompt) ledger.AddPrompt(line);
    }
  }
  Accounting a = Accounting::Build(ledger, PriceTable::Embedded(), AccountingOptions{}, {});
  return SnapshotText(CollectEvents(a, device));
}

}  // namespace ccmon::agent::testing
