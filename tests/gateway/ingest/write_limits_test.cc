// The write handler's 429s (rate limit per device, overload) and the series budget per device
// (400, existing series keep updating), and the /metrics token guard, over a small fake store.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "gateway/devices/device_registry.h"
#include "gateway/ingest/gateway_handler.h"
#include "gateway/ingest/token_guard.h"
#include "gateway/ingest/write_handler.h"
#include "remote_write/write_request.h"
#include "store/mem_store.h"
#include "testing/fake_clock.h"

namespace ccmon::gateway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing_util::FakeClock;

constexpr int64_t kNow = 1767225600000;

// Applies the table rules; can hold applies until released (to pile writes up).
class BlockingStore : public SeriesStore {
 public:
  Status Apply(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& metadata,
               ApplyResult* result) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !hold_; });
    --waiting_;
    PlannedChanges c;
    table_.Plan(series, metadata, &c, result);
    last_series = series;
    // The handler hands over keys only (IncomingSeries::key): the labels they stand for.
    for (IncomingSeries& s : last_series) s.labels = LabelsOf(s);
    table_.Commit(c);
    return Status::Ok();
  }
  void Read(const std::function<void(const SeriesTable&)>& fn) const override {
    std::lock_guard<std::mutex> lock(mu_);
    fn(table_);
  }
  SeriesStoreStats Stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return {table_.size(), 0, 0};
  }
  void Hold(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
    cv_.notify_all();
  }
  // Waits (bounded) until `n` applies are held.
  bool WaitForWaiting(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return waiting_ >= n; });
  }

  std::vector<IncomingSeries> last_series;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  int waiting_ = 0;
  SeriesTable table_;
};

rw::Series S(std::string name, std::string device = "", double v = 1, int64_t ts = kNow) {
  rw::Series s;
  s.labels.emplace_back("__name__", std::move(name));
  if (!device.empty()) s.labels.emplace_back("device", std::move(device));
  s.samples.push_back({ts, v});
  return s;
}

class WriteLimitsTest : public ::testing::Test {
 protected:
  WriteLimitsTest() : clock_(kNow), kv_(NewMemStore()) {
    EXPECT_TRUE(DeviceRegistry::Open(kv_.get(), &clock_, &devices_).ok());
    EXPECT_TRUE(devices_->Add("A", &key_a_).ok());
    EXPECT_TRUE(devices_->Add("B", &key_b_).ok());
  }
  void Reset(IngestLimits limits) {
    WriteHandlerOptions o;
    o.limits = limits;
    o.allow_anonymous = true;
    o.devices = devices_.get();
    o.clock = &clock_;
    handler_ = std::make_unique<WriteHandler>(&store_, o);
  }
  ServerResponse Post(const std::vector<rw::Series>& series, const std::string& key) {
    rw::WriteRequest req;
    req.series = series;
    ServerRequest r;
    r.method = "POST";
    r.target = "/api/v1/write";
    r.headers.emplace_back("Content-Type", "application/x-protobuf");
    r.headers.emplace_back("Content-Encoding", "snappy");
    if (!key.empty()) r.headers.emplace_back("Authorization", "Bearer " + key);
    EXPECT_TRUE(rw::Encode(req, &r.body).ok());
    return handler_->Handle(r);
  }
  static std::string Header(const ServerResponse& r, std::string_view name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "<absent>";
  }
  uint64_t Limited(LimitReason r) const { return handler_->stats().requests_limited[size_t(r)]; }

  FakeClock clock_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<DeviceRegistry> devices_;
  std::string key_a_, key_b_;
  BlockingStore store_;
  std::unique_ptr<WriteHandler> handler_;
};

TEST_F(WriteLimitsTest, RateLimitPerDeviceIs429WithRetryAfterAndOtherDevicesGoOn) {
  IngestLimits l;
  l.max_requests_per_device_per_second = 1;
  l.device_burst = 3;
  Reset(l);
  int64_t ts = kNow;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Post({S("up", "", 1, ++ts)}, key_a_).status, 204u) << i;
  ServerResponse r = Post({S("up", "", 1, ++ts)}, key_a_);
  EXPECT_EQ(r.status, 429u) << r.body;
  EXPECT_EQ(Header(r, "Retry-After"), "1");
  EXPECT_NE(r.body.find("rate limit"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"A\""), std::string::npos) << r.body;
  // B has its own bucket.
  EXPECT_EQ(Post({S("up", "", 1, ++ts)}, key_b_).status, 204u);
  // A 401 is answered before the rate limit and takes no token.
  EXPECT_EQ(Post({S("up")}, "dk_bogus").status, 401u);
  clock_.AdvanceBy(seconds(1));
  EXPECT_EQ(Post({S("up", "", 1, ++ts)}, key_a_).status, 204u);
  EXPECT_EQ(Post({S("up", "", 1, ++ts)}, key_a_).status, 429u);
  EXPECT_EQ(Limited(LimitReason::kRateLimit), 2u);
  const WriteStats st = handler_->stats();
  EXPECT_EQ(st.requests_by_code[6], 2u);  // 429
  EXPECT_EQ(kWriteStatusCodes[6], 429u);
}

