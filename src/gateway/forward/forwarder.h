// Forwarder: the gateway's --forward destinations. Every sample the gateway stores is queued,
// durably, once per destination, and sent there by the agent's queue manager
// (remote_write/queue_manager.h: shards by series, full batches, backoff with jitter, retries
// only on network errors, 5xx and 429, never on other 4xx).
//
// Queues: one Outbox (store/outbox.h) per destination, in the gateway's own store under the key
// prefix ForwardQueuePrefix(url) (docs/store-format.md "Gateway"). The Forwarder is the
// GatewayStore's ApplyListener: a request's stored samples are staged into every destination's
// outbox in the SAME synced WriteBatch as the series state, so a 2xx means "stored and queued
// for every destination", and a failed write queues nothing. An entry leaves its queue only
// when the destination answered 2xx (or refused it for good: counted) — the queue's head is the
// persistent cursor, so nothing is lost across gateway restarts or upstream outages. Delivery is
// at least once; an entry re-sent after a crash is a duplicate the receiver drops.
//
// What is sent is exactly what was stored (plus the destination's --forward-label labels, when
// given): sorted labels (the device label already the key's),
// duplicates left out, and each series at most once per entry (a series' second sample in one
// request goes in the next entry), so a batch re-sent after a lost answer never carries a sample
// older than its series' newest (OutboxShardSource cuts batches before a repeated series; see
// rw::SamplesBeforeRepeatedSeries). Every series is validated as the remote-write encoder
// requires before it is queued; one that fails is left out and counted (samples_invalid), so
// it never makes a destination refuse a whole request. Metadata is not forwarded.
//
// Destinations are identified by URL. At Open, queues of URLs no longer configured are dropped
// (logged with their size); a new URL starts empty, from the next stored request.
// Limits: each queue keeps at most queue.max_bytes of payload and entries at most queue.max_age
// old; older entries are dropped every limits_interval, logged and counted (samples_dropped).
// A destination's newest send error (a refusal, a give-up) is logged once per limits_interval.
//
// Threading: Prepare/Committed/Aborted from GatewayStore::Apply (serialized by it); Start/Stop from
// the controlling thread; stats() from any thread. Per destination, one thread per shard, and
// one thread for the limits.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "gateway/forward/prefixed_store.h"
#include "gateway/store/series_store.h"
#include "http/http_client.h"
#include "http/transport.h"
#include "remote_write/outbox/outbox_source.h"
#include "remote_write/queue_manager.h"
#include "store/kv_store.h"
#include "store/outbox.h"

