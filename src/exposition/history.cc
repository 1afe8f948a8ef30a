#include "exposition/history.h"

#include <algorithm>
#include <limits>
#include <queue>
#include <utility>

#include "base/timeutil.h"

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
  void Sample(const HistorySeries& s, __int128 value, int64_t timestamp_ms) override {
    if (s.id >= prefixes_.size()) prefixes_.resize(s.id + 1);
    std::string& prefix = prefixes_[s.id];
    if (prefix.empty()) {
      prefix = s.name + LabelString(*s.label_names, *s.label_values, s.extra_name,
                                    s.extra_name ? &s.extra_value : nullptr);
    }
    out_ << prefix << ' ' << FormatValue(value, s.usd) << ' ' << Seconds(timestamp_ms) << '\n';
  }

 private:
  std::ostream& out_;
  std::vector<std::string> prefixes_;  // by series id: name{labels}
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
  // Stream ids are taken from *next_id onwards.
  SeriesHistory(const FamilyEvents& f, uint32_t series, std::vector<uint32_t> events, int64_t step,
                int64_t end_ms, uint32_t* next_id)
      : f_(&f),
        events_(std::move(events)),
        step_(step),
        end_ms_(end_ms),
        counter_(f.desc.type == MetricType::kCounter) {
    const FamilyDesc& d = f.desc;
    auto stream = [&](std::string name, const char* extra_name, std::string extra_value, bool usd) {
      streams_.push_back(HistorySeries{(*next_id)++, std::move(name), &d.label_names,
                                       &f.series_labels[series], extra_name, std::move(extra_value),
                                       usd});
    };
    if (counter_) {
      stream(d.name + "_total", nullptr, "", d.usd);
    } else {
      const auto& bounds = f_->desc.buckets;
      buckets_.assign(bounds.size(), 0);
      for (const Pico b : bounds) stream(d.name + "_bucket", "le", FormatValue(b, true), false);
      stream(d.name + "_bucket", "le", "+Inf", false);
      stream(d.name + "_count", nullptr, "", false);
      stream(d.name + "_sum", nullptr, "", true);
    }
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
    if (counter_) {
      sink->Sample(streams_[0], g.value, g.ts);
      return 1;
    }
    const size_t n = g.buckets.size();
    for (size_t b = 0; b < n; ++b) sink->Sample(streams_[b], g.buckets[b], g.ts);
    sink->Sample(streams_[n], g.count, g.ts);      // le="+Inf"
    sink->Sample(streams_[n + 1], g.count, g.ts);  // _count
    sink->Sample(streams_[n + 2], g.value, g.ts);  // _sum
    return n + 3;
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
          const auto& bounds = f_->desc.buckets;
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
  std::vector<HistorySeries> streams_;  // counter: _total; histogram: buckets, +Inf, _count, _sum
  std::vector<uint32_t> events_;        // indices into f_->events, ascending time
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

constexpr int64_t kNoEvents = std::numeric_limits<int64_t>::min();

// The common end time: the end of the step of the newest event (kNoEvents if there is none).
int64_t EndOf(const std::vector<FamilyEvents>& families, int64_t step) {
  int64_t last_step = kNoEvents;
  for (const auto& f : families)
    for (const auto& e : f.events) last_step = std::max(last_step, StepOf(e.timestamp_ms, step));
  return last_step == kNoEvents ? kNoEvents : last_step * step;
}

// The series of `f` in label order, each with its events in time order.
std::vector<SeriesHistory> SeriesOf(const FamilyEvents& f, int64_t step, int64_t end_ms,
                                    uint32_t* next_id) {
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
    out.emplace_back(f, s, std::move(ev), step, end_ms, next_id);
  }
  return out;
}

}  // namespace

uint64_t ClampEventTimes(std::vector<FamilyEvents>* families, int64_t not_after_ms) {
  uint64_t clamped = 0;
  for (FamilyEvents& f : *families) {
    for (MetricEvent& e : f.events) {
      if (e.timestamp_ms > not_after_ms) {
        e.timestamp_ms = not_after_ms;
        ++clamped;
      }
    }
  }
  return clamped;
}

HistoryStats EmitHistory(const std::vector<FamilyEvents>& families, int64_t step,
                         HistorySink* sink) {
  HistoryStats stats;
  const int64_t end_ms = stats.end_ms = EndOf(families, step);
  if (end_ms == kNoEvents) return HistoryStats{};
  uint32_t next_id = 0;
  for (const auto& f : families) {
    if (f.events.empty()) continue;
    sink->BeginFamily(f.desc);
    for (SeriesHistory& h : SeriesOf(f, step, end_ms, &next_id)) {
      ++stats.series;
      while (h.PeekTime() != std::numeric_limits<int64_t>::max()) stats.samples += h.EmitNext(sink);
    }
  }
  return stats;
}

HistoryStats EmitHistoryInTimeOrder(const std::vector<FamilyEvents>& families, int64_t step,
                                    HistorySink* sink) {
  HistoryStats stats;
  const int64_t end_ms = stats.end_ms = EndOf(families, step);
  if (end_ms == kNoEvents) return HistoryStats{};
  uint32_t next_id = 0;
  std::vector<SeriesHistory> all;
  for (const auto& f : families) {
    if (f.events.empty()) continue;
    sink->BeginFamily(f.desc);
    for (SeriesHistory& h : SeriesOf(f, step, end_ms, &next_id)) all.push_back(std::move(h));
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
