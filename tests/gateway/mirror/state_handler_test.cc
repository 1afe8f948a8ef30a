#include "gateway/mirror/state_handler.h"

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "state_mirror/state_records.h"
#include "store/mem_store.h"
#include "testing/fake_clock.h"
#include "testing/fault_store.h"

namespace ccmon::gateway {
namespace {

namespace sm = state_mirror;
using testing_util::FakeClock;

std::string Header(const ServerResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class StateHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(DeviceRegistry::Open(&kv_, &clock_, &devices_).ok());
    ASSERT_TRUE(devices_->Add("laptop", &key_).ok());
    ASSERT_TRUE(devices_->Add("other", &other_key_).ok());
    AgentStateHandlerOptions o;
    o.devices = devices_.get();
    o.clock = &clock_;
    o.max_raw_bytes = 1 << 20;
    o.log = [this](std::string_view m) { logged_ += std::string(m) + "\n"; };
    MirrorOptions mo;
    mo.max_bytes_per_device = 1000;
    mirror_ = std::make_unique<MirrorStore>(&kv_, mo);
    handler_ = std::make_unique<AgentStateHandler>(mirror_.get(), o);
  }

  ServerRequest Request(std::string method, const std::string& key) {
    ServerRequest r;
    r.method = std::move(method);
    r.target = std::string(sm::kAgentStatePath);
    if (!key.empty()) r.headers.emplace_back("Authorization", "Bearer " + key);
    return r;
  }

  ServerRequest Upload(const std::string& key, uint64_t epoch, const std::string& seq, bool full,
                       const std::map<std::string, std::string>& records) {
    ServerRequest r = Request("POST", key);
    r.headers.emplace_back(std::string(sm::kStreamHeader), sm::FormatEpoch(epoch));
    r.headers.emplace_back(std::string(sm::kStateSeqHeader), seq);
    if (full) r.headers.emplace_back(std::string(sm::kStateFullHeader), "1");
    sm::StateRecordWriter w;
    for (const auto& [k, v] : records) w.Put(k, v);
    r.body = w.Finish();
    return r;
  }

  std::map<std::string, std::string> Fetched(const ServerResponse& r) {
    WriteBatch ops;
    EXPECT_TRUE(sm::DecodeStateBody(r.body, 1 << 20, &ops).ok());
    std::map<std::string, std::string> out;
    for (const auto& op : ops.ops()) out[op.key] = op.value;
    return out;
  }

  FakeClock clock_;
  std::unique_ptr<KvStore> mem_ = NewMemStore();
  testing_util::FaultStore kv_{mem_.get()};
  std::unique_ptr<DeviceRegistry> devices_;
  std::string key_, other_key_, logged_;
  std::unique_ptr<MirrorStore> mirror_;
  std::unique_ptr<AgentStateHandler> handler_;
};

TEST_F(StateHandlerTest, NeedsALiveDeviceKey) {
  EXPECT_EQ(handler_->Handle(Request("GET", "")).status, 401u);
  EXPECT_EQ(handler_->Handle(Request("GET", "dk_" + std::string(43, 'A'))).status, 401u);
  EXPECT_EQ(handler_->Handle(Upload("", 1, "1", true, {{"k", "v"}})).status, 401u);
  ASSERT_TRUE(devices_->Revoke("laptop").ok());
  EXPECT_EQ(handler_->Handle(Request("GET", key_)).status, 401u);
  EXPECT_EQ(handler_->Handle(Request("DELETE", key_)).status, 405u);
}

TEST_F(StateHandlerTest, NoMirrorIs204ThenUploadAndFetchBack) {
  EXPECT_EQ(handler_->Handle(Request("GET", key_)).status, 204u);
  EXPECT_EQ(handler_->Handle(Upload(key_, 0xabc, "3", true, {{"f/a", "1"}, {"cX", "2"}})).status,
            204u);
  const ServerResponse r = handler_->Handle(Request("GET", key_));
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(Header(r, std::string(sm::kStreamHeader)), "0000000000000abc");
  EXPECT_EQ(Header(r, std::string(sm::kStateSeqHeader)), "3");
  EXPECT_EQ(Fetched(r), (std::map<std::string, std::string>{{"cX", "2"}, {"f/a", "1"}}));
  // Another device sees nothing of it (the key decides the device).
  EXPECT_EQ(handler_->Handle(Request("GET", other_key_)).status, 204u);
}

TEST_F(StateHandlerTest, RetriedUploadIsAcknowledgedNotApplied) {
  ASSERT_EQ(handler_->Handle(Upload(key_, 5, "2", true, {{"a", "new"}})).status, 204u);
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "2", true, {{"a", "replayed"}})).status, 204u);
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "1", true, {{"a", "older"}})).status, 204u);
  EXPECT_EQ(Fetched(handler_->Handle(Request("GET", key_))),
            (std::map<std::string, std::string>{{"a", "new"}}));
  EXPECT_EQ(mirror_->stats().duplicate, 2u);
}

TEST_F(StateHandlerTest, DeltasAndTheGapAnswer) {
  ASSERT_EQ(handler_->Handle(Upload(key_, 5, "2", true, {{"a", "1"}})).status, 204u);
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "3-4", false, {{"b", "2"}})).status, 204u);
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "6-6", false, {{"c", "3"}})).status, 409u);
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "4", false, {{"c", "3"}})).status, 204u)
      << "a retried delta";
  EXPECT_EQ(Fetched(handler_->Handle(Request("GET", key_))),
            (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}));
}

TEST_F(StateHandlerTest, BadHeadersAndBodiesAre400) {
  ServerRequest r = Upload(key_, 5, "1", true, {{"a", "1"}});
  r.headers[1].second = "xyz";  // the stream header
  EXPECT_EQ(handler_->Handle(r).status, 400u);
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "", true, {{"a", "1"}})).status, 400u);
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "1-2", true, {{"a", "1"}})).status, 400u)
      << "a snapshot has one sequence";
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "3-2", false, {{"a", "1"}})).status, 400u);
  ServerRequest garbage = Upload(key_, 5, "1", true, {});
  garbage.body = "\xff\xff\xff\xff\xff garbage";
  EXPECT_EQ(handler_->Handle(garbage).status, 400u);
  EXPECT_EQ(handler_->Handle(Request("GET", key_)).status, 204u) << "nothing stored";
}

TEST_F(StateHandlerTest, OverTheLimitIs413AndLogged) {
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "1", true, {{"a", std::string(2000, 'x')}})).status,
            413u);
  EXPECT_NE(logged_.find("laptop"), std::string::npos) << logged_;
  EXPECT_EQ(handler_->Handle(Request("GET", key_)).status, 204u);
  // A body whose records are over max_raw_bytes: refused from snappy's declared length.
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "1", true, {{"a", std::string(2 << 20, 'x')}})).status,
            413u);
}

TEST_F(StateHandlerTest, StorageFailureIs503) {
  // The key's first use writes its last-use time; then the next write is the upload's.
  ASSERT_EQ(handler_->Handle(Request("GET", key_)).status, 204u);
  kv_.FailNthWrite(1);
  const ServerResponse r = handler_->Handle(Upload(key_, 5, "1", true, {{"a", "1"}}));
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(Header(r, "Retry-After"), "5");
  EXPECT_EQ(handler_->Handle(Upload(key_, 5, "1", true, {{"a", "1"}})).status, 204u);
}

}  // namespace
}  // namespace ccmon::gateway
