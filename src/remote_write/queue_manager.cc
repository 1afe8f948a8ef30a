#include "remote_write/queue_manager.h"

#include <snappy.h>

#include <algorithm>
#include <utility>

#include "http/persistent_transport.h"

namespace ccmon {

static_assert(static_cast<size_t>(RejectReason::kDuplicateSample) + 1 == kRejectReasonCount,
              "kRejectReasonCount must cover every RejectReason");

uint64_t SeriesHash(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(labels.size());
  for (const auto& l : labels) sorted.push_back(&l);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;  // FNV-1a 64 prime
  };
  for (const auto* l : sorted) {
    for (char c : l->first) mix(static_cast<unsigned char>(c));
    mix(0xFF);  // never in UTF-8 text: "ab"+"c" and "a"+"bc" differ
    for (char c : l->second) mix(static_cast<unsigned char>(c));
    mix(0xFF);
  }
  return h;
}

size_t ShardOf(uint64_t series_hash, size_t shards) {
  if (shards <= 1) return 0;
  // FNV's low bits are its weakest; fold the high half in before the modulo.
  return static_cast<size_t>((series_hash ^ (series_hash >> 32)) % shards);
}

struct QueueManager::Shard {
  size_t index = 0;
  std::atomic<uint64_t> pending_samples{0};
  std::atomic<bool> pending_more{false};
  std::atomic<bool> in_flight{false};
  std::atomic<uint64_t> batches_sent{0}, samples_sent{0};
};

QueueManager::QueueManager(QueueManagerOptions options, std::vector<ShardSource*> sources,
                           Clock* clock)
    : options_(std::move(options)), sources_(std::move(sources)), clock_(clock) {
  // Made here, never resized: stats() reads them from any thread.
  for (size_t i = 0; i < std::min(options_.shards, kMaxShards); ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->index = i;
  }
}

QueueManager::~QueueManager() { Stop(); }

Status QueueManager::Start() {
  if (started_) return Status::InvalidArgument("queue manager: already started");
  if (options_.shards < 1 || options_.shards > kMaxShards) {
    return Status::InvalidArgument("queue manager: shards must be 1.." +
                                   std::to_string(kMaxShards) + ", not " +
                                   std::to_string(options_.shards));
  }
  if (sources_.size() != options_.shards) {
    return Status::InvalidArgument("queue manager: " + std::to_string(options_.shards) +
                                   " shards need as many sources, not " +
                                   std::to_string(sources_.size()));
  }
  for (ShardSource* s : sources_) {
    if (s == nullptr) return Status::InvalidArgument("queue manager: a shard has no source");
  }
  if (options_.max_samples_per_send < 1 || options_.max_bytes_per_send < 1) {
    return Status::InvalidArgument(
        "queue manager: max_samples_per_send and "
        "max_bytes_per_send must be at least 1");
  }
  if (options_.batch_send_deadline.count() < 0 || options_.pause_after_give_up.count() < 0 ||
      options_.pause_after_error.count() < 0) {
    return Status::InvalidArgument("queue manager: negative deadline or pause");
  }
  if (clock_ == nullptr) return Status::InvalidArgument("queue manager: no clock");
  started_ = true;
  for (auto& shard : shards_) {
    threads_.emplace_back([this, s = shard.get()](std::stop_token stop) { RunShard(s, stop); });
  }
  return Status::Ok();
}

