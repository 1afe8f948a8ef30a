#include "gateway/ingest/write_handler.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "remote_write/write_request.h"
#include "remote_write/write_request_view.h"

namespace ccmon::gateway {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

enum class Version { kV1, kV2, kUnsupported };

// application/x-protobuf with proto= absent, prometheus.WriteRequest (1.0) or
// io.prometheus.write.v2.Request (2.0); absent altogether: 1.0.
Version VersionOf(std::string_view content_type) {
  content_type = Trim(content_type);
  if (content_type.empty()) return Version::kV1;
  size_t semi = content_type.find(';');
  if (Lower(Trim(content_type.substr(0, semi))) != "application/x-protobuf") {
    return Version::kUnsupported;
  }
  Version v = Version::kV1;
  while (semi != std::string_view::npos) {
    content_type.remove_prefix(semi + 1);
    semi = content_type.find(';');
    std::string_view param = Trim(content_type.substr(0, semi));
    if (param.empty()) continue;
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos) return Version::kUnsupported;
    if (Lower(Trim(param.substr(0, eq))) != "proto") continue;  // e.g. charset: ignored
    std::string_view value = Trim(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (value == rw::kProtoParamV1) {
      v = Version::kV1;
    } else if (value == rw::kProtoParamV2) {
      v = Version::kV2;
    } else {
      return Version::kUnsupported;
    }
  }
  return v;
}

std::string Clip(std::string_view s) {
  std::string out(s.substr(0, 64));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return s.size() > 64 ? out + "..." : out;
}

using LabelRefs = std::vector<std::pair<std::string_view, std::string_view>>;

// Validates one series' labels and writes its canonical key (labels sorted, empty values
// dropped, `device` set to `device` when that is not empty: added when absent, replacing the
// sender's) to *key, through *labels (scratch, overwritten). "" when fine, else the 400
// message; *over_limit says whether a limit was the reason.
std::string CanonicalKey(std::span<const rw::LabelView> in, const IngestLimits& limits,
                         std::string_view device, LabelRefs* labels, std::string* key,
                         bool* over_limit) {
  *over_limit = false;
  if (in.size() > limits.max_labels_per_series) {
    *over_limit = true;
    return "a series has " + std::to_string(in.size()) + " labels, over the limit of " +
           std::to_string(limits.max_labels_per_series);
  }
  labels->clear();
  for (const rw::LabelView& l : in) {
    const std::string_view name = l.name, value = l.value;
    if (name.size() > limits.max_label_name_bytes) {
      *over_limit = true;
      return "a label name of " + std::to_string(name.size()) + " bytes, over the limit of " +
             std::to_string(limits.max_label_name_bytes);
    }
    if (value.size() > limits.max_label_value_bytes) {
      *over_limit = true;
      return "label \"" + Clip(name) + "\" has a value of " + std::to_string(value.size()) +
             " bytes, over the limit of " + std::to_string(limits.max_label_value_bytes);
    }
    if (name == "__name__") {
      if (!rw::IsValidMetricName(value)) return "invalid metric name \"" + Clip(value) + "\"";
    } else if (!rw::IsValidLabelName(name) || name.starts_with("__")) {
      return "invalid label name \"" + Clip(name) + "\"";
    }
    if (value.empty()) continue;
    labels->emplace_back(name, value);
  }
  // By name only: names must be unique, so the values never decide the order.
  std::sort(labels->begin(), labels->end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  bool has_name = false;
  for (size_t i = 0; i < labels->size(); ++i) {
    if (i > 0 && (*labels)[i].first == (*labels)[i - 1].first) {
      return "duplicate label name \"" + Clip((*labels)[i].first) + "\"";
    }
    if ((*labels)[i].first == "__name__") has_name = true;
  }
  if (!has_name) return "a series has no __name__";
  if (!device.empty()) {
    auto it = std::lower_bound(
        labels->begin(), labels->end(), std::string_view("device"),
        [](const auto& label, std::string_view name) { return label.first < name; });
    if (it != labels->end() && it->first == "device") {
      it->second = device;
    } else {
      labels->emplace(it, "device", device);
    }
  }
  SeriesKeyOf(*labels, key);
  return "";
}

// A thread's reusable buffers for the receive path: once warm, a request of the usual size
// decodes and canonicalises without allocating (the server runs a handler call per io thread at
// a time; the store reads `series` only while this thread waits in Apply).
// The `device` label's value, "" without one.
std::string_view DeviceOf(const Labels& labels) {
  for (const auto& [n, v] : labels) {
    if (n == "device") return v;
  }
  return "";
}

}  // namespace

// Per write in flight (a Job's), from a pool, reused from request to request.
struct WriteScratch {
  rw::WriteRequestView view;
  rw::WriteRequest decoded;  // 2.0 requests (rw::DecodeV2)
  std::vector<rw::LabelView> v2_labels;
  LabelRefs labels;
  std::vector<IncomingSeries> series;  // entries reused: their key and samples keep capacity
  std::vector<rw::Metadata> metadata;
  // With the series cache: the series whose labels took the full path (view index, series
  // index), and what RememberSeries hands the cache.
  std::vector<std::pair<size_t, size_t>> misses;
  std::vector<std::string_view> miss_keys;
  std::vector<const SeriesEntry*> miss_entries;
  std::vector<SeriesCache::Item> miss_items;
  // After a request, buffers over these are freed (a rare huge request is not held forever).
  static constexpr size_t kKeepViewBytes = size_t(16) << 20;
  static constexpr size_t kKeepSeries = 100'000;
  void Trim() {
    view.Shrink(kKeepViewBytes);
    if (series.capacity() > kKeepSeries) std::vector<IncomingSeries>().swap(series);
    decoded = rw::WriteRequest();
  }
};

std::string_view RejectReasonName(RejectReason r) {
  switch (r) {
    case RejectReason::kBadBody:
      return "bad_body";
    case RejectReason::kOverLimit:
      return "over_limit";
    case RejectReason::kInvalidSeries:
      return "invalid_series";
    case RejectReason::kFuture:
      return "future_timestamp";
    case RejectReason::kStorage:
      return "storage_failed";
    case RejectReason::kUnauthorized:
      return "unauthorized";
    case RejectReason::kRateLimited:
      return "rate_limited";
    case RejectReason::kOverloaded:
      return "overloaded";
    case RejectReason::kSeriesLimit:
      return "series_limit";
  }
  return "unknown";
}

std::string_view LimitReasonName(LimitReason r) {
  switch (r) {
    case LimitReason::kRateLimit:
      return "rate_limit";
    case LimitReason::kOverload:
      return "overload";
    case LimitReason::kSeriesLimit:
      return "series_limit";
  }
  return "unknown";
}

WriteHandler::WriteHandler(SeriesStore* store, WriteHandlerOptions options)
    : store_(store),
      options_(std::move(options)),
      rate_limiter_(RateLimit{double(options_.limits.max_requests_per_device_per_second),
                              double(options_.limits.device_burst)},
                    options_.clock) {
  if (options_.clock == nullptr) options_.clock = Clock::Real();
  if (options_.limits.series_cache_entries > 0) {
    cache_ = std::make_unique<SeriesCache>(options_.limits.series_cache_entries);
  }
}

WriteHandler::~WriteHandler() = default;

ServerResponse WriteHandler::TooManyRequests(LimitReason reason, std::chrono::seconds retry_after,
                                             std::string body, bool v2) {
  limited_[size_t(reason)].fetch_add(1, std::memory_order_relaxed);
  Reject(reason == LimitReason::kRateLimit ? RejectReason::kRateLimited : RejectReason::kOverloaded,
         0);
  ServerResponse r = Answer(429, std::move(body), v2, 0);
  r.headers.emplace_back("Retry-After", std::to_string(std::max<int64_t>(1, retry_after.count())));
  return r;
}

Status WriteHandler::ApplyWithinSeriesBudget(std::vector<IncomingSeries>* series,
                                             const std::vector<rw::Metadata>& metadata,
                                             ApplyResult* result, size_t* refused_series,
                                             uint64_t* refused_samples,
                                             std::string* example_device) {
  const uint64_t limit = options_.limits.max_series_per_device;
  std::lock_guard<std::mutex> lock(series_budget_mu_);
  std::map<std::string, uint64_t> added;  // device -> series this request creates
  std::vector<IncomingSeries> kept;
  kept.reserve(series->size());
  store_->Read([&](const SeriesTable& table) {
    if (!series_counted_) {  // once, on the first write: what the store already holds
      for (const auto& [key, state] : table.series()) {
        Labels labels;
        if (LabelsOfKey(key, &labels).ok()) ++device_series_[std::string(DeviceOf(labels))];
      }
      series_counted_ = true;
    }
    std::set<std::string> admitted;  // new keys let in by this request
    std::string scratch;
    for (IncomingSeries& s : *series) {
      std::string key(KeyOf(s, &scratch));
      if (table.series().contains(key) || admitted.contains(key)) {
        kept.push_back(std::move(s));
        continue;
      }
      const std::string device(LabelOfKey(key, "device"));
      uint64_t& adding = added[device];
      const auto held = device_series_.find(device);
      if ((held == device_series_.end() ? 0 : held->second) + adding >= limit) {
        ++*refused_series;
        *refused_samples += s.samples.size();
        if (example_device->empty()) *example_device = device;
        continue;
      }
      ++adding;
      admitted.insert(std::move(key));
      kept.push_back(std::move(s));
    }
  });
  *series = std::move(kept);
  Status s = store_->Apply(*series, metadata, result);
  if (s.ok()) {
    for (const auto& [device, n] : added) device_series_[device] += n;
  }
  return s;
}

void WriteHandler::CountStatus(unsigned status) {
  for (size_t i = 0; i < kWriteStatusCodes.size(); ++i) {
    if (kWriteStatusCodes[i] == status) {
      by_code_[i].fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  by_code_.back().fetch_add(1, std::memory_order_relaxed);
}

void WriteHandler::Reject(RejectReason reason, uint64_t samples) {
  rejected_[size_t(reason)].fetch_add(samples, std::memory_order_relaxed);
}

ServerResponse WriteHandler::Answer(unsigned status, std::string body, bool v2, uint64_t written) {
  CountStatus(status);
  ServerResponse r;
  r.status = status;
  if (!body.empty()) {
    r = ServerResponse::Text(status, std::move(body) + "\n");
  }
  if (v2) {
    r.headers.emplace_back(std::string(rw::kSamplesWrittenHeader), std::to_string(written));
    r.headers.emplace_back(std::string(rw::kHistogramsWrittenHeader), "0");
    r.headers.emplace_back(std::string(rw::kExemplarsWrittenHeader), "0");
  }
  if (status == 503) r.headers.emplace_back("Retry-After", "5");
  return r;
}

// One write from its arrival to its answer: the request, its completion, the buffers it was
// decoded into (a pooled WriteScratch, held until the store answered: the series the store
// reads and the label bytes the cache keeps are in them), and what the answer needs.
struct WriteHandler::Job {
  Job(WriteHandler* h, ServerRequest r, ResponseCompletion d)
      : handler(h), request(std::move(r)), done(std::move(d)), scratch(h->AcquireScratch()) {}
  ~Job() {
    handler->ReleaseScratch(std::move(scratch));
    if (counted_pending) handler->pending_writes_.fetch_sub(1, std::memory_order_acq_rel);
  }
  // Answers, then ends the job.
  static void Finish(std::unique_ptr<Job> job, ServerResponse response) {
    job->done(std::move(response));
  }

  WriteHandler* const handler;
  ServerRequest request;
  ResponseCompletion done;
  std::unique_ptr<WriteScratch> scratch;
  bool counted_pending = false;  // holds one of pending_writes_
  bool v2 = false;
  std::string device;  // the key's; empty for an anonymous write
  BatchIdentity batch;
  bool has_batch = false;
  // The series cache's table generation (0: the cache is not used for this request).
  uint64_t generation = 0;
  uint64_t samples = 0;
  bool rebuilt = false;  // built again the full way after a stale cached entry
  ApplyResult result;
  size_t refused_series = 0;  // max_series_per_device
  uint64_t refused_samples = 0;
  std::string refused_device;
};

std::unique_ptr<WriteScratch> WriteHandler::AcquireScratch() {
  {
    std::lock_guard<std::mutex> lock(scratch_mu_);
    if (!free_scratch_.empty()) {
      std::unique_ptr<WriteScratch> s = std::move(free_scratch_.back());
      free_scratch_.pop_back();
      return s;
    }
  }
  return std::make_unique<WriteScratch>();
}

void WriteHandler::ReleaseScratch(std::unique_ptr<WriteScratch> scratch) {
  if (scratch == nullptr) return;
  scratch->Trim();
  std::lock_guard<std::mutex> lock(scratch_mu_);
  if (free_scratch_.size() < kMaxFreeScratch) free_scratch_.push_back(std::move(scratch));
}

std::optional<ServerResponse> WriteHandler::Start(Job& job) {
  const ServerRequest& request = job.request;
  const Version version = VersionOf(request.Header("Content-Type"));
  const bool v2 = job.v2 = version == Version::kV2;
  // The device the key names; empty for an anonymous write. One answer for every failure.
  std::string& device = job.device;
  const std::string_view authorization = request.Header("Authorization");
  const bool anonymous = authorization.empty() && options_.allow_anonymous;
  if (!anonymous) {
    const bool ok = options_.devices != nullptr &&
                    options_.devices->Authenticate(BearerToken(authorization), &device);
    if (!ok) {
      Reject(RejectReason::kUnauthorized, 0);
      ServerResponse r = Answer(401,
                                "a valid device key is required: Authorization: Bearer dk_... "
                                "(ccmon-gateway device add NAME)",
                                v2, 0);
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ccmon-gateway\"");
      return r;
    }
  }
  // 429s: cheap checks before the body is decoded, so that a flood costs little.
  if (std::chrono::seconds wait{1}; !rate_limiter_.Admit(device, &wait)) {
    return TooManyRequests(LimitReason::kRateLimit, wait,
                           "rate limit: over " +
                               std::to_string(options_.limits.max_requests_per_device_per_second) +
                               " requests per second for device \"" + Clip(device) +
                               "\"; retry after " + std::to_string(wait.count()) + " s",
                           v2);
  }
  const size_t max_pending = options_.limits.max_pending_writes;
  const size_t pending = pending_writes_.fetch_add(1, std::memory_order_acq_rel);
  job.counted_pending = true;  // released when the job ends
  if (max_pending > 0 && pending >= max_pending) {
    return TooManyRequests(LimitReason::kOverload, std::chrono::seconds(1),
                           "overloaded: " + std::to_string(pending) +
                               " writes already waiting for the store; retry after 1 s",
                           v2);
  }
  if (version == Version::kUnsupported) {
    return Answer(415,
                  "unsupported Content-Type \"" + Clip(request.Header("Content-Type")) +
                      "\": want application/x-protobuf (proto=prometheus.WriteRequest or "
                      "io.prometheus.write.v2.Request)",
                  false, 0);
  }
  if (std::string_view enc = Trim(request.Header("Content-Encoding"));
      !enc.empty() && Lower(enc) != "snappy") {
    return Answer(415, "unsupported Content-Encoding \"" + Clip(enc) + "\": want snappy", v2, 0);
  }
  // An agent's batch already applied (a retry whose answer was lost): acknowledged, not
  // decoded or applied again. Keyed devices only: an anonymous writer could name any stream.
  BatchIdentity& batch = job.batch;
  const bool has_batch = job.has_batch =
      !device.empty() && ParseBatchIdentity(request.Header(kStreamHeaderName),
                                            request.Header(kBatchHeaderName), &batch);
  if (has_batch && high_water_.AlreadyApplied(device, batch)) {
    duplicate_batches_.fetch_add(1, std::memory_order_relaxed);
    return Answer(204, "", v2, 0);
  }
  const IngestLimits& limits = options_.limits;
  if (request.body.size() > limits.max_body_bytes) {
    Reject(RejectReason::kOverLimit, 0);
    return Answer(413,
                  "body of " + std::to_string(request.body.size()) + " bytes over the limit of " +
                      std::to_string(limits.max_body_bytes),
                  v2, 0);
  }
  if (v2) v2_.fetch_add(1, std::memory_order_relaxed);

  // A decoded size over the limit is an over-limit request (a decompression bomb, or a sender
  // whose batches are too large), told apart from a malformed body for the self-metrics; Decode
  // checks the same declared length again.
  if (size_t declared = 0;
      rw::DeclaredDecodedLength(request.body, &declared) && declared > limits.max_decoded_bytes) {
    Reject(RejectReason::kOverLimit, 0);
    return Answer(400,
                  "remote-write: decoded size " + std::to_string(declared) + " over the limit of " +
                      std::to_string(limits.max_decoded_bytes),
                  v2, 0);
  }
  return std::nullopt;
}

std::optional<ServerResponse> WriteHandler::Build(Job& job, bool with_cache) {
  const ServerRequest& request = job.request;
  const IngestLimits& limits = options_.limits;
  const bool v2 = job.v2;
  const std::string& device = job.device;
  const uint64_t generation = job.generation;
  WriteScratch& scratch = *job.scratch;
  std::vector<std::pair<size_t, size_t>>& misses = scratch.misses;  // (view index, series index)
  std::vector<IncomingSeries>& series = scratch.series;
  std::vector<rw::Metadata>& metadata = scratch.metadata;
  uint64_t& samples = job.samples;
  misses.clear();
  Status s;
  if (v2) {
    s = rw::DecodeV2(request.body, limits.max_decoded_bytes, &scratch.decoded, nullptr);
  } else if (with_cache) {
    SeriesCache::Reader known(cache_.get(), device, generation);
    s = scratch.view.Decode(request.body, limits.max_decoded_bytes, &known);
  } else {
    s = scratch.view.Decode(request.body, limits.max_decoded_bytes);
  }
  if (!s.ok()) {
    Reject(RejectReason::kBadBody, 0);
    return Answer(400, s.message(), v2, 0);
  }
  const rw::WriteRequest& decoded = scratch.decoded;
  const size_t series_count = v2 ? decoded.series.size() : scratch.view.series_count();
  if (v2) {
    metadata = decoded.metadata;
  } else {
    metadata.resize(scratch.view.metadata().size());
    for (size_t i = 0; i < metadata.size(); ++i) {
      const rw::MetadataView& m = scratch.view.metadata()[i];
      metadata[i].kind = m.kind;
      metadata[i].family.assign(m.family);
      metadata[i].help.assign(m.help);
      metadata[i].unit.assign(m.unit);
    }
  }
  samples = v2 ? decoded.sample_count() : scratch.view.sample_count();
  if (series_count > limits.max_series_per_request ||
      metadata.size() > limits.max_series_per_request) {
    Reject(RejectReason::kOverLimit, samples);
    return Answer(400,
                  "request with " + std::to_string(series_count) + " series and " +
                      std::to_string(metadata.size()) + " metadata entries, over the limit of " +
                      std::to_string(limits.max_series_per_request) + " each",
                  v2, 0);
  }

  const int64_t now_ms = options_.clock->NowUnixMs();
  const int64_t latest_ms = now_ms + limits.max_future.count();
  series.resize(series_count);
  size_t kept = 0;
  for (size_t i = 0; i < series_count; ++i) {
    std::span<const rw::LabelView> in_labels;
    std::span<const rw::Sample> in_samples;
    if (v2) {
      const rw::Series& in = decoded.series[i];
      scratch.v2_labels.clear();
      for (const auto& [n, v] : in.labels) scratch.v2_labels.push_back(rw::LabelView{n, v});
      in_labels = scratch.v2_labels;
      in_samples = in.samples;
    } else {
      in_labels = scratch.view.labels(i);
      in_samples = scratch.view.samples(i);
    }
    if (in_samples.empty()) continue;  // e.g. a 2.0 series of native histograms
    IncomingSeries& out = series[kept];
    // Cleared only when not empty: clearing a string writes its terminator into its heap
    // buffer, a cache line a cached series would otherwise never touch.
    if (!out.labels.empty()) out.labels.clear();
    out.entry = with_cache ? static_cast<const SeriesEntry*>(scratch.view.known(i)) : nullptr;
    out.generation = out.entry != nullptr ? generation : 0;
    if (out.entry != nullptr) {
      if (!out.key.empty()) out.key.clear();
    } else {
      bool over_limit = false;
      if (std::string why =
              CanonicalKey(in_labels, limits, device, &scratch.labels, &out.key, &over_limit);
          !why.empty()) {
        Reject(over_limit ? RejectReason::kOverLimit : RejectReason::kInvalidSeries, samples);
        return Answer(400, "remote-write: " + why, v2, 0);
      }
      if (with_cache && !scratch.view.label_bytes(i).empty()) misses.emplace_back(i, kept);
    }
    for (const rw::Sample& sample : in_samples) {
      if (sample.timestamp_ms > latest_ms) {
        Reject(RejectReason::kFuture, samples);
        return Answer(400,
                      "remote-write: a sample of " + Clip(NameViewOfKey(GivenKeyOf(out))) + " at " +
                          std::to_string(sample.timestamp_ms) + " ms is " +
                          std::to_string((sample.timestamp_ms - now_ms) / 1000) +
                          " s ahead of the gateway's clock (at most " +
                          std::to_string(limits.max_future.count() / 1000) + " s allowed)",
                      v2, 0);
      }
    }
    out.samples.assign(in_samples.begin(), in_samples.end());
    ++kept;
  }
  series.resize(kept);
  for (const rw::Metadata& m : metadata) {
    if (!rw::IsValidMetricName(m.family) || m.family.size() > limits.max_label_value_bytes) {
      Reject(RejectReason::kInvalidSeries, samples);
      return Answer(400, "remote-write: invalid metadata family name \"" + Clip(m.family) + "\"",
                    v2, 0);
    }
    if (m.help.size() > limits.max_label_value_bytes ||
        m.unit.size() > limits.max_label_value_bytes) {
      Reject(RejectReason::kOverLimit, samples);
      return Answer(400, "remote-write: metadata text of " + m.family + " over the limit", v2, 0);
    }
  }
  return std::nullopt;
}

void WriteHandler::HandleAsync(ServerRequest request, ResponseCompletion done) {
  auto job = std::make_unique<Job>(this, std::move(request), std::move(done));
  if (std::optional<ServerResponse> early = Start(*job)) {
    return Job::Finish(std::move(job), std::move(*early));
  }
  // 1.0: a view over the decompressed body (no text copied); 2.0: decoded into the 1.0 model
  // (rw::DecodeV2), then the same canonical path over views of it.
  // With the series cache (1.0 only), a series whose label bytes this device sent before is
  // named by its table entry: its labels are neither parsed nor checked (series_cache.h).
  job->generation = cache_ != nullptr && !job->v2 ? store_->generation() : 0;
  if (std::optional<ServerResponse> error = Build(*job, job->generation != 0)) {
    return Job::Finish(std::move(job), std::move(*error));
  }
  if (job->generation != 0) {
    const std::vector<IncomingSeries>& series = job->scratch->series;
    const auto hits = size_t(std::count_if(series.begin(), series.end(),
                                           [](const auto& in) { return in.entry != nullptr; }));
    cache_hits_.fetch_add(hits, std::memory_order_relaxed);
    cache_misses_.fetch_add(series.size() - hits, std::memory_order_relaxed);
  }
  Submit(std::move(job));
}

void WriteHandler::Submit(std::unique_ptr<Job> job) {
  WriteScratch& scratch = *job->scratch;
  if (options_.limits.max_series_per_device > 0) {
    // The budget check and the apply under one mutex: synchronous (see the header).
    Status s =
        ApplyWithinSeriesBudget(&scratch.series, scratch.metadata, &job->result,
                                &job->refused_series, &job->refused_samples, &job->refused_device);
    return Stored(std::move(job), std::move(s));
  }
  Job* j = job.release();  // owned by the store's completion until it runs
  store_->ApplyAsync(scratch.series, scratch.metadata, &j->result,
                     [this, j](Status s) { Stored(std::unique_ptr<Job>(j), std::move(s)); });
}

void WriteHandler::Stored(std::unique_ptr<Job> job, Status s) {
  const IngestLimits& limits = options_.limits;
  WriteScratch& scratch = *job->scratch;
  const bool v2 = job->v2;
  if (s.code() == Status::Code::kNotFound && job->generation != 0 && !job->rebuilt) {
    // A cached entry of another table generation (SeriesStore::Resolve): nothing was applied.
    // The cache is emptied and the request built again the full way.
    cache_->Clear();
    scratch.misses.clear();
    job->rebuilt = true;
    if (std::optional<ServerResponse> error = Build(*job, false)) {
      return Job::Finish(std::move(job), std::move(*error));
    }
    job->refused_series = 0;
    job->refused_samples = 0;
    job->refused_device.clear();
    return Submit(std::move(job));
  }
  if (!s.ok()) {
    Reject(RejectReason::kStorage, job->samples);
    if (options_.log) options_.log("cannot store a write request: " + s.message());
    return Job::Finish(std::move(job), Answer(503, "storage unavailable: " + s.message(), v2, 0));
  }
  const ApplyResult& result = job->result;
  accepted_.fetch_add(result.accepted, std::memory_order_relaxed);
  duplicate_.fetch_add(result.duplicates, std::memory_order_relaxed);
  resets_.fetch_add(result.counter_resets, std::memory_order_relaxed);
  created_.fetch_add(result.new_series, std::memory_order_relaxed);
  if (!scratch.misses.empty() && job->refused_series == 0) RememberSeries(job->device, scratch);
  if (options_.on_accepted) {
    ReportAccepted(job->device, scratch.series, job->request.Header("User-Agent"));
  }
  if (job->refused_series > 0) {
    limited_[size_t(LimitReason::kSeriesLimit)].fetch_add(1, std::memory_order_relaxed);
    Reject(RejectReason::kSeriesLimit, job->refused_samples);
    ServerResponse answer =
        Answer(400,
               "series limit: " + std::to_string(job->refused_series) +
                   " new series refused: device \"" + Clip(job->refused_device) +
                   "\" is at its limit of " + std::to_string(limits.max_series_per_device) +
                   " series (--max-series-per-device); the request's other samples (" +
                   std::to_string(result.accepted + result.duplicates) +
                   ") were stored, and existing series keep updating",
               v2, result.accepted + result.duplicates);
    return Job::Finish(std::move(job), std::move(answer));
  }
  // Raised only now: a retry of a batch that was not stored must be applied.
  if (job->has_batch) high_water_.Applied(job->device, job->batch);
  ServerResponse answer = Answer(204, "", v2, result.accepted + result.duplicates);
  Job::Finish(std::move(job), std::move(answer));
}

void WriteHandler::RememberSeries(std::string_view device, WriteScratch& scratch) {
  scratch.miss_keys.clear();
  for (const auto& [view_index, series_index] : scratch.misses) {
    scratch.miss_keys.push_back(GivenKeyOf(scratch.series[series_index]));
  }
  uint64_t generation = 0;
  if (!store_->Resolve(scratch.miss_keys, &scratch.miss_entries, &generation)) return;
  scratch.miss_items.clear();
  for (size_t k = 0; k < scratch.misses.size(); ++k) {
    if (scratch.miss_entries[k] == nullptr) continue;  // not stored (e.g. only duplicates)
    scratch.miss_items.push_back(SeriesCache::Item{
        scratch.view.label_bytes(scratch.misses[k].first), scratch.miss_entries[k]});
  }
  cache_->Insert(device, generation, scratch.miss_items);
}

void WriteHandler::ReportAccepted(const std::string& device,
                                  const std::vector<IncomingSeries>& series,
                                  std::string_view user_agent) {
  if (!device.empty()) {
    options_.on_accepted(device, user_agent);
    return;
  }
  std::vector<std::string> devices;  // copies: `scratch` changes per series
  std::string scratch;
  for (const IncomingSeries& s : series) {
    const std::string_view device_label = LabelOfKey(KeyOf(s, &scratch), "device");
    if (!device_label.empty()) devices.emplace_back(device_label);
  }
  std::sort(devices.begin(), devices.end());
  devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
  for (std::string_view d : devices) options_.on_accepted(d, user_agent);
}

WriteStats WriteHandler::stats() const {
  WriteStats st;
  for (size_t i = 0; i < by_code_.size(); ++i) st.requests_by_code[i] = by_code_[i].load();
  st.samples_accepted = accepted_.load();
  st.samples_duplicate = duplicate_.load();
  for (size_t i = 0; i < rejected_.size(); ++i) st.samples_rejected[i] = rejected_[i].load();
  st.counter_resets = resets_.load();
  st.series_created = created_.load();
  st.v2_requests = v2_.load();
  st.duplicate_batches = duplicate_batches_.load();
  st.series_cache_hits = cache_hits_.load();
  st.series_cache_misses = cache_misses_.load();
  for (size_t i = 0; i < limited_.size(); ++i) st.requests_limited[i] = limited_[i].load();
  return st;
}

}  // namespace ccmon::gateway
