// Ledger: the deduplicated requests of one device (docs/accounting.md, "Dedup" and "Attribution").
//
// Feed it every kUsage line; it keeps one entry per dedup key (message.id + requestId, or
// message.id alone) whose token fields are the maximum over all copies seen. Attribution
// (timestamp, model, project, session) comes from the preferred copy: a non-sidechain copy over a
// sidechain one, then the earliest timestamp, then the smallest sessionId/model/cwd. Every rule is
// commutative, so the result does not depend on file order or threads: ledgers built from disjoint
// file sets can be merged. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/string_pool.h"
#include "core/string_set.h"
#include "core/usage.h"

namespace ccmon {

// 56 bytes: replay keeps one per distinct request.
struct RequestEntry {
  int64_t timestamp_ms = 0;
  Pico cost_usd = 0;     // legacy costUSD (valid when has_cost_usd)
  StoredTokens tokens;
  uint32_t model = 0;    // canonical model id, in Ledger::strings()
  uint32_t cwd = 0;      // raw cwd
  uint32_t session = 0;  // sessionId
  uint32_t web_search_requests = 0;
  bool has_cost_usd = false;
  bool fast = false;
  bool sidechain = false;
};

static_assert(sizeof(RequestEntry) == 56, "RequestEntry is kept per request: keep it compact");

struct SessionEntry {
  int64_t first_ms = 0;  // earliest counted line
  uint32_t cwd = 0;      // cwd of that line
};

struct ToolUseEntry {
  int64_t timestamp_ms = 0;
  uint32_t name = 0;
};

// Transparent hashing so that maps keyed by std::string can be probed with a string_view.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class Ledger {
 public:
  // What a line changed, for incremental consumers (the agent turns it into counter deltas).
  struct Change {
    bool counted = false;      // the line is a request (not <synthetic>)
    bool new_request = false;
    uint32_t index = 0;        // into requests()
    RequestEntry before;       // the entry before this line (valid if !new_request)
  };

  // Precondition: line.kind == LineKind::kUsage.
  Change Add(const ParsedLine& line);
  // Moves every entry of `other` in (same rules as Add).
  void Merge(const Ledger& other);

  const std::deque<RequestEntry>& requests() const { return requests_; }
  std::string_view request_key(uint32_t index) const { return keys_.Get(index); }
  const StringPool& strings() const { return strings_; }
  const std::unordered_map<uint32_t, SessionEntry>& sessions() const { return sessions_; }
  // Distinct tool_use ids -> entry.
  class ToolUses {
   public:
    explicit ToolUses(const Ledger* l) : l_(l) {}
    size_t size() const { return l_->tool_ids_.size(); }
    bool empty() const { return size() == 0; }
    // Precondition: present (throws std::out_of_range otherwise; for tests).
    const ToolUseEntry& at(std::string_view id) const;
    struct Iterator {
      const Ledger* l;
      uint32_t i;
      std::pair<std::string_view, const ToolUseEntry&> operator*() const {
        return {l->tool_ids_.Get(i), l->tool_entries_[i]};
      }
      Iterator& operator++() {
        ++i;
        return *this;
      }
      bool operator!=(const Iterator& o) const { return i != o.i; }
    };
    Iterator begin() const { return {l_, 0}; }
    Iterator end() const { return {l_, uint32_t(size())}; }

   private:
    const Ledger* l_;
  };
  ToolUses tool_uses() const { return ToolUses(this); }
  // API-error lines by dedup key -> earliest timestamp.
  const std::unordered_map<std::string, int64_t, StringViewHash, std::equal_to<>>& api_errors()
      const {
    return api_errors_;
  }

  // The dedup key: 4-byte little-endian (len(message.id) | 0x80000000 if requestId present),
  // message.id, requestId.
  static std::string DedupKey(std::string_view message_id, bool has_request_id,
                              std::string_view request_id);
  static void AppendDedupKey(std::string_view message_id, bool has_request_id,
                             std::string_view request_id, std::string* out);

 private:
  uint32_t InternModel(std::string_view raw);
  // True if the copy (ts, sidechain, session, model, cwd) should own the attribution of `e`.
  bool Prefer(const RequestEntry& candidate, const RequestEntry& current) const;
  void MergeRequest(std::string_view key, const RequestEntry& e, Change* change);
  void MergeSession(uint32_t session, int64_t ts, uint32_t cwd);
  void MergeToolUse(std::string_view id, int64_t ts, uint32_t name);
  void MergeApiError(std::string_view key, int64_t ts);

  StringPool strings_;
  std::unordered_map<std::string, uint32_t, StringViewHash, std::equal_to<>>
      raw_model_ids_;  // raw model -> canonical id
  StringSet keys_;                    // dedup keys; index i <-> requests_[i]
  std::deque<RequestEntry> requests_;  // a deque: no doubling copy while it grows
  std::unordered_map<uint32_t, SessionEntry> sessions_;
  StringSet tool_ids_;                     // index i <-> tool_entries_[i]
  std::deque<ToolUseEntry> tool_entries_;
  std::string key_scratch_;  // reused for dedup keys
  std::unordered_map<std::string, int64_t, StringViewHash, std::equal_to<>> api_errors_;
};

}  // namespace ccmon