void QueueManager::Stop() {
  for (auto& t : threads_) t.request_stop();  // all at once: every shard stops in parallel
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

QueueStats QueueManager::stats() const {
  QueueStats s;
  s.batches_sent = counters_.batches_sent.load(std::memory_order_relaxed);
  s.samples_sent = counters_.samples_sent.load(std::memory_order_relaxed);
  s.bytes_sent = counters_.bytes_sent.load(std::memory_order_relaxed);
  s.batches_rejected = counters_.batches_rejected.load(std::memory_order_relaxed);
  s.samples_rejected = counters_.samples_rejected.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kRejectReasonCount; ++i) {
    s.rejected_by_reason[i] = counters_.rejected_by_reason[i].load(std::memory_order_relaxed);
  }
  s.retries = counters_.retries.load(std::memory_order_relaxed);
  s.samples_retried = counters_.samples_retried.load(std::memory_order_relaxed);
  s.gave_up = counters_.gave_up.load(std::memory_order_relaxed);
  s.errors = counters_.errors.load(std::memory_order_relaxed);
  s.last_success_unix_ms = counters_.last_success_unix_ms.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    s.last_error = last_error_;
    s.last_error_unix_ms = last_error_unix_ms_;
  }
  for (const auto& shard : shards_) {
    ShardStats st;
    st.pending_samples = shard->pending_samples.load(std::memory_order_relaxed);
    st.pending_more = shard->pending_more.load(std::memory_order_relaxed);
    st.in_flight = shard->in_flight.load(std::memory_order_relaxed);
    st.batches_sent = shard->batches_sent.load(std::memory_order_relaxed);
    st.samples_sent = shard->samples_sent.load(std::memory_order_relaxed);
    if (st.in_flight) ++s.in_flight;
    s.shards.push_back(st);
  }
  return s;
}

void QueueManager::RecordError(std::string message) {
  const int64_t now = clock_->NowUnixMs();
  std::lock_guard<std::mutex> lock(error_mu_);
  last_error_ = std::move(message);
  last_error_unix_ms_ = now;
}

bool QueueManager::Full(const SourceBatch& batch) const {
  return batch.more || batch.samples >= options_.max_samples_per_send ||
         batch.payload.size() >= options_.max_bytes_per_send;
}

