#include "gateway/store/series_table.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <type_traits>

#include "base/record_codec.h"

namespace ccmon::gateway {
namespace {

constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ull;

bool EndsWith(std::string_view s, std::string_view suffix, std::string_view* base) {
  if (s.size() <= suffix.size() || !s.ends_with(suffix)) return false;
  *base = s.substr(0, s.size() - suffix.size());
  return true;
}

}  // namespace

std::string SeriesKey(const Labels& labels) {
  std::string key;
  size_t bytes = 0;  // one allocation when every length is below 16 KiB (a 2-byte varint)
  for (const auto& [n, v] : labels) bytes += n.size() + v.size() + 4;
  key.reserve(bytes);
  for (const auto& [n, v] : labels) {
    if (n == "__name__") PutBytes(&key, v);
  }
  for (const auto& [n, v] : labels) {
    if (n == "__name__") continue;
    PutBytes(&key, n);
    PutBytes(&key, v);
  }
  return key;
}

void SeriesKeyOf(std::span<const std::pair<std::string_view, std::string_view>> labels,
                 std::string* key) {
  key->clear();
  for (const auto& [n, v] : labels) {
    if (n == "__name__") PutBytes(key, v);
  }
  for (const auto& [n, v] : labels) {
    if (n == "__name__") continue;
    PutBytes(key, n);
    PutBytes(key, v);
  }
}

std::string_view KeyOf(const IncomingSeries& in, std::string* scratch) {
  if (std::string_view given = GivenKeyOf(in); !given.empty()) return given;
  *scratch = SeriesKey(in.labels);
  return *scratch;
}

Labels LabelsOf(const IncomingSeries& in) {
  const std::string_view given = GivenKeyOf(in);
  if (given.empty()) return in.labels;
  Labels labels;
  if (!LabelsOfKey(given, &labels).ok()) labels.clear();
  return labels;
}

std::string_view NameViewOfKey(std::string_view key) {
  std::string_view name;
  if (!Reader(key).Bytes(&name)) return "";
  return name;
}

std::string_view LabelOfKey(std::string_view key, std::string_view name) {
  Reader in(key);
  std::string_view value;
  if (!in.Bytes(&value)) return "";
  if (name == "__name__") return value;
  while (!in.done()) {
    std::string_view n;
    if (!in.Bytes(&n) || !in.Bytes(&value)) return "";
    if (n == name) return value;
  }
  return "";
}

Status LabelsOfKey(std::string_view key, Labels* labels) {
  Labels out;
  Reader in(key);
  std::string name;
  if (!in.Bytes(&name)) return Status::Corruption("gateway: malformed series key");
  out.emplace_back("__name__", std::move(name));
  while (!in.done()) {
    std::string n, v;
    if (!in.Bytes(&n) || !in.Bytes(&v)) {
      return Status::Corruption("gateway: malformed series key");
    }
    out.emplace_back(std::move(n), std::move(v));
  }
  std::sort(out.begin(), out.end());
  *labels = std::move(out);
  return Status::Ok();
}

Status NameOfKey(std::string_view key, std::string* name) {
  if (!Reader(key).Bytes(name)) return Status::Corruption("gateway: malformed series key");
  return Status::Ok();
}

static_assert(std::is_same_v<SeriesEntry, std::map<std::string, SeriesState>::value_type>);

bool IsStaleMarker(double v) { return std::bit_cast<uint64_t>(v) == kStaleNaNBits; }

void SeriesTable::PutMetadata(rw::Metadata m) {
  std::string family = m.family;
  metadata_[std::move(family)] = std::move(m);
}

FamilyOf SeriesTable::Family(std::string_view name) const {
  FamilyOf f;
  const auto lookup = [&](std::string_view n) -> const rw::Metadata* {
    auto it = metadata_.find(std::string(n));
    return it == metadata_.end() ? nullptr : &it->second;
  };
  if (const rw::Metadata* m = lookup(name)) {
    f.family = std::string(name);
    f.kind = m->kind;
    f.metadata = m;
    return f;
  }
  std::string_view base;
  const auto take = [&](const rw::Metadata* m) {
    f.family = std::string(base);
    f.kind = m->kind;
    f.metadata = m;
  };
  if (EndsWith(name, "_total", &base)) {
    if (const rw::Metadata* m = lookup(base); m && m->kind == rw::MetricKind::kCounter) {
      take(m);
      return f;
    }
  }
  if (EndsWith(name, "_bucket", &base)) {
    if (const rw::Metadata* m = lookup(base); m && m->kind == rw::MetricKind::kHistogram) {
      take(m);
      return f;
    }
  }
  if (EndsWith(name, "_count", &base) || EndsWith(name, "_sum", &base)) {
    if (const rw::Metadata* m = lookup(base);
        m && (m->kind == rw::MetricKind::kHistogram || m->kind == rw::MetricKind::kSummary)) {
      take(m);
      return f;
    }
  }
  f.family = std::string(name);
  return f;
}

bool SeriesTable::IsCounter(std::string_view name) const {
  const FamilyOf f = Family(name);
  std::string_view base;
  switch (f.kind) {
    case rw::MetricKind::kCounter:
      return true;
    case rw::MetricKind::kHistogram:
      return EndsWith(name, "_bucket", &base) || EndsWith(name, "_count", &base);
    case rw::MetricKind::kSummary:
      return EndsWith(name, "_count", &base);
    case rw::MetricKind::kUnknown:
      return f.metadata == nullptr && EndsWith(name, "_total", &base);
    default:
      return false;
  }
}

void SeriesTable::Plan(const std::vector<IncomingSeries>& series,
                       const std::vector<rw::Metadata>& metadata, PlannedChanges* changes,
                       ApplyResult* result, std::vector<IncomingSeries>* stored) const {
  GroupPlan plan(this);
  plan.Add(series, metadata, result, stored);
  *changes = plan.TakeChanges();
}

GroupPlan::GroupPlan(const SeriesTable* table) : table_(table) { changes_.planned_against = table; }

void GroupPlan::Reset() {
  changes_.series.clear();
  changes_.metadata.clear();
  changes_.entries.clear();
  changes_.planned_against = table_;
  existing_index_.Clear();
  // clear() zeroes every bucket, even of an empty map: a map that grew while series were
  // created would cost that at every group.
  if (!new_index_.empty()) new_index_.clear();
  if (!metadata_index_.empty()) metadata_index_.clear();
  rules_.reset();
}

void GroupPlan::Add(const std::vector<IncomingSeries>& series,
                    const std::vector<rw::Metadata>& metadata, ApplyResult* result,
                    std::vector<IncomingSeries>* stored) {
  *result = ApplyResult{};
  if (stored != nullptr) stored->clear();
  // Metadata first, so that a request's own TYPE decides what its series are. Compared with
  // what the group already changed, else with the table.
  std::map<std::string_view, const rw::Metadata*> changed;  // the last of several wins
  for (const rw::Metadata& m : metadata) {
    const rw::Metadata* current = nullptr;
    if (auto g = metadata_index_.find(m.family); g != metadata_index_.end()) {
      current = &changes_.metadata[g->second];
    } else if (auto it = table_->metadata_.find(m.family); it != table_->metadata_.end()) {
      current = &it->second;
    }
    auto seen = changed.find(m.family);
    if (seen == changed.end() && current != nullptr && *current == m) continue;
    changed[m.family] = &m;
  }
  for (const auto& [family, m] : changed) {
    if (rules_ == nullptr) {
      rules_ = std::make_unique<SeriesTable>();
      rules_->metadata_ = table_->metadata_;
    }
    rules_->metadata_[m->family] = *m;
    auto [g, inserted] = metadata_index_.emplace(m->family, changes_.metadata.size());
    if (inserted) {
      changes_.metadata.push_back(*m);
    } else {
      changes_.metadata[g->second] = *m;
    }
  }
  result->metadata_changed = changed.size();
  const SeriesTable* rules = rules_ != nullptr ? rules_.get() : table_;

  // The lookups below are memory-bound: their loads are started ahead, stage by stage, for
  // the series that come with their key (all of the write handler's).
  // A series the caller named by its entry (the series cache) has its state read below: that
  // node is prefetched here too.
  const SeriesTable::KeyIndex& index = table_->index_;
  hashes_.assign(series.size(), 0);
  size_t hashed = 0;  // series looked up by key (none when the series cache knew them all)
  for (size_t i = 0; i < series.size(); ++i) {
    __builtin_prefetch(series[i].samples.data());  // each series' samples are a heap block
    if (series[i].entry != nullptr) {
      __builtin_prefetch(&series[i].entry->second);
      continue;
    }
    if (series[i].key.empty()) continue;
    hashes_[i] = SeriesTable::KeyIndex::Hash(series[i].key);
    index.PrefetchSlot(hashes_[i]);
    ++hashed;
  }
  // At most one position per series of this request: sized once, not doubled from 64 in every
  // group (the growth was 3 % of the gateway's CPU).
  existing_index_.Reserve(changes_.series.size() + series.size());
  for (size_t i = 0; hashed != 0 && i < series.size(); ++i) {
    if (hashes_[i] != 0) index.PrefetchEntry(hashes_[i]);
  }
  for (size_t i = 0; hashed != 0 && i < series.size(); ++i) {
    if (hashes_[i] != 0) index.PrefetchKey(hashes_[i]);
  }
  std::string scratch;
  constexpr size_t kAhead = 8;  // and again a few series ahead, from wherever they landed
  for (size_t i = 0; i < series.size(); ++i) {
    if (i + kAhead < series.size()) {
      const IncomingSeries& next = series[i + kAhead];
      __builtin_prefetch(next.samples.data());
      if (next.entry != nullptr) __builtin_prefetch(&next.entry->second);
    }
    const IncomingSeries& in = series[i];
    // An entry the caller brought (the handler's series cache) is the table's own: no lookup,
    // and its key is not read (below, only a new series needs it).
    const std::string_view key = in.entry != nullptr ? std::string_view() : KeyOf(in, &scratch);
    SeriesEntry* entry = in.entry != nullptr ? const_cast<SeriesEntry*>(in.entry)
                         : in.key.empty()    ? table_->Find(key)
                                             : index.Find(key, hashes_[i]);
    size_t pos = kNone;
    size_t free_slot = 0;  // where an entry not planned yet goes (one probe for both)
    if (entry != nullptr) {
      pos = existing_index_.FindOrSlot(entry, &free_slot);
    } else if (auto g = new_index_.find(std::string(key)); g != new_index_.end()) {
      pos = g->second;
    }
    SeriesState state;
    bool exists = true;
    if (pos != kNone) {
      state = changes_.series[pos].second;
    } else if (entry != nullptr) {
      state = entry->second;
    } else {
      exists = false;
    }
    // The name is read from the key only for a counter-reset check (rare): a cached entry's key
    // bytes are a cache line the rest of the plan never touches.
    bool counter = false, counter_known = false;
    bool changed_state = false;
    for (const rw::Sample& s : in.samples) {
      if (exists && s.timestamp_ms <= state.timestamp_ms) {
        ++result->duplicates;
        continue;
      }
      if (exists && s.value < state.value) {  // false for NaNs
        if (!counter_known) {
          counter = rules->IsCounter(NameViewOfKey(entry != nullptr ? entry->first : key));
          counter_known = true;
        }
        if (counter) ++result->counter_resets;
      }
      if (!exists) ++result->new_series;
      exists = true;
      state = SeriesState{s.timestamp_ms, s.value};
      ++result->accepted;
      if (stored != nullptr) {
        if (!changed_state) {
          stored->push_back(IncomingSeries{in.labels, {}, in.key});
          stored->back().entry = in.entry;
          stored->back().generation = in.generation;
        }
        stored->back().samples.push_back(s);
      }
      changed_state = true;
    }
    if (!changed_state) continue;
    if (pos != kNone) {
      changes_.series[pos].second = state;
      continue;
    }
    if (entry != nullptr) {
      existing_index_.InsertAt(free_slot, entry, changes_.series.size());  // reserved above
    } else {
      new_index_.emplace(std::string(key), changes_.series.size());
    }
    changes_.series.emplace_back(entry != nullptr ? std::string() : std::string(key), state);
    changes_.entries.push_back(entry);
  }
}

size_t GroupPlan::EntryPositions::Find(const SeriesEntry* e) const {
  if (slots_.empty()) return kNone;
  const size_t mask = slots_.size() - 1;
  for (size_t i = Hash(e) & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.epoch != epoch_) return kNone;
    if (slot.entry == e) return slot.position;
  }
}

