#include "gateway/ingest/write_handler.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <bit>
#include <cstring>
#include <mutex>

#include "gateway/devices/device_registry.h"
#include "gateway/ingest/gateway_handler.h"
#include "store/mem_store.h"
#include "testing/fake_clock.h"
#include "testing/fault_store.h"
#include "testing/wire_encoder.h"

namespace ccmon::gateway {
namespace {

using testing_util::FakeClock;

// --- A hand encoder of the protobuf wire format, to build requests a valid sender never sends
// (rw::Encode refuses them).
using testing_util::Bytes;
using testing_util::DoubleField;
using testing_util::Varint;
using testing_util::VarintField;

struct RawSeries {
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<rw::Sample> samples;
};

std::string SampleMsg(const rw::Sample& s) {
  return testing_util::SampleMessage(s.timestamp_ms, s.value);
}

// prometheus.WriteRequest (1.0), uncompressed.
std::string RawV1(const std::vector<RawSeries>& series, const std::vector<rw::Metadata>& md = {}) {
  std::string req;
  for (const RawSeries& s : series) {
    std::string ts;
    for (const auto& [n, v] : s.labels) {
      std::string l;
      Bytes(1, n, &l);
      Bytes(2, v, &l);
      Bytes(1, l, &ts);
    }
    for (const rw::Sample& smp : s.samples) Bytes(2, SampleMsg(smp), &ts);
    Bytes(1, ts, &req);
  }
  for (const rw::Metadata& m : md) {
    std::string mm;
    VarintField(1, uint64_t(m.kind == rw::MetricKind::kCounter ? 1 : 0), &mm);
    Bytes(2, m.family, &mm);
    Bytes(4, m.help, &mm);
    Bytes(3 + 2, m.unit, &mm);
    Bytes(3, mm, &req);
  }
  return req;
}

std::string Snappy(std::string_view raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

// io.prometheus.write.v2.Request with explicit symbols and label refs.
struct RawV2Series {
  std::vector<uint32_t> refs;
  std::vector<rw::Sample> samples;
  int histograms = 0;
  int metadata_type = -1;  // -1: none
  uint32_t help_ref = 0;
};
std::string RawV2(const std::vector<std::string>& symbols, const std::vector<RawV2Series>& series) {
  std::string req;
  for (const std::string& s : symbols) Bytes(4, s, &req);
  for (const RawV2Series& s : series) {
    std::string ts, packed;
    for (uint32_t r : s.refs) Varint(r, &packed);
    if (!packed.empty()) Bytes(1, packed, &ts);
    for (const rw::Sample& smp : s.samples) Bytes(2, SampleMsg(smp), &ts);
    for (int i = 0; i < s.histograms; ++i) Bytes(3, "", &ts);
    if (s.metadata_type >= 0) {
      std::string md;
      VarintField(1, uint64_t(s.metadata_type), &md);
      VarintField(3, s.help_ref, &md);
      Bytes(5, md, &ts);
    }
    Bytes(5, ts, &req);
  }
  return req;
}

// --- A fake store: records what it is given, applies the table rules, fails on request.
class FakeStore : public SeriesStore {
 public:
  Status Apply(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& metadata,
               ApplyResult* result) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++applies;
    PlannedChanges c;
    table_.Plan(series, metadata, &c, result);
    if (fail) return Status::IoError("disk full (fake)");
    last_series = series;
    // The handler hands over keys only (IncomingSeries::key): the labels they stand for.
    for (IncomingSeries& s : last_series) s.labels = LabelsOf(s);
    last_metadata = metadata;
    table_.Commit(c);
    return Status::Ok();
  }
  void Read(const std::function<void(const SeriesTable&)>& fn) const override {
    std::lock_guard<std::mutex> lock(mu_);
    fn(table_);
  }
  SeriesStoreStats Stats() const override { return {table_.size(), 0, 0}; }

  bool fail = false;
  int applies = 0;
  std::vector<IncomingSeries> last_series;
  std::vector<rw::Metadata> last_metadata;

 private:
  mutable std::mutex mu_;
  SeriesTable table_;
};

constexpr int64_t kNow = 1767225600000;
constexpr const char* kV2Type = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

class WriteHandlerTest : public ::testing::Test {
 protected:
  WriteHandlerTest() : clock_(kNow), device_kv_(NewMemStore()) {
    EXPECT_TRUE(DeviceRegistry::Open(device_kv_.get(), &clock_, &devices_).ok());
    Reset({});
  }
  void Reset(IngestLimits limits, bool anonymous = true) {
    WriteHandlerOptions o;
    o.limits = limits;
    o.allow_anonymous = anonymous;
    o.devices = devices_.get();
    o.clock = &clock_;
    o.log = [this](std::string_view l) { logged_.emplace_back(l); };
    handler_ = std::make_unique<WriteHandler>(&store_, o);
  }
  ServerResponse Post(std::string body, std::string content_type = "application/x-protobuf",
                      std::string encoding = "snappy") {
    ServerRequest r;
    r.method = "POST";
    r.target = "/api/v1/write";
    if (!content_type.empty()) r.headers.emplace_back("Content-Type", content_type);
    if (!encoding.empty()) r.headers.emplace_back("Content-Encoding", encoding);
    if (!authorization_.empty()) r.headers.emplace_back("Authorization", authorization_);
    for (const auto& h : extra_headers_) r.headers.push_back(h);
    r.body = std::move(body);
    return handler_->Handle(r);
  }
  ServerResponse PostV1(const std::vector<RawSeries>& series,
                        const std::vector<rw::Metadata>& md = {}) {
    return Post(Snappy(RawV1(series, md)));
  }
  static std::string Header(const ServerResponse& r, std::string_view name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "<absent>";
  }

