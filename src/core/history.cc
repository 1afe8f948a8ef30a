#include "core/history.h"

#include <algorithm>
#include <limits>
#include <queue>
#include <utility>

#include "core/timeutil.h"

namespace ccmon {
namespace {

std::string Seconds(int64_t ms) {
  std::string s = std::to_string(FloorDiv(ms, 1000));
  int64_t frac = ms - FloorDiv(ms, 1000) * 1000;
  if (frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac));
    s += buf;
    while (s.back() == '0') s.pop_back();
  }
  return s;
}

// The step whose end is the first step boundary at or after ts: ceil(ts / step).
int64_t StepOf(int64_t ts, int64_t step) { return -FloorDiv(-ts, step); }

void WriteHeader(const FamilyDesc& d, std::ostream& out) {
  out << "# TYPE " << d.name << (d.type == MetricType::kCounter ? " counter\n" : " histogram\n");
  if (!d.unit.empty()) out << "# UNIT " << d.name << " " << d.unit << "\n";
  out << "# HELP " << d.name << " " << EscapeHelp(d.help) << "\n";
}

class OpenMetricsSink : public HistorySink {
 public:
  explicit OpenMetricsSink(std::ostream& out) : out_(out) {}
  void BeginFamily(const FamilyDesc& d) override { WriteHeader(d, out_); }
  void Sample(const std::string& sample_name, const std::vector<std::string>& label_names,
              const std::vector<std::string>& label_values, const char* extra_name,
              const std::string* extra_value, __int128 value, bool usd,
              int64_t timestamp_ms) override {
    out_ << sample_name << LabelString(label_names, label_values, extra_name, extra_value) << ' '
         << FormatValue(value, usd) << ' ' << Seconds(timestamp_ms) << '\n';
  }

 private:
  std::ostream& out_;
};

}  // namespace

HistoryStats WriteOpenMetricsHistory(const std::vector<FamilyEvents>& families, int64_t step,
                                     std::ostream& out) {
  OpenMetricsSink sink(out);
  HistoryStats stats = EmitHistory(families, step, &sink);
  out << "# EOF\n";
  return stats;
}

namespace {

// The samples of one series, produced lazily in ascending time: PeekTime() is the timestamp of
// the next group (one sample for a counter; every bucket, count and sum for a histogram), and
// EmitNext() hands that group to a sink. State is O(1) per counter and O(buckets) per histogram,
// so all series of a history can be merged by time without materialising their samples.
class SeriesHistory {
 public:
  SeriesHistory(const FamilyEvents& f, uint32_t series, std::vector<uint32_t> events, int64_t step,
                int64_t end_ms)
      : f_(&f),
        labels_(&f.series_labels[series]),
        events_(std::move(events)),
        step_(step),
        end_ms_(end_ms),
        counter_(f.desc.type == MetricType::kCounter) {
    if (!counter_) buckets_.assign(CostPerRequestBuckets().size(), 0);
    cur_ = StepOf(Event(0).timestamp_ms, step_);
    last_step_ = cur_ - 1;
    Push((cur_ - 1) * step_);  // the series starts at 0 one step before its first event
  }

  int64_t PeekTime() {
    Refill();
    return queue_.empty() ? std::numeric_limits<int64_t>::max() : queue_.front().ts;
  }

  // Precondition: PeekTime() != max. Returns the number of samples emitted.
  uint64_t EmitNext(HistorySink* sink) {
    Refill();
    const Group g = std::move(queue_.front());
    queue_.erase(queue_.begin());
    const FamilyDesc& d = f_->desc;
    if (counter_) {
      sink->Sample(d.name + "_total", d.label_names, *labels_, nullptr, nullptr, g.value, d.usd,
                   g.ts);
      return 1;
    }
    const auto& bounds = CostPerRequestBuckets();
    const std::string bucket_name = d.name + "_bucket";
    for (size_t b = 0; b <= bounds.size(); ++b) {
      std::string le = b < bounds.size() ? FormatValue(bounds[b], true) : "+Inf";
      sink->Sample(bucket_name, d.label_names, *labels_, "le", &le,
                   b < bounds.size() ? g.buckets[b] : g.count, false, g.ts);
    }
    sink->Sample(d.name + "_count", d.label_names, *labels_, nullptr, nullptr, g.count, false,
                 g.ts);
    sink->Sample(d.name + "_sum", d.label_names, *labels_, nullptr, nullptr, g.value, true, g.ts);
    return bounds.size() + 3;
  }

 private:
  struct Group {
    int64_t ts;
    __int128 value;  // counter value, or histogram sum
    uint64_t count;
    std::vector<uint64_t> buckets;
  };

  const MetricEvent& Event(size_t k) const { return f_->events[events_[k]]; }

  // Queues a sample group of the current state at `ts`.
  void Push(int64_t ts) {
    if (counter_) {
      queue_.push_back(Group{ts, value_, 0, {}});
    } else {
      queue_.push_back(Group{ts, sum_, count_, buckets_});
    }
  }