void QueueManager::RunShard(Shard* shard, std::stop_token stop) {
  const std::string name = "shard " + std::to_string(shard->index) + ": ";
  ShardSource* source = sources_[shard->index];
  std::unique_ptr<HttpTransport> transport =
      options_.transport_factory ? options_.transport_factory(shard->index, stop)
                                 : std::make_unique<PersistentHttpTransport>(options_.http, stop);
  if (!transport) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    RecordError(name + "the transport factory made no transport; the shard does not send");
    return;
  }
  RemoteWriteSenderOptions sender_options = options_.sender;
  // A failing receiver shows in last_error at once (status, log), not only after the give-up.
  sender_options.on_retry = [this, &name](const SendAnswer& answer, int attempt) {
    RecordError(name + "attempt " + std::to_string(attempt) + " failed: " + answer.Describe() +
                " (retrying)");
  };
  RemoteWriteSender sender(sender_options, transport.get(), clock_, options_.random01);
  auto pause = [&](std::chrono::milliseconds d) { clock_->WaitFor(d, stop); };
  auto source_error = [&](const char* what, const Status& s) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    RecordError(name + what + ": " + s.message());
    pause(options_.pause_after_error);
  };

  uint64_t last_acked = 0;
  // When the current head (the first entry after last_acked) was first peeked.
  bool head_seen = false;
  uint64_t head_seen_after = 0;
  std::chrono::steady_clock::time_point head_seen_at;
  SourceBatch batch;
  std::string body;
  while (!stop.stop_requested()) {
    if (Status s = source->Peek(options_.max_samples_per_send, options_.max_bytes_per_send, &batch);
        !s.ok()) {
      source_error("source", s);
      continue;
    }
    shard->pending_samples.store(batch.samples, std::memory_order_relaxed);
    shard->pending_more.store(batch.more, std::memory_order_relaxed);
    if (batch.empty()) {
      head_seen = false;
      source->WaitForData(last_acked, std::chrono::steady_clock::time_point::max(), stop);
      continue;
    }
    if (!Full(batch)) {
      // A small batch waits for company until its oldest entry is batch_send_deadline old.
      const int64_t due_unix_ms =
          batch.oldest_created_unix_ms + int64_t(options_.batch_send_deadline.count());
      // And at most one deadline after this shard first saw the head entry: one stamped in
      // the future (the wall clock stepped back since) must not hold the batch back longer.
      if (head_seen_after != last_acked || !head_seen) {
        head_seen = true;
        head_seen_after = last_acked;
        head_seen_at = clock_->Now();
      }
      const auto seen_for =
          std::chrono::duration_cast<std::chrono::milliseconds>(clock_->Now() - head_seen_at);
      const int64_t wait_ms = std::min<int64_t>(due_unix_ms - clock_->NowUnixMs(),
                                                (options_.batch_send_deadline - seen_for).count());
      if (wait_ms > 0) {
        source->WaitForData(batch.through_cursor,
                            clock_->Now() + std::chrono::milliseconds(wait_ms), stop);
        continue;  // more data, the deadline, or a stop: look again
      }
    }

    body.clear();
    snappy::Compress(batch.payload.data(), batch.payload.size(), &body);
    shard->in_flight.store(true, std::memory_order_relaxed);
    const SendResult r = sender.Send(body, stop, batch.headers);
    shard->in_flight.store(false, std::memory_order_relaxed);
    counters_.retries.fetch_add(uint64_t(r.retries()), std::memory_order_relaxed);
    counters_.samples_retried.fetch_add(uint64_t(r.retries()) * batch.samples,
                                        std::memory_order_relaxed);

    switch (r.outcome) {
      case SendOutcome::kSent: {
        AckResult ack;
        ack.kind = AckResult::Kind::kSent;
        ack.http_status = r.last.status;
        if (Status s = source->Ack(batch.through_cursor, ack); !s.ok()) {
          source_error("ack", s);  // sent again after the pause: duplicates, never a loss
          break;
        }
        last_acked = batch.through_cursor;
        counters_.batches_sent.fetch_add(1, std::memory_order_relaxed);
        counters_.samples_sent.fetch_add(batch.samples, std::memory_order_relaxed);
        counters_.bytes_sent.fetch_add(body.size(), std::memory_order_relaxed);
        counters_.last_success_unix_ms.store(clock_->NowUnixMs(), std::memory_order_relaxed);
        shard->batches_sent.fetch_add(1, std::memory_order_relaxed);
        shard->samples_sent.fetch_add(batch.samples, std::memory_order_relaxed);
        break;
      }
      case SendOutcome::kRejected: {
        if (r.last.kind == AnswerKind::kInvalidRequest) {
          // Nothing was sent: a configuration error that every batch would meet. Kept.
          counters_.errors.fetch_add(1, std::memory_order_relaxed);
          RecordError(name + "request refused before sending: " + r.last.Describe());
          pause(options_.pause_after_error);
          break;
        }
        AckResult ack;
        ack.kind = AckResult::Kind::kRejected;
        ack.http_status = r.last.status;
        ack.reason = r.last.reason;
        ack.detail = r.last.Describe();
        RecordError(name + "rejected " + std::to_string(batch.samples) + " samples: " + ack.detail);
        if (Status s = source->Ack(batch.through_cursor, ack); !s.ok()) {
          source_error("ack", s);
          break;
        }
        last_acked = batch.through_cursor;
        counters_.batches_rejected.fetch_add(1, std::memory_order_relaxed);
        counters_.samples_rejected.fetch_add(batch.samples, std::memory_order_relaxed);
        const size_t reason = static_cast<size_t>(r.last.reason);
        if (reason < kRejectReasonCount) {
          counters_.rejected_by_reason[reason].fetch_add(1, std::memory_order_relaxed);
        }
        break;
      }
      case SendOutcome::kGaveUp:
        counters_.gave_up.fetch_add(1, std::memory_order_relaxed);
        RecordError(name + r.Describe() + " (kept; trying again)");
        pause(options_.pause_after_give_up);
        break;
      case SendOutcome::kStopped:
        break;  // the loop ends: the batch stays pending
    }
  }
  shard->in_flight.store(false, std::memory_order_relaxed);
}

}  // namespace ccmon
