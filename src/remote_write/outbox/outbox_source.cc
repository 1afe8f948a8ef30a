#include "remote_write/outbox/outbox_source.h"

#include <algorithm>

#include "remote_write/write_request.h"

namespace ccmon {

Status OutboxShardSource::Peek(size_t max_samples, size_t max_bytes, SourceBatch* out) {
  const OutboxStats before = outbox_->Stats();
  samples_before_peek_ = shard_ < before.shards.size() ? before.shards[shard_].samples : 0;
  OutboxBatch batch;
  // A batch ends before an entry that would repeat one of its series, so that sending it twice
  // (an answer lost after the receiver stored it, a crash before the Remove) stores duplicates
  // of each series' newest sample and nothing out of order (rw::SamplesBeforeRepeatedSeries).
  // The outbox's Peek is greedy from the head, so peeking again with the samples before the
  // repeat as the limit returns the entries wholly before it (at least the head entry). The
  // limit shrinks with each try; it converges even if EnforceLimits moves the head meanwhile.
  size_t limit = max_samples;
  for (;;) {
    if (Status s = outbox_->Peek(shard_, limit, max_bytes, &batch); !s.ok()) return s;
    if (batch.entries <= 1) break;
    size_t before = 0;
    bool repeat = false;
    // A payload that does not parse (it came from rw::Serialize, so it should) goes as it is:
    // the receiver judges it.
    if (!rw::SamplesBeforeRepeatedSeries(batch.payload, &before, &repeat).ok() || !repeat) break;
    if (before >= batch.samples) break;  // cannot shrink (entries without samples): as it is
    limit = std::max<size_t>(before, 1);
  }
  *out = SourceBatch();
  if (batch.empty()) {
    last_cursor_ = 0;
    return Status::Ok();
  }
  out->payload = std::move(batch.payload);
  metadata_in_peek_ = false;
  if (!metadata_.empty() && clock_ != nullptr &&
      (metadata_acked_ms_ < 0 ||
       clock_->NowUnixMs() - metadata_acked_ms_ >= metadata_interval_.count())) {
    out->payload += metadata_;
    metadata_in_peek_ = true;
  }
  if (!stream_.empty()) {
    out->headers = {{std::string(kBatchStreamHeader), stream_},
                    {std::string(kBatchHeader), run_ + "/" + std::to_string(shard_) + "/" +
                                                    std::to_string(batch.first_seq) + "-" +
                                                    std::to_string(batch.last_seq)}};
  }
  out->through_cursor = batch.last_seq;
  out->entries = batch.entries;
  out->samples = batch.samples;
  out->oldest_created_unix_ms = batch.oldest_created_ms;
  peeked_oldest_ms_ = batch.oldest_created_ms;
  out->more = batch.samples < samples_before_peek_;
  last_cursor_ = batch.last_seq;
  return Status::Ok();
}

bool OutboxShardSource::WaitForData(uint64_t after_cursor,
                                    std::chrono::steady_clock::time_point deadline,
                                    std::stop_token stop) {
  if (after_cursor == 0 || after_cursor != last_cursor_) {
    return outbox_->WaitForEntries(shard_, deadline, stop);
  }
  return outbox_->WaitForSamples(shard_, samples_before_peek_ + 1, deadline, stop);
}

Status OutboxShardSource::Ack(uint64_t through_cursor, const AckResult& result) {
  if (result.kind == AckResult::Kind::kRejected) ++rejected_;
  Status s = outbox_->Remove(shard_, through_cursor);
  // Taken or finally refused: either way not sent again before the interval (a receiver that
  // refused it would refuse it again).
  if (s.ok() && metadata_in_peek_ && through_cursor == last_cursor_ && clock_ != nullptr) {
    metadata_acked_ms_ = clock_->NowUnixMs();
    metadata_in_peek_ = false;
  }
  if (s.ok() && result.kind == AckResult::Kind::kSent && observe_lag_ && clock_ != nullptr &&
      through_cursor == last_cursor_) {
    // A clock stepped back gives 0, not a negative lag.
    const int64_t lag_ms = std::max<int64_t>(0, clock_->NowUnixMs() - peeked_oldest_ms_);
    observe_lag_(double(lag_ms) / 1000.0);
  }
  return s;
}

}  // namespace ccmon