TEST_F(WriteLimitsTest, RateLimitRetryAfterFollowsTheRate) {
  IngestLimits l;
  l.max_requests_per_device_per_second = 1;
  l.device_burst = 1;
  Reset(l);
  ASSERT_EQ(Post({S("up")}, key_a_).status, 204u);
  clock_.AdvanceBy(milliseconds(100));
  ServerResponse r = Post({S("up", "", 1, kNow + 1)}, key_a_);
  ASSERT_EQ(r.status, 429u);
  EXPECT_EQ(Header(r, "Retry-After"), "1");  // 0.9 s, rounded up
  clock_.AdvanceBy(seconds(1));
  EXPECT_EQ(Post({S("up", "", 1, kNow + 2)}, key_a_).status, 204u);
}

TEST_F(WriteLimitsTest, AnonymousWritesShareOneBucket) {
  IngestLimits l;
  l.max_requests_per_device_per_second = 1;
  l.device_burst = 1;
  Reset(l);
  EXPECT_EQ(Post({S("up", "x")}, "").status, 204u);
  EXPECT_EQ(Post({S("up", "y")}, "").status, 429u);  // another device label: same sender
}

TEST_F(WriteLimitsTest, OverloadIs429WhenTooManyWritesWaitForTheStore) {
  IngestLimits l;
  l.max_pending_writes = 2;
  Reset(l);
  store_.Hold(true);
  std::vector<std::thread> writers;
  std::vector<unsigned> statuses(2);
  for (int i = 0; i < 2; ++i) {
    writers.emplace_back(
        [&, i] { statuses[i] = Post({S("up" + std::to_string(i))}, key_a_).status; });
  }
  ASSERT_TRUE(store_.WaitForWaiting(2));
  ServerResponse r = Post({S("up9")}, key_b_);
  EXPECT_EQ(r.status, 429u) << r.body;
  EXPECT_EQ(Header(r, "Retry-After"), "1");
  EXPECT_NE(r.body.find("overloaded"), std::string::npos) << r.body;
  store_.Hold(false);
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(statuses[0], 204u);
  EXPECT_EQ(statuses[1], 204u);
  // The slots are given back: the next write goes through.
  EXPECT_EQ(Post({S("up9")}, key_b_).status, 204u);
  EXPECT_EQ(Limited(LimitReason::kOverload), 1u);
  EXPECT_EQ(handler_->stats().samples_rejected[size_t(RejectReason::kOverloaded)], 0u);
}

TEST_F(WriteLimitsTest, RefusedWritesGiveTheirPendingSlotBack) {
  IngestLimits l;
  l.max_pending_writes = 1;
  Reset(l);
  for (int i = 0; i < 5; ++i) {
    ServerRequest r;
    r.method = "POST";
    r.headers.emplace_back("Authorization", "Bearer " + key_a_);
    r.body = "not snappy";
    EXPECT_EQ(handler_->Handle(r).status, 400u);
  }
  EXPECT_EQ(Post({S("up")}, key_a_).status, 204u);
}

