// WriteHandler: the gateway's POST /api/v1/write, remote-write 1.0 (prometheus.WriteRequest) and
// 2.0 (io.prometheus.write.v2.Request), as a pure request -> response function over a
// SeriesStore (gateway/store/series_store.h). No sockets here: HttpServer (http/server.h) calls
// it, tests call it directly.
//
// The status contract (issue 8 §1; the remote-write specs: a sender retries 5xx and 429 and
// drops the batch on any other 4xx, so only what a retry can fix is a 5xx):
//   204  stored: the request's changes are durable (SeriesStore::Apply returned OK). Samples at
//        or before their series' last one are duplicates: dropped, counted, still a 204.
//        A request with no samples (metadata only, or only native histograms) is a 204 too.
//   400  what a retry cannot fix, with the reason in the body: a body that is not snappy or not
//        the protobuf; a decoded size (snappy's declared length, read before decompressing)
//        over max_decoded_bytes; more series or metadata entries than allowed; a series
//        without a valid __name__, with an invalid, duplicate or "__"-prefixed label name, more
//        labels than allowed, a label name or value too long, text that is not UTF-8; a sample
//        more than max_future ahead of the clock; metadata with an invalid family name or a
//        help or unit text too long; a 2.0 symbol reference out of its table. Nothing of a
//        rejected request is stored.
//   401  no valid device key: an Authorization header that is not "Bearer <a live device key>"
//        (absent, another scheme, malformed, unknown, revoked or rotated away: one answer for
//        all, WWW-Authenticate: Bearer), or none at all unless allow_anonymous. Checked first,
//        before the body is looked at.
//   413  a body over max_body_bytes (HttpServer answers it first when its limit is the same).
//   415  a Content-Type other than application/x-protobuf (with proto= absent,
//        prometheus.WriteRequest or io.prometheus.write.v2.Request), or a Content-Encoding other
//        than snappy. An absent Content-Type is read as 1.0 (old senders send none).
//   429  (Retry-After: whole seconds, >= 1) a retry later can succeed: the device's request
//        rate is over max_requests_per_device_per_second (a token bucket per device, burst
//        device_burst; anonymous writes share one bucket; Retry-After is when a token is back),
//        or more than max_pending_writes writes are already decoding or waiting for the store
//        (overload; Retry-After: 1). Checked right after authentication, before the body is
//        decoded; nothing is stored.
//   400  (series limit) a request whose new series would take a device beyond
//        max_series_per_device series (counted by the stored series' `device` label; "" for
//        series without one) is a limit a retry cannot fix: the series beyond the limit are
//        refused with their samples, and the rest of the request — every existing series, and
//        new ones while under the limit — IS stored; the 400 says how many series were refused.
//        Existing series keep updating however many a device holds. This is the one 400 after
//        which part of the request is stored (a sender drops the batch; what was stored is not
//        lost, and a retry would only refuse the same series again).
//   503  the store failed (a full or failing disk): nothing was stored, retry later
//        (Retry-After: 5).
// Labels with an empty value are dropped (the same series as without them). Labels are stored
// sorted, as received otherwise, except `device`: a write authenticated by a device key has
// every series' `device` label set to the key's device name, whatever the request said (added
// when absent, replaced when present), so a device can never write another device's series.
// An anonymous write (allow_anonymous, no Authorization header) keeps its labels as sent.
// 2.0 answers carry X-Prometheus-Remote-Write-Samples-Written (samples stored or already held:
// accepted + duplicates), -Histograms-Written (0: native histograms are not stored yet) and
// -Exemplars-Written (0: exemplars are not stored), on 204 and on 4xx/5xx (all 0 there).
//
// Receive path: a 1.0 body is decoded by rw::WriteRequestView (views into the decompressed
// bytes, no string per label) and each series reaches the store as its canonical key alone
// (IncomingSeries::key), built straight from those views; a 2.0 body goes through rw::DecodeV2
// and then the same path. A 1.0 series whose label bytes the same device sent before (and the
// full path accepted and stored) is found in the series cache (series_cache.h) while the body
// is decoded, and reaches the store as its table entry (IncomingSeries::entry): its labels are
// not parsed, checked, sorted or made a key, and the store does not look it up. Every other
// series takes the full path; after its request is stored, its entry is cached. A request
// refused by the store for a stale entry (the table's generation changed) is built again the
// full way, the cache emptied. Every buffer of it belongs to the write while it is in flight (a
// WriteScratch taken from a pool, held until the store answered, since the store reads the
// series from it) and is reused from write to write; after a write, decode buffers over 16 MiB
// and series vectors over 100,000 entries are freed (a rare huge request is not held forever),
// and at most 16 idle ones are kept.
//
// Asynchronous: HandleAsync hands a decoded request to SeriesStore::ApplyAsync and returns; the
// answer (204, 400 for the series limit, 503) is sent from the store's completion, on the thread
// that wrote the request's group. So an io thread never waits for an fsync, and any number of
// writes can be in flight (max_pending_writes bounds them). The batch identity's mark is raised
// only in that completion, after the store succeeded.
//
// Thread-safety: HandleAsync and Handle may run concurrently (the store serializes applies);
// stats are atomic. With max_series_per_device set, the budget check and the apply of a request
// run under one mutex (exact counts; applies are serialized by the store anyway), and the
// apply is then waited for on the calling thread (the synchronous path of before).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "gateway/devices/device_registry.h"
#include "gateway/ingest/batch_identity.h"
#include "gateway/ingest/rate_limiter.h"
#include "gateway/ingest/series_cache.h"
#include "gateway/store/series_store.h"
#include "http/server.h"