  FakeClock clock_;
  std::unique_ptr<KvStore> device_kv_;
  std::unique_ptr<DeviceRegistry> devices_;
  std::string authorization_;  // sent as Authorization when not empty
  std::vector<std::pair<std::string, std::string>> extra_headers_;  // sent as they are
  FakeStore store_;
  std::vector<std::string> logged_;
  std::unique_ptr<WriteHandler> handler_;
};

RawSeries Up(int64_t ts = kNow, double v = 1) {
  return RawSeries{{{"job", "a"}, {"__name__", "up"}}, {{ts, v}}};
}

TEST_F(WriteHandlerTest, ValidV1IsStoredAndAnswered204) {
  ServerResponse r = PostV1({Up(), RawSeries{{{"__name__", "x_total"}, {"e", ""}}, {{kNow, 2}}}});
  EXPECT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(Header(r, rw::kSamplesWrittenHeader), "<absent>");  // a 2.0 header only
  ASSERT_EQ(store_.last_series.size(), 2u);
  // Sorted; the empty-valued label dropped.
  EXPECT_EQ(store_.last_series[0].labels, (Labels{{"__name__", "up"}, {"job", "a"}}));
  EXPECT_EQ(store_.last_series[1].labels, (Labels{{"__name__", "x_total"}}));
  const WriteStats st = handler_->stats();
  EXPECT_EQ(st.samples_accepted, 2u);
  EXPECT_EQ(st.requests_by_code[0], 1u);  // 204
}

TEST_F(WriteHandlerTest, DuplicatesAre204AndCounted) {
  ASSERT_EQ(PostV1({Up(kNow, 1)}).status, 204u);
  ASSERT_EQ(PostV1({Up(kNow, 1)}).status, 204u);  // a retry
  EXPECT_EQ(handler_->stats().samples_duplicate, 1u);
  EXPECT_EQ(handler_->stats().samples_accepted, 1u);
}

// Issue 8 §3: an agent's batch applied before (its answer lost) is acknowledged, not applied
// again; anything else with the headers is applied as usual. batch_identity.h.
TEST_F(WriteHandlerTest, AKeyedBatchAppliedBeforeIs204WithoutBeingAppliedAgain) {
  Reset({}, /*anonymous=*/true);
  std::string key;
  ASSERT_TRUE(devices_->Add("laptop", &key).ok());
  authorization_ = "Bearer " + key;
  const std::string stream = "00112233445566ff", run = "aaaaaaaaaaaaaaaa";
  auto post = [&](const std::string& run_id, const std::string& range, int64_t ts) {
    extra_headers_ = {{"X-Ccmon-Stream", stream}, {"X-Ccmon-Batch", run_id + range}};
    return PostV1({Up(ts, 1)}).status;
  };
  EXPECT_EQ(post(run, "/0/1-3", kNow), 204u);
  EXPECT_EQ(store_.applies, 1);
  EXPECT_EQ(post(run, "/0/1-3", kNow), 204u);  // the retry
  EXPECT_EQ(post(run, "/0/2-3", kNow), 204u);  // within what was applied
  EXPECT_EQ(store_.applies, 1);
  EXPECT_EQ(handler_->stats().duplicate_batches, 2u);
  EXPECT_EQ(post(run, "/0/1-4", kNow + 1), 204u);  // reaches further: applied
  EXPECT_EQ(post(run, "/1/1-3", kNow + 2), 204u);  // another shard
  EXPECT_EQ(store_.applies, 3);
  // Another run (the agent restarted): its sequences start anew and are applied; the old
  // run's marks are gone, so its late retries are applied too (their samples are duplicates).
  const std::string run2 = "bbbbbbbbbbbbbbbb";
  EXPECT_EQ(post(run2, "/0/1-1", kNow + 3), 204u);
  EXPECT_EQ(post(run, "/0/1-3", kNow + 4), 204u);
  EXPECT_EQ(store_.applies, 5);
  // A failed store raises no mark: the retry is applied.
  const std::string run3 = "cccccccccccccccc";
  store_.fail = true;
  EXPECT_EQ(post(run3, "/0/5-9", kNow + 5), 503u);
  store_.fail = false;
  EXPECT_EQ(post(run3, "/0/5-9", kNow + 5), 204u);
  EXPECT_EQ(store_.applies, 7);
  EXPECT_EQ(handler_->stats().duplicate_batches, 2u);
  // Anonymous writes and malformed identities are plain remote-write: always applied.
  authorization_.clear();
  EXPECT_EQ(post(run3, "/0/5-9", kNow + 6), 204u);
  EXPECT_EQ(post(run3, "/0/5-9", kNow + 6), 204u);
  authorization_ = "Bearer " + key;
  EXPECT_EQ(post(run3, "/0/9-5", kNow + 7), 204u);
  EXPECT_EQ(post(run3, "/0/9-5", kNow + 7), 204u);
  EXPECT_EQ(store_.applies, 11);
  EXPECT_EQ(handler_->stats().duplicate_batches, 2u);
}

TEST_F(WriteHandlerTest, WithoutAllowAnonymousAWriteWithoutAKeyIs401) {
  Reset({}, /*anonymous=*/false);
  ServerResponse r = PostV1({Up()});
  EXPECT_EQ(r.status, 401u);
  EXPECT_NE(r.body.find("device key"), std::string::npos);
  EXPECT_EQ(Header(r, "WWW-Authenticate"), "Bearer realm=\"ccmon-gateway\"");
  EXPECT_EQ(store_.applies, 0);
  EXPECT_EQ(handler_->stats().requests_by_code[2], 1u);  // 401
}

TEST_F(WriteHandlerTest, BadKeysAre401WithOneAnswerForAll) {
  Reset({}, /*anonymous=*/false);
  std::string key, revoked, rotated_away, rotated;
  ASSERT_TRUE(devices_->Add("a", &key).ok());
  ASSERT_TRUE(devices_->Add("r", &revoked).ok());
  ASSERT_TRUE(devices_->Revoke("r").ok());
  ASSERT_TRUE(devices_->Add("o", &rotated_away).ok());
  ASSERT_TRUE(devices_->Rotate("o", &rotated).ok());
  std::string first_body;
  for (const std::string& auth : std::vector<std::string>{
           "Bearer " + revoked, "Bearer " + rotated_away, "Bearer " + key + "x",
           "Bearer " + key.substr(3), "Bearer xk_" + key.substr(3), "Basic " + key, key,
           std::string("Bearer "), std::string("Bearer dk_\xc3\xa9\xc3\xa9"),
           std::string("Bearer dk_!!!not base64!!!"), "Bearer " + std::string(10 << 20, 'A'),
           "Bearer dk_" + std::string(10 << 20, 'A')}) {
    authorization_ = auth;
    ServerResponse r = PostV1({Up()});
    EXPECT_EQ(r.status, 401u) << auth.substr(0, 60);
    if (first_body.empty()) first_body = r.body;
    EXPECT_EQ(r.body, first_body);  // nothing tells which part was wrong
  }
  EXPECT_EQ(store_.applies, 0);
  authorization_ = "Bearer " + rotated;
  EXPECT_EQ(PostV1({Up()}).status, 204u);
  authorization_ = "bearer  " + key + " ";
  EXPECT_EQ(PostV1({Up(kNow + 1)}).status, 204u);
}

TEST_F(WriteHandlerTest, WithAllowAnonymousABadKeyIsStill401) {
  authorization_ = "Bearer dk_unknown";
  EXPECT_EQ(PostV1({Up()}).status, 401u);
  authorization_.clear();
  EXPECT_EQ(PostV1({Up()}).status, 204u);
}

TEST_F(WriteHandlerTest, TheKeysDeviceOverridesTheRequestsDeviceLabel) {
  Reset({}, /*anonymous=*/false);
  std::string key_a;
  ASSERT_TRUE(devices_->Add("A", &key_a).ok());
  authorization_ = "Bearer " + key_a;
  ServerResponse r = PostV1(
      {RawSeries{{{"__name__", "claude_cost_usd_total"}, {"device", "B"}, {"z", "1"}}, {{kNow, 5}}},
       RawSeries{{{"__name__", "up"}}, {{kNow, 1}}},
       RawSeries{{{"device", ""}, {"__name__", "x"}}, {{kNow, 1}}}});
  ASSERT_EQ(r.status, 204u) << r.body;
  ASSERT_EQ(store_.last_series.size(), 3u);
  EXPECT_EQ(store_.last_series[0].labels,
            (Labels{{"__name__", "claude_cost_usd_total"}, {"device", "A"}, {"z", "1"}}));
  EXPECT_EQ(store_.last_series[1].labels, (Labels{{"__name__", "up"}, {"device", "A"}}));
  EXPECT_EQ(store_.last_series[2].labels, (Labels{{"__name__", "x"}, {"device", "A"}}));
  store_.Read([](const SeriesTable& t) {
    for (const auto& [key, state] : t.series()) {
      EXPECT_EQ(key.find('B'), std::string::npos) << key;
    }
  });
  // The same through remote-write 2.0. Symbols: "", __name__, up2, device, B
  const std::vector<std::string> sym = {"", "__name__", "up2", "device", "B"};
  r = Post(Snappy(RawV2(sym, {{{1, 2, 3, 4}, {{kNow, 1}}}})), kV2Type);
  ASSERT_EQ(r.status, 204u) << r.body;
  ASSERT_EQ(store_.last_series.size(), 1u);
  EXPECT_EQ(store_.last_series[0].labels, (Labels{{"__name__", "up2"}, {"device", "A"}}));
}

TEST_F(WriteHandlerTest, AnonymousWritesKeepTheirDeviceLabel) {
  ASSERT_EQ(PostV1({RawSeries{{{"__name__", "up"}, {"device", "B"}}, {{kNow, 1}}}}).status, 204u);
  EXPECT_EQ(store_.last_series[0].labels, (Labels{{"__name__", "up"}, {"device", "B"}}));
}

TEST_F(WriteHandlerTest, ContentTypes) {
  const std::string body = Snappy(RawV1({Up()}));
  EXPECT_EQ(Post(body, "").status, 204u);  // old senders send none
  EXPECT_EQ(Post(body, "application/x-protobuf;proto=prometheus.WriteRequest").status, 204u);
  EXPECT_EQ(Post(body, "Application/X-Protobuf ; proto=\"prometheus.WriteRequest\"").status, 204u);
  EXPECT_EQ(Post(body, "text/plain").status, 415u);
  EXPECT_EQ(Post(body, "application/json").status, 415u);
  EXPECT_EQ(Post(body, "application/x-protobuf;proto=io.prometheus.write.v3.Request").status, 415u);
  EXPECT_EQ(Post(body, "application/x-protobuf;garbage").status, 415u);
  EXPECT_EQ(Post(body, "application/x-protobuf", "gzip").status, 415u);
  EXPECT_EQ(Post(body, "application/x-protobuf", "").status, 204u);
  EXPECT_EQ(handler_->stats().requests_by_code[5], 5u);  // 415
}

TEST_F(WriteHandlerTest, BadSnappyAndBadProtobufAre400) {
  ServerResponse r = Post("definitely not snappy \xff\xff\xff\xff\xff\xff");
  EXPECT_EQ(r.status, 400u);
  r = Post(Snappy("\xff\xff\xff garbage protobuf"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("protobuf"), std::string::npos);
  r = Post("");  // empty body: snappy of nothing is not even a length
  EXPECT_EQ(r.status, 400u);
  r = Post(Snappy(""));  // an empty request: nothing to store
  EXPECT_EQ(r.status, 204u);
  EXPECT_EQ(store_.applies, 1);
}

TEST_F(WriteHandlerTest, DecompressionBombIsRefusedFromTheDeclaredLength) {
  // A snappy header claiming 4 GB (its largest length, 2^32 - 1), then a few bytes: refused
  // before allocating anything.
  std::string bomb;
  Varint((uint64_t(4) << 30) - 1, &bomb);
  bomb += std::string("\x00\x00\x00\x00", 4);
  ServerResponse r = Post(bomb);
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("over the limit"), std::string::npos) << r.body;
  EXPECT_EQ(handler_->stats().requests_by_code[1], 1u);  // 400
  EXPECT_EQ(store_.applies, 0);
  // The decoded limit at and over its edge.
  const std::string raw = RawV1({Up()});
  IngestLimits l;
  l.max_decoded_bytes = raw.size();
  Reset(l);
  EXPECT_EQ(Post(Snappy(raw)).status, 204u);
  l.max_decoded_bytes = raw.size() - 1;
  Reset(l);
  EXPECT_EQ(Post(Snappy(raw)).status, 400u);
}

TEST_F(WriteHandlerTest, BodyLimitIs413AtItsEdge) {
  const std::string body = Snappy(RawV1({Up()}));
  IngestLimits l;
  l.max_body_bytes = body.size();
  Reset(l);
  EXPECT_EQ(Post(body).status, 204u);
  l.max_body_bytes = body.size() - 1;
  Reset(l);
  EXPECT_EQ(Post(body).status, 413u);
}

TEST_F(WriteHandlerTest, SeriesPerRequestLimit) {
  IngestLimits l;
  l.max_series_per_request = 2;
  Reset(l);
  EXPECT_EQ(PostV1({Up(kNow - 2), Up(kNow - 1)}).status, 204u);
  ServerResponse r = PostV1({Up(kNow), Up(kNow + 1), Up(kNow + 2)});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(store_.applies, 1);
  EXPECT_EQ(handler_->stats().samples_rejected[size_t(RejectReason::kOverLimit)], 3u);
}

TEST_F(WriteHandlerTest, TenThousandLabelsAre400AndTheLimitItselfIsFine) {
  RawSeries s{{{"__name__", "m"}}, {{kNow, 1}}};
  for (int i = 0; i < 10000; ++i) s.labels.emplace_back("l" + std::to_string(i), "v");
  ServerResponse r = PostV1({s});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("10001 labels"), std::string::npos) << r.body;
  RawSeries at{{{"__name__", "m"}}, {{kNow, 1}}};
  for (int i = 0; i < 63; ++i) at.labels.emplace_back("l" + std::to_string(i), "v");
  EXPECT_EQ(PostV1({at}).status, 204u);  // 64 with __name__: the default limit
}

TEST_F(WriteHandlerTest, OneMegabyteLabelValueIs400) {
  ServerResponse r =
      PostV1({RawSeries{{{"__name__", "m"}, {"big", std::string(1 << 20, 'x')}}, {{kNow, 1}}}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("over the limit of 4096"), std::string::npos);
  EXPECT_EQ(
      PostV1({RawSeries{{{"__name__", "m"}, {"big", std::string(4096, 'x')}}, {{kNow, 1}}}}).status,
      204u);
  EXPECT_EQ(
      PostV1({RawSeries{{{"__name__", "m"}, {std::string(257, 'n'), "v"}}, {{kNow, 1}}}}).status,
      400u);
  EXPECT_EQ(
      PostV1({RawSeries{{{"__name__", "m"}, {std::string(256, 'n'), "v"}}, {{kNow, 2}}}}).status,
      204u);
}

TEST_F(WriteHandlerTest, InvalidLabelsAre400) {
  const std::vector<RawSeries> bad = {
      {{{"__name__", "m"}, {"v", "\xff\xfe"}}, {{kNow, 1}}},       // invalid UTF-8 value
      {{{"__name__", "m"}, {"\xc3\x28", "v"}}, {{kNow, 1}}},       // invalid UTF-8 name
      {{{"__name__", "m"}, {"a", "1"}, {"a", "2"}}, {{kNow, 1}}},  // duplicate name
      {{{"__name__", "m"}, {"__name__", "n"}}, {{kNow, 1}}},       // two names
      {{{"job", "a"}}, {{kNow, 1}}},                               // no __name__
      {{{"__name__", ""}}, {{kNow, 1}}},                           // empty name
      {{{"__name__", "1bad"}}, {{kNow, 1}}},                       // invalid metric name
      {{{"__name__", "m"}, {"1bad", "v"}}, {{kNow, 1}}},           // invalid label name
      {{{"__name__", "m"}, {"__reserved", "v"}}, {{kNow, 1}}},     // reserved prefix
      {{{"__name__", "m"}, {"", "v"}}, {{kNow, 1}}},               // empty label name
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    ServerResponse r = PostV1({Up(), bad[i]});
    EXPECT_EQ(r.status, 400u) << "case " << i << ": " << r.body;
  }
  EXPECT_EQ(store_.applies, 0);  // nothing of a rejected request is stored
}

// The receive path decodes with rw::WriteRequestView and canonicalises from views: the answers
// are those the handler gave over rw::Decode's strings, word for word.
TEST_F(WriteHandlerTest, InvalidLabelsAnswerTheSameMessages) {
  const std::vector<std::pair<RawSeries, std::string>> cases = {
      {{{{"__name__", "m"}, {"v", "\xff\xfe"}}, {{kNow, 1}}}, "a label name or value is not UTF-8"},
      {{{{"__name__", "m"}, {"b", "1"}, {"a", "1"}, {"b", "2"}}, {{kNow, 1}}},
       "duplicate label name \"b\""},
      {{{{"__name__", "m"}, {"__name__", "n"}}, {{kNow, 1}}}, "duplicate label name \"__name__\""},
      {{{{"job", "a"}}, {{kNow, 1}}}, "a series has no __name__"},
      {{{{"job", "a"}, {"__name__", ""}}, {{kNow, 1}}}, "invalid metric name \"\""},
      {{{{"__name__", "1bad"}}, {{kNow, 1}}}, "invalid metric name \"1bad\""},
      {{{{"__name__", "m"}, {"1bad", "v"}}, {{kNow, 1}}}, "invalid label name \"1bad\""},
      {{{{"__name__", "m"}, {"__reserved", "v"}}, {{kNow, 1}}},
       "invalid label name \"__reserved\""},
      {{{{"__name__", "m"}, {"", "v"}}, {{kNow, 1}}}, "invalid label name \"\""},
      {{{{"__name__", "m"}, {"a\x01", "v"}}, {{kNow, 1}}}, "invalid label name \"a?\""},
  };
  for (const auto& [series, message] : cases) {
    ServerResponse r = PostV1({Up(), series});
    EXPECT_EQ(r.status, 400u) << message;
    EXPECT_EQ(r.body, "remote-write: " + message + "\n");
  }
  // Not a protobuf, and a length past the end of the body: the decoder's own message.
  ServerResponse r = Post(Snappy(std::string("\x0a\x7f\x0a\x02", 4)));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, "remote-write: body is not a protobuf WriteRequest\n");
  EXPECT_EQ(store_.applies, 0);
}

// The per-thread buffers carry nothing from one request into the next: a request of 3 series,
// one rejected, then one of a single series store exactly what each holds.
TEST_F(WriteHandlerTest, EachRequestStoresItsOwnSeriesOnly) {
  const RawSeries a{{{"__name__", "a"}, {"x", "1"}}, {{kNow, 1}, {kNow + 1, 2}}};
  const RawSeries b{{{"zz", "1"}, {"__name__", "b"}}, {{kNow, 3}}};
  ASSERT_EQ(PostV1({a, b, Up()}).status, 204u);
  ASSERT_EQ(store_.last_series.size(), 3u);
  EXPECT_EQ(store_.last_series[1].labels, (Labels{{"__name__", "b"}, {"zz", "1"}}));
  EXPECT_EQ(PostV1({b, {{{"__name__", "1"}}, {{kNow, 1}}}}).status, 400u);
  ASSERT_EQ(PostV1({RawSeries{{{"__name__", "c"}}, {{kNow, 4}}}}).status, 204u);
  ASSERT_EQ(store_.last_series.size(), 1u);
  EXPECT_EQ(store_.last_series[0].labels, (Labels{{"__name__", "c"}}));
  EXPECT_EQ(store_.last_series[0].samples, (std::vector<rw::Sample>{{kNow, 4}}));
}

TEST_F(WriteHandlerTest, FarFutureSamplesAre400AtTheEdge) {
  const int64_t edge = kNow + 10 * 60 * 1000;
  EXPECT_EQ(PostV1({Up(edge)}).status, 204u);
  ServerResponse r = PostV1({Up(edge + 1)});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("ahead of the gateway's clock"), std::string::npos) << r.body;
  r = PostV1({Up(INT64_MAX)});
  EXPECT_EQ(r.status, 400u);
  // Old and negative timestamps are fine (backfills).
  EXPECT_EQ(PostV1({RawSeries{{{"__name__", "old"}}, {{-1000, 1}, {0, 2}}}}).status, 204u);
  clock_.AdvanceBy(std::chrono::milliseconds(1));
  EXPECT_EQ(PostV1({Up(edge + 1)}).status, 204u);
}

