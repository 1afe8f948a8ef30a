// Ledger: the deduplicated requests of one device (docs/accounting.md, "Dedup" and "Attribution").
//
// Feed it every kUsage line; it keeps one entry per dedup key (message.id + requestId, or
// message.id alone) and folds every further copy into it with MergeCopy (ledger/copy_merge.h: token
// fields are the maximum over all copies seen, attribution comes from the preferred copy). Every
// rule is commutative, so the result does not depend on file order or threads: ledgers built from
// disjoint file sets can be merged. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/index_iterator.h"
#include "base/string_pool.h"
#include "base/string_set.h"
#include "ledger/copy_merge.h"
#include "ledger/id_codec.h"
#include "transcript/usage.h"

namespace ccmon {

struct SessionEntry {
  int64_t first_ms = 0;  // earliest counted line
  uint32_t cwd = 0;      // cwd of that line
};

struct ToolUseEntry {
  int64_t timestamp_ms = 0;
  uint32_t name = 0;
};

// The span of one session's lines, for the agent's session rules (docs/accounting.md A41): every
// request line (not <synthetic>) and prompt line naming the session, copies included. Kept only
// by a Ledger built with LedgerOptions::spans.
struct SessionSpan {
  int64_t first_ms = 0, last_ms = 0;    // earliest and latest line
  int64_t last_request_ms = INT64_MIN;  // latest request line; INT64_MIN: prompts only
  bool has_request = false;
  bool operator==(const SessionSpan&) const = default;
};

struct LedgerOptions {
  // Also keep what the agent's first start needs beyond replay's figures (its bulk path,
  // docs/agent-design.md "Bulk first start"): each request's newest copy's time and each
  // session's span. 8 bytes per request, ~40 per session.
  bool spans = false;
};

// A prompt a person typed (docs/accounting.md A38), once per line uuid: its earliest copy.
struct PromptEntry {
  int64_t timestamp_ms = 0;
  uint32_t cwd = 0;      // cwd of that copy (its project)
  uint32_t session = 0;  // sessionId of that copy (reports only)
  bool operator==(const PromptEntry&) const = default;
};

// Transparent hashing so that maps keyed by std::string can be probed with a string_view.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class Ledger {
 public:
  Ledger() = default;
  explicit Ledger(const LedgerOptions& options) : spans_enabled_(options.spans) {}
  bool spans_enabled() const { return spans_enabled_; }

  // What a line changed, for incremental consumers (the agent turns it into counter deltas).
  struct Change {
    bool counted = false;  // the line is a request (not <synthetic>)
    bool new_request = false;
    uint32_t index = 0;      // into requests()
    RequestEntry before;     // the entry before this line (valid if !new_request)
    CopyMergeEffect effect;  // what this copy changed in the entry (all false if new_request)
  };

  // Precondition: line.kind == LineKind::kUsage.
  Change Add(const ParsedLine& line);
  // Precondition: line.kind == LineKind::kPrompt. Counts the prompt once per uuid (A38): the
  // earliest copy (then the smallest sessionId, then cwd) places it. True if the uuid was new.
  bool AddPrompt(const ParsedLine& line);
  // Moves every entry of `other` in (same rules as Add).
  void Merge(const Ledger& other);

  // The distinct requests, by index; entries are built on access (they are stored packed).
  class Requests {
   public:
    explicit Requests(const Ledger* l) : l_(l) {}
    size_t size() const { return l_->packed_.size(); }
    bool empty() const { return size() == 0; }
    RequestEntry operator[](size_t i) const { return l_->Unpack(uint32_t(i)); }
    // Throws std::out_of_range (for tests).
    RequestEntry at(size_t i) const;
    IndexIterator<Requests> begin() const { return {this, 0}; }
    IndexIterator<Requests> end() const { return {this, size()}; }

   private:
    const Ledger* l_;
  };
  Requests requests() const { return Requests(this); }
  std::string_view request_key(uint32_t index) const { return keys_.Get(index); }
  int64_t request_timestamp_ms(uint32_t index) const {
    return packed_[index].ts_flags >> kFlagBits;
  }
  // With LedgerOptions::spans: the latest timestamp among the request's copies (its entry's is
  // the preferred copy's, A18).
  int64_t request_newest_ms(uint32_t index) const { return newest_ms_[index]; }
  // With LedgerOptions::spans: sessionId (a string id) -> span of its lines.
  const std::unordered_map<uint32_t, SessionSpan>& session_spans() const { return spans_; }
  const StringPool& strings() const { return strings_; }
  // The stored keys of tool_uses()[i] (the id as AppendEncodedId wrote it) and of prompts()[i]
  // (AppendPromptKey's), without decoding.
  std::string_view tool_key(uint32_t index) const { return tool_ids_.Get(index); }
  std::string_view prompt_key(uint32_t index) const { return prompt_keys_.Get(index); }
  const std::unordered_map<uint32_t, SessionEntry>& sessions() const { return sessions_; }
  // Distinct tool_use ids -> entry.
  class ToolUses {
   public:
    explicit ToolUses(const Ledger* l) : l_(l) {}
    size_t size() const { return l_->tool_ids_.size(); }
    bool empty() const { return size() == 0; }
    // The entries alone, in id order (no id decoding).
    const std::deque<ToolUseEntry>& entries() const { return l_->tool_entries_; }
    // Precondition: present (throws std::out_of_range otherwise; for tests).
    const ToolUseEntry& at(std::string_view id) const;
    // (id, entry); the id is decoded on access: callers that need only entries use entries().
    std::pair<std::string, const ToolUseEntry&> operator[](size_t i) const {
      return {l_->tool_id(uint32_t(i)), l_->tool_entries_[i]};
    }
    IndexIterator<ToolUses> begin() const { return {this, 0}; }
    IndexIterator<ToolUses> end() const { return {this, size()}; }

