#include "agent/engine/live_accounting.h"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "base/record_codec.h"
#include "ledger/copy_merge.h"
#include "ledger/id_codec.h"
#include "ledger/ledger.h"
#include "metrics/contributions.h"
#include "transcript/model_id.h"

namespace ccmon::agent {
namespace {

constexpr uint8_t kRecordVersion = 1;

// What a request has added to its series so far, one slot per kind of increment.
enum Slot : size_t {
  kTokens0 = 0,  // .. kTokens0 + 4: the token types in kTokenTypes order
  kCost = 5,
  kRequests = 6,
  kSavings = 7,
  kUnpriced = 8,
  kWebSearches = 9,
  kSlotCount = 10,     // the slots of RequestContributions' counters
  kObservedCost = 10,  // the cost the histogram observed (when observed)
  kRecordSlots = 11,
};

size_t SlotOf(const SeriesIncrement& inc) {
  switch (inc.family) {
    case MetricFamily::kTokens: {
      const std::string_view type = inc.labels().back();
      for (size_t i = 0; i < 5; ++i)
        if (kTokenTypes[i] == type) return kTokens0 + i;
      return kSlotCount;
    }
    case MetricFamily::kCostUsd:
      return kCost;
    case MetricFamily::kRequests:
      return kRequests;
    case MetricFamily::kCacheSavingsUsd:
      return kSavings;
    case MetricFamily::kUnpricedTokens:
      return kUnpriced;
    case MetricFamily::kWebSearchRequests:
      return kWebSearches;
    default:
      return kSlotCount;  // the histogram: observed when settled
  }
}

// Strings of the copies being merged, interned so that equal strings get equal ids (MergeCopy
// compares ids first, and PreferredCopy takes equal ids as equal strings).
class MergeStrings {
 public:
  uint32_t Intern(std::string_view s) {
    for (uint32_t i = 0; i < n_; ++i)
      if (s_[i] == s) return i;
    s_[n_] = s;
    return n_++;
  }
  std::string_view operator()(uint32_t id) const { return s_[id]; }

 private:
  std::array<std::string_view, 6> s_{};
  uint32_t n_ = 0;
};

}  // namespace

// A request's record (docs/store-format.md, "Agent state": r<dedup key>).
struct LiveAccounting::RequestRecord {
  // The merge of its copies so far (A17, A18), strings inline.
  int64_t timestamp_ms = 0;
  StoredTokens tokens;
  uint64_t web_search_requests = 0;
  bool has_cost_usd = false, fast = false, us = false, sidechain = false;
  Pico cost_usd = 0;
  std::string model, cwd, session;
  // What was counted: the labels of its first copy and the amount added to each slot.
  // Labels are few (capped) and repeat on every request: pointers to strings that outlive the
  // record (a labeler's, or LiveAccounting::label_pool_'s), never null once set.
  const std::string* model_label = nullptr;
  const std::string* project_label = nullptr;
  std::array<PicoSum, kRecordSlots> emitted{};
  bool observed = false;  // in the histogram
  int64_t newest_event_ms = 0;

  // A first copy's fields (labels and amounts are the caller's).
  static RequestRecord FromLine(const ParsedLine& line, std::string canonical_model) {
    RequestRecord r;
    r.timestamp_ms = line.timestamp_ms;
    r.tokens = line.tokens;
    r.web_search_requests = line.web_search_requests;
    r.has_cost_usd = line.has_cost_usd;
    r.cost_usd = line.has_cost_usd ? line.cost_usd : 0;
    r.fast = line.fast;
    r.us = line.us_inference;
    r.sidechain = line.is_sidechain;
    r.model = std::move(canonical_model);
    r.cwd = std::string(line.cwd);
    r.session = std::string(line.session_id);
    return r;
  }
  // Its cost now (A20-A28, A39), as replay prices the same entry.
  CostBreakdown Price(const PriceTable& prices) const {
    return PriceRequest(prices.Find(model), prices.web_search_cost(), tokens, web_search_requests,
                        fast, us, has_cost_usd, cost_usd);
  }
  // What RequestContributions takes: the request under the labels it was counted with.
  LabelledRequest Labelled(std::string_view device, const CostBreakdown& cost) const {
    return LabelledRequest{device, *model_label, *project_label, tokens, web_search_requests, cost};
  }
  // The merged fields as a RequestEntry for MergeCopy (strings interned in `strings`), and back.
  RequestEntry ToEntry(MergeStrings* strings) const {
    RequestEntry e;
    e.timestamp_ms = timestamp_ms;
    e.tokens = tokens;
    e.web_search_requests = web_search_requests;
    e.has_cost_usd = has_cost_usd;
    e.cost_usd = cost_usd;
    e.fast = fast;
    e.us_inference = us;
    e.sidechain = sidechain;
    e.model = strings->Intern(model);
    e.cwd = strings->Intern(cwd);
    e.session = strings->Intern(session);
    return e;
  }
  // `current` is what ToEntry gave for this record: a string whose id did not change is kept.
  void SetMerged(const RequestEntry& e, const RequestEntry& current, const MergeStrings& strings) {
    timestamp_ms = e.timestamp_ms;
    tokens = e.tokens;
    web_search_requests = e.web_search_requests;
    has_cost_usd = e.has_cost_usd;
    cost_usd = e.cost_usd;
    fast = e.fast;
    us = e.us_inference;
    sidechain = e.sidechain;
    // The views may point into this record's own strings: assign through a copy.
    auto set = [&](std::string* field, uint32_t id, uint32_t current_id) {
      if (id == current_id) return;
      std::string v(strings(id));
      *field = std::move(v);
    };
    set(&model, e.model, current.model);
    set(&cwd, e.cwd, current.cwd);
    set(&session, e.session, current.session);
  }

