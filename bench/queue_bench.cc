// queue_bench: pushes a synthetic backlog through QueueManager into a remote-write receiver and
// reports what it took, as one JSON object on stdout. Used by
// tests/integration/queue_prometheus_test.py (exactness against a real Prometheus) and by
// bench/queue_bench.sh (keep-alive against one connection per request).
//
//   queue_bench --url URL [--shards 3] [--series-per-shard 100] [--samples-per-series 100]
//               [--max-samples-per-send 2000] [--transport keepalive|per-request]
//               [--run NAME] [--start-ms T] [--step-ms 1000]
//
// Series: {__name__="ccmon_queue_bench", run=NAME, series="<i>"}, i from 0 upwards, each kept
// only while its shard (ShardOf) has fewer than --series-per-shard series, so every shard gets
// exactly that many. Sample k of series i: timestamp start + k * step, value i * 1000000 + k.
// Entry k of a shard holds sample k of each of its series (one WriteRequest per entry), all
// created long ago, so the queue sends full batches at once. Exit 0 when every sample was
// sent (2xx), 1 otherwise.
#include <snappy.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/http_client.h"
#include "http/persistent_transport.h"
#include "remote_write/queue_manager.h"
#include "remote_write/write_request.h"

namespace ccmon {
namespace {

// Every entry up front; acks pop them. Thread-safe.
class BacklogSource : public ShardSource {
 public:
  void Add(std::string payload, size_t samples) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back({++next_, std::move(payload), samples});
  }
  Status Peek(size_t max_samples, size_t max_bytes, SourceBatch* out) override {
    std::lock_guard<std::mutex> lock(mu_);
    *out = SourceBatch{};
    for (const Entry& e : entries_) {
      if (out->entries > 0 && (out->samples + e.samples > max_samples ||
                               out->payload.size() + e.payload.size() > max_bytes)) {
        out->more = true;
        break;
      }
      out->payload += e.payload;
      out->samples += e.samples;
      out->through_cursor = e.cursor;
      ++out->entries;
    }
    return Status::Ok();
  }
  bool WaitForData(uint64_t after_cursor, std::chrono::steady_clock::time_point deadline,
                   std::stop_token stop) override {
    std::unique_lock<std::mutex> lock(mu_);
    auto has = [&] { return !entries_.empty() && entries_.back().cursor > after_cursor; };
    if (deadline == std::chrono::steady_clock::time_point::max()) return cv_.wait(lock, stop, has);
    return cv_.wait_until(lock, stop, deadline, has);
  }
  Status Ack(uint64_t through_cursor, const AckResult& result) override {
    std::lock_guard<std::mutex> lock(mu_);
    while (!entries_.empty() && entries_.front().cursor <= through_cursor) entries_.pop_front();
    if (result.kind == AckResult::Kind::kRejected) rejected_ = result.detail;
    done_cv_.notify_all();
    return Status::Ok();
  }
  bool WaitEmpty(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return done_cv_.wait_for(lock, timeout, [&] { return entries_.empty(); });
  }
  std::string rejected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rejected_;
  }

 private:
  struct Entry {
    uint64_t cursor;
    std::string payload;
    size_t samples;
  };
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::condition_variable done_cv_;
  std::deque<Entry> entries_;
  uint64_t next_ = 0;
  std::string rejected_;
};

// Forwards to a transport and adds its exchange and connection counts to shared totals.
struct Totals {
  std::atomic<uint64_t> exchanges{0}, connections{0};
};
class CountingTransport : public HttpTransport {
 public:
  CountingTransport(std::unique_ptr<HttpTransport> inner, PersistentHttpTransport* persistent,
                    Totals* totals)
      : inner_(std::move(inner)), persistent_(persistent), totals_(totals) {}
  ~CountingTransport() override {
    if (persistent_) totals_->connections += persistent_->stats().connections_opened;
  }
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    ++totals_->exchanges;
    if (!persistent_) ++totals_->connections;  // one per exchange
    return inner_->Exchange(request, response);
  }

 private:
  std::unique_ptr<HttpTransport> inner_;
  PersistentHttpTransport* persistent_;
  Totals* totals_;
};

int Usage() {
  std::cerr << "usage: queue_bench --url URL [--shards N] [--series-per-shard N]\n"
               "  [--samples-per-series N] [--max-samples-per-send N]\n"
               "  [--transport keepalive|per-request] [--run NAME] [--start-ms T] [--step-ms N]\n";
  return 2;
}

