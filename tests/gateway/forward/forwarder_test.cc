// Forwarder: the forward queues ride in the GatewayStore's apply batch (a failed batch queues
// nothing, duplicates are not queued, a restart resumes the queues, removed destinations are
// dropped), the entries hold each series at most once and only valid series, and the queues
// drain into a real HTTP receiver on 127.0.0.1 through the agent's queue manager (retries on
// 503, a 400 counted and not retried, headers per destination, limits counted).
#include "gateway/forward/forwarder.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/gateway.h"
#include "gateway/ingest/write_handler.h"
#include "gateway/store/series_store.h"
#include "http/server.h"
#include "remote_write/write_request.h"
#include "store/mem_store.h"
#include "store/rocks_store.h"
#include "testing/fake_clock.h"
#include "testing/fault_store.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using testing_util::FakeClock;
using testing_util::FaultStore;
using testing_util::TempDir;

IncomingSeries Series(const std::string& name, const std::string& device,
                      std::vector<rw::Sample> samples) {
  IncomingSeries s;
  s.labels = {{"__name__", name}, {"device", device}};
  s.samples = std::move(samples);
  return s;
}

rw::WriteRequest DecodeEntry(const std::string& payload) {
  std::string body;
  rw::Compress(payload, &body);
  rw::WriteRequest req;
  EXPECT_TRUE(rw::Decode(body, size_t(64) << 20, &req).ok());
  return req;
}

TEST(ForwardEntriesTest, EachSeriesAtMostOncePerEntryInOrder) {
  // Prometheus sends a series once per sample; a series may also carry several samples.
  const std::vector<IncomingSeries> stored = {
      Series("a_total", "d", {{1000, 1}, {2000, 2}}),
      Series("b_total", "d", {{1000, 5}}),
      Series("a_total", "d", {{3000, 3}}),
  };
  std::vector<Forwarder::Entry> entries;
  uint64_t invalid = 99;
  Forwarder::BuildEntries(stored, 1, &entries, &invalid);
  EXPECT_EQ(invalid, 0u);
  ASSERT_EQ(entries.size(), 3u);
  std::vector<std::vector<std::pair<std::string, int64_t>>> got;
  for (const Forwarder::Entry& e : entries) {
    size_t before = 0;
    bool repeat = true;
    ASSERT_TRUE(rw::SamplesBeforeRepeatedSeries(e.payload, &before, &repeat).ok());
    EXPECT_FALSE(repeat);
    const rw::WriteRequest req = DecodeEntry(e.payload);
    EXPECT_EQ(e.samples, req.sample_count());
    std::vector<std::pair<std::string, int64_t>> names;
    for (const rw::Series& s : req.series) {
      ASSERT_EQ(s.samples.size(), 1u);
      names.emplace_back(s.labels[0].second, s.samples[0].timestamp_ms);
      EXPECT_EQ(s.labels[1], (std::pair<std::string, std::string>{"device", "d"}));
    }
    got.push_back(names);
  }
  EXPECT_EQ(got[0],
            (std::vector<std::pair<std::string, int64_t>>{{"a_total", 1000}, {"b_total", 1000}}));
  EXPECT_EQ(got[1], (std::vector<std::pair<std::string, int64_t>>{{"a_total", 2000}}));
  EXPECT_EQ(got[2], (std::vector<std::pair<std::string, int64_t>>{{"a_total", 3000}}));
}

TEST(ForwardEntriesTest, AnInvalidSeriesIsLeftOutAndCountedNotTheRequest) {
  IncomingSeries bad = Series("x", "d", {{1000, 1}, {2000, 2}});
  bad.labels.emplace_back("not-a-label", "v");
  const std::vector<IncomingSeries> stored = {Series("ok", "d", {{1000, 1}}), bad,
                                              Series("ok2", "d", {{1000, 1}})};
  std::vector<Forwarder::Entry> entries;
  uint64_t invalid = 0;
  Forwarder::BuildEntries(stored, 1, &entries, &invalid);
  EXPECT_EQ(invalid, 2u);
  ASSERT_EQ(entries.size(), 1u);  // the entry holding only the bad series' 2nd sample is gone
  const rw::WriteRequest req = DecodeEntry(entries[0].payload);
  ASSERT_EQ(req.series.size(), 2u);
  EXPECT_EQ(req.series[0].labels[0].second, "ok");
  EXPECT_EQ(req.series[1].labels[0].second, "ok2");
}

