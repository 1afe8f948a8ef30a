// The agent's side of the state mirror and the resume (agent/resume.h, docs/agent-design.md
// "Resume").
#include "agent/resume.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "agent/engine/engine.h"
#include "engine/engine_test_util.h"
#include "state_mirror/state_records.h"
#include "store/mem_store.h"
#include "store/outbox.h"
#include "store/rocks_store.h"
#include "testing/temp_dir.h"

namespace ccmon::agent {
namespace {

using namespace ccmon::agent::testing;
namespace sm = state_mirror;
using ccmon::testing_util::TempDir;

constexpr int64_t kNow = 1767225600000 + 400LL * 86400000;

std::map<std::string, std::string> Decoded(const std::string& body) {
  WriteBatch ops;
  const Status s = sm::DecodeStateBody(body, 1 << 30, &ops);
  EXPECT_TRUE(s.ok()) << s.message();
  std::map<std::string, std::string> out;
  for (const auto& op : ops.ops()) out[op.key] = op.value;
  return out;
}

// One agent state: a store, its outbox and an engine.
struct State {
  explicit State(std::unique_ptr<KvStore> s) : store(std::move(s)) { Reopen(); }
  void Reopen(int64_t samples_after_ms = kNever) {
    engine.reset();
    outbox.reset();
    ASSERT_TRUE(Outbox::Open(store.get(), OutboxOptions{}, 2, &outbox).ok());
    EngineOptions o;
    o.live.device = "dev";
    o.live.prices = &PriceTable::Embedded();
    o.shards = 2;
    o.samples_after_ms = samples_after_ms;
    ASSERT_TRUE(Engine::Open(o, store.get(), outbox.get(), &engine).ok());
  }
  // Counts file i whole and commits its cursor (the file's line count) with it.
  void Count(const std::vector<std::vector<std::string>>& files, size_t i, int64_t now) {
    LineParser parser;
    ParsedLine line;
    for (const auto& l : files[i]) {
      parser.Parse(l, &line);
      ASSERT_TRUE(engine->AddLine(line).ok());
    }
    ASSERT_TRUE(engine->Commit({{"f" + std::to_string(i), std::to_string(files[i].size())}}, now)
                    .ok());
  }
  // Every queued sample's timestamp, the entries removed.
  std::vector<int64_t> DrainTimestamps() {
    std::vector<int64_t> out;
    for (int shard = 0; shard < 2; ++shard) {
      for (;;) {
        OutboxBatch b;
        EXPECT_TRUE(outbox->Peek(uint32_t(shard), 100, 1 << 30, &b).ok());
        if (b.empty()) break;
        std::string body;
        rw::Compress(b.payload, &body);
        rw::WriteRequest req;
        EXPECT_TRUE(rw::Decode(body, 1 << 30, &req).ok());
        for (const auto& s : req.series)
          for (const auto& smp : s.samples) out.push_back(smp.timestamp_ms);
        EXPECT_TRUE(outbox->Remove(uint32_t(shard), b.last_seq).ok());
      }
    }
    return out;
  }
  std::unique_ptr<KvStore> store;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<Engine> engine;
};

TEST(AgentStateUrl, OnlyAGatewaysWritePath) {
  EXPECT_EQ(AgentStateUrl("http://h:9469/api/v1/write"), "http://h:9469/api/v1/agent/state");
  EXPECT_EQ(AgentStateUrl("https://h/gw/api/v1/write?x=1"), "https://h/gw/api/v1/agent/state?x=1");
  EXPECT_EQ(AgentStateUrl("http://h:8428/api/v1/import/prometheus"), "");
  EXPECT_EQ(AgentStateUrl("http://h/api/v1/push"), "");
}

TEST(Resume, SnapshotLeavesTheOutboxOut) {
  State a(NewMemStore());
  const auto files = MakeHistory(41, 6);
  for (size_t i = 0; i < files.size(); ++i) a.Count(files, i, kNow);
  ASSERT_TRUE(a.engine->MarkCaughtUp(kNow).ok());
  ASSERT_GT(a.outbox->Stats().total.entries, 0u) << "the first samples are queued";
  std::string body;
  uint64_t records = 0;
  ASSERT_TRUE(SnapshotState(a.store.get(), &body, &records).ok());
  const auto snap = Decoded(body);
  EXPECT_EQ(snap.size(), records);
  size_t store_keys = 0, outbox_keys = 0;
  auto it = a.store->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++store_keys;
    if (it->key()[0] == 'o') {
      ++outbox_keys;
      EXPECT_FALSE(snap.contains(std::string(it->key())));
    } else {
      EXPECT_EQ(snap.at(std::string(it->key())), it->value());
    }
  }
  EXPECT_GT(outbox_keys, 0u);
  EXPECT_EQ(snap.size(), store_keys - outbox_keys);
  EXPECT_TRUE(snap.contains(std::string(Engine::kCaughtUpKey)));
}

// The heart of the resume: a state restored from a mirror taken at some point, then the
// surviving files read again (some were counted after the mirror's point, one is a copy of
// counted lines, some are new), ends exactly at replay's totals over every file ever counted —
// including files deleted since, whose counts only the mirror holds — and every sample after
// the restore is stamped after it.
TEST(Resume, RestoredStateRecountsToReplaysTotalsWithNothingTwice) {
  const auto files = MakeHistory(42, 24);
  ASSERT_GE(files.size(), 12u);
  const size_t mirrored = files.size() / 3, applied = files.size() * 2 / 3;
  State a(NewMemStore());
  for (size_t i = 0; i < mirrored; ++i) a.Count(files, i, kNow);
  ASSERT_TRUE(a.engine->MarkCaughtUp(kNow).ok());
  std::string body;
  uint64_t records = 0;
  ASSERT_TRUE(SnapshotState(a.store.get(), &body, &records).ok());  // the mirror's point
  for (size_t i = mirrored; i < applied; ++i) a.Count(files, i, kNow + 1000);  // after it

  // The state is lost. The mirror comes back into an empty store.
  TempDir dir;
  std::unique_ptr<KvStore> rocks;
  ASSERT_TRUE(OpenRocksStore(dir.path(), {}, &rocks).ok());
  WriteBatch mirror;
  ASSERT_TRUE(sm::DecodeStateBody(body, 1 << 30, &mirror).ok());
  const int64_t restored_at = kNow + 5000;
  RestoreStats rs;
  ASSERT_TRUE(RestoreState(rocks.get(), mirror, 0x1234, restored_at, &rs).ok());
  EXPECT_EQ(rs.files, mirrored);
  EXPECT_GT(rs.series, 0u);
  std::string v;
  EXPECT_EQ(rocks->Get(Engine::kCaughtUpKey, &v).code(), Status::Code::kNotFound)
      << "the restored state catches up again before it sends";
  ASSERT_TRUE(rocks->Get(kResumedKey, &v).ok());
  EXPECT_EQ(v, std::to_string(restored_at));
  ASSERT_TRUE(rocks->Get(kStreamKey, &v).ok());
  EXPECT_EQ(v, "0000000000001234");
  ASSERT_TRUE(rocks->Get(kGatewayKey, &v).ok());
  EXPECT_EQ(v, "1");

  State b(std::move(rocks));
  b.Reopen(restored_at);
  EXPECT_FALSE(b.engine->caught_up());
  // The restored counters are the mirror's: replay's over the files counted before it.
  const std::vector<std::vector<std::string>> before(files.begin(), files.begin() + mirrored);
  EXPECT_EQ(b.engine->Exposition(false, false), ReplayText(before, "dev"));
  // Files 0 .. mirrored/2 were deleted: not read again. File 1's lines come back as a copy
  // (a resumed session's). The rest is read again (counted after the mirror's point, or new).
  const size_t copy_of = 1;
  b.Count(files, copy_of, kNow + 6000);
  for (size_t i = mirrored; i < files.size(); ++i) b.Count(files, i, kNow + 6000);
  EXPECT_EQ(b.outbox->Stats().total.entries, 0u) << "nothing is sent during the catch-up";
  ASSERT_TRUE(b.engine->MarkCaughtUp(kNow + 7000).ok());
  EXPECT_EQ(b.engine->Exposition(false, false), ReplayText(files, "dev"));
  const std::vector<int64_t> ts = b.DrainTimestamps();
  ASSERT_FALSE(ts.empty());
  for (int64_t t : ts) EXPECT_GT(t, restored_at);
}

TEST(Resume, EmptyStoreAndStreamEpoch) {
  std::unique_ptr<KvStore> s = NewMemStore();
  bool empty = false;
  ASSERT_TRUE(StoreIsEmpty(s.get(), &empty).ok());
  EXPECT_TRUE(empty);
  uint64_t e1 = 0, e2 = 0;
  ASSERT_TRUE(EnsureStreamEpoch(s.get(), &e1).ok());
  EXPECT_NE(e1, 0u);
  ASSERT_TRUE(EnsureStreamEpoch(s.get(), &e2).ok());
  EXPECT_EQ(e1, e2) << "created once, then read";
  ASSERT_TRUE(StoreIsEmpty(s.get(), &empty).ok());
  EXPECT_FALSE(empty);
}

// A scripted HTTP peer: answers in order, records requests, signals each exchange.
class ScriptedTransport : public HttpTransport {
 public:
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(request);
    Status s = Status::Ok();
    if (answers_.empty()) {
      response->status = 204;
    } else {
      auto [status, body, headers] = answers_.front();
      answers_.pop_front();
      if (status == 0) {
        s = Status::IoError("connection refused");
      } else {
        response->status = status;
        response->body = body;
        response->headers = headers;
      }
    }
    cv_.notify_all();
    return s;
  }
  void Answer(unsigned status, std::string body = "", std::vector<HttpHeader> headers = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.emplace_back(status, std::move(body), std::move(headers));
  }
  // Waits (at most 10 s) until `n` requests arrived.
  bool WaitRequests(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return requests_.size() >= n; });
  }
  std::vector<HttpRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::tuple<unsigned, std::string, std::vector<HttpHeader>>> answers_;
  std::vector<HttpRequest> requests_;
};

