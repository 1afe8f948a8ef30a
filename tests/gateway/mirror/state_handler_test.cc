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
  const ServerResponse body_limit =
      handler_->Handle(Upload(key_, 5, "1", true, {{"a", std::string(2 << 20, 'x')}}));
  EXPECT_EQ(body_limit.status, 413u);
  EXPECT_EQ(Header(body_limit, std::string(sm::kStateLimitHeader)), "")
      << "smaller parts would pass: not the device's limit";
  // The device's limit says so: smaller parts would not help.
  const ServerResponse device_limit =
      handler_->Handle(Upload(key_, 5, "1", true, {{"a", std::string(2000, 'x')}}));
  EXPECT_EQ(Header(device_limit, std::string(sm::kStateLimitHeader)), "device");
}

ServerRequest Part(ServerRequest r, const std::string& part, bool last) {
  r.headers.emplace_back(std::string(sm::kStatePartHeader), part);
  if (last) r.headers.emplace_back(std::string(sm::kStateLastHeader), "1");
  return r;
}

TEST_F(StateHandlerTest, ASnapshotInPartsAndAMirrorInPages) {
  ASSERT_EQ(handler_->Handle(Upload(key_, 5, "1", true, {{"old", "1"}})).status, 204u);
  ASSERT_EQ(handler_->Handle(Part(Upload(key_, 5, "7", true, {{"a", "1"}, {"b", "2"}}), "0", false))
                .status,
            204u);
  EXPECT_EQ(Fetched(handler_->Handle(Request("GET", key_))),
            (std::map<std::string, std::string>{{"old", "1"}}))
      << "served unchanged until the last part";
  EXPECT_EQ(handler_->Handle(Part(Upload(key_, 5, "7", true, {{"z", "9"}}), "2", true)).status,
            409u)
      << "a part skipped: start again";
  ASSERT_EQ(handler_->Handle(Part(Upload(key_, 5, "7", true, {{"c", "3"}}), "1", false)).status,
            204u);
  ASSERT_EQ(handler_->Handle(Part(Upload(key_, 5, "7", true, {{"d", "4"}, {"e", "5"}}), "2", true))
                .status,
            204u);
  // Fetched back in pages of at most page_bytes (set small here), each with the stream and
  // sequence, the next key in hex.
  AgentStateHandlerOptions o;
  o.devices = devices_.get();
  o.clock = &clock_;
  o.page_bytes = 4;
  AgentStateHandler paged(mirror_.get(), o);
  std::map<std::string, std::string> all;
  std::string after;
  int pages = 0;
  for (;;) {
    ServerRequest get = Request("GET", key_);
    if (!after.empty()) get.headers.emplace_back(std::string(sm::kStateAfterHeader), after);
    const ServerResponse r = paged.Handle(get);
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(Header(r, std::string(sm::kStateSeqHeader)), "7");
    EXPECT_EQ(Header(r, std::string(sm::kStreamHeader)), sm::FormatEpoch(5));
    const auto page = Fetched(r);
    EXPECT_EQ(page.size(), pages < 2 ? 2u : 1u) << "4 bytes: two records of 2";
    all.insert(page.begin(), page.end());
    ++pages;
    after = Header(r, std::string(sm::kStateNextHeader));
    if (after.empty()) break;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(all, (std::map<std::string, std::string>{
                     {"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}));
  // Bad part headers and a bad After key.
  EXPECT_EQ(handler_->Handle(Part(Upload(key_, 5, "8", false, {{"a", "1"}}), "0", false)).status,
            400u)
      << "parts belong to a full snapshot";
  EXPECT_EQ(handler_->Handle(Part(Upload(key_, 5, "8", true, {{"a", "1"}}), "-1", false)).status,
            400u);
  ServerRequest last_only = Upload(key_, 5, "8", true, {{"a", "1"}});
  last_only.headers.emplace_back(std::string(sm::kStateLastHeader), "1");
  EXPECT_EQ(handler_->Handle(last_only).status, 400u) << "Last without Part";
  ServerRequest bad_after = Request("GET", key_);
  bad_after.headers.emplace_back(std::string(sm::kStateAfterHeader), "xyz");
  EXPECT_EQ(handler_->Handle(bad_after).status, 400u);
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
