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
                       ApplyResult* result, std::vector<IncomingSeries>* stored) const {
  *result = ApplyResult{};
  if (stored != nullptr) stored->clear();
  changes->series.clear();
  changes->metadata.clear();
  // Metadata first, so that a request's own TYPE decides what its series are (the table is
  // consulted through a copy only when metadata changes; usually it does not).
  std::map<std::string, rw::Metadata> seen;
  for (const rw::Metadata& m : metadata) {
    auto it = metadata_.find(m.family);
    if (it != metadata_.end() && it->second == m) continue;
    seen[m.family] = m;  // the last of several in one request wins
  }
  for (auto& [family, m] : seen) changes->metadata.push_back(m);
  result->metadata_changed = changes->metadata.size();
  const SeriesTable* rules = this;
  SeriesTable with_new;
  if (!seen.empty()) {
    with_new.metadata_ = metadata_;
    for (const rw::Metadata& m : changes->metadata) with_new.metadata_[m.family] = m;
    rules = &with_new;
  }

  std::unordered_map<std::string, size_t> index;  // key -> position in changes->series
  for (const IncomingSeries& in : series) {
    std::string key = SeriesKey(in.labels);
    auto pos = index.find(key);
    SeriesState state;
    bool exists = true;
    if (pos != index.end()) {
      state = changes->series[pos->second].second;
    } else if (auto it = series_.find(key); it != series_.end()) {
      state = it->second;
    } else {
      exists = false;
    }
    std::string_view name;
    for (const auto& [ln, lv] : in.labels) {
      if (ln == "__name__") name = lv;
    }
    bool counter = false, counter_known = false;
    bool changed = false;
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
      if (!exists && pos == index.end()) ++result->new_series;
      exists = true;
      state = SeriesState{s.timestamp_ms, s.value};
      ++result->accepted;
      if (stored != nullptr) {
        if (!changed) stored->push_back(IncomingSeries{in.labels, {}});
        stored->back().samples.push_back(s);
      }
      changed = true;
    }
    if (!changed) continue;
    if (pos != index.end()) {
      changes->series[pos->second].second = state;
    } else {
      index.emplace(key, changes->series.size());
      changes->series.emplace_back(std::move(key), state);
    }
  }
}

void SeriesTable::Commit(const PlannedChanges& changes) {
  for (const rw::Metadata& m : changes.metadata) metadata_[m.family] = m;
  for (const auto& [key, state] : changes.series) series_[key] = state;
}

}  // namespace ccmon::gateway