TEST(ForwardEntriesTest, EntriesGoToTheShardOfTheirSeries) {
  std::vector<IncomingSeries> stored;
  for (int i = 0; i < 200; ++i) stored.push_back(Series("m", "d" + std::to_string(i), {{1, 1}}));
  std::vector<Forwarder::Entry> entries;
  uint64_t invalid = 0;
  Forwarder::BuildEntries(stored, 4, &entries, &invalid);
  size_t total = 0;
  std::map<uint32_t, int> per_shard;
  for (const Forwarder::Entry& e : entries) {
    for (const rw::Series& s : DecodeEntry(e.payload).series) {
      EXPECT_EQ(ShardOf(SeriesHash(s.labels), 4), e.shard);
      ++total;
    }
    ++per_shard[e.shard];
  }
  EXPECT_EQ(total, 200u);
  EXPECT_EQ(per_shard.size(), 4u);  // 200 series spread over every shard
}

// The gateway's store and a forwarder on one KvStore, as RunGateway wires them.
struct Gateway {
  std::unique_ptr<GatewayStore> store;
  std::unique_ptr<Forwarder> forwarder;
  std::vector<std::string> log;
  std::mutex log_mu;

  Status Open(KvStore* kv, ForwarderOptions fo, Clock* clock) {
    fo.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mu);
      log.emplace_back(line);
    };
    if (Status s = GatewayStore::Open(kv, &store); !s.ok()) return s;
    if (Status s = Forwarder::Open(kv, std::move(fo), clock, &forwarder); !s.ok()) return s;
    store->set_apply_listener(forwarder.get());
    return Status::Ok();
  }
  Status Apply(const std::vector<IncomingSeries>& series) {
    ApplyResult r;
    return store->Apply(series, {}, &r);
  }
  uint64_t Queued(size_t dest) { return forwarder->stats()[dest].queued_samples; }
  std::string Log() {
    std::lock_guard<std::mutex> lock(log_mu);
    std::string all;
    for (const std::string& l : log) all += l + "\n";
    return all;
  }
};

ForwarderOptions Options(std::vector<std::string> urls) {
  ForwarderOptions fo;
  for (const std::string& u : urls) fo.destinations.push_back(ForwardDestination{u, {}});
  fo.shards = 2;
  return fo;
}

size_t KeysWithPrefix(KvStore* kv, const std::string& prefix) {
  size_t n = 0;
  auto it = kv->NewIterator();
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++n;
  return n;
}

TEST(ForwarderQueueTest, AFailedBatchQueuesNothingAndDuplicatesAreNotQueued) {
  std::unique_ptr<KvStore> mem = NewMemStore();
  FaultStore kv(mem.get());
  FakeClock clock;
  Gateway g;
  ASSERT_TRUE(g.Open(&kv, Options({"http://a/w", "http://b/w"}), &clock).ok());

  ASSERT_TRUE(
      g.Apply({Series("m", "d", {{1000, 1}, {2000, 2}}), Series("n", "d", {{1000, 1}})}).ok());
  EXPECT_EQ(g.Queued(0), 3u);
  EXPECT_EQ(g.Queued(1), 3u);

  const size_t entries = KeysWithPrefix(mem.get(), ForwardQueuePrefix("http://a/w"));
  EXPECT_GE(entries, 2u);  // m's two samples never share an entry
  kv.FailNthWrite(1);
  EXPECT_FALSE(g.Apply({Series("m", "d", {{3000, 3}})}).ok());
  EXPECT_EQ(g.Queued(0), 3u);
  EXPECT_EQ(g.Queued(1), 3u);
  EXPECT_EQ(KeysWithPrefix(mem.get(), ForwardQueuePrefix("http://a/w")), entries);

  // The retry stores and queues the sample once; the re-sent old samples are duplicates.
  ASSERT_TRUE(g.Apply({Series("m", "d", {{1000, 1}, {2000, 2}, {3000, 3}})}).ok());
  EXPECT_EQ(g.Queued(0), 4u);
  EXPECT_EQ(g.forwarder->stats()[0].samples_queued, 4u);
  // A request of duplicates only writes nothing and queues nothing.
  const int writes = kv.writes();
  ASSERT_TRUE(g.Apply({Series("m", "d", {{3000, 3}})}).ok());
  EXPECT_EQ(kv.writes(), writes);
  EXPECT_EQ(g.Queued(0), 4u);
}

