// Accounting: a Ledger priced and labelled for output (docs/accounting.md, "Attribution").
//
// Built once from a finished Ledger (replay) and consumed by the snapshot, history and report
// writers, so that a time window (--since/--until, A36) and the label caps (A31) are applied in
// one place for every output. Requests are sorted by (timestamp, dedup key), so every output is
// deterministic.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
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

// The instants whose usage a run counts: [since_ms, until_ms), unbounded by default. Replay's
// --since/--until (inclusive local days) become the start of the first day and the start of the
// day after the last.
struct TimeWindow {
  int64_t since_ms = std::numeric_limits<int64_t>::min();
  int64_t until_ms = std::numeric_limits<int64_t>::max();
  bool Contains(int64_t timestamp_ms) const {
    return timestamp_ms >= since_ms && timestamp_ms < until_ms;
  }
};

// The per-device caps on label values that come from transcripts (A31): beyond each, values
// become "other" (their figures still count there, so totals stay exact). The defaults are the
// tools' (README).
struct LabelOptions {
  ProjectLabelMode project_mode = ProjectLabelMode::kBasename;
  // Distinct project labels; ranked by first use (session starts and requests by time, then
  // prompts by time).
  size_t max_projects = 100;
  // Distinct model labels (canonical ids), ranked by their first request. A model beyond the cap
  // is still priced by its own id; only its label is "other".
  size_t max_models = 50;
  // Distinct tool labels, ranked by their first tool call.
  size_t max_tools = 200;
};

struct AccountingOptions {
  LabelOptions labels;
  // Only what is attributed to an instant in the window counts, and only that ranks labels.
  TimeWindow window;
};

// Caps the distinct values of one label (A31): values are admitted in the order they are asked
// for; the first `max_values` distinct ones are kept, later ones become "other". A key (a cwd, a
// model id, a tool name) is turned into its value by `value_of` (the key itself when empty) once
// and always gets the same label. Callers ask in ranking order (replay: by first use within the
// window; the agent: as lines arrive). Not thread-safe. Movable, not copyable (labels point into
// it).
class CappedLabeler {
 public:
  using ValueOf = std::function<std::string(std::string_view key)>;
  explicit CappedLabeler(size_t max_values, ValueOf value_of = nullptr)
      : max_values_(max_values), value_of_(std::move(value_of)) {}
  CappedLabeler(const CappedLabeler&) = delete;
  CappedLabeler& operator=(const CappedLabeler&) = delete;
  CappedLabeler(CappedLabeler&&) = default;
  CappedLabeler& operator=(CappedLabeler&&) = default;
  // The label of `key`: its value, or "other". The reference stays valid while the labeler does.
  const std::string& Label(std::string_view key);
  // Distinct keys whose value was refused (labelled "other" beyond the cap).
  size_t refused_keys() const { return refused_keys_; }
  // Admits `value` as kept (up to the cap): the agent restores the values an earlier run admitted,
  // so that labels stay stable across restarts. Call before the first Label(). False when the cap
  // is full.
  bool Admit(std::string value);
  size_t kept() const { return kept_.size(); }

 private:
  size_t max_values_;
  ValueOf value_of_;
  std::unordered_map<std::string, const std::string*> by_key_;  // into kept_, or Other()
  std::unordered_set<std::string> kept_;  // nodes: their addresses survive rehashing and moves
  size_t refused_keys_ = 0;
  static const std::string& Other();
};

// Project labels (A30, A31): the cwd's label in `project_mode`, at most `max_projects` of them.
class ProjectLabeler : public CappedLabeler {
 public:
  explicit ProjectLabeler(const LabelOptions& options)
      : CappedLabeler(options.max_projects, [mode = options.project_mode](std::string_view cwd) {
          return ProjectLabel(cwd, mode);
        }) {}
};

struct PricedRequest {
  int64_t timestamp_ms = 0;
  uint32_t model = 0;    // label id (canonical model, after the cap)
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
  uint32_t tool = 0;  // label id (after the cap)
};

// A prompt a person typed (docs/accounting.md A38).
struct PromptEvent {
  int64_t timestamp_ms = 0;
  uint32_t project = 0;  // label id (after mode and cap)
  uint32_t session = 0;  // label id (sessionId; reports only, never a metric label)
};

class Accounting {
 public:
  // Everything the ledger holds that is attributed to an instant in `options.window` (A36):
  // requests at their preferred copy's timestamp (A18), sessions at their earliest line (A32),
  // tool calls at their earliest line (A33), prompts at their earliest copy (A38), API errors
  // at their earliest line (A15). Labels are capped (A31) and ranked over that alone.
  // `warn` is called once per model without a price among those requests, by its canonical id,
  // in the order of first use (may be empty). `ledger` and `prices` must outlive the result:
  // requests are priced and labelled when read, so that the accounting costs a few bytes per
  // request on top of the ledger.
  static Accounting Build(const Ledger& ledger, const PriceTable& prices,
                          const AccountingOptions& options,
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

  // One ledger string can be a cwd, a session, a model and a tool name at once: each use has its
  // own field.
  struct PerString {                    // by ledger string id
    uint32_t label = UINT32_MAX;        // label id of the string itself (cwd, session)
    uint32_t project = UINT32_MAX;      // cwd strings: project label id
    uint32_t model = UINT32_MAX;        // model strings: model label id (after the cap)
    uint32_t tool = UINT32_MAX;         // tool names: tool label id (after the cap)
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
