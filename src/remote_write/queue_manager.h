// QueueManager: drains per-shard outboxes into a remote-write receiver, modelled on Prometheus's
// queue manager (storage/remote/queue_manager.go): a fixed number of shards, each sending its
// batches strictly in order on a keep-alive connection of its own, full batches of
// max_samples_per_send for a backlog, a small batch at most batch_send_deadline after its
// oldest entry was created, and the retry rules of RemoteWriteSender.
//
// Where the data comes from is the caller's: a ShardSource per shard (the agent adapts its
// RocksDB outbox, the gateway its forward cursor). Nothing is dropped here: a batch leaves its
// source only through Ack(), after a 2xx (kSent) or a final refusal (kRejected, e.g. a 400 for
// an out-of-order sample, counted by reason). A batch the sender gave up on (max_retry_time)
// stays at the head of its shard and is sent again after pause_after_give_up, so the caller
// bounds its outbox (by size and age) and counts what it drops there.
//
// Per-series order: a shard sends in cursor order and never has two requests in flight, so a
// series keeps its order as long as all its samples go to one shard. ShardOf() is the one place
// that decides which; the sources must be filled by it.
//
// Deliberate differences from Prometheus, besides those of RemoteWriteSender (full jitter, a
// give-up time, 500 "too old sample" final, Retry-After on every 5xx and 429):
//   - no resharding: the shard count is fixed (series order across a reshard would need
//     Prometheus's flush-and-restart dance, and an agent's rate is small);
//   - the deadline of a small batch counts from its oldest entry's creation (which survives a
//     restart in the outbox), not from the moment the shard began to fill it;
//   - a request the transport refuses as invalid (a bad URL or header: nothing was sent) is a
//     configuration error, not a rejection: the batch is kept, the error recorded, the shard
//     pauses (pause_after_error) and tries again, so a misconfiguration drops nothing.
//
// Threading: Start() and Stop() from one controlling thread (not from a source's callbacks);
// stats() from any thread. One thread per shard. The sources, the clock and the transports'
// stop promise (see TransportFactory) are what the shard threads rely on.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "http/http_client.h"
#include "http/transport.h"
#include "remote_write/remote_write_sender.h"

namespace ccmon {

// How a batch left its shard (ShardSource::Ack).
struct AckResult {
  enum class Kind : uint8_t {
    kSent,      // the receiver answered 2xx
    kRejected,  // a final answer other than 2xx: the samples are not stored, and never will be
  };
  Kind kind = Kind::kSent;
  unsigned http_status = 0;                   // the receiver's status
  RejectReason reason = RejectReason::kNone;  // kRejected: recognised from the body, if at all
  std::string detail;                         // kRejected: "HTTP 400: out of order sample"
};

// What Peek() returns: the oldest pending entries of a shard, in cursor order.
struct SourceBatch {
  // Serialized, uncompressed prometheus.WriteRequest messages, concatenated (a concatenation of
  // serialized messages is one valid message whose repeated fields are the union).
  std::string payload;
  uint64_t through_cursor = 0;  // the cursor of the last entry in `payload`; 0 when empty
  size_t entries = 0;
  size_t samples = 0;
  int64_t oldest_created_unix_ms = 0;  // when the first entry was created (wall clock)
  // More entries are pending beyond these (a limit cut the batch): it is as full as it gets.
  bool more = false;
  // Request headers of this batch alone, sent with it on every attempt (the agent's batch
  // identity for ccmon-gateway: X-Ccmon-Stream, X-Ccmon-Batch). Empty for most sources.
  std::vector<HttpHeader> headers;

  bool empty() const { return entries == 0; }
};

// One shard's pending entries. Each entry has a cursor (uint64, starting at 1, strictly
// increasing in the order the entries must be sent) and a sample count. Thread-safe: the shard
// thread calls Peek, WaitForData and Ack while the producer appends.
class ShardSource {
 public:
  virtual ~ShardSource() = default;

  // Fills *out (overwriting it) with the oldest pending entries, in order, as many as fit in
  // `max_samples` and `max_bytes` of payload, but at least one when any is pending (an entry is
  // never split, even one over a limit). Empty when nothing is pending. A non-OK Status is
  // recorded and retried after a pause.
  virtual Status Peek(size_t max_samples, size_t max_bytes, SourceBatch* out) = 0;

  // Blocks until an entry with a cursor above `after_cursor` is pending (true), or until
  // `deadline` (a time of the QueueManager's Clock::Now(); time_point::max(): none) passes or
  // `stop` is requested (false). Must not poll: the idle agent uses no CPU. May return early
  // (the shard then peeks again).
  virtual bool WaitForData(uint64_t after_cursor, std::chrono::steady_clock::time_point deadline,
                           std::stop_token stop) = 0;