size_t GroupPlan::EntryPositions::FindOrSlot(const SeriesEntry* e, size_t* free_slot) const {
  const size_t mask = slots_.size() - 1;  // not empty: Reserve made room
  for (size_t i = Hash(e) & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.epoch != epoch_) {
      *free_slot = i;
      return kNone;
    }
    if (slot.entry == e) return slot.position;
  }
}

void GroupPlan::EntryPositions::InsertAt(size_t free_slot, const SeriesEntry* e, size_t position) {
  slots_[free_slot] = Slot{e, uint32_t(position), epoch_};
  ++size_;
}

void GroupPlan::EntryPositions::Reserve(size_t n) {
  size_t slots = std::max<size_t>(64, slots_.size());
  while (slots < n * 2) slots *= 2;
  if (slots == slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(slots, Slot{});
  size_ = 0;
  for (const Slot& slot : old) {
    if (slot.epoch == epoch_) Insert(slot.entry, slot.position);
  }
}

void GroupPlan::EntryPositions::Insert(const SeriesEntry* e, size_t position) {
  if ((size_ + 1) * 2 > slots_.size()) Reserve(std::max<size_t>(32, slots_.size()));
  const size_t mask = slots_.size() - 1;
  size_t i = Hash(e) & mask;
  while (slots_[i].epoch == epoch_) i = (i + 1) & mask;
  slots_[i] = Slot{e, uint32_t(position), epoch_};
  ++size_;
}

void GroupPlan::EntryPositions::Clear() {
  size_ = 0;
  if (++epoch_ == 0) {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    epoch_ = 1;
  }
}

bool EntryIdMap::Find(const SeriesEntry* e, uint32_t* id) const {
  if (slots_.empty()) return false;
  const size_t mask = slots_.size() - 1;
  for (size_t i = Hash(e) & mask;; i = (i + 1) & mask) {
    if (slots_[i].entry == e) {
      *id = slots_[i].id;
      return true;
    }
    if (slots_[i].entry == nullptr) return false;
  }
}

void EntryIdMap::Prefetch(const SeriesEntry* e) const {
  if (!slots_.empty()) __builtin_prefetch(&slots_[Hash(e) & (slots_.size() - 1)]);
}

EntryIdMap::Slot* EntryIdMap::SlotOf(const SeriesEntry* e) {
  if ((size_ + 1) * 2 > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, old.size() * 2), Slot{});
    const size_t mask = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.entry == nullptr) continue;
      size_t i = Hash(slot.entry) & mask;
      while (slots_[i].entry != nullptr) i = (i + 1) & mask;
      slots_[i] = slot;
    }
  }
  const size_t mask = slots_.size() - 1;
  size_t i = Hash(e) & mask;
  while (slots_[i].entry != nullptr && slots_[i].entry != e) i = (i + 1) & mask;
  if (slots_[i].entry == nullptr) {
    slots_[i].entry = e;
    ++size_;
    return &slots_[i];
  }
  return &slots_[i];
}

