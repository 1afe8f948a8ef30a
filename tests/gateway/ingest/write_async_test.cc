// The write handler's asynchronous path (WriteHandler::HandleAsync): the answer waits for the
// store's completion, not for a thread; the batch-identity mark is raised only once the store
// succeeded; max_pending_writes counts writes waiting for the store; a failed group answers 503
// to every request in it. Over a store whose completions the test calls (from its own thread),
// and over the real GatewayStore on a failing KvStore.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "gateway/devices/device_registry.h"
#include "gateway/ingest/batch_identity.h"
#include "gateway/ingest/gateway_handler.h"
#include "gateway/ingest/write_handler.h"
#include "gateway/store/series_store.h"
#include "remote_write/write_request.h"
#include "store/mem_store.h"
#include "testing/fake_clock.h"
#include "testing/fault_store.h"

namespace ccmon::gateway {
namespace {

using testing_util::FakeClock;
using testing_util::FaultStore;

constexpr int64_t kNow = 1767225600000;

// Parks every ApplyAsync until the test completes it (Complete), applying the table rules then.
class DeferredStore : public SeriesStore {
 public:
  Status Apply(const std::vector<IncomingSeries>&, const std::vector<rw::Metadata>&,
               ApplyResult*) override {
    ADD_FAILURE() << "the handler waited for the store";
    return Status::IoError("sync");
  }
  void ApplyAsync(const std::vector<IncomingSeries>& series,
                  const std::vector<rw::Metadata>& metadata, ApplyResult* result,
                  ApplyDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    parked_.push_back(Parked{&series, &metadata, result, std::move(done)});
  }
  // Completes the oldest parked apply: applied (ok) or failed with `failure`.
  void Complete(std::optional<Status> failure = std::nullopt) {
    Parked p;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ASSERT_FALSE(parked_.empty());
      p = std::move(parked_.front());
      parked_.pop_front();
      PlannedChanges c;
      table_.Plan(*p.series, *p.metadata, &c, p.result);
      if (!failure) table_.Commit(c);
    }
    p.done(failure ? *failure : Status::Ok());
  }
  size_t parked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return parked_.size();
  }
  void Read(const std::function<void(const SeriesTable&)>& fn) const override {
    std::lock_guard<std::mutex> lock(mu_);
    fn(table_);
  }
  SeriesStoreStats Stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return {table_.size(), 0, 0};
  }

 private:
  struct Parked {
    const std::vector<IncomingSeries>* series = nullptr;
    const std::vector<rw::Metadata>* metadata = nullptr;
    ApplyResult* result = nullptr;
    ApplyDone done;
  };
  mutable std::mutex mu_;
  std::deque<Parked> parked_;
  SeriesTable table_;
};

// What a completion received, settable from any thread.
struct Answer {
  std::mutex mu;
  std::optional<ServerResponse> response;
  ResponseCompletion Completion() {
    return ResponseCompletion([this](ServerResponse r) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_FALSE(response.has_value()) << "answered twice";
      response = std::move(r);
    });
  }
  bool answered() {
    std::lock_guard<std::mutex> lock(mu);
    return response.has_value();
  }
  unsigned status() {
    std::lock_guard<std::mutex> lock(mu);
    return response ? response->status : 0;
  }
};

class WriteAsyncTest : public ::testing::Test {
 protected:
  WriteAsyncTest() : clock_(kNow), kv_(NewMemStore()) {
    EXPECT_TRUE(DeviceRegistry::Open(kv_.get(), &clock_, &devices_).ok());
    EXPECT_TRUE(devices_->Add("A", &key_).ok());
  }
  void Reset(SeriesStore* store, IngestLimits limits = {}) {
    WriteHandlerOptions o;
    o.limits = limits;
    o.devices = devices_.get();
    o.clock = &clock_;
    o.on_accepted = [this](std::string_view device, std::string_view) {
      std::lock_guard<std::mutex> lock(mu_);
      accepted_devices_.emplace_back(device);
    };
    handler_ = std::make_unique<WriteHandler>(store, o);
  }
  ServerRequest Request(int64_t ts, std::string batch = "") {
    rw::WriteRequest req;
    rw::Series s;
    s.labels = {{"__name__", "up"}};
    s.samples.push_back({ts, 1});
    req.series.push_back(s);
    ServerRequest r;
    r.method = "POST";
    r.target = "/api/v1/write";
    r.headers.emplace_back("Content-Type", "application/x-protobuf");
    r.headers.emplace_back("Content-Encoding", "snappy");
    r.headers.emplace_back("Authorization", "Bearer " + key_);
    if (!batch.empty()) {
      r.headers.emplace_back(std::string(kStreamHeaderName), "00000000000000aa");
      r.headers.emplace_back(std::string(kBatchHeaderName), "00000000000000bb/0/" + batch);
    }
    EXPECT_TRUE(rw::Encode(req, &r.body).ok());
    return r;
  }
  size_t AcceptedCalls() {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_devices_.size();
  }

  FakeClock clock_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<DeviceRegistry> devices_;
  std::string key_;
  std::unique_ptr<WriteHandler> handler_;
  std::mutex mu_;
  std::vector<std::string> accepted_devices_;
};