namespace ccmon::gateway {

struct IngestLimits {
  size_t max_body_bytes = size_t(16) << 20;     // compressed, as received
  size_t max_decoded_bytes = size_t(64) << 20;  // snappy's declared length
  size_t max_series_per_request = 50'000;       // TimeSeries entries (and metadata entries)
  size_t max_labels_per_series = 64;            // __name__ included
  size_t max_label_name_bytes = 256;
  size_t max_label_value_bytes = 4096;                   // also help and unit texts
  std::chrono::milliseconds max_future{10 * 60 * 1000};  // samples ahead of the clock
  // 429s and the series budget (0: off). See the contract above.
  uint64_t max_requests_per_device_per_second = 0;
  uint64_t device_burst = 0;  // 0: 2 x max_requests_per_device_per_second
  // Writes decoding or waiting for the store at once (0: no limit). The write path does not
  // hold an io thread while a write waits for its group (HandleAsync), so this, and
  // max_connections, are what bound the writes in flight.
  size_t max_pending_writes = 0;
  size_t max_series_per_device = 0;
  // The series cache's bound (series_cache.h; 0: no cache): a series whose labels a device
  // sent before, byte for byte, skips its labels' parse, checks, key and index lookup. About
  // 56 bytes + the device name + the series' label bytes (~100-300) per entry held.
  size_t series_cache_entries = 131'072;
};

// Why samples were refused (ccmon_gateway_samples_rejected_total{reason}).
enum class RejectReason : uint8_t {
  kBadBody,        // not snappy / not the protobuf (samples unknown: counted as requests only)
  kOverLimit,      // a request or series over a limit (samples unknown for a body or decoded
                   // size over its limit: counted as requests only)
  kInvalidSeries,  // labels, names, UTF-8, metadata
  kFuture,         // a sample beyond max_future
  kStorage,        // the store failed (503)
  kUnauthorized,   // 401 (samples unknown: the body is not decoded)
  kRateLimited,    // 429, over the device's request rate (samples unknown: not decoded)
  kOverloaded,     // 429, too many writes pending (samples unknown: not decoded)
  kSeriesLimit,    // the samples of series refused by max_series_per_device
};
inline constexpr size_t kRejectReasonCount = 9;
std::string_view RejectReasonName(RejectReason r);

// The status codes the handler answers, counted by code.
inline constexpr std::array<unsigned, 9> kWriteStatusCodes = {204, 400, 401, 405, 413,
                                                              415, 429, 503, 500};

// Why a request was limited (ccmon_gateway_write_requests_limited_total{reason}).
enum class LimitReason : uint8_t { kRateLimit, kOverload, kSeriesLimit };
inline constexpr size_t kLimitReasonCount = 3;
std::string_view LimitReasonName(LimitReason r);

struct WriteStats {
  std::array<uint64_t, kWriteStatusCodes.size()> requests_by_code{};  // kWriteStatusCodes order
  uint64_t samples_accepted = 0;
  uint64_t samples_duplicate = 0;
  std::array<uint64_t, kRejectReasonCount> samples_rejected{};  // by RejectReason
  uint64_t counter_resets = 0;
  uint64_t series_created = 0;
  uint64_t v2_requests = 0;
  std::array<uint64_t, kLimitReasonCount> requests_limited{};  // by LimitReason
  // Requests acknowledged (204) without being applied: their batch identity was applied before
  // (batch_identity.h).
  uint64_t duplicate_batches = 0;
  // 1.0 series found in the series cache (series_cache.h), and those that took the full path
  // while the cache was on.
  uint64_t series_cache_hits = 0;
  uint64_t series_cache_misses = 0;
};

struct WriteHandlerOptions {
  IngestLimits limits;
  // Writes without an Authorization header are accepted (labels as sent). Off by default.
  bool allow_anonymous = false;
  // The device keys (borrowed; must outlive the handler). nullptr: no key is valid.
  DeviceRegistry* devices = nullptr;
  Clock* clock = nullptr;  // Clock::Real(); also the rate limiter's
  // Storage failures, one line each (no line end). Empty: not reported.
  std::function<void(std::string_view)> log;
  // Called after each stored (204) write, once per device it came from: the key's device, or
  // for an anonymous write each distinct `device` label of its series (none without one), with
  // the request's User-Agent. From the thread that completes the write (an io thread, or the
  // store's group writer: see HandleAsync); must be thread-safe and quick. Empty: not called.
  std::function<void(std::string_view device, std::string_view user_agent)> on_accepted;
};

struct WriteScratch;  // a thread's reused buffers (write_handler.cc)

class WriteHandler : public AsyncHttpHandler {
 public:
  // `store` is borrowed and must outlive the handler.
  WriteHandler(SeriesStore* store, WriteHandlerOptions options);
  ~WriteHandler() override;
  // A POST to the write path (the caller routes; any method is treated as a write). `done` is
  // called once the answer is known: at once for an answer that needs no store (401, 429, 4xx),
  // else when the store's SeriesStore::ApplyAsync completes the request (on the thread that
  // wrote its group), so no thread waits for the sync. With max_series_per_device set, the
  // budget check and the apply run under one mutex, and the apply is then waited for on the
  // calling thread. Handle (AsyncHttpHandler's) is this, waited for.
  void HandleAsync(ServerRequest request, ResponseCompletion done) override;
  // Counts a response the router gave for the write path itself (405).
  void CountStatus(unsigned status);
  WriteStats stats() const;