std::string HeaderOf(const HttpRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

TEST(ProbeGateway, ClassifiesTheAnswers) {
  ScriptedTransport t;
  sm::StateRecordWriter w;
  w.Put("f/x", "cursor");
  t.Answer(200, w.Finish(), {{"X-Ccmon-Stream", "00000000000000ff"}, {"X-Ccmon-State-Seq", "9"}});
  t.Answer(204);
  for (unsigned code : {400u, 404u, 405u}) t.Answer(code);
  for (unsigned code : {0u, 401u, 403u, 429u, 500u, 503u}) t.Answer(code);
  t.Answer(200, "garbage", {{"X-Ccmon-Stream", "00000000000000ff"}, {"X-Ccmon-State-Seq", "9"}});
  t.Answer(200, sm::StateRecordWriter().Finish());  // no headers
  const std::vector<HttpHeader> auth = {{"Authorization", "Bearer dk_x"}};
  Probe p;
  ProbeGateway(&t, "http://g/api/v1/agent/state", auth, &p);
  EXPECT_EQ(p.outcome, ProbeOutcome::kMirror);
  EXPECT_EQ(p.epoch, 0xffu);
  EXPECT_EQ(p.state_seq, 9u);
  ASSERT_EQ(p.mirror.count(), 1u);
  EXPECT_EQ(p.mirror.ops()[0].value, "cursor");
  ProbeGateway(&t, "u", auth, &p);
  EXPECT_EQ(p.outcome, ProbeOutcome::kNoMirror);
  for (int i = 0; i < 3; ++i) {
    ProbeGateway(&t, "u", auth, &p);
    EXPECT_EQ(p.outcome, ProbeOutcome::kNotGateway) << p.detail;
  }
  for (int i = 0; i < 8; ++i) {
    ProbeGateway(&t, "u", auth, &p);
    EXPECT_EQ(p.outcome, ProbeOutcome::kRetry) << i << " " << p.detail;
  }
  const auto reqs = t.requests();
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(HeaderOf(reqs[0], "Authorization"), "Bearer dk_x");
}

TEST(StateMirrorUploader, UploadsChangedStatesWithGrowingSequencesAndAtStop) {
  std::unique_ptr<KvStore> store = NewMemStore();
  WriteBatch b;
  b.Put("cX", "1");
  b.Put(std::string("o\x00\x00\x00\x00\x00\x00\x00\x00\x01", 10), "outbox entry");
  ASSERT_TRUE(store->Write(b, true).ok());
  ScriptedTransport t, at_stop;
  UploaderOptions o;
  o.store = store.get();
  o.transport = &t;
  o.stop_transport = &at_stop;
  o.state_url = "http://g/api/v1/agent/state";
  o.headers = {{"Authorization", "Bearer dk_x"}};
  o.interval = std::chrono::hours(1);  // only Kick and Stop upload in this test
  o.gateway = -1;                      // probed first
  t.Answer(204);                       // the probe: a gateway without a mirror
  t.Answer(503);                       // the first upload fails
  StateMirrorUploader u(o);
  u.NoteCommit(1);
  u.Start();
  ASSERT_TRUE(t.WaitRequests(2));
  u.Kick();  // retried (the state did not change, but it was never uploaded)
  ASSERT_TRUE(t.WaitRequests(3));
  u.Kick();  // unchanged and uploaded: nothing sent
  u.NoteCommit(2);
  u.Kick();
  ASSERT_TRUE(t.WaitRequests(4));
  u.NoteCommit(3);
  u.Stop(/*final_upload=*/true);
  const auto reqs = t.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].method, "GET");
  std::string v;
  ASSERT_TRUE(store->Get(kGatewayKey, &v).ok());
  EXPECT_EQ(v, "1") << "the probe's answer is remembered";
  std::vector<std::string> seqs;
  for (size_t i = 1; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].method, "POST");
    EXPECT_EQ(HeaderOf(reqs[i], "X-Ccmon-State-Full"), "1");
    EXPECT_EQ(HeaderOf(reqs[i], "Authorization"), "Bearer dk_x");
    seqs.push_back(HeaderOf(reqs[i], "X-Ccmon-State-Seq"));
    const auto snap = Decoded(reqs[i].body);
    EXPECT_EQ(snap.at("cX"), "1");
    for (const auto& [k, _] : snap) EXPECT_NE(k[0], 'o') << "the outbox is never mirrored";
  }
  EXPECT_EQ(seqs, (std::vector<std::string>{"1", "2", "3"}))
      << "a failed upload's sequence is not reused";
  ASSERT_EQ(at_stop.requests().size(), 1u) << "the last upload at a stop, on its own transport";
  EXPECT_EQ(HeaderOf(at_stop.requests()[0], "X-Ccmon-State-Seq"), "4");
  const UploaderStats st = u.stats();
  EXPECT_EQ(st.uploads, 3u);
  EXPECT_EQ(st.failures, 1u);
}