// Another listener (the computed series) in the same batch: each sees every request, a failed
// write aborts both, and the forward entries ride in the batch next to its records.
class CountingListener : public ApplyListener {
 public:
  void Prepare(const std::vector<IncomingSeries>&, const SeriesTable&, WriteBatch* batch) override {
    batch->Put("Tcounting", std::to_string(++prepared));
  }
  void Committed() override { ++committed; }
  void Aborted() override { ++aborted; }
  int prepared = 0, committed = 0, aborted = 0;
};

TEST(ForwarderQueueTest, SharesTheBatchWithAnotherListener) {
  std::unique_ptr<KvStore> mem = NewMemStore();
  FaultStore kv(mem.get());
  FakeClock clock;
  Gateway g;
  CountingListener other;
  ASSERT_TRUE(GatewayStore::Open(&kv, &g.store).ok());
  ASSERT_TRUE(Forwarder::Open(&kv, Options({"http://a/w"}), &clock, &g.forwarder).ok());
  g.store->set_apply_listener(&other);
  g.store->add_apply_listener(g.forwarder.get());
  ASSERT_TRUE(g.Apply({Series("m", "d", {{1000, 1}})}).ok());
  kv.FailNthWrite(1);
  EXPECT_FALSE(g.Apply({Series("m", "d", {{2000, 2}})}).ok());
  ASSERT_TRUE(g.Apply({Series("m", "d", {{3000, 3}})}).ok());
  EXPECT_EQ(other.prepared, 3);
  EXPECT_EQ(other.committed, 2);
  EXPECT_EQ(other.aborted, 1);
  EXPECT_EQ(g.Queued(0), 2u);
  std::string v;
  ASSERT_TRUE(mem->Get("Tcounting", &v).ok());
  EXPECT_EQ(v, "3");
}

TEST(ForwarderQueueTest, AFailedBatchThatLandsAfterARestartShowsWhole) {
  std::unique_ptr<KvStore> mem = NewMemStore();
  FaultStore kv(mem.get());
  FakeClock clock;
  {
    Gateway g;
    ASSERT_TRUE(g.Open(&kv, Options({"http://a/w"}), &clock).ok());
    kv.set_keep_failed_writes(true);
    kv.FailNthWrite(1);
    EXPECT_FALSE(g.Apply({Series("m", "d", {{1000, 1}})}).ok());
    EXPECT_EQ(g.Queued(0), 0u);
  }
  kv.LandFailedWrites();  // the WAL record was durable after all
  Gateway g;
  ASSERT_TRUE(g.Open(&kv, Options({"http://a/w"}), &clock).ok());
  EXPECT_EQ(g.Queued(0), 1u);  // series and queue entry together
  uint64_t series = 0;
  g.store->Read([&](const SeriesTable& t) { series = t.size(); });
  EXPECT_EQ(series, 1u);
}

TEST(ForwarderQueueTest, ARestartResumesTheQueuesOnRocksDb) {
  TempDir dir;
  FakeClock clock;
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir.path(), RocksStoreOptions{}, &kv).ok());
    Gateway g;
    ASSERT_TRUE(g.Open(kv.get(), Options({"http://a/w", "http://b/w"}), &clock).ok());
    for (int i = 1; i <= 5; ++i) {
      ASSERT_TRUE(g.Apply({Series("m", "d", {{i * 1000, double(i)}})}).ok());
    }
    EXPECT_EQ(g.Queued(0), 5u);
  }
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir.path(), RocksStoreOptions{}, &kv).ok());
    Gateway g;
    ASSERT_TRUE(g.Open(kv.get(), Options({"http://a/w", "http://b/w"}), &clock).ok());
    EXPECT_EQ(g.Queued(0), 5u);
    EXPECT_EQ(g.Queued(1), 5u);
    EXPECT_EQ(g.Log().find("dropped"), std::string::npos) << g.Log();
  }
  {
    // b removed, c added: b's queue is dropped (said in the log), c starts empty, a resumes.
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir.path(), RocksStoreOptions{}, &kv).ok());
    Gateway g;
    ASSERT_TRUE(g.Open(kv.get(), Options({"http://c/w", "http://a/w"}), &clock).ok());
    EXPECT_EQ(g.Queued(0), 0u);
    EXPECT_EQ(g.Queued(1), 5u);
    EXPECT_EQ(KeysWithPrefix(kv.get(), ForwardQueuePrefix("http://b/w")), 0u);
    EXPECT_NE(g.Log().find("no longer configured\" destination=\"http://b/w\" entries=5"),
              std::string::npos)
        << g.Log();
    ASSERT_TRUE(g.Apply({Series("m", "d", {{6000, 6}})}).ok());
    EXPECT_EQ(g.Queued(0), 1u);
    EXPECT_EQ(g.Queued(1), 6u);
  }
}

