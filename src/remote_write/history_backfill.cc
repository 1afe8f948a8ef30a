#include "remote_write/history_backfill.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "exposition/history.h"
#include "remote_write/write_request.h"

namespace ccmon {
namespace {

// Turns the time-ordered history into requests of at most `per_request` samples and sends each
// as soon as it is full, so memory stays at one request plus the series' label sets.
class BatchingSink : public HistorySink {
 public:
  BatchingSink(size_t per_request, RemoteWriteSender* sender, BackfillStats* stats,
               std::stop_token stop,
               const std::vector<std::pair<std::string, std::string>>* extra_labels)
      : per_request_(per_request),
        sender_(sender),
        stats_(stats),
        stop_(std::move(stop)),
        extra_labels_(extra_labels) {}

  void BeginFamily(const FamilyDesc& d) override { metadata_.push_back(FamilyMetadata(d)); }

  void Sample(const HistorySeries& hs, __int128 value, int64_t timestamp_ms) override {
    if (!status_.ok()) return;
    if (hs.id >= series_.size()) series_.resize(hs.id + 1);
    PerSeries& ps = series_[hs.id];
    if (ps.labels.empty()) {
      ps.labels = {{"__name__", hs.name}};
      for (size_t i = 0; i < hs.label_names->size(); ++i) {
        // An empty value is the same as no label in Prometheus; remote-write must not send it.
        const std::string& v = (*hs.label_values)[i];
        if (!v.empty()) ps.labels.emplace_back((*hs.label_names)[i], v);
      }
      if (hs.extra_name) ps.labels.emplace_back(hs.extra_name, hs.extra_value);
      for (const auto& l : *extra_labels_) ps.labels.push_back(l);
    }
    if (ps.slot == kNoSlot) {
      ps.slot = uint32_t(request_.series.size());
      request_.series.push_back(rw::Series{ps.labels, {}});
      in_request_.push_back(hs.id);
    }
    // The exact decimal, then the nearest double (USD values are pico-dollars).
    const double v = std::strtod(FormatValue(value, hs.usd).c_str(), nullptr);
    request_.series[ps.slot].samples.push_back(rw::Sample{timestamp_ms, v});
    ++pending_;
    ++stats_->samples;
    if (pending_ >= per_request_) Send();
  }

  bool Stopped() const override { return !status_.ok(); }

  // Sends what is left (and, for an empty history, one request with the metadata).
  Status Finish() {
    if (status_.ok() && (pending_ > 0 || !metadata_sent_)) Send();
    stats_->series = series_.size();
    return status_;
  }

 private:
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  void Send() {
    if (!metadata_sent_) request_.metadata = metadata_;
    std::string body;
    status_ = rw::Encode(request_, &body);
    if (status_.ok()) {
      SendResult r = sender_->Send(body, stop_);
      if (r.outcome != SendOutcome::kSent) {
        const uint64_t first = stats_->samples_sent + 1;
        status_ = Status::IoError(
            "remote-write request " + std::to_string(stats_->requests + 1) + " (samples " +
            std::to_string(first) + "-" + std::to_string(first + pending_ - 1) + ") was " +
            (r.outcome == SendOutcome::kRejected ? "rejected: " : "not delivered: ") +
            r.Describe() + "; the " + std::to_string(stats_->samples_sent) +
            " samples before it were stored");
        stats_->failed_send = std::move(r);
      } else {
        metadata_sent_ = true;
        ++stats_->requests;
        stats_->samples_sent += pending_;
      }
    }
    for (uint32_t id : in_request_) series_[id].slot = kNoSlot;
    in_request_.clear();
    request_ = rw::WriteRequest{};
    pending_ = 0;
  }

  size_t per_request_;
  RemoteWriteSender* sender_;
  BackfillStats* stats_;
  std::stop_token stop_;
  const std::vector<std::pair<std::string, std::string>>* extra_labels_;
  Status status_;
  std::vector<rw::Metadata> metadata_;
  bool metadata_sent_ = false;
  struct PerSeries {
    std::vector<std::pair<std::string, std::string>> labels;  // built at its first sample
    uint32_t slot = kNoSlot;  // index in request_.series, or kNoSlot
  };
  std::vector<PerSeries> series_;  // by HistorySeries::id
  std::vector<uint32_t> in_request_;
  rw::WriteRequest request_;
  size_t pending_ = 0;
};

}  // namespace

rw::Metadata FamilyMetadata(const FamilyDesc& d) {
  const rw::MetricKind kind = d.type == MetricType::kCounter ? rw::MetricKind::kCounter
                              : d.type == MetricType::kGauge ? rw::MetricKind::kGauge
                                                             : rw::MetricKind::kHistogram;
  return rw::Metadata{kind, d.name, d.help, d.unit};
}

Status BackfillRemoteWrite(const std::vector<FamilyEvents>& families, int64_t step_ms,
                           size_t max_samples_per_send, RemoteWriteSender* sender,
                           BackfillStats* stats, std::stop_token stop,
                           const std::vector<std::pair<std::string, std::string>>& extra_labels) {
  BatchingSink sink(std::max<size_t>(1, max_samples_per_send), sender, stats, std::move(stop),
                    &extra_labels);
  HistoryStats hs = EmitHistoryInTimeOrder(families, step_ms, &sink);
  stats->end_ms = hs.end_ms;
  return sink.Finish();
}

}  // namespace ccmon