 private:
  struct Job;  // one write in flight (write_handler.cc)
  // Up to the decode: an early answer (401, 429, 415, 413, a known batch, a decoded size over
  // the limit), or nullopt to go on.
  std::optional<ServerResponse> Start(Job& job);
  // Decodes and checks the body into job.scratch (the series cache used when `with_cache`):
  // an answer for a request refused, or nullopt when its series are ready for the store.
  std::optional<ServerResponse> Build(Job& job, bool with_cache);
  // Hands the job to the store; Stored answers when the store did.
  void Submit(std::unique_ptr<Job> job);
  void Stored(std::unique_ptr<Job> job, Status status);
  std::unique_ptr<WriteScratch> AcquireScratch();
  void ReleaseScratch(std::unique_ptr<WriteScratch> scratch);
  ServerResponse Answer(unsigned status, std::string body, bool v2, uint64_t written);
  void Reject(RejectReason reason, uint64_t samples);
  ServerResponse TooManyRequests(LimitReason reason, std::chrono::seconds retry_after,
                                 std::string body, bool v2);
  // Applies `series` under max_series_per_device (see the contract): the series over a device's
  // budget are taken out of *series; returns how many, and their samples in *refused_samples.
  Status ApplyWithinSeriesBudget(std::vector<IncomingSeries>* series,
                                 const std::vector<rw::Metadata>& metadata, ApplyResult* result,
                                 size_t* refused_series, uint64_t* refused_samples,
                                 std::string* example_device);
  void ReportAccepted(const std::string& device, const std::vector<IncomingSeries>& series,
                      std::string_view user_agent);
  // After a stored request: caches the series whose labels took the full path (scratch.misses).
  void RememberSeries(std::string_view device, WriteScratch& scratch);

  SeriesStore* store_;
  WriteHandlerOptions options_;
  std::array<std::atomic<uint64_t>, kWriteStatusCodes.size()> by_code_{};
  std::atomic<uint64_t> accepted_{0}, duplicate_{0}, resets_{0}, created_{0}, v2_{0};
  std::atomic<uint64_t> duplicate_batches_{0};
  std::atomic<uint64_t> cache_hits_{0}, cache_misses_{0};
  BatchHighWater high_water_;  // keyed devices only
  std::array<std::atomic<uint64_t>, kRejectReasonCount> rejected_{};
  std::array<std::atomic<uint64_t>, kLimitReasonCount> limited_{};
  RateLimiter rate_limiter_;
  std::atomic<size_t> pending_writes_{0};
  // max_series_per_device: held from the budget check through the Apply, so that the counts
  // are exact (applies are serialized by the store anyway).
  std::mutex series_budget_mu_;
  bool series_counted_ = false;                    // device_series_ loaded from the store
  std::map<std::string, uint64_t> device_series_;  // `device` label value -> series held
  std::unique_ptr<SeriesCache> cache_;             // null: series_cache_entries == 0
  // Decode buffers of finished writes, for the next ones (at most kMaxFreeScratch kept).
  static constexpr size_t kMaxFreeScratch = 16;
  std::mutex scratch_mu_;
  std::vector<std::unique_ptr<WriteScratch>> free_scratch_;  // guarded by scratch_mu_
};

}  // namespace ccmon::gateway