TEST(ForwarderQueueTest, QueuesOverTheirLimitsDropTheOldestCountedAndLogged) {
  std::unique_ptr<KvStore> kv = NewMemStore();
  FakeClock clock;
  ForwarderOptions fo = Options({"http://user:pw@a/w"});
  fo.queue.max_age = std::chrono::hours(1);
  fo.queue.max_bytes = 0;
  Gateway g;
  ASSERT_TRUE(g.Open(kv.get(), fo, &clock).ok());
  ASSERT_TRUE(g.Apply({Series("m", "d", {{1000, 1}}), Series("n", "d", {{1000, 1}})}).ok());
  clock.AdvanceBy(std::chrono::minutes(30));
  ASSERT_TRUE(g.Apply({Series("m", "d", {{2000, 2}})}).ok());
  g.forwarder->EnforceLimits();
  EXPECT_EQ(g.forwarder->stats()[0].samples_dropped, 0u);
  clock.AdvanceBy(std::chrono::minutes(31));
  g.forwarder->EnforceLimits();
  const ForwardDestinationStats st = g.forwarder->stats()[0];
  EXPECT_EQ(st.samples_dropped, 2u);
  EXPECT_EQ(st.queued_samples, 1u);
  EXPECT_DOUBLE_EQ(st.lag_seconds, 31 * 60.0);
  EXPECT_EQ(st.destination, "http://a/w");  // credentials in the URL are never shown
  EXPECT_NE(g.Log().find("oldest entries dropped\" destination=\"http://a/w\" samples=2"),
            std::string::npos)
      << g.Log();
  EXPECT_EQ(g.Log().find("pw@"), std::string::npos);
}

TEST(ForwarderQueueTest, AQueueOverItsSizeKeepsTheNewestAndCountsTheRest) {
  std::unique_ptr<KvStore> kv = NewMemStore();
  FakeClock clock;
  ForwarderOptions fo = Options({"http://a/w", "http://b/w"});
  fo.shards = 1;
  fo.queue.max_age = std::chrono::milliseconds(0);
  uint64_t entry_bytes = 0;
  {
    Gateway first;
    ASSERT_TRUE(first.Open(kv.get(), fo, &clock).ok());
    for (int i = 1; i <= 10; ++i) {
      ASSERT_TRUE(first.Apply({Series("m", "d", {{i * 1000, double(i)}})}).ok());
      clock.AdvanceBy(std::chrono::seconds(1));
    }
    entry_bytes = first.forwarder->stats()[0].queued_bytes / 10;
    ASSERT_GT(entry_bytes, 0u);
  }
  // Reopened with room for 3 entries: the 7 oldest go, in each queue, counted.
  fo.queue.max_bytes = 3 * entry_bytes;
  Gateway g;
  ASSERT_TRUE(g.Open(kv.get(), fo, &clock).ok());
  g.forwarder->EnforceLimits();
  for (const ForwardDestinationStats& st : g.forwarder->stats()) {
    EXPECT_EQ(st.queued_samples, 3u) << st.destination;
    EXPECT_EQ(st.samples_dropped, 7u) << st.destination;
    EXPECT_DOUBLE_EQ(st.lag_seconds, 3.0) << st.destination;  // the 8th entry is the head
  }
  EXPECT_NE(g.Log().find("by_size=7"), std::string::npos) << g.Log();
}