namespace ccmon::gateway {

// 'F', then the destination URL as a varint length and its bytes; the Outbox's keys follow.
inline constexpr char kForwardKeyPrefix = 'F';
std::string ForwardQueuePrefix(std::string_view url);

// The URL as shown in logs and the `destination` label: without a user:password@ part.
std::string RedactedUrl(std::string_view url);

struct ForwardDestination {
  std::string url;                  // http(s)://host:port/path of a remote-write receiver
  std::vector<HttpHeader> headers;  // sent with every request: X-Scope-OrgID, Authorization, ...
  // --forward-label: added to every series sent to this destination, replacing a series' own
  // label of that name (e.g. Mimir's HA-tracker labels `cluster` and `replica`, with
  // ha_replica_label: replica, for an HA pair of gateways). What the gateway stores and serves
  // on /metrics is unchanged. Checked by CheckForwardLabels; the order does not matter.
  Labels labels = {};
};

// A destination's labels: valid label names, each once, not starting with "__" (reserved; the
// remote-write encoder refuses them), none that the stored series' meaning depends on (device,
// model, project, type, tool, reason, le, quantile); values non-empty UTF-8. Errors:
// kInvalidArgument naming the label.
Status CheckForwardLabels(const Labels& labels);

struct ForwarderOptions {
  std::vector<ForwardDestination> destinations;  // URLs unique
  size_t shards = 4;                             // per destination, 1..kMaxShards
  size_t max_samples_per_send = 2000;
  std::chrono::milliseconds batch_send_deadline{5000};
  OutboxOptions queue;  // per destination: max_bytes, max_age (0: no limit)
  std::chrono::milliseconds limits_interval{10'000};
  // A send still failing after this is handed back and tried again later (never dropped).
  std::chrono::seconds max_retry_time{30};
  HttpClientOptions http;
  TransportFactory transport_factory;  // empty: real HTTP (tests inject their own)
  // One logfmt line (no line end) per call, from several threads.
  std::function<void(std::string_view line)> log;
};

struct ForwardDestinationStats {
  std::string destination;                                            // RedactedUrl
  uint64_t queued_samples = 0, queued_entries = 0, queued_bytes = 0;  // now
  double lag_seconds = 0;         // age of the oldest queued entry; 0 when the queue is empty
  uint64_t samples_queued = 0;    // since start
  uint64_t samples_sent = 0;      // answered 2xx
  uint64_t samples_rejected = 0;  // refused for good by the destination (a 4xx)
  uint64_t samples_dropped = 0;   // by the queue limits (age, size)
  uint64_t samples_invalid = 0;   // not queued: the encoder's validation refused their series
  uint64_t retries = 0, gave_up = 0;
  std::string last_error;
  int64_t last_error_unix_ms = 0;    // when last_error happened; 0: never
  int64_t last_success_unix_ms = 0;  // the last 2xx; 0: never
};

class Forwarder final : public ApplyListener {
 public:
  // Opens every destination's queue in `kv` (borrowed, outlives the Forwarder) and drops the
  // queues of destinations no longer configured. `clock` is borrowed. Errors: kInvalidArgument
  // for bad options (no destination, a URL twice, a shard count out of range); the store's.
  static Status Open(KvStore* kv, ForwarderOptions options, Clock* clock,
                     std::unique_ptr<Forwarder>* out);
  ~Forwarder() override;
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Starts sending (the queue managers) and the limits thread. Once.
  Status Start();
  // Stops sending; entries not yet acknowledged stay queued. Idempotent.
  void Stop();

  // ApplyListener: stages what `series` stores (SeriesTable::Plan over `before`: duplicates left
  // out) into every destination's queue, in `batch`; Committed makes it visible to the senders,
  // Aborted forgets it. An entry the outbox refuses (none should be: entries are capped well
  // below its payload limit) is logged and counted in samples_invalid, never fails the write.
  void Prepare(const std::vector<IncomingSeries>& series, const SeriesTable& before,
               WriteBatch* batch) override;
  void Committed() override;
  void Aborted() override;

  std::vector<ForwardDestinationStats> stats() const;

  // Drops what is over the queue limits now (Start's thread does it every limits_interval):
  // logged and counted in samples_dropped. Any thread.
  void EnforceLimits();

  // One shard's entries for `stored`: serialized WriteRequests, each holding a series at most
  // once (shard of a series: ShardOf(SeriesHash(labels), shards)). *invalid_samples counts the
  // samples of series the encoder refused (left out). Exposed for tests.
  struct Entry {
    uint32_t shard = 0;
    uint32_t samples = 0;
    std::string payload;
  };
  // `extra_labels` (a destination's labels) are added to every series, the labels kept sorted;
  // the shard stays that of the stored series.
  static void BuildEntries(const std::vector<IncomingSeries>& stored, size_t shards,
                           std::vector<Entry>* entries, uint64_t* invalid_samples,
                           const Labels& extra_labels = {});

 private:
  struct Destination;
  Forwarder(ForwarderOptions options, Clock* clock);
  void Log(std::string_view line) const;
  // Logs each destination's last send error once (the limits thread, every limits_interval).
  void LogNewSendErrors();

  ForwarderOptions options_;
  Clock* clock_;
  std::vector<std::unique_ptr<Destination>> destinations_;
  std::jthread limits_thread_;
  bool started_ = false;
};

}  // namespace ccmon::gateway
