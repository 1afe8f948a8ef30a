// The copy-merge rule: how a new copy of a request changes its entry (docs/accounting.md A17, A18).
//
// One request (one dedup key, A16) may be seen many times: streamed block lines, resumed sessions
// copying lines into new files, subagent sidechains. Each copy becomes a RequestEntry, and
// MergeCopy folds copies together. The ledger (replay, and the agent's live ledger) calls it for
// every copy after the first; the agent calls it directly when it keeps entries of its own.
//
// The rule is a join: commutative, associative and idempotent. Any order or grouping of the same
// copies gives the same entry, which is what lets ledgers built from disjoint file sets (threads)
// be merged, and lets the agent rebuild an entry after a restart from whatever copies it reads.
//
// String fields (model, cwd, session) are ids in some string table. They are stored as ids, but
// A18 compares the strings themselves: MergeCopy takes a resolver from id to string. Both entries'
// ids must be in the resolver's table (the ledger's Merge remaps the other ledger's ids first).
// The resolver is called only when the sidechain flags and timestamps of the two copies tie.
// Pure functions: no state, thread-safe.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <string_view>
#include <tuple>

#include "base/money.h"
#include "base/string_pool.h"
#include "transcript/usage.h"

namespace ccmon {

// What the ledger knows about one request, as a value (Ledger::requests()[i]): the merge of its
// copies so far.
struct RequestEntry {
  int64_t timestamp_ms = 0;
  Pico cost_usd = 0;  // legacy costUSD when has_cost_usd; 0 otherwise (MergeCopy keeps it so)
  StoredTokens tokens;
  uint32_t model = 0;    // canonical model id (string table id)
  uint32_t cwd = 0;      // raw cwd
  uint32_t session = 0;  // sessionId
  uint64_t web_search_requests = 0;
  bool has_cost_usd = false;
  bool fast = false;
  bool us_inference = false;  // US-only inference (A39)
  bool sidechain = false;
  bool operator==(const RequestEntry&) const = default;
};

// What one merge changed, for incremental consumers (the agent decides from it which series
// deltas a copy makes, docs/agent-design.md). All false: the entry is unchanged.
struct CopyMergeEffect {
  bool tokens_rose = false;        // some token field rose (A17)
  bool web_searches_rose = false;  // web_search_requests rose
  bool cost_usd_changed = false;   // a costUSD appeared or rose (the cost becomes it, A25)
  bool became_fast = false;        // fast was false and is now true (A23)
  bool became_us = false;          // us_inference was false and is now true (A39)
  // The copy became the preferred one (A18): at least one of timestamp, sidechain, session, model
  // and cwd changed.
  bool attribution_moved = false;
  // model or cwd changed: the request's metric labels (model, project) may have moved.
  bool labels_moved = false;

  bool changed() const {
    return tokens_rose || web_searches_rose || cost_usd_changed || became_fast || became_us ||
           attribution_moved;
  }
  bool operator==(const CopyMergeEffect&) const = default;
};

struct CopyMergeResult {
  RequestEntry entry;
  CopyMergeEffect effect;
};

// Resolves a string id of a RequestEntry to its string.
template <typename F>
concept StringResolver = requires(const F& f, uint32_t id) {
  { f(id) } -> std::convertible_to<std::string_view>;
};

// A18: true if copy `a` is preferred over copy `b` for attribution: a non-sidechain copy over a
// sidechain one, then the earlier timestamp, then the smaller (sessionId, model, cwd) strings in
// that order (byte-wise). A strict total order on distinct attributions: false when `a` and `b`
// have the same attribution.
template <StringResolver Strings>
bool PreferredCopy(const RequestEntry& a, const RequestEntry& b, const Strings& strings) {
  if (a.sidechain != b.sidechain) return !a.sidechain;
  if (a.timestamp_ms != b.timestamp_ms) return a.timestamp_ms < b.timestamp_ms;
  const auto str = [&](uint32_t id) { return std::string_view(strings(id)); };
  // Equal ids are equal strings: skip the lookups for the common case of a copy in one session.
  if (a.session != b.session) return str(a.session) < str(b.session);
  if (a.model != b.model) return str(a.model) < str(b.model);
  if (a.cwd != b.cwd) return str(a.cwd) < str(b.cwd);
  return false;
}

// A17 + A18: the entry of `current` and `copy` together. Each token field and
// web_search_requests is the maximum of the two; cost_usd is the maximum over those that have one;
// fast if either is, US-only inference if either is; timestamp, sidechain, session, model and cwd
// come from the preferred copy. `effect` says what changed in `current`.
template <StringResolver Strings>
CopyMergeResult MergeCopy(const RequestEntry& current, const RequestEntry& copy,
                          const Strings& strings) {
  CopyMergeResult r{current, {}};
  RequestEntry& e = r.entry;
  CopyMergeEffect& effect = r.effect;
  if (PreferredCopy(copy, current, strings)) {
    e.timestamp_ms = copy.timestamp_ms;
    e.sidechain = copy.sidechain;
    e.session = copy.session;
    e.model = copy.model;
    e.cwd = copy.cwd;
    effect.attribution_moved = true;
    effect.labels_moved = copy.model != current.model || copy.cwd != current.cwd;
  }
  e.tokens.MaxWith(copy.tokens);
  effect.tokens_rose = !(e.tokens == current.tokens);
  if (copy.web_search_requests > current.web_search_requests) {
    e.web_search_requests = copy.web_search_requests;
    effect.web_searches_rose = true;
  }
  if (!current.has_cost_usd) e.cost_usd = 0;
  if (copy.has_cost_usd && (!current.has_cost_usd || copy.cost_usd > current.cost_usd)) {
    e.cost_usd = copy.cost_usd;
    e.has_cost_usd = true;
    effect.cost_usd_changed = true;
  }
  if (copy.fast && !current.fast) {
    e.fast = true;
    effect.became_fast = true;
  }
  if (copy.us_inference && !current.us_inference) {
    e.us_inference = true;
    effect.became_us = true;
  }
  return r;
}

// The same two, with ids of one StringPool.
inline bool PreferredCopy(const RequestEntry& a, const RequestEntry& b, const StringPool& strings) {
  return PreferredCopy(a, b,
                       [&strings](uint32_t id) -> const std::string& { return strings.Get(id); });
}
inline CopyMergeResult MergeCopy(const RequestEntry& current, const RequestEntry& copy,
                                 const StringPool& strings) {
  return MergeCopy(current, copy,
                   [&strings](uint32_t id) -> const std::string& { return strings.Get(id); });
}

}  // namespace ccmon
