// OutboxShardSource: one shard of the agent's outbox (store/outbox.h) as the queue manager's
// ShardSource (remote_write/queue_manager.h). Cursors are the outbox's sequence numbers; an
// acked batch (sent, or finally rejected) is removed from the outbox with a sync write.
// Thread-safe as the outbox is (one reader per shard: the shard's thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>

#include "remote_write/queue_manager.h"
#include "store/outbox.h"

namespace ccmon::agent {

class OutboxShardSource : public ShardSource {
 public:
  // `outbox` is borrowed and must outlive the source.
  OutboxShardSource(Outbox* outbox, uint32_t shard) : outbox_(outbox), shard_(shard) {}

  Status Peek(size_t max_samples, size_t max_bytes, SourceBatch* out) override;
  bool WaitForData(uint64_t after_cursor, std::chrono::steady_clock::time_point deadline,
                   std::stop_token stop) override;
  Status Ack(uint64_t through_cursor, const AckResult& result) override;

  uint64_t rejected_batches() const { return rejected_; }

 private:
  Outbox* outbox_;
  uint32_t shard_;
  std::atomic<uint64_t> rejected_{0};
  // The shard's sample total just before the last Peek, and that Peek's cursor: WaitForData
  // after it waits for the total to grow past it (the outbox's own wait, no polling).
  uint64_t samples_before_peek_ = 0;
  uint64_t last_cursor_ = 0;
};

}  // namespace ccmon::agent
