#include "agent/engine/series_table.h"

#include <algorithm>
#include <cstdlib>

#include "base/record_codec.h"
#include "exposition/text_format.h"

namespace ccmon::agent {
namespace {

constexpr uint8_t kRecordVersion = 1;

double ToDouble(PicoSum v, bool usd) {
  // A count up to 2^53 converts exactly (the common case, without text: resends convert every
  // series every 15 s).
  constexpr PicoSum kExact = PicoSum(1) << 53;
  if (!usd && v >= -kExact && v <= kExact) return double(int64_t(v));
  // The exact decimal, then the nearest double (as replay's remote-write does).
  return std::strtod(FormatValue(v, usd).c_str(), nullptr);
}

}  // namespace

std::string SeriesTable::Key(MetricFamily family, std::span<const std::string_view> labels) {
  std::string k;
  k.push_back(char(family));
  for (std::string_view l : labels) PutBytes(&k, l);
  return k;
}

uint32_t SeriesTable::ShardOf(std::string_view series_key, uint32_t shards) {
  return shards <= 1 ? 0 : uint32_t(StableHash(series_key) % shards);
}

SeriesState& SeriesTable::Get(const SeriesIncrement& inc, bool* created) {
  // Called for every increment of every line: the key is built in a reused buffer, and copied
  // only for a new series (no allocation per call).
  key_scratch_.clear();
  key_scratch_.push_back(char(inc.family));
  for (std::string_view l : inc.labels()) PutBytes(&key_scratch_, l);
  auto found = index_.find(key_scratch_);
  if (found != index_.end()) {
    *created = false;
    return *found->second;
  }
  auto [it, inserted] = series_.try_emplace(key_scratch_);
  SeriesState& s = it->second;
  *created = inserted;
  index_.emplace(it->first, &s);
  if (inserted) {
    s.family = inc.family;
    for (std::string_view l : inc.labels()) s.labels.emplace_back(l);
    const FamilyDesc& d = DescribeFamily(inc.family);
    if (d.type == MetricType::kHistogram) s.buckets.assign(d.buckets.size(), 0);
    s.unsent = s.unsaved = true;
    maybe_unsent_ = maybe_unsaved_ = true;
    ++version_;
  }
  return s;
}

void SeriesTable::Ensure(const SeriesIncrement& inc) {
  bool created = false;
  Get(inc, &created);
}

void SeriesTable::Apply(const SeriesIncrement& inc, int64_t event_ms) {
  bool created = false;
  SeriesState* s = Find(inc, &created);
  ApplyTo(s, created, inc, event_ms);
}

void SeriesTable::ApplyTo(SeriesState* series, bool created, const SeriesIncrement& inc,
                          int64_t event_ms) {
  SeriesState& s = *series;
  const FamilyDesc& d = DescribeFamily(inc.family);
  if (d.type == MetricType::kHistogram) {
    ++s.count;
    s.value += inc.delta;
    for (size_t b = 0; b < d.buckets.size(); ++b)
      if (inc.delta <= d.buckets[b]) ++s.buckets[b];
  } else {
    if (inc.delta == 0 && !created) return;  // nothing changed
    s.value += inc.delta;
  }
  s.pending_event_ms = std::max(s.pending_event_ms, event_ms);
  s.unsent = s.unsaved = true;
  maybe_unsent_ = maybe_unsaved_ = true;
  ++version_;
}

void SeriesTable::Set(const SeriesIncrement& inc, int64_t event_ms) {
  bool created = false;
  SeriesState& s = Get(inc, &created);
  if (s.value == inc.delta && !created) return;  // nothing changed
  s.value = inc.delta;
  // The newest change is this one: a gauge states its value as of `event_ms`.
  s.pending_event_ms = event_ms;
  s.unsent = s.unsaved = true;
  maybe_unsent_ = maybe_unsaved_ = true;
  ++version_;
}

const SeriesTable::SampleNames& SeriesTable::NamesOf(MetricFamily family) {
  const size_t f = size_t(family);
  if (f >= sample_names_.size()) sample_names_.resize(f + 1);
  if (!sample_names_[f]) {
    const FamilyDesc& d = DescribeFamily(family);
    auto n = std::make_unique<SampleNames>();
    n->plain = d.type == MetricType::kGauge ? d.name : d.name + "_total";
    n->bucket = d.name + "_bucket";
    n->count = d.name + "_count";
    n->sum = d.name + "_sum";
    for (const PicoSum bound : d.buckets) n->le.push_back(FormatValue(bound, d.usd));
    sample_names_[f] = std::move(n);
  }
  return *sample_names_[f];
}

Status SeriesTable::TakeSamples(const SampleOptions& o, const RequestSink& sink,
                                SampleStats* stats) {
  // Every step of an idle agent asks (every 5 s): without a change or a resend due, no series
  // needs a sample and the walk over all of them is skipped.
  if (!o.all && o.resend_before_ms == kNever && !maybe_unsent_) return Status::Ok();
  const uint32_t shards = std::max<uint32_t>(o.shards, 1);
  std::vector<std::string> current(shards);  // each shard's request being filled
  std::vector<size_t> in_last(shards, 0);    // samples in it
  std::vector<rw::LabelRef> base, labels;    // a series' labels; one sample's, sorted by name
  for (auto& [key, s] : series_) {
    const bool resend =
        o.all || (o.resend_before_ms != kNever && s.last_queued_ms <= o.resend_before_ms);
    if (!s.unsent && !resend) continue;
    // The timestamp rule of the file comment.
    int64_t ts = o.now_ms;
    if (s.unsent && s.pending_event_ms != kNever) {
      if (s.pending_event_ms < o.now_ms - o.max_sample_age_ms) {
        ++stats->stamped_now;
      } else {
        ts = std::min(s.pending_event_ms, o.now_ms);
      }
    }
    if (o.after_ms != kNever && ts <= o.after_ms) ts = o.after_ms + 1;
    if (s.last_sample_ms != kNever && ts <= s.last_sample_ms) ts = s.last_sample_ms + 1;
    if (!s.unsent) ++stats->resent;

    const FamilyDesc& d = DescribeFamily(s.family);
    const SampleNames& names = NamesOf(s.family);
    base.clear();
    for (size_t i = 0; i < d.label_names.size() && i < s.labels.size(); ++i) {
      // An empty value is no label in Prometheus; remote-write must not send it.
      if (!s.labels[i].empty()) base.emplace_back(d.label_names[i], s.labels[i]);
    }
    for (const auto& l : static_labels_) base.emplace_back(l.first, l.second);
    std::sort(base.begin(), base.end());
    const bool histogram = d.type == MetricType::kHistogram;
    const size_t samples = histogram ? d.buckets.size() + 3 : 1;

    const uint32_t shard = ShardOf(key, shards);
    if (in_last[shard] > 0 && in_last[shard] + samples > o.max_samples_per_request) {
      if (Status st = sink(shard, std::move(current[shard]), uint32_t(in_last[shard])); !st.ok())
        return st;
      current[shard].clear();
      in_last[shard] = 0;
    }
    std::string& request = current[shard];
    // One sample: the series' labels with __name__ (and a bucket's le) in their sorted places.
    auto add = [&](std::string_view name, std::string_view le, double v) {
      labels.assign(base.begin(), base.end());
      const rw::LabelRef name_label("__name__", name);
      labels.insert(std::lower_bound(labels.begin(), labels.end(), name_label), name_label);
      if (!le.empty()) {
        const rw::LabelRef le_label("le", le);
        labels.insert(std::lower_bound(labels.begin(), labels.end(), le_label), le_label);
      }
      return rw::AppendSeries(labels, rw::Sample{ts, v}, &request);
    };
    if (histogram) {
      for (size_t b = 0; b < d.buckets.size(); ++b) {
        if (Status st = add(names.bucket, names.le[b], double(s.buckets[b])); !st.ok()) return st;
      }
      if (Status st = add(names.bucket, "+Inf", double(s.count)); !st.ok()) return st;
      if (Status st = add(names.count, {}, double(s.count)); !st.ok()) return st;
      if (Status st = add(names.sum, {}, ToDouble(s.value, d.usd)); !st.ok()) return st;
    } else if (Status st = add(names.plain, {}, ToDouble(s.value, d.usd)); !st.ok()) {
      return st;
    }
    in_last[shard] += samples;
    stats->samples += samples;
    ++stats->series;

    s.last_sample_ms = ts;
    s.last_queued_ms = o.now_ms;
    s.pending_event_ms = kNever;
    s.unsent = false;
    s.unsaved = true;
    maybe_unsaved_ = true;
  }
  for (uint32_t shard = 0; shard < shards; ++shard) {
    if (in_last[shard] == 0) continue;
    if (Status st = sink(shard, std::move(current[shard]), uint32_t(in_last[shard])); !st.ok())
      return st;
  }
  maybe_unsent_ = false;  // every series was looked at and given its sample
  return Status::Ok();
}

void SeriesTable::TakeRecords(std::vector<std::pair<std::string, std::string>>* out) {
  if (!maybe_unsaved_) return;  // as TakeSamples: an idle step changed nothing
  maybe_unsaved_ = false;
  for (auto& [key, s] : series_) {
    if (!s.unsaved) continue;
    std::string rec;
    rec.push_back(char(kRecordVersion));
    PutInt128(&rec, s.value);
    PutVarint(&rec, s.count);
    PutVarint(&rec, s.buckets.size());
    for (uint64_t b : s.buckets) PutVarint(&rec, b);
    PutSignedVarint(&rec, s.last_sample_ms);
    PutSignedVarint(&rec, s.pending_event_ms);
    PutSignedVarint(&rec, s.last_queued_ms);
    rec.push_back(char(s.unsent ? 1 : 0));
    out->emplace_back(std::string(1, kRecordPrefix) + key, std::move(rec));
    s.unsaved = false;
  }
}

Status SeriesTable::Load(std::string_view key, std::string_view record) {
  auto bad = [&] { return Status::Corruption("agent state: malformed series record"); };
  if (key.size() < 2 || key[0] != kRecordPrefix) return bad();
  key.remove_prefix(1);
  const uint8_t family = uint8_t(key[0]);
  if (family >= kClaudeFamilyCount &&
      (family < kMetricFamilyCount || family >= kMetricFamilyCount + kAgentFamilyCount)) {
    return bad();
  }
  SeriesState s;
  s.family = MetricFamily(family);
  Reader lr(key.substr(1));
  const FamilyDesc& d = DescribeFamily(s.family);
  while (!lr.done()) {
    std::string v;
    if (!lr.Bytes(&v)) return bad();
    s.labels.push_back(std::move(v));
  }
  if (s.labels.size() != d.label_names.size()) return bad();
  Reader r(record);
  uint8_t version = 0, unsent = 0;
  uint64_t nb = 0;
  if (!r.Byte(&version) || version != kRecordVersion || !r.Int128(&s.value) ||
      !r.Varint(&s.count) || !r.Varint(&nb) ||
      nb != (d.type == MetricType::kHistogram ? d.buckets.size() : 0)) {
    return bad();
  }
  s.buckets.resize(nb);
  for (auto& b : s.buckets)
    if (!r.Varint(&b)) return bad();
  if (!r.SignedVarint(&s.last_sample_ms) || !r.SignedVarint(&s.pending_event_ms) ||
      !r.SignedVarint(&s.last_queued_ms) || !r.Byte(&unsent) || !r.done()) {
    return bad();
  }
  s.unsent = unsent != 0;
  if (s.unsent) maybe_unsent_ = true;
  auto [it, inserted] = series_.insert_or_assign(std::string(key), std::move(s));
  if (inserted) index_.emplace(it->first, &it->second);
  ++version_;
  return Status::Ok();
}

PicoSum SeriesTable::Value(MetricFamily family, const std::vector<std::string>& labels) const {
  std::vector<std::string_view> views(labels.begin(), labels.end());
  auto it = series_.find(Key(family, views));
  return it == series_.end() ? 0 : it->second.value;
}

std::string SeriesTable::Exposition(bool openmetrics, bool agent_families) const {
  std::vector<FamilyTotals> families(kClaudeFamilyCount);
  for (size_t f = 0; f < kClaudeFamilyCount; ++f) families[f].desc = FamilyCatalogue()[f];
  std::vector<FamilyTotals> agent(kAgentFamilyCount);
  for (size_t f = 0; f < kAgentFamilyCount; ++f) agent[f].desc = AgentFamilyCatalogue()[f];
  for (const auto& [key, s] : series_) {
    SeriesTotal t;
    t.labels = s.labels;
    t.value = s.value;
    t.buckets = s.buckets;
    t.count = s.count;
    if (IsAgentFamily(s.family))
      agent[size_t(s.family) - kMetricFamilyCount].series.push_back(std::move(t));
    else
      families[size_t(s.family)].series.push_back(std::move(t));
  }
  // Replay's families always (a family without series still has its HELP and TYPE, as replay
  // writes it); the agent's only once they exist, so that text without them stays replay's.
  if (agent_families) {
    for (FamilyTotals& f : agent)
      if (!f.series.empty()) families.push_back(std::move(f));
  }
  return TotalsText(families, openmetrics);
}

}  // namespace ccmon::agent