int Main(int argc, char** argv) {
  std::string url, run = "bench", transport = "keepalive";
  long shards = 3, series_per_shard = 100, samples_per_series = 100, max_per_send = 2000;
  long long step_ms = 1000;
  long long start_ms = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage();
    const std::string v = argv[++i];
    if (a == "--url") {
      url = v;
    } else if (a == "--run") {
      run = v;
    } else if (a == "--transport") {
      transport = v;
    } else if (a == "--shards") {
      shards = std::atol(v.c_str());
    } else if (a == "--series-per-shard") {
      series_per_shard = std::atol(v.c_str());
    } else if (a == "--samples-per-series") {
      samples_per_series = std::atol(v.c_str());
    } else if (a == "--max-samples-per-send") {
      max_per_send = std::atol(v.c_str());
    } else if (a == "--start-ms") {
      start_ms = std::atoll(v.c_str());
    } else if (a == "--step-ms") {
      step_ms = std::atoll(v.c_str());
    } else {
      return Usage();
    }
  }
  if (url.empty() || shards < 1 || shards > long(kMaxShards) || series_per_shard < 1 ||
      samples_per_series < 1 || max_per_send < 1 || step_ms < 1 ||
      (transport != "keepalive" && transport != "per-request")) {
    return Usage();
  }
  if (start_ms < 0) {
    start_ms = Clock::Real()->NowUnixMs() - samples_per_series * step_ms - 60000;
  }

  // Series per shard, chosen by ShardOf.
  std::vector<std::vector<std::pair<long, rw::Series>>> per_shard(shards);
  std::vector<long> used;
  for (long i = 0, filled = 0; filled < shards; ++i) {
    rw::Series s;
    s.labels = {{"__name__", "ccmon_queue_bench"}, {"run", run}, {"series", std::to_string(i)}};
    auto& bucket = per_shard[ShardOf(SeriesHash(s.labels), size_t(shards))];
    if (long(bucket.size()) >= series_per_shard) continue;
    bucket.emplace_back(i, std::move(s));
    used.push_back(i);
    if (long(bucket.size()) == series_per_shard) ++filled;
  }
  std::vector<std::unique_ptr<BacklogSource>> sources;
  std::vector<ShardSource*> source_ptrs;
  for (long shard = 0; shard < shards; ++shard) {
    sources.push_back(std::make_unique<BacklogSource>());
    source_ptrs.push_back(sources.back().get());
    for (long k = 0; k < samples_per_series; ++k) {
      rw::WriteRequest req;
      for (auto& [index, series] : per_shard[shard]) {
        rw::Series s;
        s.labels = series.labels;
        s.samples.push_back({start_ms + k * step_ms, double(index * 1000000 + k)});
        req.series.push_back(std::move(s));
      }
      std::string body, raw;
      if (Status st = rw::Encode(req, &body); !st.ok()) {
        std::cerr << "encode: " << st.message() << "\n";
        return 1;
      }
      // The queue wants uncompressed WriteRequest bytes: decompress what Encode made.
      if (!snappy::Uncompress(body.data(), body.size(), &raw)) return 1;
      sources.back()->Add(std::move(raw), per_shard[shard].size());
    }
  }

  Totals totals;
  QueueManagerOptions opt;
  opt.shards = size_t(shards);
  opt.max_samples_per_send = size_t(max_per_send);
  opt.sender.url = url;
  opt.sender.max_retry_time = std::chrono::seconds(60);
  const bool keepalive = transport == "keepalive";
  opt.transport_factory = [&](size_t, std::stop_token stop) -> std::unique_ptr<HttpTransport> {
    if (keepalive) {
      auto p = std::make_unique<PersistentHttpTransport>(HttpClientOptions{}, stop);
      PersistentHttpTransport* raw = p.get();
      return std::make_unique<CountingTransport>(std::move(p), raw, &totals);
    }
    return std::make_unique<CountingTransport>(
        std::make_unique<RealHttpTransport>(HttpClientOptions{}), nullptr, &totals);
  };
  QueueManager qm(opt, source_ptrs, Clock::Real());
  const auto t0 = std::chrono::steady_clock::now();
  if (Status st = qm.Start(); !st.ok()) {
    std::cerr << st.message() << "\n";
    return 1;
  }
  bool all = true;
  for (auto& s : sources) all = s->WaitEmpty(std::chrono::seconds(300)) && all;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  qm.Stop();
  const QueueStats st = qm.stats();
  std::printf(
      "{\"transport\": \"%s\", \"shards\": %ld, \"samples_sent\": %llu, \"batches_sent\": %llu, "
      "\"samples_rejected\": %llu, \"retries\": %llu, \"exchanges\": %llu, \"connections\": %llu, "
      "\"seconds\": %.6f, \"samples_per_s\": %.1f, \"start_ms\": %lld, \"step_ms\": %lld, "
      "\"samples_per_series\": %ld, \"last_error\": \"%s\", \"series\": [",
      transport.c_str(), shards, (unsigned long long)st.samples_sent,
      (unsigned long long)st.batches_sent, (unsigned long long)st.samples_rejected,
      (unsigned long long)st.retries, (unsigned long long)totals.exchanges.load(),
      (unsigned long long)totals.connections.load(), seconds, double(st.samples_sent) / seconds,
      start_ms, step_ms, samples_per_series, all ? "" : "not drained");
  for (size_t i = 0; i < used.size(); ++i) std::printf("%s%ld", i ? ", " : "", used[i]);
  std::printf("]}\n");
  const bool ok = all && st.samples_rejected == 0 &&
                  st.samples_sent == uint64_t(shards * series_per_shard * samples_per_series);
  if (!ok) std::cerr << "queue_bench: " << st.last_error << "\n";
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ccmon

int main(int argc, char** argv) { return ccmon::Main(argc, argv); }
