// OutboxShardSource: one shard of a durable outbox (store/outbox.h: the agent's, or one of the
// gateway's forward queues) as the queue manager's ShardSource (remote_write/queue_manager.h).
// Cursors are the outbox's sequence numbers; an
// acked batch (sent, or finally rejected) is removed from the outbox with a sync write.
// A peeked batch holds each series at most once: it ends before the first entry that would
// repeat one (that entry starts the next batch; `more` is set, so it goes at once). Delivery is
// at least once, and only a request whose every sample is its series' newest can be sent again
// without a receiver refusing it as out of order (Prometheus 2.42 then rolls the whole request
// back with a 400, a final answer: its new samples would be dropped too).
// Thread-safe as the outbox is (one reader per shard: the shard's thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>
#include <utility>

#include "base/clock.h"
#include "remote_write/queue_manager.h"
#include "store/outbox.h"

namespace ccmon {

// The batch identity's request headers (SetBatchIdentity below; parsed by ccmon-gateway's
// write handler, gateway/ingest/batch_identity.h).
inline constexpr std::string_view kBatchStreamHeader = "X-Ccmon-Stream";
inline constexpr std::string_view kBatchHeader = "X-Ccmon-Batch";

class OutboxShardSource : public ShardSource {
 public:
  // Called with the lag of each request the receiver took (2xx): wall time of the ack minus
  // its oldest entry's creation (the commit of the lines read), in seconds. From the shard's
  // thread.
  using LagObserver = std::function<void(double seconds)>;

  // `outbox` and `clock` are borrowed and must outlive the source; `clock` may be null when
  // `observe_lag` is empty.
  OutboxShardSource(Outbox* outbox, uint32_t shard, Clock* clock = nullptr,
                    LagObserver observe_lag = {})
      : outbox_(outbox), shard_(shard), clock_(clock), observe_lag_(std::move(observe_lag)) {}

  // Also sends the families' metadata (TYPE, HELP, UNIT): `serialized` is a WriteRequest holding
  // only metadata (SerializedFamilyMetadata()), appended to the first batch peeked and again to
  // the first one after each `interval` (serialized WriteRequests concatenate). Prometheus's own
  // sender sends metadata every minute; a receiver that keeps it (ccmon-gateway) types its
  // /metrics with it, the others ignore it (all answer 2xx). Needs the clock. Call before the
  // queue manager starts.
  void SendMetadata(std::string serialized, std::chrono::milliseconds interval) {
    metadata_ = std::move(serialized);
    metadata_interval_ = interval;
  }

  // Labels every batch with its identity for ccmon-gateway (issue 8 §3): `X-Ccmon-Stream:
  // stream` (the agent state's epoch, 16 hex digits) and `X-Ccmon-Batch: RUN/SHARD/FIRST-LAST`
  // (the agent's run: 16 hex digits drawn at random at each start, so that no two runs share
  // one, even after a state was restored; then, in decimal, this shard and the outbox sequences
  // the batch covers). Within one run and shard, sequences only grow, so a gateway that saw
  // LAST already can acknowledge a retry without applying it; entries recovered from an earlier
  // run are sent under the new run (a gateway applies them again, which is harmless: their
  // samples are duplicates). Plain receivers ignore the headers. Call before the queue manager
  // starts; without it no identity is sent.
  void SetBatchIdentity(std::string stream, std::string run) {
    stream_ = std::move(stream);
    run_ = std::move(run);
  }

  Status Peek(size_t max_samples, size_t max_bytes, SourceBatch* out) override;
  bool WaitForData(uint64_t after_cursor, std::chrono::steady_clock::time_point deadline,
                   std::stop_token stop) override;
  Status Ack(uint64_t through_cursor, const AckResult& result) override;

  uint64_t rejected_batches() const { return rejected_; }

 private:
  Outbox* outbox_;
  uint32_t shard_;
  Clock* clock_;
  LagObserver observe_lag_;
  int64_t peeked_oldest_ms_ = 0;  // the last Peek's oldest entry creation time
  std::atomic<uint64_t> rejected_{0};
  // The shard's sample total just before the last Peek, and that Peek's cursor: WaitForData
  // after it waits for the total to grow past it (the outbox's own wait, no polling).
  uint64_t samples_before_peek_ = 0;
  uint64_t last_cursor_ = 0;
  std::string metadata_;  // empty: none sent
  std::chrono::milliseconds metadata_interval_{0};
  int64_t metadata_acked_ms_ = -1;  // when a batch carrying it was last answered
  bool metadata_in_peek_ = false;   // the last Peek's batch carries it
  std::string stream_;              // SetBatchIdentity; empty: no identity headers
  std::string run_;
};

}  // namespace ccmon