TEST_F(WriteHandlerTest, MetadataOnlyRequestsAre204AndStored) {
  ServerResponse r = PostV1({}, {{rw::MetricKind::kCounter, "x", "help", ""}});
  EXPECT_EQ(r.status, 204u);
  ASSERT_EQ(store_.last_metadata.size(), 1u);
  EXPECT_EQ(store_.last_metadata[0].family, "x");
  r = PostV1({}, {{rw::MetricKind::kCounter, "bad name", "help", ""}});
  EXPECT_EQ(r.status, 400u);
}

TEST_F(WriteHandlerTest, StorageFailureIs503AndNothingIsApplied) {
  store_.fail = true;
  ServerResponse r = PostV1({Up()});
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(Header(r, "Retry-After"), "5");
  EXPECT_EQ(handler_->stats().samples_rejected[size_t(RejectReason::kStorage)], 1u);
  ASSERT_EQ(logged_.size(), 1u);
  EXPECT_NE(logged_[0].find("disk full"), std::string::npos);
  store_.fail = false;
  EXPECT_EQ(PostV1({Up()}).status, 204u);
  EXPECT_EQ(handler_->stats().samples_accepted, 1u);  // the retry is not a duplicate
}

TEST_F(WriteHandlerTest, V2IsDecodedAndAnsweredWithTheWrittenHeaders) {
  // symbols: "", __name__, up, job, a, help text
  const std::vector<std::string> sym = {"", "__name__", "up", "job", "a", "Is it up"};
  ServerResponse r =
      Post(Snappy(RawV2(sym, {{{1, 2, 3, 4}, {{kNow - 1, 1}, {kNow, 0}}, 0, 2, 5},
                              {{1, 2, 3, 0}, {}, 3, -1, 0}})),  // histograms only: ignored
           kV2Type);
  EXPECT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(Header(r, rw::kSamplesWrittenHeader), "2");
  EXPECT_EQ(Header(r, rw::kHistogramsWrittenHeader), "0");
  EXPECT_EQ(Header(r, rw::kExemplarsWrittenHeader), "0");
  ASSERT_EQ(store_.last_series.size(), 1u);
  EXPECT_EQ(store_.last_series[0].labels, (Labels{{"__name__", "up"}, {"job", "a"}}));
  ASSERT_EQ(store_.last_metadata.size(), 1u);
  EXPECT_EQ(store_.last_metadata[0].family, "up");
  EXPECT_EQ(store_.last_metadata[0].kind, rw::MetricKind::kGauge);
  EXPECT_EQ(store_.last_metadata[0].help, "Is it up");
  // Resent: all duplicates, still counted as written (they are held).
  r = Post(Snappy(RawV2(sym, {{{1, 2, 3, 4}, {{kNow - 1, 1}, {kNow, 0}}}})), kV2Type);
  EXPECT_EQ(r.status, 204u);
  EXPECT_EQ(Header(r, rw::kSamplesWrittenHeader), "2");
  EXPECT_EQ(handler_->stats().v2_requests, 2u);
}