TEST_F(WriteLimitsTest, SeriesBudgetRefusesNewSeriesButExistingOnesKeepUpdating) {
  IngestLimits l;
  l.max_series_per_device = 3;
  Reset(l);
  ASSERT_EQ(Post({S("a"), S("b")}, key_a_).status, 204u);
  // Two new series, room for one: the first is stored, the second refused, `a` updated.
  ServerResponse r = Post({S("a", "", 2, kNow + 1), S("c"), S("d")}, key_a_);
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("1 new series refused"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"A\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("limit of 3"), std::string::npos) << r.body;
  ASSERT_EQ(store_.last_series.size(), 2u);
  EXPECT_EQ(store_.last_series[0].labels, (Labels{{"__name__", "a"}, {"device", "A"}}));
  EXPECT_EQ(store_.last_series[1].labels, (Labels{{"__name__", "c"}, {"device", "A"}}));
  EXPECT_EQ(store_.Stats().series, 3u);
  // At the limit: existing series still update (204), any new one is refused.
  EXPECT_EQ(Post({S("a", "", 3, kNow + 2), S("b", "", 3, kNow + 2)}, key_a_).status, 204u);
  EXPECT_EQ(Post({S("e")}, key_a_).status, 400u);
  EXPECT_EQ(store_.Stats().series, 3u);
  // Another device has its own budget, even when A tries to write as it.
  EXPECT_EQ(Post({S("a"), S("b"), S("c")}, key_b_).status, 204u);
  EXPECT_EQ(Post({S("z", "B")}, key_a_).status, 400u);  // stored as A's: over A's budget
  EXPECT_EQ(store_.Stats().series, 6u);
  EXPECT_EQ(Limited(LimitReason::kSeriesLimit), 3u);
  EXPECT_EQ(handler_->stats().samples_rejected[size_t(RejectReason::kSeriesLimit)], 3u);
  Reset(l);  // a new handler counts what the store holds: B's existing series still update
  EXPECT_EQ(Post({S("a", "", 9, kNow + 9)}, key_b_).status, 204u);
}

TEST_F(WriteLimitsTest, SeriesBudgetCountsWhatTheStoreAlreadyHolds) {
  IngestLimits l;
  Reset(l);
  ASSERT_EQ(Post({S("a"), S("b")}, key_a_).status, 204u);
  l.max_series_per_device = 2;
  Reset(l);  // as after a restart: the budget starts from the store's series
  EXPECT_EQ(Post({S("c")}, key_a_).status, 400u);
  EXPECT_EQ(Post({S("a", "", 5, kNow + 5)}, key_a_).status, 204u);
  // The same series twice in one request is one new series (here: B's key sets device="B" on
  // both entries; rw::Encode refuses a plainly repeated series).
  EXPECT_EQ(Post({S("x", "", 1, kNow), S("x", "Q", 2, kNow + 1)}, key_b_).status, 204u);
  EXPECT_EQ(Post({S("y")}, key_b_).status, 204u);
  EXPECT_EQ(Post({S("w")}, key_b_).status, 400u);
}

// --- TokenGuard

class Fixed : public HttpHandler {
 public:
  ServerResponse Handle(const ServerRequest& r) override {
    ++calls;
    return ServerResponse::Text(200, std::string(r.Path()));
  }
  int calls = 0;
};

ServerRequest Get(std::string target, std::string authorization = "") {
  ServerRequest r;
  r.method = "GET";
  r.target = std::move(target);
  if (!authorization.empty()) r.headers.emplace_back("Authorization", std::move(authorization));
  return r;
}

TEST(TokenGuardTest, GuardedPathsNeedTheTokenOthersDoNot) {
  Fixed inner;
  TokenGuard guard("s3cret-token", {"/metrics", "/api/metrics"}, &inner);
  ASSERT_TRUE(guard.enabled());
  for (const char* bad : {"", "Bearer", "Bearer ", "Bearer s3cret-toke", "Bearer s3cret-token2",
                          "Basic s3cret-token", "s3cret-token", "Bearer S3CRET-TOKEN"}) {
    ServerResponse r = guard.Handle(Get("/metrics", bad));
    EXPECT_EQ(r.status, 401u) << bad;
    bool www = false;
    for (const auto& [n, v] : r.headers)
      www = www || (n == "WWW-Authenticate" && v.starts_with("Bearer"));
    EXPECT_TRUE(www) << bad;
    EXPECT_EQ(r.body.find("s3cret"), std::string::npos);
  }
  EXPECT_EQ(guard.Handle(Get("/api/metrics?x=1", "Bearer wrong")).status, 401u);
  EXPECT_EQ(inner.calls, 0);
  EXPECT_EQ(guard.refused(), 9u);
  EXPECT_EQ(guard.Handle(Get("/metrics", "Bearer s3cret-token")).status, 200u);
  EXPECT_EQ(guard.Handle(Get("/api/metrics", "bearer  s3cret-token ")).status, 200u);
  EXPECT_EQ(guard.Handle(Get("/healthz")).status, 200u);
  EXPECT_EQ(guard.Handle(Get("/readyz")).status, 200u);
  EXPECT_EQ(inner.calls, 4);
}

TEST(TokenGuardTest, NoTokenMeansOpen) {
  Fixed inner;
  TokenGuard guard("", {"/metrics"}, &inner);
  EXPECT_FALSE(guard.enabled());
  EXPECT_EQ(guard.Handle(Get("/metrics")).status, 200u);
  EXPECT_EQ(guard.Handle(Get("/metrics", "Bearer anything")).status, 200u);
}

}  // namespace
}  // namespace ccmon::gateway
