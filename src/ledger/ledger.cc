#include "ledger/ledger.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "transcript/model_id.h"

namespace ccmon {

void Ledger::AppendDedupKey(std::string_view message_id, bool has_request_id,
                            std::string_view request_id, std::string* out) {
  // Encoded ids are self-delimiting, so the pair stays distinct whatever bytes the ids contain
  // (JSON can spell NUL as \u0000).
  AppendEncodedId(message_id, out);
  if (has_request_id) {
    AppendEncodedId(request_id, out);
  } else {
    out->push_back(char(kAbsentTag));
  }
}

std::string Ledger::DedupKey(std::string_view message_id, bool has_request_id,
                             std::string_view request_id) {
  std::string key;
  AppendDedupKey(message_id, has_request_id, request_id, &key);
  return key;
}

uint32_t Ledger::InternContext(const Context& c) {
  auto [it, inserted] = context_index_.try_emplace(c, uint32_t(contexts_.size()));
  if (inserted) contexts_.push_back(c);
  return it->second;
}

RequestEntry Ledger::Unpack(uint32_t index) const {
  const PackedRequest& p = packed_[index];
  const Context& c = contexts_[p.context];
  RequestEntry e;
  e.timestamp_ms = p.ts_flags >> kFlagBits;
  e.cost_usd = p.cost_usd;
  e.tokens = p.tokens;
  e.model = c.model;
  e.cwd = c.cwd;
  e.session = c.session;
  e.sidechain = p.ts_flags & kSidechain;
  e.fast = p.ts_flags & kFast;
  e.has_cost_usd = p.ts_flags & kHasCostUsd;
  e.us_inference = p.ts_flags & kUsInference;
  if (p.ts_flags & kHasWebSearches) e.web_search_requests = web_searches_.at(index);
  return e;
}

void Ledger::Store(uint32_t index, const RequestEntry& e) {
  int64_t flags = 0;
  if (e.sidechain) flags |= kSidechain;
  if (e.fast) flags |= kFast;
  if (e.has_cost_usd) flags |= kHasCostUsd;
  if (e.us_inference) flags |= kUsInference;
  if (e.web_search_requests != 0) flags |= kHasWebSearches;
  PackedRequest p;
  p.ts_flags = int64_t(uint64_t(e.timestamp_ms) << kFlagBits) | flags;
  p.cost_usd = e.has_cost_usd ? e.cost_usd : 0;
  p.tokens = e.tokens;
  p.context = InternContext(Context{e.model, e.cwd, e.session});
  if (index == packed_.size()) {
    packed_.push_back(p);
  } else {
    packed_[index] = p;
  }
  if (e.web_search_requests != 0) web_searches_[index] = e.web_search_requests;
}

RequestEntry Ledger::Requests::at(size_t i) const {
  if (i >= size()) throw std::out_of_range("no request " + std::to_string(i));
  return (*this)[i];
}

std::string Ledger::tool_id(uint32_t index) const {
  std::string id;
  std::string_view encoded = tool_ids_.Get(index);
  DecodeId(&encoded, &id);  // always valid: tool_ids_ holds only encodings
  return id;
}

uint32_t Ledger::InternModel(std::string_view raw) {
  auto it = raw_model_ids_.find(raw);
  if (it != raw_model_ids_.end()) return it->second;
  uint32_t id = strings_.Intern(CanonicalModel(raw));
  raw_model_ids_.emplace(std::string(raw), id);
  return id;
}

void Ledger::MergeRequest(std::string_view key, const RequestEntry& e, int64_t newest_ms,
                          Change* change) {
  bool inserted = false;
  change->index = keys_.Insert(key, &inserted);
  if (spans_enabled_) {
    if (inserted)
      newest_ms_.push_back(newest_ms);
    else
      newest_ms_[change->index] = std::max(newest_ms_[change->index], newest_ms);
  }
  if (inserted) {
    change->new_request = true;
    Store(change->index, e);
    return;
  }
  change->before = Unpack(change->index);
  CopyMergeResult merged = MergeCopy(change->before, e, strings_);
  change->effect = merged.effect;
  if (merged.effect.changed()) Store(change->index, merged.entry);
}

void Ledger::MergeSession(uint32_t session, int64_t ts, uint32_t cwd) {
  auto [it, inserted] = sessions_.try_emplace(session, SessionEntry{ts, cwd});
  if (inserted) return;
  SessionEntry& s = it->second;
  if (ts < s.first_ms || (ts == s.first_ms && strings_.Get(cwd) < strings_.Get(s.cwd))) {
    s = SessionEntry{ts, cwd};
  }
}

void Ledger::MergeSpan(uint32_t session, const SessionSpan& span) {
  auto [it, inserted] = spans_.try_emplace(session, span);
  if (inserted) return;
  SessionSpan& s = it->second;
  s.first_ms = std::min(s.first_ms, span.first_ms);
  s.last_ms = std::max(s.last_ms, span.last_ms);
  s.last_request_ms = std::max(s.last_request_ms, span.last_request_ms);
  s.has_request = s.has_request || span.has_request;
}

void Ledger::MergeToolUse(std::string_view id, int64_t ts, uint32_t name) {
  tool_scratch_.clear();
  AppendEncodedId(id, &tool_scratch_);
  MergeToolUseEncoded(tool_scratch_, ts, name);
}

void Ledger::MergeToolUseEncoded(std::string_view encoded_id, int64_t ts, uint32_t name) {
  bool inserted = false;
  uint32_t idx = tool_ids_.Insert(encoded_id, &inserted);
  if (inserted) {
    tool_entries_.push_back(ToolUseEntry{ts, name});
    return;
  }
  ToolUseEntry& t = tool_entries_[idx];
  if (ts < t.timestamp_ms || (ts == t.timestamp_ms && strings_.Get(name) < strings_.Get(t.name))) {
    t = ToolUseEntry{ts, name};
  }
}

void Ledger::MergeApiError(std::string_view key, int64_t ts) {
  auto it = api_errors_.find(key);
  if (it == api_errors_.end()) {
    api_errors_.emplace(std::string(key), ts);
  } else {
    it->second = std::min(it->second, ts);
  }
}

const ToolUseEntry& Ledger::ToolUses::at(std::string_view id) const {
  std::string encoded;
  AppendEncodedId(id, &encoded);
  uint32_t i = l_->tool_ids_.Find(encoded);
  if (i == StringSet::kNone) throw std::out_of_range("no tool_use id " + std::string(id));
  return l_->tool_entries_[i];
}

Ledger::Change Ledger::Add(const ParsedLine& line) {
  Change change;
  key_scratch_.clear();
  AppendDedupKey(line.message_id, line.has_request_id, line.request_id, &key_scratch_);
  const std::string_view key = key_scratch_;
  if (line.is_api_error) MergeApiError(key, line.timestamp_ms);
  if (line.IsSynthetic()) return change;
  change.counted = true;
  RequestEntry e;
  e.timestamp_ms = line.timestamp_ms;
  e.model = InternModel(line.model);
  e.cwd = strings_.Intern(line.cwd);
  e.session = strings_.Intern(line.session_id);
  e.tokens = line.tokens;
  e.web_search_requests = line.web_search_requests;
  e.has_cost_usd = line.has_cost_usd;
  e.cost_usd = line.cost_usd;
  e.fast = line.fast;
  e.us_inference = line.us_inference;
  e.sidechain = line.is_sidechain;
  MergeRequest(key, e, line.timestamp_ms, &change);
  MergeSession(e.session, e.timestamp_ms, e.cwd);
  if (spans_enabled_) {
    MergeSpan(e.session,
              SessionSpan{line.timestamp_ms, line.timestamp_ms, line.timestamp_ms, true});
  }
  for (const ToolUse& t : line.tool_uses) {
    MergeToolUse(t.id, line.timestamp_ms, strings_.Intern(t.name));
  }
  return change;
}

namespace {

constexpr char kPromptUuidTag = 0;  // then 16 bytes
constexpr char kPromptRawTag = 1;   // then the uuid's bytes as they are

int LowerHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool IsUuidDash(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

}  // namespace

void Ledger::AppendPromptKey(std::string_view uuid, std::string* out) {
  bool canonical = uuid.size() == 36;
  for (size_t i = 0; canonical && i < 36; ++i) {
    canonical = IsUuidDash(i) ? uuid[i] == '-' : LowerHexValue(uuid[i]) >= 0;
  }
  if (!canonical) {
    out->push_back(kPromptRawTag);
    out->append(uuid);
    return;
  }
  out->push_back(kPromptUuidTag);
  int high = -1;
  for (size_t i = 0; i < 36; ++i) {
    if (IsUuidDash(i)) continue;
    const int v = LowerHexValue(uuid[i]);
    if (high < 0) {
      high = v;
    } else {
      out->push_back(char(high << 4 | v));
      high = -1;
    }
  }
}

std::string Ledger::DecodePromptKey(std::string_view key) {
  if (key.empty()) return {};
  if (key[0] != kPromptUuidTag) return std::string(key.substr(1));
  static const char* hex = "0123456789abcdef";
  std::string uuid;
  for (size_t b = 1; b < key.size(); ++b) {
    if (IsUuidDash(uuid.size())) uuid.push_back('-');
    uuid.push_back(hex[uint8_t(key[b]) >> 4]);
    if (IsUuidDash(uuid.size())) uuid.push_back('-');
    uuid.push_back(hex[uint8_t(key[b]) & 15]);
  }
  return uuid;
}

void Ledger::MergePrompt(std::string_view key, const PromptEntry& p) {
  bool inserted = false;
  const uint32_t idx = prompt_keys_.Insert(key, &inserted);
  if (inserted) {
    prompt_entries_.push_back(p);
    return;
  }
  PromptEntry& cur = prompt_entries_[idx];
  const auto& s = strings_;
  if (p.timestamp_ms != cur.timestamp_ms ? p.timestamp_ms < cur.timestamp_ms
      : p.session != cur.session         ? s.Get(p.session) < s.Get(cur.session)
                                         : s.Get(p.cwd) < s.Get(cur.cwd)) {
    cur = p;
  }
}

bool Ledger::AddPrompt(const ParsedLine& line) {
  key_scratch_.clear();
  AppendPromptKey(line.uuid, &key_scratch_);
  const size_t before = prompt_keys_.size();
  const uint32_t session = strings_.Intern(line.session_id);
  MergePrompt(key_scratch_, PromptEntry{line.timestamp_ms, strings_.Intern(line.cwd), session});
  if (spans_enabled_) {
    MergeSpan(session, SessionSpan{line.timestamp_ms, line.timestamp_ms, INT64_MIN, false});
  }
  return prompt_keys_.size() != before;
}

void Ledger::Merge(const Ledger& o) {
  // o's string ids -> ours, each string interned once (not once per request).
  std::vector<uint32_t> ids(o.strings_.size(), UINT32_MAX);
  auto remap = [&](uint32_t id) {
    if (ids[id] == UINT32_MAX) ids[id] = strings_.Intern(o.strings_.Get(id));
    return ids[id];
  };
  Change ignored;
  for (uint32_t i = 0; i < o.packed_.size(); ++i) {
    RequestEntry e = o.Unpack(i);
    e.model = remap(e.model);
    e.cwd = remap(e.cwd);
    e.session = remap(e.session);
    MergeRequest(o.keys_.Get(i), e, o.spans_enabled_ ? o.newest_ms_[i] : e.timestamp_ms, &ignored);
  }
  for (const auto& [session, span] : o.spans_) {
    if (spans_enabled_) MergeSpan(remap(session), span);
  }
  for (const auto& [session, s] : o.sessions_)
    MergeSession(remap(session), s.first_ms, remap(s.cwd));
  for (uint32_t i = 0; i < o.tool_entries_.size(); ++i) {
    const ToolUseEntry& t = o.tool_entries_[i];
    MergeToolUseEncoded(o.tool_ids_.Get(i), t.timestamp_ms, remap(t.name));
  }
  for (const auto& [key, ts] : o.api_errors_) MergeApiError(key, ts);
  for (uint32_t i = 0; i < o.prompt_entries_.size(); ++i) {
    const PromptEntry& p = o.prompt_entries_[i];
    MergePrompt(o.prompt_keys_.Get(i), PromptEntry{p.timestamp_ms, remap(p.cwd), remap(p.session)});
  }
}

}  // namespace ccmon