TEST_F(WriteHandlerTest, V2SymbolReferencesOutOfRangeAre400) {
  const std::vector<std::string> sym = {"", "__name__", "up"};
  ServerResponse r = Post(Snappy(RawV2(sym, {{{1, 3}, {{kNow, 1}}}})), kV2Type);
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("out of the table"), std::string::npos) << r.body;
  EXPECT_EQ(Header(r, rw::kSamplesWrittenHeader), "0");
  EXPECT_EQ(Post(Snappy(RawV2(sym, {{{1, 0xffffffffu}, {{kNow, 1}}}})), kV2Type).status, 400u);
  EXPECT_EQ(Post(Snappy(RawV2(sym, {{{1}, {{kNow, 1}}}})), kV2Type).status, 400u);  // odd
  EXPECT_EQ(Post(Snappy(RawV2({"x", "__name__", "up"}, {{{1, 2}, {{kNow, 1}}}})), kV2Type).status,
            400u);  // symbols[0] must be ""
  EXPECT_EQ(Post(Snappy(RawV2(sym, {{{1, 2}, {{kNow, 1}}, 0, 1, 7}})), kV2Type).status,
            400u);  // help_ref out of range
  EXPECT_EQ(Post(Snappy(RawV2({}, {{{1, 2}, {{kNow, 1}}}})), kV2Type).status, 400u);
  // A 1.0 body sent as 2.0 is not silently read as an empty request.
  EXPECT_EQ(Post(Snappy(RawV1({Up()})), kV2Type).status, 400u);
  EXPECT_EQ(store_.applies, 0);
}