TEST(ForwarderQueueTest, TheGatewaysMetricsShowEachDestinationsQueue) {
  std::unique_ptr<KvStore> kv = NewMemStore();
  FakeClock clock;
  ForwarderOptions fo = Options({"http://a/w", "http://u:p@b/w"});
  fo.queue.max_age = std::chrono::seconds(10);
  Gateway g;
  ASSERT_TRUE(g.Open(kv.get(), fo, &clock).ok());
  WriteHandler write(g.store.get(), WriteHandlerOptions{});
  GatewaySelfMetrics self(&write, g.store.get(), g.forwarder.get());
  ASSERT_TRUE(g.Apply({Series("m", "d", {{1000, 1}}), Series("n", "d", {{1000, 1}})}).ok());
  clock.AdvanceBy(std::chrono::seconds(4));
  ASSERT_TRUE(g.Apply({Series("m", "d", {{2000, 2}})}).ok());
  clock.AdvanceBy(std::chrono::seconds(7));  // the first request is now 11 s old: dropped
  g.forwarder->EnforceLimits();
  std::string text;
  ASSERT_TRUE(GatewayMetricsBody(*g.store, self, ExpositionFormat::kText, &text).ok());
  for (const char* dest : {"http://a/w", "http://b/w"}) {
    const std::string d = std::string("destination=\"") + dest + "\"";
    for (const std::string& line :
         {"ccmon_gateway_forward_queue_samples{" + d + "} 1",
          "ccmon_gateway_forward_lag_seconds{" + d + "} 7",
          "ccmon_gateway_forward_samples_queued_total{" + d + "} 3",
          "ccmon_gateway_forward_samples_sent_total{" + d + "} 0",
          "ccmon_gateway_forward_samples_failed_total{" + d + "} 0",
          "ccmon_gateway_forward_samples_dropped_total{" + d + ",reason=\"queue_limit\"} 2",
          "ccmon_gateway_forward_samples_dropped_total{" + d + ",reason=\"invalid\"} 0"}) {
      EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
    }
  }
  EXPECT_EQ(text.find("u:p@"), std::string::npos);
}

TEST(ForwarderQueueTest, BadOptionsAreRefused) {
  std::unique_ptr<KvStore> kv = NewMemStore();
  FakeClock clock;
  std::unique_ptr<Forwarder> f;
  EXPECT_EQ(Forwarder::Open(kv.get(), Options({}), &clock, &f).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(Forwarder::Open(kv.get(), Options({"http://a/w", "http://a/w"}), &clock, &f).code(),
            Status::Code::kInvalidArgument);
  ForwarderOptions fo = Options({"http://a/w"});
  fo.shards = 0;
  EXPECT_EQ(Forwarder::Open(kv.get(), fo, &clock, &f).code(), Status::Code::kInvalidArgument);
}

TEST(RedactedUrlTest, DropsUserInfoOnly) {
  EXPECT_EQ(RedactedUrl("http://u:p@h:1/a@b"), "http://h:1/a@b");
  EXPECT_EQ(RedactedUrl("https://h/x"), "https://h/x");
  EXPECT_EQ(RedactedUrl("http://h/path@x"), "http://h/path@x");
  EXPECT_EQ(RedactedUrl("nonsense"), "nonsense");
}

// A remote-write receiver on 127.0.0.1: answers each request with the next planned status (then
// 204), keeps the samples of those it answered 2xx.
class Receiver : public HttpHandler {
 public:
  explicit Receiver(std::vector<unsigned> planned = {}) : planned_(std::move(planned)) {
    ServerOptions so;
    so.max_body_bytes = size_t(16) << 20;
    server_ = std::make_unique<HttpServer>(so, this);
    EXPECT_TRUE(server_->Start().ok());
  }
  ~Receiver() override { server_->Stop(); }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/api/v1/write";
  }

  ServerResponse Handle(const ServerRequest& request) override {
    rw::WriteRequest req;
    if (!rw::Decode(request.body, size_t(64) << 20, &req).ok()) {
      return ServerResponse::Text(400, "bad body");
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    org_ids_.emplace_back(request.Header("X-Scope-OrgID"));
    unsigned status = 204;
    if (!planned_.empty()) {
      status = planned_.front();
      planned_.erase(planned_.begin());
    }
    if (status / 100 == 2) {
      for (const rw::Series& s : req.series) {
        for (const rw::Sample& x : s.samples) samples_[s.labels].push_back(x);
      }
      cv_.notify_all();
    }
    return ServerResponse::Text(status, status == 400 ? "out of order sample" : "");
  }

  // Waits (deadline 20 s) until `n` samples were taken; returns whether they were.
  bool WaitForSamples(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return CountLocked() >= n; });
  }
  std::map<Labels, std::vector<rw::Sample>> samples() {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
  }
  int requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::vector<std::string> org_ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return org_ids_;
  }

 private:
  size_t CountLocked() const {
    size_t n = 0;
    for (const auto& [l, s] : samples_) n += s.size();
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<unsigned> planned_;
  std::map<Labels, std::vector<rw::Sample>> samples_;
  std::vector<std::string> org_ids_;
  int requests_ = 0;
  std::unique_ptr<HttpServer> server_;
};