void EntryIdMap::Set(const SeriesEntry* e, uint32_t id) { SlotOf(e)->id = id; }

void EntryIdMap::SetIfAbsent(const SeriesEntry* e, uint32_t id) {
  const size_t before = size_;
  Slot* slot = SlotOf(e);
  if (size_ != before) slot->id = id;
}

void EntryIdMap::Clear() {
  if (size_ == 0) return;
  std::fill(slots_.begin(), slots_.end(), Slot{});
  size_ = 0;
}

void SeriesTable::Commit(const PlannedChanges& changes, std::vector<const Entry*>* touched) {
  for (const rw::Metadata& m : changes.metadata) metadata_[m.family] = m;
  const bool planned_here =
      changes.planned_against == this && changes.entries.size() == changes.series.size();
  for (size_t i = 0; i < changes.series.size(); ++i) {
    const SeriesState& state = changes.series[i].second;
    // Entries are never removed, so one found at planning is still the series' entry.
    Entry* e =
        planned_here && changes.entries[i] != nullptr ? changes.entries[i] : Find(changes.key(i));
    if (e != nullptr) {
      e->second = state;
    } else {
      e = Insert(std::string(changes.key(i)), state);
    }
    if (touched != nullptr) touched->push_back(e);
  }
}

uint64_t SeriesTable::KeyIndex::Hash(std::string_view key) {
  return std::hash<std::string_view>()(key);
}