TEST_F(WriteHandlerTest, V2MetadataOnlyIs204) {
  const std::vector<std::string> sym = {"", "__name__", "x_total", "Help"};
  ServerResponse r = Post(Snappy(RawV2(sym, {{{1, 2}, {}, 0, 1, 3}})), kV2Type);
  EXPECT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(Header(r, rw::kSamplesWrittenHeader), "0");
  ASSERT_EQ(store_.last_metadata.size(), 1u);
  EXPECT_EQ(store_.last_metadata[0].kind, rw::MetricKind::kCounter);
}

TEST_F(WriteHandlerTest, EncodeV2RoundTripsThroughTheHandler) {
  rw::WriteRequest req;
  req.series.push_back({{{"__name__", "claude_tokens_total"}, {"type", "input"}}, {{kNow, 42}}});
  req.metadata.push_back({rw::MetricKind::kCounter, "claude_tokens_total", "Tokens", ""});
  std::string body;
  ASSERT_TRUE(rw::EncodeV2(req, &body).ok());
  ServerResponse r = Post(body, kV2Type);
  EXPECT_EQ(r.status, 204u) << r.body;
  ASSERT_EQ(store_.last_series.size(), 1u);
  EXPECT_EQ(store_.last_series[0].samples[0].value, 42);
  ASSERT_EQ(store_.last_metadata.size(), 1u);
  EXPECT_EQ(store_.last_metadata[0].help, "Tokens");
}