// Waits (deadline 20 s) for `pred` over the forwarder's stats, re-checking when they may have
// changed: the forwarder has no notification for tests, so this polls its counters every 10 ms.
template <typename Pred>
bool WaitForStats(Forwarder* f, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  while (!pred(f->stats())) {
    if (cv.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                   std::chrono::milliseconds(10))) ==
            std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= deadline) {
      return pred(f->stats());
    }
  }
  return true;
}

ForwarderOptions SendingOptions(const std::vector<ForwardDestination>& dests) {
  ForwarderOptions fo;
  fo.destinations = dests;
  fo.shards = 2;
  fo.batch_send_deadline = std::chrono::milliseconds(0);
  fo.max_retry_time = std::chrono::seconds(30);
  return fo;
}

TEST(ForwarderSendTest, EveryStoredSampleReachesEveryDestinationInOrderWithItsHeaders) {
  Receiver a({503, 503});  // two failures first: retried, nothing lost
  Receiver b;
  std::unique_ptr<KvStore> kv = NewMemStore();
  Gateway g;
  ASSERT_TRUE(g.Open(kv.get(),
                     SendingOptions({ForwardDestination{a.url(), {{"X-Scope-OrgID", "team-a"}}},
                                     ForwardDestination{b.url(), {}}}),
                     Clock::Real())
                  .ok());
  ASSERT_TRUE(g.forwarder->Start().ok());
  size_t expected = 0;
  for (int i = 1; i <= 20; ++i) {
    std::vector<IncomingSeries> req;
    for (int d = 0; d < 10; ++d) {
      req.push_back(Series("c_total", "dev" + std::to_string(d), {{i * 1000, double(i)}}));
    }
    // And a series sent twice in one request (a Prometheus-style request), plus a duplicate.
    req.push_back(Series("g", "x", {{i * 1000 - 500, 1}}));
    req.push_back(Series("g", "x", {{i * 1000, 2}}));
    req.push_back(Series("g", "x", {{i * 1000, 3}}));  // duplicate: not stored, not forwarded
    expected += 12;
    ASSERT_TRUE(g.Apply(req).ok());
  }
  ASSERT_TRUE(a.WaitForSamples(expected));
  ASSERT_TRUE(b.WaitForSamples(expected));
  ASSERT_TRUE(WaitForStats(g.forwarder.get(), [&](const std::vector<ForwardDestinationStats>& s) {
    return s[0].queued_samples == 0 && s[1].queued_samples == 0 && s[0].samples_sent == expected &&
           s[1].samples_sent == expected;
  }));
  g.forwarder->Stop();
  for (Receiver* r : {&a, &b}) {
    const auto got = r->samples();
    ASSERT_EQ(got.size(), 11u);
    for (const auto& [labels, samples] : got) {
      for (size_t i = 1; i < samples.size(); ++i) {
        EXPECT_LT(samples[i - 1].timestamp_ms, samples[i].timestamp_ms);  // in order, once
      }
    }
    EXPECT_EQ(got.at(Labels{{"__name__", "g"}, {"device", "x"}}).size(), 40u);
  }
  for (const std::string& id : a.org_ids()) EXPECT_EQ(id, "team-a");
  for (const std::string& id : b.org_ids()) EXPECT_EQ(id, "");
  const auto st = g.forwarder->stats();
  EXPECT_GE(st[0].retries, 2u);
  EXPECT_EQ(st[0].samples_rejected, 0u);
}

