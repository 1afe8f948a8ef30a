#include "gateway/store/series_table.h"

#include <algorithm>
#include <bit>
#include <cmath>

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
                       ApplyResult* result) const {
  GroupPlan plan(this);
  plan.Add(series, metadata, result);
  *changes = plan.TakeChanges();
}

GroupPlan::GroupPlan(const SeriesTable* table) : table_(table) {}

void GroupPlan::Add(const std::vector<IncomingSeries>& series,
                    const std::vector<rw::Metadata>& metadata, ApplyResult* result) {
  *result = ApplyResult{};
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

  for (const IncomingSeries& in : series) {
    std::string key = SeriesKey(in.labels);
    auto pos = series_index_.find(key);
    SeriesState state;
    bool exists = true;
    if (pos != series_index_.end()) {
      state = changes_.series[pos->second].second;
    } else if (auto it = table_->series_.find(key); it != table_->series_.end()) {
      state = it->second;
    } else {
      exists = false;
    }
    std::string_view name;
    for (const auto& [ln, lv] : in.labels) {
      if (ln == "__name__") name = lv;
    }
    bool counter = false, counter_known = false;
    bool changed_state = false;
    for (const rw::Sample& s : in.samples) {
      if (exists && s.timestamp_ms <= state.timestamp_ms) {
        ++result->duplicates;
        continue;
      }
      if (exists && s.value < state.value) {  // false for NaNs
        if (!counter_known) {
          counter = rules->IsCounter(name);
          counter_known = true;
        }
        if (counter) ++result->counter_resets;
      }
      if (!exists) ++result->new_series;
      exists = true;
      state = SeriesState{s.timestamp_ms, s.value};
      ++result->accepted;
      changed_state = true;
    }
    if (!changed_state) continue;
    if (pos != series_index_.end()) {
      changes_.series[pos->second].second = state;
    } else {
      series_index_.emplace(key, changes_.series.size());
      changes_.series.emplace_back(std::move(key), state);
    }
  }
}

void SeriesTable::Commit(const PlannedChanges& changes, std::vector<const Entry*>* touched) {
  for (const rw::Metadata& m : changes.metadata) metadata_[m.family] = m;
  for (const auto& [key, state] : changes.series) {
    auto [it, inserted] = series_.try_emplace(key, state);
    if (!inserted) it->second = state;
    if (touched != nullptr) touched->push_back(&*it);
  }
}

const SeriesTable::Entry* SeriesTable::Put(std::string key, SeriesState state) {
  return &*series_.insert_or_assign(std::move(key), state).first;
}

}  // namespace ccmon::gateway