  std::string Encode() const {
    std::string r;
    r.push_back(char(kRecordVersion));
    PutSignedVarint(&r, timestamp_ms);
    for (uint32_t t : {tokens.input, tokens.output, tokens.cache_write_5m, tokens.cache_write_1h,
                       tokens.cache_read})
      PutVarint(&r, t);
    PutVarint(&r, web_search_requests);
    r.push_back(char(has_cost_usd | fast << 1 | us << 2 | sidechain << 3 | observed << 4));
    PutSignedVarint(&r, cost_usd);
    PutBytes(&r, model);
    PutBytes(&r, cwd);
    PutBytes(&r, session);
    PutBytes(&r, *model_label);
    PutBytes(&r, *project_label);
    for (PicoSum e : emitted) PutInt128(&r, e);
    PutSignedVarint(&r, newest_event_ms);
    return r;
  }
  // `intern` maps a decoded label to a string that outlives the record.
  template <typename Intern>
  bool Decode(std::string_view in, Intern&& intern) {
    Reader r(in);
    std::string_view labels[2];
    uint8_t version = 0, flags = 0;
    if (!r.Byte(&version) || version != kRecordVersion || !r.SignedVarint(&timestamp_ms))
      return false;
    for (uint32_t* t : {&tokens.input, &tokens.output, &tokens.cache_write_5m,
                        &tokens.cache_write_1h, &tokens.cache_read})
      if (!r.Varint32(t)) return false;
    if (!r.Varint(&web_search_requests) || !r.Byte(&flags) || !r.SignedVarint(&cost_usd) ||
        !r.Bytes(&model) || !r.Bytes(&cwd) || !r.Bytes(&session) || !r.Bytes(&labels[0]) ||
        !r.Bytes(&labels[1]))
      return false;
    model_label = intern(labels[0]);
    project_label = intern(labels[1]);
    for (PicoSum& e : emitted)
      if (!r.Int128(&e)) return false;
    if (!r.SignedVarint(&newest_event_ms) || !r.done()) return false;
    has_cost_usd = flags & 1;
    fast = flags & 2;
    us = flags & 4;
    sidechain = flags & 8;
    observed = flags & 16;
    return true;
  }
};

LiveAccounting::LiveAccounting(const LiveOptions& options, RecordReader* reader)
    : options_(options),
      reader_(reader),
      series_(options.static_labels),
      projects_(options.labels),
      models_(options.labels.max_models),
      tools_(options.labels.max_tools),
      cache_(&node_pool_),
      pending_(&node_pool_) {}

Status LiveAccounting::Open(const LiveOptions& options, RecordReader* reader,
                            std::unique_ptr<LiveAccounting>* out) {
  if (!options.prices) return Status::InvalidArgument("live accounting: no price table");
  std::unique_ptr<LiveAccounting> a(new LiveAccounting(options, reader));
  Status s =
      reader->Scan(std::string(1, SeriesTable::kRecordPrefix),
                   [&](std::string_view k, std::string_view v) { return a->series_.Load(k, v); });
  if (!s.ok()) return s;
  // Admitted labels, by kind, in key order (the order of admission is not needed: a restored
  // value is simply kept).
  s = reader->Scan(std::string(1, kLabelPrefix), [&](std::string_view k, std::string_view) {
    if (k.size() < 2) return Status::Corruption("agent state: malformed label record");
    std::string value(k.substr(2));
    switch (k[1]) {
      case 'p':
        a->projects_.Admit(std::move(value));
        break;
      case 'm':
        a->models_.Admit(std::move(value));
        break;
      case 't':
        a->tools_.Admit(std::move(value));
        break;
      default:
        return Status::Corruption("agent state: unknown label kind");
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  s = reader->Scan(std::string(1, kPendingPrefix), [&](std::string_view k, std::string_view v) {
    Reader r(v);
    Pending p;
    if (!r.Bytes(&p.session) || !r.SignedVarint(&p.newest_event_ms))
      return Status::Corruption("agent state: malformed pending record");
    p.stored = true;
    a->pending_by_session_[p.session].push_back(std::string(k.substr(1)));
    ++a->pending_listed_;
    a->pending_[std::string(k.substr(1))] = std::move(p);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  // The API-error series exists for every device, at 0 without errors (as replay writes it).
  a->series_.Ensure(ApiErrorContribution(options.device));
  *out = std::move(a);
  return Status::Ok();
}

LiveAccounting::~LiveAccounting() = default;

Status LiveAccounting::Load(const std::string& key, CacheEntry** entry) {
  // One hash and one find for a miss too: the entry is made first, the read fills it.
  auto [it, inserted] = cache_.try_emplace(key);
  if (inserted) {
    std::string v;
    Status s = reader_->Read(key, &v);
    ++stats_.record_reads;
    if (!s.ok() && s.code() != Status::Code::kNotFound) {
      cache_.erase(it);
      return s;
    }
    Cached& c = it->second;
    if (s.ok()) {
      if (!key.empty() && key[0] == kRequestPrefix) {
        c.request = std::make_unique<RequestRecord>();
        if (!c.request->Decode(v, [this](std::string_view l) { return InternLabel(l); })) {
          cache_.erase(it);
          return Status::Corruption("agent state: malformed request record");
        }
      } else {
        c.value = std::move(v);
      }
    }
    c.stored = s.ok() ? 1 : 0;
    LinkNewest(&*it);
  } else if (lru_newest_ != &*it) {
    Unlink(&*it);
    LinkNewest(&*it);
  }
  *entry = &*it;
  return Status::Ok();
}

Status LiveAccounting::Lookup(const std::string& key, const std::string** value) {
  CacheEntry* entry = nullptr;
  if (Status s = Load(key, &entry); !s.ok()) return s;
  *value = entry->second.value ? &*entry->second.value : nullptr;
  return Status::Ok();
}

Status LiveAccounting::LookupRequest(const std::string& key, CacheEntry** entry,
                                     RequestRecord** record) {
  if (Status s = Load(key, entry); !s.ok()) return s;
  *record = (*entry)->second.request.get();
  return Status::Ok();
}

void LiveAccounting::MarkDirty(CacheEntry* entry) {
  if (!entry->second.dirty) dirty_.push_back(entry);
  entry->second.dirty = true;
}

const std::string* LiveAccounting::InternLabel(std::string_view label) {
  auto it = label_pool_.find(label);
  if (it == label_pool_.end()) it = label_pool_.emplace(label).first;
  return &*it;
}

void LiveAccounting::LinkNewest(CacheEntry* entry) {
  Cached& c = entry->second;
  c.older = lru_newest_;
  c.newer = nullptr;
  if (lru_newest_) lru_newest_->second.newer = entry;
  lru_newest_ = entry;
  if (!lru_oldest_) lru_oldest_ = entry;
}

void LiveAccounting::Unlink(CacheEntry* entry) {
  Cached& c = entry->second;
  (c.newer ? c.newer->second.older : lru_newest_) = c.older;
  (c.older ? c.older->second.newer : lru_oldest_) = c.newer;
  c.newer = c.older = nullptr;
}

LiveAccounting::CacheEntry* LiveAccounting::Entry(const std::string& key, bool* inserted) {
  auto [it, is_new] = cache_.try_emplace(key);
  if (is_new) LinkNewest(&*it);
  *inserted = is_new;
  return &*it;
}

void LiveAccounting::Put(const std::string& key, std::string value, bool absent_from_store) {
  bool inserted = false;
  CacheEntry* entry = Entry(key, &inserted);
  if (inserted && absent_from_store) entry->second.stored = 0;
  entry->second.value = std::move(value);
  MarkDirty(entry);
}

void LiveAccounting::Erase(const std::string& key) {
  bool inserted = false;
  CacheEntry* entry = Entry(key, &inserted);
  entry->second.value.reset();
  MarkDirty(entry);
}

const std::string& LiveAccounting::LabelOf(CappedLabeler& labeler, char kind,
                                           std::string_view key) {
  const size_t before = labeler.kept();
  const std::string& label = labeler.Label(key);
  if (labeler.kept() != before) {  // newly admitted: remembered across restarts
    std::string k(1, kLabelPrefix);
    k.push_back(kind);
    k += label;
    Put(k, "");
  }
  return label;
}

void LiveAccounting::Prepare(const ParsedLine& line, std::string* request_key,
                             std::string* canonical_model, PreparedLine* prepared) {
  *prepared = PreparedLine();
  if (line.kind != LineKind::kUsage || line.IsSynthetic()) return;
  request_key->assign(1, kRequestPrefix);
  Ledger::AppendDedupKey(line.message_id, line.has_request_id, line.request_id, request_key);
  *canonical_model = CanonicalModel(line.model);
  prepared->request = true;
  prepared->request_key = *request_key;
  prepared->canonical_model = *canonical_model;
}

Status LiveAccounting::AddLine(const ParsedLine& line, const PreparedLine& prepared) {
  if (line.kind == LineKind::kUsage) return AddUsage(line, prepared.request ? &prepared : nullptr);
  return AddLine(line);
}

Status LiveAccounting::AddLine(const ParsedLine& line) {
  if (line.kind == LineKind::kUsage) return AddUsage(line, nullptr);
  if (line.kind != LineKind::kPrompt) return Status::Ok();
  // A41: every prompt line, copies included, extends its session's span.
  if (Status s = TouchSession(line.session_id, line.timestamp_ms, false, std::nullopt); !s.ok())
    return s;
  // A38: once per uuid, in the project of its first copy read.
  std::string key(1, kPromptPrefix);
  Ledger::AppendPromptKey(line.uuid, &key);
  const std::string* rec = nullptr;
  if (Status s = Lookup(key, &rec); !s.ok()) return s;
  const std::string& project = LabelOf(projects_, 'p', line.cwd);
  if (rec) {
    if (*rec != project) ++stats_.conflicts;  // an earlier copy elsewhere would move it
    return Status::Ok();
  }
  series_.Apply(UserPromptContribution(options_.device, project), line.timestamp_ms);
  Put(key, project);
  return Status::Ok();
}

Status LiveAccounting::AddUsage(const ParsedLine& line, const PreparedLine* prepared) {
  // A15: an API error once per dedup key, synthetic or not.
  if (line.is_api_error) {
    std::string& key = record_key_;
    key.assign(1, kErrorPrefix);
    Ledger::AppendDedupKey(line.message_id, line.has_request_id, line.request_id, &key);
    const std::string* rec = nullptr;
    if (Status s = Lookup(key, &rec); !s.ok()) return s;
    if (!rec) {
      series_.Apply(ApiErrorContribution(options_.device), line.timestamp_ms);
      Put(key, "");
    }
  }
  if (line.IsSynthetic()) return Status::Ok();
  if (Status s = AddRequestLine(line, prepared); !s.ok()) return s;
  // A32: a session once, in the project of its first request line read.
  {
    std::string& key = record_key_;
    key.assign(1, kSessionPrefix);
    key += line.session_id;
    const std::string* rec = nullptr;
    if (Status s = Lookup(key, &rec); !s.ok()) return s;
    const std::string& project = LabelOf(projects_, 'p', line.cwd);
    const bool known = rec != nullptr;
    if (!rec) {
      series_.Apply(SessionStartContribution(options_.device, project), line.timestamp_ms);
      Put(key, project);
    } else if (*rec != project) {
      ++stats_.conflicts;
    }
    // A41: every request line, copies included, extends its session's span.
    if (Status s = TouchSession(line.session_id, line.timestamp_ms, true, known); !s.ok()) return s;
  }
  // A33: a tool call once per tool_use id, under the name of its first copy read.
  for (const ToolUse& t : line.tool_uses) {
    std::string& key = record_key_;
    key.assign(1, kToolPrefix);
    AppendEncodedId(t.id, &key);
    const std::string* rec = nullptr;
    if (Status s = Lookup(key, &rec); !s.ok()) return s;
    if (!rec) {
      const std::string& tool = LabelOf(tools_, 't', t.name);
      series_.Apply(ToolCallContribution(options_.device, tool), line.timestamp_ms);
      Put(key, std::string(t.name));
    } else if (*rec != t.name) {
      ++stats_.conflicts;
    }
  }
  return Status::Ok();
}

Status LiveAccounting::AddRequestLine(const ParsedLine& line, const PreparedLine* prepared) {
  std::string& key = request_key_;  // reused: no allocation per line
  std::string model_storage;
  std::string_view model;
  if (prepared) {
    key.assign(prepared->request_key);
    model = prepared->canonical_model;
  } else {
    key.assign(1, kRequestPrefix);
    Ledger::AppendDedupKey(line.message_id, line.has_request_id, line.request_id, &key);
    model_storage = CanonicalModel(line.model);
    model = model_storage;
  }
  CacheEntry* entry = nullptr;
  RequestRecord* stored = nullptr;
  if (Status s = LookupRequest(key, &entry, &stored); !s.ok()) return s;

  const bool is_new = stored == nullptr;
  RequestRecord* rec = stored;
  if (is_new) {
    entry->second.request =
        std::make_unique<RequestRecord>(RequestRecord::FromLine(line, std::string(model)));
    rec = entry->second.request.get();
    rec->model_label = &LabelOf(models_, 'm', rec->model);  // the labelers' strings stay put
    rec->project_label = &LabelOf(projects_, 'p', line.cwd);
    ++stats_.requests;
  } else {
    ++stats_.copies;
    // A17/A18 through the shared rule; the copy's strings are views into the line.
    MergeStrings strings;
    const RequestEntry current = rec->ToEntry(&strings);
    RequestEntry copy;
    copy.timestamp_ms = line.timestamp_ms;
    copy.tokens = line.tokens;
    copy.web_search_requests = line.web_search_requests;
    copy.has_cost_usd = line.has_cost_usd;
    copy.cost_usd = line.has_cost_usd ? line.cost_usd : 0;
    copy.fast = line.fast;
    copy.us_inference = line.us_inference;
    copy.sidechain = line.is_sidechain;
    copy.model = strings.Intern(model);
    copy.cwd = strings.Intern(line.cwd);
    copy.session = strings.Intern(line.session_id);
    const CopyMergeResult m = MergeCopy(current, copy, strings);
    if (!m.effect.changed()) return Status::Ok();
    rec->SetMerged(m.entry, current, strings);
    if (m.effect.labels_moved && (LabelOf(models_, 'm', rec->model) != *rec->model_label ||
                                  LabelOf(projects_, 'p', rec->cwd) != *rec->project_label)) {
      ++stats_.conflicts;  // replay would count it under the preferred copy's labels
    }
  }
  rec->newest_event_ms = std::max(rec->newest_event_ms, line.timestamp_ms);

  // The request's contributions now, under the labels it was first counted with; each slot
  // rises by the difference from what it has added so far.
  const CostBreakdown cost = rec->Price(*options_.prices);
  const LabelledRequest labelled = rec->Labelled(options_.device, cost);
  bool lowered = false;
  for (SeriesIncrement inc : RequestContributions(labelled)) {
    const size_t slot = SlotOf(inc);
    if (slot == kSlotCount) continue;  // the histogram: observed when settled
    const PicoSum target = inc.delta;
    const PicoSum delta = target - rec->emitted[slot];
    if (delta < 0) {
      lowered = true;
      continue;
    }
    if (delta == 0 && !is_new) continue;
    inc.delta = delta;
    ApplyRequestIncrement(rec->model_label, rec->project_label, slot, inc, line.timestamp_ms);
    rec->emitted[slot] = target;
  }
  // A change of cost after the histogram observed the request cannot be shown there.
  if (rec->observed && cost.cost != rec->emitted[kObservedCost]) lowered = true;
  if (lowered) ++stats_.conflicts;
  MarkDirty(entry);

  // A request of this session read after earlier ones settles them (the session moved on).
  if (is_new) {
    auto it = pending_by_session_.find(rec->session);
    if (it != pending_by_session_.end()) {
      pending_listed_ -= it->second.size();
      for (std::string& k : it->second) settle_now_.push_back(std::move(k));
      pending_by_session_.erase(it);
    }
  }
  if (!rec->observed) {
    auto [pit, inserted] = pending_.try_emplace(key.substr(1));
    Pending& p = pit->second;
    if (inserted) {
      pending_by_session_[rec->session].push_back(key.substr(1));
      ++pending_listed_;
      // A new request has no pending record in the store yet (one exists only beside its
      // request record): settled before the next commit, it is never written.
      p.stored = !is_new;
    }
    if (p.session != rec->session) p.session = rec->session;
    p.newest_event_ms = rec->newest_event_ms;
    p.seen_ms = 0;
    p.dirty = true;
  }
  return Status::Ok();
}

void LiveAccounting::ApplyRequestIncrement(const std::string* model, const std::string* project,
                                           size_t slot, const SeriesIncrement& inc,
                                           int64_t event_ms) {
  static_assert(std::tuple_size_v<RequestSeries> == kSlotCount + 1);
  SeriesState*& series = request_series_[{model, project}][slot];
  bool created = false;
  if (!series) series = series_.Find(inc, &created);
  series_.ApplyTo(series, created, inc, event_ms);
}

Status LiveAccounting::Observe(PendingMap::iterator pending) {
  observe_key_.assign(1, kRequestPrefix);
  observe_key_ += pending->first;
  CacheEntry* entry = nullptr;
  RequestRecord* rec = nullptr;
  if (Status s = LookupRequest(observe_key_, &entry, &rec); !s.ok()) return s;
  if (pending->second.stored) deleted_pending_.push_back(pending->first);
  pending_.erase(pending);
  if (!rec) return Status::Corruption("agent state: pending request without its record");
  if (rec->observed) return Status::Ok();
  const CostBreakdown cost = rec->Price(*options_.prices);
  const LabelledRequest labelled = rec->Labelled(options_.device, cost);
  for (const SeriesIncrement& inc : RequestContributions(labelled)) {
    if (inc.family == MetricFamily::kCostPerRequestUsd) {
      ApplyRequestIncrement(rec->model_label, rec->project_label, kSlotCount, inc,
                            rec->newest_event_ms);
    }
  }
  rec->observed = true;
  rec->emitted[kObservedCost] = cost.cost;
  ++stats_.observed;
  MarkDirty(entry);
  return Status::Ok();
}

Status LiveAccounting::Settle(int64_t now_ms, bool by_event_time_only) {
  bool more = false;
  return Settle(now_ms, by_event_time_only, SIZE_MAX, &more);
}

Status LiveAccounting::Settle(int64_t now_ms, bool by_event_time_only, size_t max_observed,
                              bool* more) {
  *more = false;
  // Settled keys leave their session's list lazily: Observe() skips keys no longer pending.
  // Those whose session moved on first (all of them: a step's worth at most).
  std::vector<std::string> keys;
  keys.swap(settle_now_);
  for (const std::string& k : keys) {
    auto p = pending_.find(k);
    if (p == pending_.end()) continue;
    if (Status s = Observe(p); !s.ok()) return s;
  }
  // Then the quiet ones, in the map's order, at most `max_observed`: Observe erases only the
  // entry it is given, so the iterator to the next one stays valid.
  size_t observed = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    Pending& p = it->second;
    if (p.seen_ms == 0) p.seen_ms = now_ms;
    // An event time ahead of that first Settle (a clock ahead of ours, a line from year 9999)
    // counts as it: the request is quiet settle_after later, as any other; waiting for its own
    // timestamp, it would never be observed, while replay observes it (A40).
    const int64_t event_ms = std::min(p.newest_event_ms, p.seen_ms);
    const int64_t quiet_since = by_event_time_only ? event_ms : std::max(event_ms, p.seen_ms);
    if (now_ms - quiet_since < options_.settle_after_ms) {
      ++it;
      continue;
    }
    if (observed == max_observed) {
      *more = true;
      break;
    }
    auto next = std::next(it);
    if (Status s = Observe(it); !s.ok()) return s;
    ++observed;
    it = next;
  }
  stats_.pending = pending_.size();
  if (pending_listed_ > 2 * pending_.size() + 1024) {  // drop the settled keys from the lists
    pending_by_session_.clear();
    for (const auto& [k, p] : pending_) pending_by_session_[p.session].push_back(k);
    pending_listed_ = pending_.size();
  }
  return Status::Ok();
}

// An open session's record (docs/store-format.md, "Agent state": d<sessionId>).
std::string LiveAccounting::OpenSession::Encode() const {
  std::string r;
  r.push_back(char(kRecordVersion));
  PutSignedVarint(&r, first_ms);
  PutSignedVarint(&r, last_ms);
  PutSignedVarint(&r, last_request_ms);
  r.push_back(char(has_request | observed << 1));
  return r;
}

bool LiveAccounting::OpenSession::Decode(std::string_view in) {
  Reader r(in);
  uint8_t version = 0, flags = 0;
  if (!r.Byte(&version) || version != kRecordVersion || !r.SignedVarint(&first_ms) ||
      !r.SignedVarint(&last_ms) || !r.SignedVarint(&last_request_ms) || !r.Byte(&flags) ||
      !r.done() || flags > 3) {
    return false;
  }
  // Times as lines carry them (4-digit years); anything else would overflow the differences.
  constexpr int64_t kFar = int64_t(1) << 50;  // ~35,000 years of milliseconds
  const bool request = flags & 1;
  if (first_ms < -kFar || last_ms > kFar || first_ms > last_ms ||
      (request ? last_request_ms < first_ms || last_request_ms > last_ms
               : last_request_ms != kNever)) {
    return false;
  }
  has_request = flags & 1;
  observed = flags & 2;
  changed = false;
  seen_ms = kNever;
  return true;
}

Status LiveAccounting::TouchSession(std::string_view session, int64_t event_ms, bool is_request,
                                    std::optional<bool> known) {
  scratch_.assign(session);
  auto it = open_sessions_.find(scratch_);
  if (it == open_sessions_.end()) {
    // Not in memory: open in the store (an old session during the catch-up), closed, or new.
    const std::string key = std::string(1, kOpenSessionPrefix) + scratch_;
    const std::string* rec = nullptr;
    if (Status s = Lookup(key, &rec); !s.ok()) return s;
    OpenSession open;
    if (rec) {
      if (!open.Decode(*rec)) return Status::Corruption("agent state: malformed session record");
    } else {
      if (!known) {  // a prompt line: was the session counted (A32) before?
        const std::string* counted = nullptr;
        if (Status s = Lookup(std::string(1, kSessionPrefix) + scratch_, &counted); !s.ok())
          return s;
        known = counted != nullptr;
      }
      // Counted but not open: its duration was observed (or it predates A41). It comes back
      // for claude_active_sessions only.
      open.observed = *known;
      if (open.observed) ++stats_.sessions_reopened;
      open.first_ms = open.last_ms = event_ms;
    }
    it = open_sessions_.emplace(std::string(session), open).first;
  }
  OpenSession& o = it->second;
  o.first_ms = std::min(o.first_ms, event_ms);
  o.last_ms = std::max(o.last_ms, event_ms);
  if (is_request) {
    o.has_request = true;
    o.last_request_ms = std::max(o.last_request_ms, event_ms);
  }
  o.changed = true;
  o.seen_ms = kNever;
  return Status::Ok();
}

bool LiveAccounting::IsActive(const OpenSession& s, int64_t now_ms) const {
  return s.has_request && now_ms - std::min(s.last_request_ms, now_ms) < options_.active_window_ms;
}

void LiveAccounting::CloseSession(const std::string& session, const OpenSession& s,
                                  int64_t now_ms) {
  // Once per session: a session with a request (A32) that was not observed before. The
  // observation's event time is when the session became idle (at most now).
  if (s.has_request && !s.observed) {
    const int64_t seconds = (s.last_ms - s.first_ms) / 1000;
    series_.Apply(SessionDurationObservation(options_.device, seconds),
                  std::min(s.last_ms + options_.session_idle_ms, now_ms));
    ++stats_.sessions_observed;
  }
  Erase(std::string(1, kOpenSessionPrefix) + session);
}

Status LiveAccounting::UpdateSessions(int64_t now_ms, SessionPhase phase) {
  if (!session_series_ensured_) {
    series_.Ensure(SessionDurationObservation(options_.device, 0));
    session_series_ensured_ = true;
  }
  stats_.max_sessions_in_memory =
      std::max<uint64_t>(stats_.max_sessions_in_memory, open_sessions_.size());
  uint64_t active = 0;
  for (auto it = open_sessions_.begin(); it != open_sessions_.end();) {
    OpenSession& s = it->second;
    if (s.changed) {
      // A clock ahead of ours must not keep a session open (or active) into the future.
      s.first_ms = std::min(s.first_ms, now_ms);
      s.last_ms = std::min(s.last_ms, now_ms);
      if (s.has_request) s.last_request_ms = std::min(s.last_request_ms, now_ms);
      Put(std::string(1, kOpenSessionPrefix) + it->first, s.Encode());
      s.changed = false;
    }
    if (s.seen_ms == kNever) s.seen_ms = now_ms;
    const bool idle = now_ms - s.last_ms >= options_.session_idle_ms;
    bool close = false, forget = false;
    switch (phase) {
      case SessionPhase::kCatchingUp:
        forget = idle;  // stays open in the store until the catch-up's end
        break;
      case SessionPhase::kCatchUpEnd:
        close = idle;
        break;
      case SessionPhase::kLive:
        close = idle && now_ms - s.seen_ms >= options_.settle_after_ms;
        break;
    }
    if (close) CloseSession(it->first, s, now_ms);
    if (close || forget) {
      it = open_sessions_.erase(it);
      continue;
    }
    if (IsActive(s, now_ms)) ++active;
    ++it;
  }
  if (phase == SessionPhase::kCatchUpEnd) {
    // The open sessions of the store that are not in memory (those forgotten during the
    // catch-up): idle ones are closed, recent ones come back to memory. A record changed since
    // the last write is in the cache (dirty), which overrides the store.
    const std::string prefix(1, kOpenSessionPrefix);
    Status s = reader_->Scan(prefix, [&](std::string_view key, std::string_view value) {
      std::string session(key.substr(1));
      if (open_sessions_.count(session)) return Status::Ok();
      auto c = cache_.find(std::string(key));
      if (c != cache_.end() && c->second.dirty) {
        if (!c->second.value) return Status::Ok();  // closed in this commit
        value = *c->second.value;
      }
      OpenSession o;
      if (!o.Decode(value)) return Status::Corruption("agent state: malformed session record");
      if (now_ms - o.last_ms >= options_.session_idle_ms) {
        CloseSession(session, o, now_ms);
        return Status::Ok();
      }
      o.seen_ms = now_ms;
      if (IsActive(o, now_ms)) ++active;
      open_sessions_.emplace(std::move(session), o);
      return Status::Ok();
    });
    if (!s.ok()) return s;
  }
  series_.Set(ActiveSessionsValue(options_.device, active), now_ms);
  stats_.active_sessions = active;
  stats_.sessions_in_memory = open_sessions_.size();
  stats_.max_sessions_in_memory =
      std::max<uint64_t>(stats_.max_sessions_in_memory, open_sessions_.size());
  return Status::Ok();
}

Status LiveAccounting::RestoreOpenSessions() {
  Status s = reader_->Scan(
      std::string(1, kOpenSessionPrefix), [&](std::string_view key, std::string_view value) {
        OpenSession o;
        if (!o.Decode(value)) return Status::Corruption("agent state: malformed session record");
        open_sessions_[std::string(key.substr(1))] = o;  // seen_ms: at the next UpdateSessions
        return Status::Ok();
      });
  if (!s.ok()) return s;
  series_.Ensure(SessionDurationObservation(options_.device, 0));
  session_series_ensured_ = true;
  stats_.sessions_in_memory = open_sessions_.size();
  return Status::Ok();
}

void LiveAccounting::TakeChanges(
    std::vector<std::pair<std::string, std::optional<std::string>>>* out) {
  out->reserve(out->size() + dirty_.size() + 256);  // and the changed series: a few
  for (auto* entry : dirty_) {  // dirty entries are never evicted: the pointers are valid
    Cached& c = entry->second;
    c.dirty = false;
    if (c.request) {  // encoded once, here
      out->emplace_back(entry->first, c.request->Encode());
      c.stored = 1;
      continue;
    }
    if (!c.value && c.stored == 0) continue;  // nothing stored, nothing to delete
    out->emplace_back(entry->first, c.value);
    c.stored = c.value ? 1 : 0;
  }
  dirty_.clear();
  // The pending records (h<dedup key>) live in pending_, not in the cache.
  for (auto& [k, p] : pending_) {
    if (!p.dirty) continue;
    std::string value;
    PutBytes(&value, p.session);
    PutSignedVarint(&value, p.newest_event_ms);
    out->emplace_back(kPendingPrefix + k, std::move(value));
    p.dirty = false;
    p.stored = true;
  }
  for (std::string& k : deleted_pending_) out->emplace_back(kPendingPrefix + k, std::nullopt);
  deleted_pending_.clear();
  std::vector<std::pair<std::string, std::string>> series;
  series_.TakeRecords(&series);
  for (auto& [k, v] : series) out->emplace_back(std::move(k), std::move(v));
}

void LiveAccounting::TrimCache() {
  // Evict clean records, least recently used first; dirty ones stay until written.
  CacheEntry* entry = lru_oldest_;
  while (cache_.size() > options_.cache_records && entry) {
    CacheEntry* newer = entry->second.newer;
    if (!entry->second.dirty) {
      Unlink(entry);
      cache_.erase(cache_.find(entry->first));
    }
    entry = newer;
  }
}

// --- The bulk first start

struct LiveAccounting::History {
  const Ledger* ledger = nullptr;
  int64_t now_ms = 0;
  std::vector<bool> observed;                             // by request index
  std::vector<uint32_t> pending;                          // request indices not observed
  std::set<std::string> labels;                           // l records: kind + label
  std::vector<std::pair<std::string, OpenSession>> open;  // d records
  // The labels of the ledger's strings (by id) as models, as projects (cwds) and as tools:
  // looked up once per distinct string, not per request, prompt or tool call.
  std::unordered_map<uint32_t, const std::string*> model_of, project_of, tool_of;
  // Request, tool and prompt indices in the order of their record keys (EmitHistory's order),
  // sorted on a thread of their own while CountHistory counts.
  std::vector<uint32_t> requests_by_key, tools_by_key, prompts_by_key;
};

namespace {

// Indices 0 … n-1 in the order of key_of(index).
template <typename KeyOf>
std::vector<uint32_t> IndicesByKey(size_t n, KeyOf key_of) {
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return key_of(a) < key_of(b); });
  return order;
}

}  // namespace

void LiveAccounting::HistoryRequest(const Ledger& ledger, uint32_t index, bool observed,
                                    const std::string& model_label,
                                    const std::string& project_label, RequestRecord* r,
                                    CostBreakdown* cost,
                                    IncrementList<kMaxRequestIncrements>* increments) {
  const StringPool& strings = ledger.strings();
  const RequestEntry e = ledger.requests()[index];
  r->timestamp_ms = e.timestamp_ms;
  r->tokens = e.tokens;
  r->web_search_requests = e.web_search_requests;
  r->has_cost_usd = e.has_cost_usd;
  r->cost_usd = e.has_cost_usd ? e.cost_usd : 0;
  r->fast = e.fast;
  r->us = e.us_inference;
  r->sidechain = e.sidechain;
  r->model.assign(strings.Get(e.model));
  r->cwd.assign(strings.Get(e.cwd));
  r->session.assign(strings.Get(e.session));
  // The labels it is counted under: its merged (preferred) copy's, as in replay (A42).
  r->model_label = &model_label;
  r->project_label = &project_label;
  r->newest_event_ms = ledger.request_newest_ms(index);
  // What it added to each series: everything, as AddRequestLine's increments add up to for
  // its copies; the histogram's cost once observed.
  *cost = r->Price(*options_.prices);
  r->emitted = {};
  const IncrementList<kMaxRequestIncrements> incs =
      RequestContributions(r->Labelled(options_.device, *cost));
  for (const SeriesIncrement& inc : incs) {
    const size_t slot = SlotOf(inc);
    if (slot != kSlotCount) r->emitted[slot] = inc.delta;
  }
  if (increments) *increments = incs;
  r->observed = observed;
  if (observed) r->emitted[kObservedCost] = cost->cost;
}

Status LiveAccounting::CountHistory(const Ledger& ledger, int64_t now_ms, bool* fits) {
  *fits = false;
  if (!ledger.spans_enabled())
    return Status::InvalidArgument("bulk start: the ledger was built without spans");
  auto h = std::make_unique<History>();
  h->ledger = &ledger;
  h->now_ms = now_ms;
  // EmitHistory's orders, sorted on the other core meanwhile (they read the ledger only).
  std::thread sorting([&ledger, hp = h.get()] {
    hp->requests_by_key =
        IndicesByKey(ledger.requests().size(), [&](uint32_t j) { return ledger.request_key(j); });
    hp->tools_by_key =
        IndicesByKey(ledger.tool_uses().size(), [&](uint32_t j) { return ledger.tool_key(j); });
    hp->prompts_by_key =
        IndicesByKey(ledger.prompts().size(), [&](uint32_t j) { return ledger.prompt_key(j); });
  });
  struct Join {
    std::thread* t;
    ~Join() { t->join(); }
  } join_sorting{&sorting};
  const StringPool& strings = ledger.strings();
  // Labels are admitted as first used (LabelOf's records, written by EmitHistory).
  auto label = [&](CappedLabeler& labeler, char kind,
                   std::unordered_map<uint32_t, const std::string*>& of,
                   uint32_t id) -> const std::string& {
    auto [it, inserted] = of.try_emplace(id, nullptr);
    if (!inserted) return *it->second;
    const size_t before = labeler.kept();
    const std::string& l = labeler.Label(strings.Get(id));
    if (labeler.kept() != before) h->labels.insert(std::string(1, kind) + l);
    it->second = &l;
    return l;
  };

  // Which requests the catch-up leaves unobserved: a request is settled once a later request
  // of its session was read, or its newest copy is settle_after old (Settle by event time at
  // the catch-up's end). Read order is not known here: "later" is by time (then key), so only
  // each session's newest request may stay pending (A42).
  const size_t n = ledger.requests().size();
  std::unordered_map<uint32_t, uint32_t> newest_of_session;  // session id -> request index
  newest_of_session.reserve(ledger.sessions().size());
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t session = ledger.requests()[i].session;
    auto [it, inserted] = newest_of_session.try_emplace(session, i);
    if (inserted) continue;
    const int64_t ts = ledger.request_timestamp_ms(i),
                  best = ledger.request_timestamp_ms(it->second);
    if (ts > best || (ts == best && ledger.request_key(i) > ledger.request_key(it->second)))
      it->second = i;
  }
  h->observed.assign(n, true);
  for (const auto& [session, i] : newest_of_session) {
    const int64_t event_ms = std::min(ledger.request_newest_ms(i), now_ms);
    if (now_ms - event_ms < options_.settle_after_ms) {
      h->observed[i] = false;
      h->pending.push_back(i);
    }
  }

  // Requests (A17-A28, A34, A39): each once, with its merged copies' amounts.
  RequestRecord rec;
  CostBreakdown cost;
  for (uint32_t i = 0; i < n; ++i) {
    const bool observed = h->observed[i];
    const RequestEntry e = ledger.requests()[i];
    const std::string& model = label(models_, 'm', h->model_of, e.model);
    const std::string& project = label(projects_, 'p', h->project_of, e.cwd);
    IncrementList<kMaxRequestIncrements> incs;
    HistoryRequest(ledger, i, observed, model, project, &rec, &cost, &incs);
    for (const SeriesIncrement& inc : incs) {
      const size_t slot = SlotOf(inc);
      if (slot != kSlotCount) {
        ApplyRequestIncrement(rec.model_label, rec.project_label, slot, inc, rec.timestamp_ms);
      } else if (observed && inc.family == MetricFamily::kCostPerRequestUsd) {
        ApplyRequestIncrement(rec.model_label, rec.project_label, kSlotCount, inc,
                              rec.newest_event_ms);
      }
    }
  }
  stats_.requests = n;
  stats_.observed = n - h->pending.size();
  stats_.pending = h->pending.size();
  // A32: sessions, in the project of their earliest request line.
  for (const auto& [session, entry] : ledger.sessions()) {
    const std::string& project = label(projects_, 'p', h->project_of, entry.cwd);
    series_.Apply(SessionStartContribution(options_.device, project), entry.first_ms);
  }
  // A33: tool calls, under the name of their earliest copy.
  const auto tools = ledger.tool_uses();
  for (const ToolUseEntry& t : tools.entries()) {
    const std::string& tool = label(tools_, 't', h->tool_of, t.name);
    series_.Apply(ToolCallContribution(options_.device, tool), t.timestamp_ms);
  }
  // A38: prompts, in the project of their earliest copy.
  for (const PromptEntry& p : ledger.prompts().entries()) {
    const std::string& project = label(projects_, 'p', h->project_of, p.cwd);
    series_.Apply(UserPromptContribution(options_.device, project), p.timestamp_ms);
  }
  // A15: API errors, once per dedup key.
  for (const auto& [key, ts] : ledger.api_errors())
    series_.Apply(ApiErrorContribution(options_.device), ts);
  if (projects_.refused_keys() || models_.refused_keys() || tools_.refused_keys())
    return Status::Ok();  // *fits stays false: the caller drops this object

  // A41 at the catch-up's end (UpdateSessions, kCatchUpEnd): sessions idle for session_idle_ms
  // are closed (a duration observed for those with a request), the others stay open.
  series_.Ensure(SessionDurationObservation(options_.device, 0));
  session_series_ensured_ = true;
  uint64_t active = 0;
  for (const auto& [session, span] : ledger.session_spans()) {
    OpenSession s;
    s.first_ms = std::min(span.first_ms, now_ms);  // a clock ahead of ours counts as now
    s.last_ms = std::min(span.last_ms, now_ms);
    s.has_request = span.has_request;
    s.last_request_ms = span.has_request ? std::min(span.last_request_ms, now_ms) : kNever;
    if (now_ms - s.last_ms >= options_.session_idle_ms) {
      if (s.has_request) {
        series_.Apply(SessionDurationObservation(options_.device, (s.last_ms - s.first_ms) / 1000),
                      std::min(s.last_ms + options_.session_idle_ms, now_ms));
        ++stats_.sessions_observed;
      }
      continue;
    }
    if (IsActive(s, now_ms)) ++active;
    h->open.emplace_back(strings.Get(session), s);
  }
  std::sort(h->open.begin(), h->open.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  series_.Set(ActiveSessionsValue(options_.device, active), now_ms);
  stats_.active_sessions = active;
  history_ = std::move(h);
  *fits = true;
  return Status::Ok();
}

Status LiveAccounting::EmitHistory(
    char prefix, const std::function<Status(std::string_view, std::string_view)>& sink) {
  if (!history_) return Status::InvalidArgument("bulk start: no history counted");
  const History& h = *history_;
  const Ledger& ledger = *h.ledger;
  const StringPool& strings = ledger.strings();
  std::string key(1, prefix), value;
  // CountHistory labelled every string these records name (none is missing once it fits).
  auto label_of = [](const std::unordered_map<uint32_t, const std::string*>& of, uint32_t id) {
    auto it = of.find(id);
    return it == of.end() ? nullptr : it->second;
  };
  const Status not_counted =
      Status::InvalidArgument("bulk start: a record of a string not counted");
  auto put = [&](std::string_view suffix, std::string_view v) {
    key.resize(1);
    key += suffix;
    return sink(key, v);
  };
  switch (prefix) {
    case kOpenSessionPrefix:
      for (const auto& [session, s] : h.open)
        if (Status st = put(session, s.Encode()); !st.ok()) return st;
      return Status::Ok();
    case kErrorPrefix: {
      std::vector<std::string_view> keys;
      for (const auto& [k, ts] : ledger.api_errors()) keys.push_back(k);
      std::sort(keys.begin(), keys.end());
      for (std::string_view k : keys)
        if (Status st = put(k, ""); !st.ok()) return st;
      return Status::Ok();
    }
    case kPendingPrefix: {
      std::vector<uint32_t> pending = h.pending;
      std::sort(pending.begin(), pending.end(), [&](uint32_t a, uint32_t b) {
        return ledger.request_key(a) < ledger.request_key(b);
      });
      for (uint32_t i : pending) {
        value.clear();
        PutBytes(&value, strings.Get(ledger.requests()[i].session));
        PutSignedVarint(&value, ledger.request_newest_ms(i));
        if (Status st = put(ledger.request_key(i), value); !st.ok()) return st;
      }
      return Status::Ok();
    }
    case kLabelPrefix:
      for (const std::string& l : h.labels)
        if (Status st = put(l, ""); !st.ok()) return st;
      return Status::Ok();
    case kPromptPrefix: {
      const auto prompts = ledger.prompts();
      for (uint32_t i : h.prompts_by_key) {
        const std::string* project = label_of(h.project_of, prompts.entries()[i].cwd);
        if (!project) return not_counted;
        if (Status st = put(ledger.prompt_key(i), *project); !st.ok()) return st;
      }
      return Status::Ok();
    }
    case kRequestPrefix: {
      RequestRecord rec;
      CostBreakdown cost;
      for (uint32_t i : h.requests_by_key) {
        const RequestEntry e = ledger.requests()[i];
        const std::string *model = label_of(h.model_of, e.model),
                          *project = label_of(h.project_of, e.cwd);
        if (!model || !project) return not_counted;
        HistoryRequest(ledger, i, h.observed[i], *model, *project, &rec, &cost);
        if (Status st = put(ledger.request_key(i), rec.Encode()); !st.ok()) return st;
      }
      return Status::Ok();
    }
    case kSessionPrefix: {
      std::vector<std::pair<std::string_view, uint32_t>> sessions;  // id, cwd
      for (const auto& [session, entry] : ledger.sessions())
        sessions.emplace_back(strings.Get(session), entry.cwd);
      std::sort(sessions.begin(), sessions.end());
      for (const auto& [session, cwd] : sessions) {
        const std::string* project = label_of(h.project_of, cwd);
        if (!project) return not_counted;
        if (Status st = put(session, *project); !st.ok()) return st;
      }
      return Status::Ok();
    }
    case kToolPrefix: {
      const auto tools = ledger.tool_uses();
      for (uint32_t i : h.tools_by_key) {
        if (Status st = put(ledger.tool_key(i), strings.Get(tools.entries()[i].name)); !st.ok())
          return st;
      }
      return Status::Ok();
    }
    default:
      return Status::InvalidArgument("bulk start: no records of prefix " + std::string(1, prefix));
  }
}

// --- The bulk first start's record stream

// Between the encoding thread and the draining one: chunks of records (each a key and a value,
// their bytes appended to `bytes` and their sizes to `sizes`), recycled through `free`.
struct LiveAccounting::HistoryStream::Shared {
  struct Chunk {
    std::string bytes;
    std::vector<std::pair<uint32_t, uint32_t>> sizes;  // key, value
  };
  LiveAccounting* live = nullptr;
  std::string prefixes;
  size_t chunk_bytes = 0;
  std::vector<std::unique_ptr<Chunk>> chunks;  // every chunk, owned here
  std::mutex mu;
  std::condition_variable changed;
  std::vector<Chunk*> free;  // guarded by mu
  std::deque<Chunk*> full;   // guarded by mu; in order
  bool stop = false;         // guarded by mu; the drain failed or the stream is destroyed
  bool done = false;         // guarded by mu; the encoding ended, with `status`
  Status status;             // guarded by mu
  std::thread thread;

  // The encoding thread's body.
  void Encode() {
    Chunk* chunk = nullptr;
    // Hands `chunk` over; false when the stream was stopped.
    auto hand_over = [&] {
      std::lock_guard<std::mutex> lock(mu);
      full.push_back(chunk);
      chunk = nullptr;
      changed.notify_all();
      return !stop;
    };
    const Status stopped = Status::IoError("bulk start: the record stream was stopped");
    Status s;
    for (char prefix : prefixes) {
      s = live->EmitHistory(prefix, [&](std::string_view k, std::string_view v) -> Status {
        if (chunk && !chunk->sizes.empty() &&
            chunk->bytes.size() + k.size() + v.size() > chunk_bytes && !hand_over())
          return stopped;
        if (!chunk) {
          std::unique_lock<std::mutex> lock(mu);
          changed.wait(lock, [&] { return stop || !free.empty(); });
          if (stop) return stopped;
          chunk = free.back();
          free.pop_back();
        }
        chunk->bytes.append(k);
        chunk->bytes.append(v);
        chunk->sizes.emplace_back(uint32_t(k.size()), uint32_t(v.size()));
        return Status::Ok();
      });
      if (!s.ok()) break;
    }
    if (s.ok() && chunk) hand_over();
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    status = s;
    changed.notify_all();
  }
};

Status LiveAccounting::StreamHistory(std::string prefixes, std::unique_ptr<HistoryStream>* stream) {
  auto shared = std::make_unique<HistoryStream::Shared>();
  shared->live = this;
  shared->prefixes = std::move(prefixes);
  shared->chunk_bytes = std::max<size_t>(options_.history_chunk_bytes, 1);
  for (size_t i = 0; i < std::max<size_t>(options_.history_chunks, 1); ++i) {
    shared->chunks.push_back(std::make_unique<HistoryStream::Shared::Chunk>());
    shared->chunks.back()->bytes.reserve(shared->chunk_bytes);
    shared->free.push_back(shared->chunks.back().get());
  }
  HistoryStream::Shared* sp = shared.get();
  shared->thread = std::thread([sp] { sp->Encode(); });
  stream->reset(new HistoryStream(std::move(shared)));
  return Status::Ok();
}

LiveAccounting::HistoryStream::HistoryStream(std::unique_ptr<Shared> shared)
    : shared_(std::move(shared)) {}

LiveAccounting::HistoryStream::~HistoryStream() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop = true;
    shared_->changed.notify_all();
  }
  shared_->thread.join();
}

Status LiveAccounting::HistoryStream::Drain(
    const std::function<Status(std::string_view, std::string_view)>& sink) {
  Shared& sh = *shared_;
  for (;;) {
    Shared::Chunk* chunk = nullptr;
    {
      std::unique_lock<std::mutex> lock(sh.mu);
      sh.changed.wait(lock, [&] { return sh.done || !sh.full.empty(); });
      if (sh.full.empty()) return sh.status;  // done, and everything handed over was put
      chunk = sh.full.front();
      sh.full.pop_front();
    }
    size_t at = 0;
    for (const auto& [key_size, value_size] : chunk->sizes) {
      const std::string_view k(chunk->bytes.data() + at, key_size);
      const std::string_view v(chunk->bytes.data() + at + key_size, value_size);
      at += size_t(key_size) + value_size;
      if (Status s = sink(k, v); !s.ok()) {
        std::lock_guard<std::mutex> lock(sh.mu);
        sh.stop = true;
        sh.changed.notify_all();
        return s;
      }
    }
    chunk->bytes.clear();
    chunk->sizes.clear();
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.free.push_back(chunk);
    sh.changed.notify_all();
  }
}

}  // namespace ccmon::agent
