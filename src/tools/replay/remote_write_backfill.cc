#include "tools/replay/remote_write_backfill.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <unordered_map>

#include "core/history.h"
#include "remote_write/write_request.h"

namespace ccmon {
namespace {

struct FlatSample {
  int64_t timestamp_ms;
  uint32_t series;
  double value;
};

// Collects the history as flat samples plus one label set per series.
class CollectingSink : public HistorySink {
 public:
  void BeginFamily(const FamilyDesc& d) override {
    metadata.push_back(rw::Metadata{
        d.type == MetricType::kCounter ? rw::MetricKind::kCounter : rw::MetricKind::kHistogram,
        d.name, d.help, d.unit});
  }
  void Sample(const std::string& sample_name, const std::vector<std::string>& label_names,
              const std::vector<std::string>& label_values, const char* extra_name,
              const std::string* extra_value, __int128 value, bool usd,
              int64_t timestamp_ms) override {
    // Series arrive one after the other: a new series starts when the labels change.
    key_.assign(sample_name);
    for (size_t i = 0; i < label_values.size(); ++i) {
      key_ += '\xff';
      key_ += label_values[i];
    }
    if (extra_value) {
      key_ += '\xfe';
      key_ += *extra_value;
    }
    auto [it, inserted] = index_.try_emplace(key_, uint32_t(series.size()));
    if (inserted) {
      std::vector<std::pair<std::string, std::string>> labels = {{"__name__", sample_name}};
      for (size_t i = 0; i < label_names.size(); ++i) {
        // An empty value is the same as no label in Prometheus; remote-write must not send it.
        if (!label_values[i].empty()) labels.emplace_back(label_names[i], label_values[i]);
      }
      if (extra_name) labels.emplace_back(extra_name, *extra_value);
      series.push_back(std::move(labels));
    }
    // The exact decimal, then the nearest double (USD values are pico-dollars).
    const double v = std::strtod(FormatValue(value, usd).c_str(), nullptr);
    samples.push_back(FlatSample{timestamp_ms, it->second, v});
  }

  std::vector<rw::Metadata> metadata;
  std::vector<std::vector<std::pair<std::string, std::string>>> series;
  std::vector<FlatSample> samples;

 private:
  std::string key_;
  std::unordered_map<std::string, uint32_t> index_;
};

}  // namespace

Status BackfillRemoteWrite(const std::vector<FamilyEvents>& families, int64_t step_ms,
                           size_t max_samples_per_send, RemoteWriteSender* sender,
                           BackfillStats* stats) {
  CollectingSink sink;
  HistoryStats hs = EmitHistory(families, step_ms, &sink);
  stats->series = sink.series.size();
  stats->samples = sink.samples.size();
  stats->end_ms = hs.end_ms;
  // Time order across series (each series' own samples ascend already; stable keeps them so).
  std::stable_sort(
      sink.samples.begin(), sink.samples.end(),
      [](const FlatSample& a, const FlatSample& b) { return a.timestamp_ms < b.timestamp_ms; });
  const size_t per_request = std::max<size_t>(1, max_samples_per_send);
  bool metadata_sent = false;
  for (size_t begin = 0; begin < sink.samples.size() || !metadata_sent; begin += per_request) {
    const size_t end = std::min(sink.samples.size(), begin + per_request);
    rw::WriteRequest req;
    if (!metadata_sent) req.metadata = sink.metadata;
    std::map<uint32_t, size_t> slot;  // series -> position in req.series
    for (size_t i = begin; i < end; ++i) {
      const FlatSample& s = sink.samples[i];
      auto [it, inserted] = slot.try_emplace(s.series, req.series.size());
      if (inserted) req.series.push_back(rw::Series{sink.series[s.series], {}});
      req.series[it->second].samples.push_back(rw::Sample{s.timestamp_ms, s.value});
    }
    std::string body;
    if (Status st = rw::Encode(req, &body); !st.ok()) return st;
    SendResult r = sender->Send(body);
    if (r.outcome != SendResult::Outcome::kSent) {
      return Status::IoError(
          "remote-write request " + std::to_string(stats->requests + 1) + " (samples " +
          std::to_string(begin + 1) + "-" + std::to_string(end) + " of " +
          std::to_string(stats->samples) + ") was " +
          (r.outcome == SendResult::Outcome::kRejected ? "rejected: " : "not delivered: ") +
          r.message + "; the " + std::to_string(stats->samples_sent) +
          " samples before it were stored");
    }
    metadata_sent = true;
    ++stats->requests;
    stats->samples_sent += end - begin;
  }
  return Status::Ok();
}

}  // namespace ccmon
