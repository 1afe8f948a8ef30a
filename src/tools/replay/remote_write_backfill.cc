#include "tools/replay/remote_write_backfill.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <unordered_map>

#include "core/history.h"
#include "remote_write/write_request.h"

namespace ccmon {
namespace {

// Turns the time-ordered history into requests of at most `per_request` samples and sends each
// as soon as it is full, so memory stays at one request plus the series' label sets.
class BatchingSink : public HistorySink {
 public:
  BatchingSink(size_t per_request, RemoteWriteSender* sender, BackfillStats* stats)
      : per_request_(per_request), sender_(sender), stats_(stats) {}

  void BeginFamily(const FamilyDesc& d) override {
    metadata_.push_back(rw::Metadata{
        d.type == MetricType::kCounter ? rw::MetricKind::kCounter : rw::MetricKind::kHistogram,
        d.name, d.help, d.unit});
  }

  void Sample(const std::string& sample_name, const std::vector<std::string>& label_names,
              const std::vector<std::string>& label_values, const char* extra_name,
              const std::string* extra_value, __int128 value, bool usd,
              int64_t timestamp_ms) override {
    if (!status_.ok()) return;
    key_.assign(sample_name);
    for (const std::string& v : label_values) {
      key_ += '\xff';
      key_ += v;
    }
    if (extra_value) {
      key_ += '\xfe';
      key_ += *extra_value;
    }
    auto [it, inserted] = series_index_.try_emplace(key_, uint32_t(series_labels_.size()));
    if (inserted) {
      std::vector<std::pair<std::string, std::string>> labels = {{"__name__", sample_name}};
      for (size_t i = 0; i < label_names.size(); ++i) {
        // An empty value is the same as no label in Prometheus; remote-write must not send it.
        if (!label_values[i].empty()) labels.emplace_back(label_names[i], label_values[i]);
      }
      if (extra_name) labels.emplace_back(extra_name, *extra_value);
      series_labels_.push_back(std::move(labels));
      slot_.push_back(kNoSlot);
    }
    const uint32_t series = it->second;
    if (slot_[series] == kNoSlot) {
      slot_[series] = uint32_t(request_.series.size());
      request_.series.push_back(rw::Series{series_labels_[series], {}});
      in_request_.push_back(series);
    }
    // The exact decimal, then the nearest double (USD values are pico-dollars).
    const double v = std::strtod(FormatValue(value, usd).c_str(), nullptr);
    request_.series[slot_[series]].samples.push_back(rw::Sample{timestamp_ms, v});
    ++pending_;
    ++stats_->samples;
    if (pending_ >= per_request_) Send();
  }

  bool Stopped() const override { return !status_.ok(); }

  // Sends what is left (and, for an empty history, one request with the metadata).
  Status Finish() {
    if (status_.ok() && (pending_ > 0 || !metadata_sent_)) Send();
    stats_->series = series_labels_.size();
    return status_;
  }

 private:
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  void Send() {
    if (!metadata_sent_) request_.metadata = metadata_;
    std::string body;
    status_ = rw::Encode(request_, &body);
    if (status_.ok()) {
      SendResult r = sender_->Send(body);
      if (r.outcome != SendResult::Outcome::kSent) {
        const uint64_t first = stats_->samples_sent + 1;
        status_ = Status::IoError(
            "remote-write request " + std::to_string(stats_->requests + 1) + " (samples " +
            std::to_string(first) + "-" + std::to_string(first + pending_ - 1) + ") was " +
            (r.outcome == SendResult::Outcome::kRejected ? "rejected: " : "not delivered: ") +
            r.message + "; the " + std::to_string(stats_->samples_sent) +
            " samples before it were stored");
      } else {
        metadata_sent_ = true;
        ++stats_->requests;
        stats_->samples_sent += pending_;
      }
    }
    for (uint32_t s : in_request_) slot_[s] = kNoSlot;
    in_request_.clear();
    request_ = rw::WriteRequest{};
    pending_ = 0;
  }

  size_t per_request_;
  RemoteWriteSender* sender_;
  BackfillStats* stats_;
  Status status_;
  std::vector<rw::Metadata> metadata_;
  bool metadata_sent_ = false;
  std::string key_;
  std::unordered_map<std::string, uint32_t> series_index_;
  std::vector<std::vector<std::pair<std::string, std::string>>> series_labels_;
  std::vector<uint32_t> slot_;  // series -> index in request_.series, or kNoSlot
  std::vector<uint32_t> in_request_;
  rw::WriteRequest request_;
  size_t pending_ = 0;
};

}  // namespace

Status BackfillRemoteWrite(const std::vector<FamilyEvents>& families, int64_t step_ms,
                           size_t max_samples_per_send, RemoteWriteSender* sender,
                           BackfillStats* stats) {
  BatchingSink sink(std::max<size_t>(1, max_samples_per_send), sender, stats);
  HistoryStats hs = EmitHistoryInTimeOrder(families, step_ms, &sink);
  stats->end_ms = hs.end_ms;
  return sink.Finish();
}

}  // namespace ccmon
