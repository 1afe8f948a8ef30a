// Accounting: a Ledger priced and labelled for output (docs/accounting.md, "Attribution").
//
// Built once from a finished Ledger (replay) and consumed by the snapshot, history and report
// writers. Requests are sorted by (timestamp, dedup key), so every output is deterministic.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/index_iterator.h"
#include "base/string_pool.h"
#include "ledger/ledger.h"
#include "pricing/pricing.h"

namespace ccmon {

enum class ProjectLabelMode { kBasename, kPath, kHash, kNone };
bool ParseProjectLabelMode(std::string_view s, ProjectLabelMode* out);
// The project label of one cwd in a mode (before the per-device cap).
std::string ProjectLabel(std::string_view cwd, ProjectLabelMode mode);

struct LabelOptions {
  ProjectLabelMode project_mode = ProjectLabelMode::kBasename;
  // Distinct project labels per device; later ones (by first use: session starts and requests by
  // time, then prompts by time) become "other".
  size_t max_projects = 100;
};

// Assigns project labels with the per-device cap: the first `max_projects` distinct labels, in
// the order they are asked for, are kept; later ones become "other". Callers ask in time order
// (replay: by first use; the agent: as lines arrive). Not thread-safe.
class ProjectLabeler {
 public:
  explicit ProjectLabeler(const LabelOptions& options) : options_(options) {}
  // The label of `cwd`; the same cwd always gets the same label.
  const std::string& Label(std::string_view cwd);

 private:
  LabelOptions options_;
  std::unordered_map<std::string, std::string> by_cwd_;
  std::unordered_set<std::string> kept_;
  const std::string other_ = "other";
};

struct PricedRequest {
  int64_t timestamp_ms = 0;
  uint32_t model = 0;    // label id (canonical model)
  uint32_t project = 0;  // label id (after mode and cap)
  uint32_t session = 0;  // label id (sessionId; reports only, never a metric label)
  uint32_t cwd = 0;      // label id (raw cwd; reports only)
  TokenCounts tokens;
  uint64_t web_search_requests = 0;
  CostBreakdown cost;
  bool sidechain = false;
};

struct SessionStart {
  int64_t timestamp_ms = 0;
  uint32_t session = 0;  // label id
  uint32_t project = 0;  // label id
};

struct ToolCall {
  int64_t timestamp_ms = 0;
  uint32_t tool = 0;  // label id
};

// A prompt a person typed (docs/accounting.md A38).
struct PromptEvent {
  int64_t timestamp_ms = 0;
  uint32_t project = 0;  // label id (after mode and cap)
  uint32_t session = 0;  // label id (sessionId; reports only, never a metric label)
};

class Accounting {
 public:
  // `warn` is called once per unknown model (may be empty). `ledger` and `prices` must outlive
  // the result: requests are priced and labelled when read, so that the accounting costs a few
  // bytes per request on top of the ledger.
  static Accounting Build(const Ledger& ledger, const PriceTable& prices,
                          const LabelOptions& options,
                          const std::function<void(const std::string&)>& warn);

  // The requests in (timestamp, dedup key) order, as PricedRequest values computed on access.
  class Requests {
   public:
    explicit Requests(const Accounting* a) : a_(a) {}
    size_t size() const { return a_->order_.size(); }
    bool empty() const { return size() == 0; }
    PricedRequest operator[](size_t i) const { return a_->RequestAt(i); }
    IndexIterator<Requests> begin() const { return {this, 0}; }
    IndexIterator<Requests> end() const { return {this, size()}; }

   private:
    const Accounting* a_;
  };
  Requests requests() const { return Requests(this); }
  const std::vector<SessionStart>& sessions() const { return sessions_; }
  const std::vector<ToolCall>& tool_calls() const { return tool_calls_; }
  const std::vector<int64_t>& api_errors() const { return api_errors_; }  // timestamps, sorted
  // Prompts in (timestamp, session, project) order.
  const std::vector<PromptEvent>& prompts() const { return prompts_; }
  const std::string& label(uint32_t id) const { return labels_.Get(id); }

 private:
  PricedRequest RequestAt(size_t i) const;

  struct PerString {                    // by ledger string id
    uint32_t label = UINT32_MAX;        // label id of the string itself (model, cwd, session)
    uint32_t project = UINT32_MAX;      // cwd strings: project label id
    const ModelPrice* price = nullptr;  // model strings
  };
  StringPool labels_;
  const Ledger* ledger_ = nullptr;
  Pico web_search_cost_ = 0;
  std::vector<uint32_t> order_;  // ledger request indices in output order
  std::vector<PerString> by_ledger_id_;
  std::vector<SessionStart> sessions_;
  std::vector<ToolCall> tool_calls_;
  std::vector<int64_t> api_errors_;
  std::vector<PromptEvent> prompts_;
};

}  // namespace ccmon