TEST(ForwarderSendTest, AFinalRefusalIsCountedLoggedAndNotRetriedForever) {
  Receiver a({400});
  std::unique_ptr<KvStore> kv = NewMemStore();
  Gateway g;
  ForwarderOptions fo = SendingOptions({ForwardDestination{a.url(), {}}});
  fo.limits_interval = std::chrono::milliseconds(10);
  ASSERT_TRUE(g.Open(kv.get(), fo, Clock::Real()).ok());
  ASSERT_TRUE(g.Apply({Series("m", "d", {{1000, 1}})}).ok());
  ASSERT_TRUE(g.forwarder->Start().ok());
  ASSERT_TRUE(WaitForStats(g.forwarder.get(), [](const std::vector<ForwardDestinationStats>& s) {
    return s[0].samples_rejected == 1 && s[0].queued_samples == 0;
  }));
  ASSERT_TRUE(g.Apply({Series("m", "d", {{2000, 2}})}).ok());
  ASSERT_TRUE(a.WaitForSamples(1));
  EXPECT_EQ(a.requests(), 2);
  // The refusal is said in the log (by the limits thread, within a few of its intervals).
  ASSERT_TRUE(WaitForStats(g.forwarder.get(), [&](const std::vector<ForwardDestinationStats>&) {
    return g.Log().find("forwarding failed") != std::string::npos;
  }));
  EXPECT_NE(g.Log().find("out of order sample"), std::string::npos) << g.Log();
  EXPECT_NE(g.Log().find("samples_refused=1"), std::string::npos) << g.Log();
}

TEST(ForwarderSendTest, QueuedEntriesAreSentAfterARestart) {
  Receiver a;
  TempDir dir;
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir.path(), RocksStoreOptions{}, &kv).ok());
    Gateway g;  // not started: the destination is "down"
    ASSERT_TRUE(
        g.Open(kv.get(), SendingOptions({ForwardDestination{a.url(), {}}}), Clock::Real()).ok());
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(g.Apply({Series("m", "d", {{i * 1000, 1}})}).ok());
  }
  std::unique_ptr<KvStore> kv;
  ASSERT_TRUE(OpenRocksStore(dir.path(), RocksStoreOptions{}, &kv).ok());
  Gateway g;
  ASSERT_TRUE(
      g.Open(kv.get(), SendingOptions({ForwardDestination{a.url(), {}}}), Clock::Real()).ok());
  ASSERT_TRUE(g.forwarder->Start().ok());
  ASSERT_TRUE(a.WaitForSamples(3));
  ASSERT_TRUE(WaitForStats(g.forwarder.get(), [](const std::vector<ForwardDestinationStats>& s) {
    return s[0].queued_samples == 0;
  }));
  EXPECT_EQ(a.samples().begin()->second.size(), 3u);
}

// --forward-label: a destination's labels on every series sent there (Mimir's HA tracker).
TEST(ForwardLabelsTest, EntriesCarryTheLabelsSortedReplacingTheSeriesOwnShardUnchanged) {
  std::vector<IncomingSeries> stored;
  for (int i = 0; i < 50; ++i) {
    IncomingSeries s = Series("a_total", "d" + std::to_string(i), {{1000, double(i)}});
    s.labels.insert(s.labels.begin() + 1, {"cluster", "from-agent"});  // sorted: a label to replace
    stored.push_back(s);
  }
  const Labels extra = {{"cluster", "eu"}, {"replica", "gw-1"}};
  std::vector<Forwarder::Entry> entries;
  uint64_t invalid = 99;
  Forwarder::BuildEntries(stored, 4, &entries, &invalid, extra);
  EXPECT_EQ(invalid, 0u);
  size_t total = 0;
  for (const Forwarder::Entry& e : entries) {
    for (const rw::Series& s : DecodeEntry(e.payload).series) {
      ++total;
      ASSERT_EQ(s.labels.size(), 4u);
      EXPECT_EQ(s.labels[0], (std::pair<std::string, std::string>{"__name__", "a_total"}));
      EXPECT_EQ(s.labels[1], (std::pair<std::string, std::string>{"cluster", "eu"}));
      EXPECT_EQ(s.labels[2].first, "device");
      EXPECT_EQ(s.labels[3], (std::pair<std::string, std::string>{"replica", "gw-1"}));
      // The shard is the stored series' (the queues are by stored series).
      const Labels own = {{"__name__", "a_total"}, {"cluster", "from-agent"}, s.labels[2]};
      EXPECT_EQ(ShardOf(SeriesHash(own), 4), e.shard);
    }
  }
  EXPECT_EQ(total, 50u);
}