void SeriesTable::KeyIndex::PrefetchSlot(uint64_t hash) const {
  if (!slots_.empty()) __builtin_prefetch(&slots_[size_t(hash) & (slots_.size() - 1)]);
}

void SeriesTable::KeyIndex::PrefetchEntry(uint64_t hash) const {
  if (slots_.empty()) return;
  const Slot& slot = slots_[size_t(hash) & (slots_.size() - 1)];
  if (slot.entry != nullptr) __builtin_prefetch(slot.entry);
}

void SeriesTable::KeyIndex::PrefetchKey(uint64_t hash) const {
  if (slots_.empty()) return;
  const Slot& slot = slots_[size_t(hash) & (slots_.size() - 1)];
  if (slot.entry != nullptr && slot.hash == hash) __builtin_prefetch(slot.entry->first.data());
}

SeriesTable::Entry* SeriesTable::KeyIndex::Find(std::string_view key, uint64_t hash) const {
  if (slots_.empty()) return nullptr;
  const size_t mask = slots_.size() - 1;
  for (size_t i = size_t(hash) & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.entry == nullptr) return nullptr;
    if (slot.hash == hash && slot.entry->first == key) return slot.entry;
  }
}

void SeriesTable::KeyIndex::Insert(Entry* e) {
  if ((size_ + 1) * 2 > slots_.size()) Grow(std::max<size_t>(64, slots_.size() * 2));
  const uint64_t hash = Hash(e->first);
  const size_t mask = slots_.size() - 1;
  size_t i = size_t(hash) & mask;
  while (slots_[i].entry != nullptr) i = (i + 1) & mask;
  slots_[i] = Slot{hash, e};
  ++size_;
}