TEST(StateMirrorUploader, NotAGatewayStopsAndIsRemembered) {
  std::unique_ptr<KvStore> store = NewMemStore();
  ScriptedTransport t;
  t.Answer(404);
  UploaderOptions o;
  o.store = store.get();
  o.transport = &t;
  o.state_url = "http://prom/api/v1/agent/state";
  o.interval = std::chrono::hours(1);
  StateMirrorUploader u(o);
  u.NoteCommit(5);
  u.Start();
  ASSERT_TRUE(t.WaitRequests(1));
  u.Stop(true);
  EXPECT_EQ(t.requests().size(), 1u) << "no upload to a plain receiver";
  std::string v;
  ASSERT_TRUE(store->Get(kGatewayKey, &v).ok());
  EXPECT_EQ(v, "0");
}

TEST(StateMirrorUploader, RefusedAsTooLargeIsNotRetriedUntilTheStateChanges) {
  std::unique_ptr<KvStore> store = NewMemStore();
  ScriptedTransport t;
  t.Answer(413);
  std::vector<std::string> warnings;
  std::mutex mu;
  UploaderOptions o;
  o.store = store.get();
  o.transport = &t;
  o.state_url = "u";
  o.interval = std::chrono::hours(1);
  o.gateway = 1;
  o.log = [&](std::string_view level, std::string_view msg, std::string_view) {
    std::lock_guard<std::mutex> lock(mu);
    if (level == "warn") warnings.emplace_back(msg);
  };
  StateMirrorUploader u(o);
  u.NoteCommit(1);
  u.Start();
  ASSERT_TRUE(t.WaitRequests(1));
  u.Kick();
  u.NoteCommit(2);
  u.Kick();
  ASSERT_TRUE(t.WaitRequests(2));
  u.Stop(false);
  EXPECT_EQ(t.requests().size(), 2u);
  EXPECT_EQ(u.stats().refused, 1u);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("per-device limit"), std::string::npos) << warnings[0];
}

}  // namespace
}  // namespace ccmon::agent