class FixedHandler : public HttpHandler {
 public:
  ServerResponse Handle(const ServerRequest& r) override {
    return ServerResponse::Text(200, "metrics for " + std::string(r.Path()));
  }
};

TEST_F(WriteHandlerTest, Routes) {
  FixedHandler metrics;
  bool ready = true;
  GatewayHandler h(handler_.get(), &metrics, [&] { return ready; });
  ServerRequest r;
  r.method = "GET";
  r.target = "/api/v1/write";
  ServerResponse resp = h.Handle(r);
  EXPECT_EQ(resp.status, 405u);
  EXPECT_EQ(Header(resp, "Allow"), "POST");
  r.target = "/metrics?x=1";
  EXPECT_EQ(h.Handle(r).body, "metrics for /metrics");
  r.target = "/api/metrics";
  EXPECT_EQ(h.Handle(r).status, 200u);
  r.target = "/readyz";
  EXPECT_EQ(h.Handle(r).status, 200u);
  ready = false;
  EXPECT_EQ(h.Handle(r).status, 503u);
  r.target = "/nope";
  EXPECT_EQ(h.Handle(r).status, 404u);
  r.method = "POST";
  r.target = "/api/v1/write";
  r.headers = {{"Content-Type", "application/x-protobuf"}};
  r.body = Snappy(RawV1({Up()}));
  EXPECT_EQ(h.Handle(r).status, 204u);
  EXPECT_EQ(handler_->stats().requests_by_code[3], 1u);  // the 405
  // Without an admin handler the device paths are 404; with one they reach it.
  r.method = "GET";
  r.target = "/api/v1/devices";
  EXPECT_EQ(h.Handle(r).status, 404u);
  FixedHandler admin;
  GatewayHandler with_admin(handler_.get(), &metrics, nullptr, &admin);
  for (const char* target : {"/api/v1/devices", "/api/v1/devices/a/rotate", "/api/v1/devices?x"}) {
    r.target = target;
    EXPECT_EQ(with_admin.Handle(r).status, 200u) << target;
  }
  r.target = "/api/v1/devicesX";
  EXPECT_EQ(with_admin.Handle(r).status, 404u);
  // The status page's paths: 404 without a status handler; with one they reach it.
  r.target = "/";
  EXPECT_EQ(with_admin.Handle(r).status, 404u);
  FixedHandler status;
  GatewayHandler with_status(handler_.get(), &metrics, nullptr, nullptr, nullptr, &status);
  for (const char* target : {"/", "/status", "/api/v1/status", "/?refresh=1"}) {
    r.target = target;
    EXPECT_EQ(with_status.Handle(r).status, 200u) << target;
  }
  for (const char* target : {"/status/", "/api/v1/statusX", "/index.html"}) {
    r.target = target;
    EXPECT_EQ(with_status.Handle(r).status, 404u) << target;
  }
}

}  // namespace
}  // namespace ccmon::gateway