void SeriesTable::KeyIndex::Reserve(size_t n) {
  size_t slots = 64;
  while (slots < n * 2) slots *= 2;
  if (slots > slots_.size()) Grow(slots);
}

void SeriesTable::KeyIndex::Grow(size_t slots) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(slots, Slot{});
  const size_t mask = slots - 1;
  for (const Slot& slot : old) {
    if (slot.entry == nullptr) continue;
    size_t i = size_t(slot.hash) & mask;
    while (slots_[i].entry != nullptr) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

SeriesTable::Entry* SeriesTable::Insert(std::string key, SeriesState state) {
  Entry* e = &*series_.emplace(std::move(key), state).first;
  index_.Insert(e);
  return e;
}

const SeriesTable::Entry* SeriesTable::Put(std::string key, SeriesState state) {
  if (Entry* e = Find(key); e != nullptr) {
    e->second = state;
    return e;
  }
  return Insert(std::move(key), state);
}

uint64_t SeriesTable::NextGeneration() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

SeriesTable::SeriesTable(const SeriesTable& other)
    : series_(other.series_), metadata_(other.metadata_), generation_(NextGeneration()) {
  index_.Reserve(series_.size());
  for (Entry& e : series_) index_.Insert(&e);
}

SeriesTable& SeriesTable::operator=(const SeriesTable& other) {
  if (this != &other) *this = SeriesTable(other);
  return *this;
}

SeriesTable::SeriesTable(SeriesTable&& other) noexcept
    : series_(std::move(other.series_)),
      index_(std::move(other.index_)),
      metadata_(std::move(other.metadata_)),
      generation_(other.generation_) {
  other.index_ = KeyIndex();
  other.series_.clear();
  other.generation_ = NextGeneration();
}

SeriesTable& SeriesTable::operator=(SeriesTable&& other) noexcept {
  if (this != &other) {
    series_ = std::move(other.series_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
    generation_ = other.generation_;  // the entries moved with it
    other.index_ = KeyIndex();
    other.series_.clear();
    other.generation_ = NextGeneration();
  }
  return *this;
}

}  // namespace ccmon::gateway