  // Removes every entry with a cursor up to `through_cursor` (the head of the last Peek): they
  // were sent or finally rejected, as `result` says. A non-OK Status is recorded; the entries
  // are then peeked and sent again (at least once, never lost).
  virtual Status Ack(uint64_t through_cursor, const AckResult& result) = 0;
};

// The stable hash of a series' labels (any order; sorted by name first): FNV-1a 64 over
// name, 0xFF, value, 0xFF for each label. Stable across versions and machines, because the
// agent persists which shard an entry belongs to.
uint64_t SeriesHash(const std::vector<std::pair<std::string, std::string>>& labels);
// The shard of a series, in [0, shards). `shards` must be at least 1.
size_t ShardOf(uint64_t series_hash, size_t shards);

// Makes shard `shard`'s transport, on that shard's thread. The transport must end an exchange
// in progress promptly once `stop` is requested (PersistentHttpTransport does, given `stop`),
// or Stop() waits for it (bounded only by the transport's timeouts).
using TransportFactory =
    std::function<std::unique_ptr<HttpTransport>(size_t shard, std::stop_token stop)>;

inline constexpr size_t kMaxShards = 64;

struct QueueManagerOptions {
  size_t shards = 1;                            // 1..kMaxShards; one source per shard
  size_t max_samples_per_send = 2000;           // 1..; as Prometheus's default
  size_t max_bytes_per_send = size_t(8) << 20;  // uncompressed payload; 1..
  // A batch smaller than the limits waits at most this long after its oldest entry's creation
  // for more to join it (Prometheus's default 5 s), and never longer than this after the shard
  // first saw it (an entry stamped in the future); 0 sends every entry at once.
  std::chrono::milliseconds batch_send_deadline{5000};
  // After a batch was given up on (sender.max_retry_time), before it is tried again.
  std::chrono::milliseconds pause_after_give_up{10000};
  // After a source error (Peek/Ack failed) or a request refused as invalid.
  std::chrono::milliseconds pause_after_error{1000};
  RemoteWriteSenderOptions sender;  // URL, headers, backoff, retry time
  HttpClientOptions http;           // the default transport's timeouts and TLS
  // Empty: a PersistentHttpTransport per shard over `http`, cancelled by the shard's stop.
  TransportFactory transport_factory;
  // Jitter source in [0, 1), shared by the shards' senders (so it must be thread-safe); empty:
  // each sender's own generator.
  std::function<double()> random01;
};

// Per-shard state, for self-metrics.
struct ShardStats {
  uint64_t pending_samples = 0;  // the samples of the batch at the head, as last peeked
  bool pending_more = false;     // and more beyond it
  bool in_flight = false;        // a request is being sent (or waits to be retried)
  uint64_t batches_sent = 0;
  uint64_t samples_sent = 0;
};

inline constexpr size_t kRejectReasonCount = 5;  // RejectReason::kNone .. kDuplicateSample

// Running totals since Start(). Counts are of batches (requests) unless they say samples.
struct QueueStats {
  uint64_t batches_sent = 0, samples_sent = 0;
  uint64_t bytes_sent = 0;  // compressed request bodies of the batches sent
  uint64_t batches_rejected = 0, samples_rejected = 0;
  std::array<uint64_t, kRejectReasonCount> rejected_by_reason{};  // index: RejectReason
  uint64_t retries = 0;              // exchanges that repeated an earlier one (of finished sends)
  uint64_t samples_retried = 0;      // the samples those exchanges carried again
  uint64_t gave_up = 0;              // sends given up on (the batch kept and tried again)
  uint64_t errors = 0;               // source failures and requests refused as invalid
  int64_t last_success_unix_ms = 0;  // 0: never
  int64_t last_error_unix_ms = 0;    // 0: never
  std::string last_error;            // the last rejection, give-up or error, for logs
  size_t in_flight = 0;              // shards with a request in flight
  std::vector<ShardStats> shards;

  uint64_t rejected(RejectReason reason) const {
    return rejected_by_reason[static_cast<size_t>(reason)];
  }
};

class QueueManager {
 public:
  // `sources[i]` feeds shard i; they and `clock` are borrowed and must outlive the manager.
  QueueManager(QueueManagerOptions options, std::vector<ShardSource*> sources, Clock* clock);
  ~QueueManager();  // Stop()
  QueueManager(const QueueManager&) = delete;
  QueueManager& operator=(const QueueManager&) = delete;

  // Checks the options (kInvalidArgument: a count or size out of range, a source per shard
  // missing) and starts one thread per shard. Once.
  Status Start();

  // Stops every shard: waits end at once, an exchange in progress is cancelled (through the
  // transport's stop token), threads are joined. Nothing is acked that was not answered; an
  // interrupted batch is simply sent again by the next QueueManager. Idempotent.
  void Stop();

  QueueStats stats() const;

 private:
  struct Shard;
  void RunShard(Shard* shard, std::stop_token stop);
  void RecordError(std::string message);
  bool Full(const SourceBatch& batch) const;

  QueueManagerOptions options_;
  std::vector<ShardSource*> sources_;
  Clock* clock_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::jthread> threads_;
  bool started_ = false;

  struct Counters {
    std::atomic<uint64_t> batches_sent{0}, samples_sent{0}, bytes_sent{0};
    std::atomic<uint64_t> batches_rejected{0}, samples_rejected{0};
    std::array<std::atomic<uint64_t>, kRejectReasonCount> rejected_by_reason{};
    std::atomic<uint64_t> retries{0}, samples_retried{0}, gave_up{0}, errors{0};
    std::atomic<int64_t> last_success_unix_ms{0};
  } counters_;
  mutable std::mutex error_mu_;
  std::string last_error_;
  int64_t last_error_unix_ms_ = 0;
};

}  // namespace ccmon