   private:
    const Ledger* l_;
  };
  ToolUses tool_uses() const { return ToolUses(this); }
  // Distinct prompts (by uuid) -> entry.
  class Prompts {
   public:
    explicit Prompts(const Ledger* l) : l_(l) {}
    size_t size() const { return l_->prompt_keys_.size(); }
    bool empty() const { return size() == 0; }
    // The entries alone, in key order (no uuid decoding).
    const std::deque<PromptEntry>& entries() const { return l_->prompt_entries_; }
    // (uuid, entry); the uuid is decoded on access.
    std::pair<std::string, const PromptEntry&> operator[](size_t i) const {
      return {DecodePromptKey(l_->prompt_keys_.Get(uint32_t(i))), l_->prompt_entries_[i]};
    }
    IndexIterator<Prompts> begin() const { return {this, 0}; }
    IndexIterator<Prompts> end() const { return {this, size()}; }

   private:
    const Ledger* l_;
  };
  Prompts prompts() const { return Prompts(this); }
  // API-error lines by dedup key -> earliest timestamp.
  const std::unordered_map<std::string, int64_t, StringViewHash, std::equal_to<>>& api_errors()
      const {
    return api_errors_;
  }

  // The dedup key: message.id and requestId (or kAbsentTag without one), each encoded by
  // AppendEncodedId (core/id_codec.h). Keys compare equal exactly when the pairs are equal.
  static std::string DedupKey(std::string_view message_id, bool has_request_id,
                              std::string_view request_id);
  static void AppendDedupKey(std::string_view message_id, bool has_request_id,
                             std::string_view request_id, std::string* out);
  // The key of a prompt's uuid (docs/store-format.md, "Prompts"): a canonical lowercase UUID
  // (8-4-4-4-12 hex digits) packs into a tag byte and 16 bytes; any other string is kept as is
  // after another tag. Injective; DecodePromptKey gives the uuid back.
  static void AppendPromptKey(std::string_view uuid, std::string* out);
  static std::string DecodePromptKey(std::string_view key);

 private:
  // 40 bytes per distinct request (replay keeps them all): flags share the timestamp's word,
  // (model, cwd, session) is one index into contexts_ (there are about as many as sessions), and
  // the rare web-search counts live in web_searches_.
  struct PackedRequest {
    int64_t ts_flags = 0;  // timestamp_ms << kFlagBits | flags
    Pico cost_usd = 0;
    StoredTokens tokens;
    uint32_t context = 0;
  };
  static_assert(sizeof(PackedRequest) == 40, "kept per request: keep it compact");
  struct Context {
    uint32_t model = 0;
    uint32_t cwd = 0;
    uint32_t session = 0;
    bool operator==(const Context&) const = default;
  };
  struct ContextHash {
    size_t operator()(const Context& c) const {
      return std::hash<uint64_t>{}((uint64_t(c.model) << 32 | c.cwd) * 0x9E3779B97F4A7C15ull ^
                                   c.session);
    }
  };
  // Timestamps have four-digit years (the parser rejects others): under 2^48 ms either side of
  // 1970, so 5 flag bits still leave the sign bit alone (docs/store-format.md).
  static constexpr int kFlagBits = 5;
  enum Flag : int64_t {
    kSidechain = 1,
    kFast = 2,
    kHasCostUsd = 4,
    kHasWebSearches = 8,
    kUsInference = 16
  };

  uint32_t InternContext(const Context& c);
  RequestEntry Unpack(uint32_t index) const;
  void Store(uint32_t index, const RequestEntry& e);  // index == size appends
  std::string tool_id(uint32_t index) const;
  uint32_t InternModel(std::string_view raw);
  // `newest_ms`: the latest copy's time among those `e` stands for (spans only).
  void MergeRequest(std::string_view key, const RequestEntry& e, int64_t newest_ms, Change* change);
  void MergeSpan(uint32_t session, const SessionSpan& span);
  void MergeSession(uint32_t session, int64_t ts, uint32_t cwd);
  void MergeToolUse(std::string_view id, int64_t ts, uint32_t name);
  void MergeToolUseEncoded(std::string_view encoded_id, int64_t ts, uint32_t name);
  void MergeApiError(std::string_view key, int64_t ts);
  void MergePrompt(std::string_view key, const PromptEntry& p);

  StringPool strings_;
  std::unordered_map<std::string, uint32_t, StringViewHash, std::equal_to<>>
      raw_model_ids_;                 // raw model -> canonical id
  StringSet keys_;                    // dedup keys; index i <-> packed_[i]
  std::deque<PackedRequest> packed_;  // a deque: no doubling copy while it grows
  std::vector<Context> contexts_;
  std::unordered_map<Context, uint32_t, ContextHash> context_index_;
  std::unordered_map<uint32_t, uint64_t> web_searches_;  // request index -> count, when not 0
  std::unordered_map<uint32_t, SessionEntry> sessions_;
  StringSet tool_ids_;  // index i <-> tool_entries_[i]
  std::deque<ToolUseEntry> tool_entries_;
  std::string key_scratch_;   // reused for dedup keys
  std::string tool_scratch_;  // reused for encoded tool_use ids
  StringSet prompt_keys_;     // index i <-> prompt_entries_[i]
  std::deque<PromptEntry> prompt_entries_;
  std::unordered_map<std::string, int64_t, StringViewHash, std::equal_to<>> api_errors_;
  // LedgerOptions::spans.
  bool spans_enabled_ = false;
  std::deque<int64_t> newest_ms_;  // index i <-> packed_[i]
  std::unordered_map<uint32_t, SessionSpan> spans_;
};

}  // namespace ccmon