namespace ccmon::gateway {
namespace {

// The handler over the real store on a failing disk: 503, and nothing of the request applied —
// not its series, not its metadata — until a retry succeeds.
TEST(WriteHandlerOnGatewayStoreTest, AFailedWriteIs503AndNothingIsHalfApplied) {
  auto mem = NewMemStore();
  testing_util::FaultStore fault(mem.get());
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(&fault, &store).ok());
  FakeClock clock(kNow);
  WriteHandlerOptions o;
  o.allow_anonymous = true;
  o.clock = &clock;
  WriteHandler handler(store.get(), o);
  ServerRequest r;
  r.method = "POST";
  r.headers.emplace_back("Content-Type", "application/x-protobuf");
  r.body = Snappy(RawV1({Up(kNow - 1000, 1), RawSeries{{{"__name__", "b_total"}}, {{kNow, 5}}}},
                        {{rw::MetricKind::kCounter, "b", "B", ""}}));
  fault.FailWritesAfter(0);
  ServerResponse resp = handler.Handle(r);
  EXPECT_EQ(resp.status, 503u);
  EXPECT_EQ(store->Stats().series, 0u);
  EXPECT_EQ(store->Stats().families, 0u);
  auto it = mem->NewIterator();
  size_t keys = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++keys;
  EXPECT_EQ(keys, 1u);  // only the format key
  fault.ClearFaults();
  resp = handler.Handle(r);
  EXPECT_EQ(resp.status, 204u);
  EXPECT_EQ(store->Stats().series, 2u);
  EXPECT_EQ(store->Stats().families, 1u);
  EXPECT_EQ(handler.stats().samples_accepted, 2u);
  EXPECT_EQ(handler.stats().samples_rejected[size_t(RejectReason::kStorage)], 2u);
}

}  // namespace
}  // namespace ccmon::gateway
