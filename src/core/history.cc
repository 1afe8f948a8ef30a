#include "core/history.h"

#include <algorithm>
#include <limits>

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

HistoryStats EmitHistory(const std::vector<FamilyEvents>& families, int64_t step,
                         HistorySink* sink) {
  HistoryStats stats;
  int64_t last_step = std::numeric_limits<int64_t>::min();
  for (const auto& f : families)
    for (const auto& e : f.events) last_step = std::max(last_step, StepOf(e.timestamp_ms, step));
  if (last_step == std::numeric_limits<int64_t>::min()) return stats;
  const int64_t end_ms = last_step * step;
  stats.end_ms = end_ms;
  const auto& bounds = CostPerRequestBuckets();

  for (const auto& f : families) {
    if (f.events.empty()) continue;
    const FamilyDesc& d = f.desc;
    sink->BeginFamily(d);
    std::vector<MetricEvent> ev = f.events;
    // Series in label order, events in time order.
    std::vector<uint32_t> rank(f.series_labels.size());
    {
      std::vector<uint32_t> order(rank.size());
      for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(),
                [&](uint32_t a, uint32_t b) { return f.series_labels[a] < f.series_labels[b]; });
      for (uint32_t r = 0; r < order.size(); ++r) rank[order[r]] = r;
    }
    std::stable_sort(ev.begin(), ev.end(), [&](const MetricEvent& a, const MetricEvent& b) {
      if (a.series != b.series) return rank[a.series] < rank[b.series];
      return a.timestamp_ms < b.timestamp_ms;
    });

    for (size_t i = 0; i < ev.size();) {
      const uint32_t s = ev[i].series;
      const auto& labels = f.series_labels[s];
      ++stats.series;
      if (d.type == MetricType::kCounter) {
        const std::string name = d.name + "_total";
        auto emit = [&](__int128 v, int64_t ms) {
          sink->Sample(name, d.label_names, labels, nullptr, nullptr, v, d.usd, ms);
          ++stats.samples;
        };
        __int128 value = 0;
        int64_t cur = StepOf(ev[i].timestamp_ms, step);
        emit(0, (cur - 1) * step);
        __int128 emitted = 0;
        int64_t last_step = cur - 1;  // step of the last emitted sample
        auto flush = [&](int64_t st) {
          if (value == emitted) return;
          // After a gap, restate the old value one step earlier, so that increase() and rate()
          // over short windows see the change rather than a series that went stale.
          if (st - 1 > last_step) emit(emitted, (st - 1) * step);
          emit(value, st * step);
          emitted = value;
          last_step = st;
        };
        for (; i < ev.size() && ev[i].series == s; ++i) {
          int64_t st = StepOf(ev[i].timestamp_ms, step);
          if (st != cur) {
            flush(cur);
            cur = st;
          }
          value += ev[i].delta;
        }
        flush(cur);
        if (last_step * step < end_ms) emit(value, end_ms);
      } else {
        // Histogram MetricPoints: every bucket, count and sum at one timestamp.
        std::vector<uint64_t> buckets(bounds.size(), 0);
        uint64_t count = 0;
        __int128 sum = 0;
        const std::string bucket_name = d.name + "_bucket", count_name = d.name + "_count",
                          sum_name = d.name + "_sum";
        auto emit = [&](int64_t ms) {
          for (size_t b = 0; b <= bounds.size(); ++b) {
            std::string le = b < bounds.size() ? FormatValue(bounds[b], true) : "+Inf";
            sink->Sample(bucket_name, d.label_names, labels, "le", &le,
                         b < bounds.size() ? buckets[b] : count, false, ms);
          }
          sink->Sample(count_name, d.label_names, labels, nullptr, nullptr, count, false, ms);
          sink->Sample(sum_name, d.label_names, labels, nullptr, nullptr, sum, true, ms);
          stats.samples += bounds.size() + 3;
        };
        int64_t cur = StepOf(ev[i].timestamp_ms, step);
        emit((cur - 1) * step);
        int64_t last_step = cur - 1;
        auto flush = [&](int64_t st) {
          emit(st * step);
          last_step = st;
        };
        for (; i < ev.size() && ev[i].series == s; ++i) {
          int64_t st = StepOf(ev[i].timestamp_ms, step);
          if (st != cur) {
            flush(cur);
            cur = st;
          }
          if (cur - 1 > last_step) {
            // After a gap, restate the totals one step before they change (see the counters).
            emit((cur - 1) * step);
            last_step = cur - 1;
          }
          for (size_t b = 0; b < bounds.size(); ++b)
            if (ev[i].delta <= bounds[b]) ++buckets[b];
          ++count;
          sum += ev[i].delta;
        }
        flush(cur);
        if (last_step * step < end_ms) emit(end_ms);
      }
    }
  }
  return stats;
}

}  // namespace ccmon