TEST_F(WriteAsyncTest, TheAnswerWaitsForTheStoresCompletionNotForAThread) {
  DeferredStore store;
  Reset(&store);
  Answer a;
  handler_->HandleAsync(Request(kNow), a.Completion());  // returns with the apply parked
  EXPECT_FALSE(a.answered());
  EXPECT_EQ(store.parked(), 1u);
  EXPECT_EQ(AcceptedCalls(), 0u);
  std::thread([&] { store.Complete(); }).join();  // the store's thread answers
  EXPECT_EQ(a.status(), 204u);
  EXPECT_EQ(AcceptedCalls(), 1u);
  EXPECT_EQ(handler_->stats().samples_accepted, 1u);
  EXPECT_EQ(handler_->stats().requests_by_code[0], 1u);  // 204
  // Answers that need no store come at once: a 401 here.
  Answer unauthorized;
  ServerRequest r = Request(kNow + 1);
  r.headers[2].second = "Bearer dk_nope";
  handler_->HandleAsync(std::move(r), unauthorized.Completion());
  EXPECT_EQ(unauthorized.status(), 401u);
  EXPECT_EQ(store.parked(), 0u);
}

TEST_F(WriteAsyncTest, TheBatchMarkIsRaisedOnlyAfterTheStoreSucceeded) {
  DeferredStore store;
  Reset(&store);
  Answer first, retry_while_pending, retry_after_failure, retry_after_success;
  handler_->HandleAsync(Request(kNow, "1-5"), first.Completion());
  // The same batch again while the first is not durable: not acknowledged as applied.
  handler_->HandleAsync(Request(kNow, "1-5"), retry_while_pending.Completion());
  EXPECT_FALSE(retry_while_pending.answered());
  EXPECT_EQ(store.parked(), 2u);
  store.Complete(Status::IoError("disk full"));
  EXPECT_EQ(first.status(), 503u);
  store.Complete(Status::IoError("disk full"));
  EXPECT_EQ(retry_while_pending.status(), 503u);
  EXPECT_EQ(handler_->stats().duplicate_batches, 0u);
  // A failed batch raised no mark: its retry is applied.
  handler_->HandleAsync(Request(kNow, "1-5"), retry_after_failure.Completion());
  ASSERT_EQ(store.parked(), 1u);
  store.Complete();
  EXPECT_EQ(retry_after_failure.status(), 204u);
  // Now it is durable: the next copy is acknowledged without reaching the store.
  handler_->HandleAsync(Request(kNow, "1-5"), retry_after_success.Completion());
  EXPECT_EQ(retry_after_success.status(), 204u);
  EXPECT_EQ(store.parked(), 0u);
  EXPECT_EQ(handler_->stats().duplicate_batches, 1u);
  EXPECT_EQ(handler_->stats().samples_rejected[size_t(RejectReason::kStorage)], 2u);
}

TEST_F(WriteAsyncTest, MaxPendingWritesCountsWritesWaitingForTheStore) {
  DeferredStore store;
  IngestLimits l;
  l.max_pending_writes = 3;
  Reset(&store, l);
  std::vector<std::unique_ptr<Answer>> answers;
  for (int i = 0; i < 4; ++i) {
    answers.push_back(std::make_unique<Answer>());
    handler_->HandleAsync(Request(kNow + i), answers.back()->Completion());
  }
  EXPECT_EQ(store.parked(), 3u);
  EXPECT_EQ(answers[3]->status(), 429u);  // no thread held, yet over the limit
  store.Complete();
  EXPECT_EQ(answers[0]->status(), 204u);
  Answer next;
  handler_->HandleAsync(Request(kNow + 10), next.Completion());
  EXPECT_FALSE(next.answered());  // a slot was free again
  while (store.parked() > 0) store.Complete();
  EXPECT_EQ(next.status(), 204u);
  EXPECT_EQ(handler_->stats().requests_limited[size_t(LimitReason::kOverload)], 1u);
}

TEST_F(WriteAsyncTest, AnswersDroppedByTheServerDoNotLeakTheWrite) {
  // The completion's receiver is gone (the server dropped the connection): the write still
  // finishes, and its job is freed (ASan) when the store completes it.
  DeferredStore store;
  Reset(&store);
  handler_->HandleAsync(Request(kNow), ResponseCompletion([](ServerResponse) {}));
  store.Complete();
  EXPECT_EQ(handler_->stats().samples_accepted, 1u);
}

// Over the real store: requests that queue behind a group in flight are written as one group;
// when that batch fails, every one of them is answered 503 and nothing is applied; the next
// group succeeds. The gateway's routes send a write through the same path.
TEST_F(WriteAsyncTest, AFailedGroupAnswers503ToEveryRequestInIt) {
  auto mem = NewMemStore();
  FaultStore fault(mem.get());
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&fault, &store).ok());
  Reset(store.get());
  class Echo : public HttpHandler {
    ServerResponse Handle(const ServerRequest&) override { return ServerResponse::Text(200, ""); }
  } metrics;
  GatewayHandler routes(handler_.get(), &metrics, nullptr);
  fault.FailNthWrite(1);
  Answer a, b;
  routes.HandleAsync(Request(kNow), a.Completion());  // led by this thread: done on return
  EXPECT_EQ(a.status(), 503u);
  routes.HandleAsync(Request(kNow), b.Completion());
  EXPECT_EQ(b.status(), 204u);
  EXPECT_EQ(handler_->stats().samples_accepted, 1u);
  // Other routes answer inline through HandleAsync too.
  Answer m;
  ServerRequest get;
  get.method = "GET";
  get.target = "/metrics";
  routes.HandleAsync(get, m.Completion());
  EXPECT_EQ(m.status(), 200u);
  // Many writers at once: each answered once, every sample counted once.
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::unique_ptr<Answer>> answers(kThreads * kEach);
  for (auto& x : answers) x = std::make_unique<Answer>();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        routes.HandleAsync(Request(kNow + 1 + t * kEach + i),
                           answers[size_t(t * kEach + i)]->Completion());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& x : answers) EXPECT_EQ(x->status(), 204u);  // every caller returned: all led
  EXPECT_EQ(handler_->stats().samples_accepted + handler_->stats().samples_duplicate,
            uint64_t(1 + kThreads * kEach));
}

}  // namespace
}  // namespace ccmon::gateway