TEST(ForwardLabelsTest, CheckRefusesWhatWouldChangeASeriesMeaningOrBreakTheRequest) {
  EXPECT_TRUE(CheckForwardLabels({}).ok());
  EXPECT_TRUE(CheckForwardLabels({{"cluster", "eu"}, {"replica", "gw-1"}}).ok());
  EXPECT_TRUE(CheckForwardLabels({{"instance", "gw"}, {"job", "ccmon"}}).ok());
  const std::vector<std::pair<Labels, std::string>> bad = {
      {{{"__name__", "x"}}, "reserved"},
      {{{"__replica__", "x"}}, "reserved"},
      {{{"device", "x"}}, "not replaceable"},
      {{{"model", "x"}}, "not replaceable"},
      {{{"le", "1"}}, "not replaceable"},
      {{{"bad-name", "x"}}, "not a label name"},
      {{{"1abc", "x"}}, "not a label name"},
      {{{"", "x"}}, "not a label name"},
      {{{"cluster", ""}}, "non-empty UTF-8"},
      {{{"cluster", "\xff"}}, "non-empty UTF-8"},
      {{{"cluster", "a"}, {"cluster", "b"}}, "given twice"},
  };
  for (const auto& [labels, says] : bad) {
    Status s = CheckForwardLabels(labels);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << says;
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
  }
  std::unique_ptr<KvStore> kv = NewMemStore();
  std::unique_ptr<Forwarder> f;
  ForwarderOptions fo;
  fo.destinations = {ForwardDestination{"http://127.0.0.1:1/w", {}, {{"device", "x"}}}};
  Status s = Forwarder::Open(kv.get(), fo, Clock::Real(), &f);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("device"), std::string::npos) << s.message();
}

TEST(ForwardLabelsTest, EachDestinationGetsItsOwnLabelsTheStoreKeepsNone) {
  Receiver a, b, c;
  std::unique_ptr<KvStore> kv = NewMemStore();
  Gateway g;
  const Labels replica_1 = {{"replica", "gw-1"}, {"cluster", "eu"}};
  ASSERT_TRUE(g.Open(kv.get(),
                     SendingOptions({ForwardDestination{a.url(), {}, replica_1},
                                     ForwardDestination{b.url(), {}, {}},
                                     ForwardDestination{c.url(), {}, replica_1}}),
                     Clock::Real())
                  .ok());
  ASSERT_TRUE(g.forwarder->Start().ok());
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(g.Apply({Series("c_total", "dev", {{i * 1000, double(i)}})}).ok());
  }
  for (Receiver* r : {&a, &b, &c}) ASSERT_TRUE(r->WaitForSamples(5));
  ASSERT_TRUE(WaitForStats(g.forwarder.get(), [&](const std::vector<ForwardDestinationStats>& s) {
    return s[0].samples_sent == 5 && s[1].samples_sent == 5 && s[2].samples_sent == 5;
  }));
  g.forwarder->Stop();
  const Labels plain = {{"__name__", "c_total"}, {"device", "dev"}};
  const Labels labelled = {
      {"__name__", "c_total"}, {"cluster", "eu"}, {"device", "dev"}, {"replica", "gw-1"}};
  for (Receiver* r : {&a, &c}) {
    const auto got = r->samples();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got.begin()->first, labelled);
    EXPECT_EQ(got.begin()->second.size(), 5u);
  }
  const auto got_b = b.samples();
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_EQ(got_b.begin()->first, plain);
  for (const ForwardDestinationStats& st : g.forwarder->stats()) {
    EXPECT_EQ(st.samples_queued, 5u);
    EXPECT_EQ(st.samples_invalid, 0u);
  }
  // What the gateway stores (and serves on /metrics) has no forward label.
  std::vector<std::string> keys;
  g.store->Read([&](const SeriesTable& table) {
    for (const auto& [key, state] : table.series()) keys.push_back(key);
  });
  EXPECT_EQ(keys, std::vector<std::string>{SeriesKey(plain)});
}

}  // namespace
}  // namespace ccmon::gateway