  // Counters: a sample at the end of a step in which the value changed; after a gap, the old
  // value restated one step earlier. Histograms: a group at the end of every step with events;
  // after a gap, the totals restated one step before the change.
  void Flush(int64_t st) {
    if (counter_) {
      if (value_ == emitted_) return;
      if (st - 1 > last_step_) {
        const __int128 v = value_;
        value_ = emitted_;
        Push((st - 1) * step_);
        value_ = v;
      }
      Push(st * step_);
      emitted_ = value_;
      last_step_ = st;
    } else {
      Push(st * step_);
      last_step_ = st;
    }
  }

  void Refill() {
    while (queue_.empty() && !done_) {
      if (next_ < events_.size()) {
        const MetricEvent& e = Event(next_++);
        const int64_t st = StepOf(e.timestamp_ms, step_);
        if (st != cur_) {
          Flush(cur_);
          cur_ = st;
        }
        if (counter_) {
          value_ += e.delta;
        } else {
          if (cur_ - 1 > last_step_) {
            Push((cur_ - 1) * step_);
            last_step_ = cur_ - 1;
          }
          const auto& bounds = CostPerRequestBuckets();
          for (size_t b = 0; b < bounds.size(); ++b)
            if (e.delta <= bounds[b]) ++buckets_[b];
          ++count_;
          sum_ += e.delta;
        }
      } else {
        Flush(cur_);
        if (last_step_ * step_ < end_ms_) Push(end_ms_);
        done_ = true;
      }
    }
  }

  const FamilyEvents* f_;
  const std::vector<std::string>* labels_;
  std::vector<uint32_t> events_;  // indices into f_->events, ascending time
  int64_t step_, end_ms_;
  bool counter_;
  size_t next_ = 0;
  int64_t cur_ = 0, last_step_ = 0;
  __int128 value_ = 0, emitted_ = 0;  // counters
  std::vector<uint64_t> buckets_;     // histograms
  uint64_t count_ = 0;
  __int128 sum_ = 0;
  std::vector<Group> queue_;  // at most a few groups
  bool done_ = false;
};

int64_t EndOf(const std::vector<FamilyEvents>& families, int64_t step) {
  int64_t last_step = std::numeric_limits<int64_t>::min();
  for (const auto& f : families)
    for (const auto& e : f.events) last_step = std::max(last_step, StepOf(e.timestamp_ms, step));
  return last_step == std::numeric_limits<int64_t>::min() ? last_step : last_step * step;
}

// The series of `f` in label order, each with its events in time order.
std::vector<SeriesHistory> SeriesOf(const FamilyEvents& f, int64_t step, int64_t end_ms) {
  std::vector<std::vector<uint32_t>> per_series(f.series_labels.size());
  for (uint32_t i = 0; i < f.events.size(); ++i) per_series[f.events[i].series].push_back(i);
  std::vector<uint32_t> order(f.series_labels.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return f.series_labels[a] < f.series_labels[b]; });
  std::vector<SeriesHistory> out;
  for (uint32_t s : order) {
    auto& ev = per_series[s];
    if (ev.empty()) continue;
    std::stable_sort(ev.begin(), ev.end(), [&](uint32_t a, uint32_t b) {
      return f.events[a].timestamp_ms < f.events[b].timestamp_ms;
    });
    out.emplace_back(f, s, std::move(ev), step, end_ms);
  }
  return out;
}

}  // namespace

HistoryStats EmitHistory(const std::vector<FamilyEvents>& families, int64_t step,
                         HistorySink* sink) {
  HistoryStats stats;
  const int64_t end_ms = EndOf(families, step);
  if (end_ms == std::numeric_limits<int64_t>::min()) return stats;
  stats.end_ms = end_ms;
  for (const auto& f : families) {
    if (f.events.empty()) continue;
    sink->BeginFamily(f.desc);
    for (SeriesHistory& h : SeriesOf(f, step, end_ms)) {
      ++stats.series;
      while (h.PeekTime() != std::numeric_limits<int64_t>::max()) stats.samples += h.EmitNext(sink);
    }
  }
  return stats;
}

HistoryStats EmitHistoryInTimeOrder(const std::vector<FamilyEvents>& families, int64_t step,
                                    HistorySink* sink) {
  HistoryStats stats;
  const int64_t end_ms = EndOf(families, step);
  if (end_ms == std::numeric_limits<int64_t>::min()) return stats;
  stats.end_ms = end_ms;
  std::vector<SeriesHistory> all;
  for (const auto& f : families) {
    if (f.events.empty()) continue;
    sink->BeginFamily(f.desc);
    for (SeriesHistory& h : SeriesOf(f, step, end_ms)) all.push_back(std::move(h));
  }
  stats.series = all.size();
  // Min-heap on (next time, position): ties keep family and label order.
  using Entry = std::pair<int64_t, uint32_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  for (uint32_t i = 0; i < all.size(); ++i) heap.emplace(all[i].PeekTime(), i);
  while (!heap.empty() && !sink->Stopped()) {
    const uint32_t i = heap.top().second;
    heap.pop();
    stats.samples += all[i].EmitNext(sink);
    const int64_t next = all[i].PeekTime();
    if (next != std::numeric_limits<int64_t>::max()) heap.emplace(next, i);
  }
  return stats;
}

}  // namespace ccmon
