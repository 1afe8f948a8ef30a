// The agent's side of the state mirror and the resume (agent/resume.h, docs/agent-design.md
// "Resume").
#include "agent/resume.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>

#include "agent/engine/engine.h"
#include "engine/engine_test_util.h"
#include "gateway/devices/device_registry.h"
#include "gateway/mirror/mirror_store.h"
#include "gateway/mirror/state_handler.h"
#include "state_mirror/state_records.h"
#include "store/mem_store.h"
#include "store/outbox.h"
#include "store/rocks_store.h"
#include "testing/fault_store.h"
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
  void Reopen(int64_t samples_after_ms = kNever, bool state_sequence = false) {
    engine.reset();
    outbox.reset();
    ASSERT_TRUE(Outbox::Open(store.get(), OutboxOptions{}, 2, &outbox).ok());
    EngineOptions o;
    o.live.device = "dev";
    o.live.prices = &PriceTable::Embedded();
    o.shards = 2;
    o.samples_after_ms = samples_after_ms;
    o.state_sequence = state_sequence;
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
    ASSERT_TRUE(
        engine->Commit({{"f" + std::to_string(i), std::to_string(files[i].size())}}, now).ok());
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
  uint64_t records = 0, seq = 0;
  ASSERT_TRUE(SnapshotState(a.store.get(), &body, &records, &seq).ok());
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
  uint64_t records = 0, seq = 0;
  ASSERT_TRUE(SnapshotState(a.store.get(), &body, &records, &seq).ok());       // the mirror's point
  for (size_t i = mirrored; i < applied; ++i) a.Count(files, i, kNow + 1000);  // after it

  // The state is lost. The mirror comes back into an empty store.
  TempDir dir;
  std::unique_ptr<KvStore> rocks;
  ASSERT_TRUE(OpenRocksStore(dir.path(), {}, &rocks).ok());
  WriteBatch mirror;
  ASSERT_TRUE(sm::DecodeStateBody(body, 1 << 30, &mirror).ok());
  const int64_t restored_at = kNow + 5000;
  RestoreStats rs;
  ASSERT_TRUE(RestoreState(rocks.get(), mirror, 0x1234, 77, restored_at, &rs).ok());
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
  ASSERT_TRUE(rocks->Get(Engine::kStateSeqKey, &v).ok());
  EXPECT_EQ(v, "77") << "the next deltas continue the gateway's copy";

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

// A first start killed after its outbox opened (its shard count written) but before anything
// was counted (during its bulk first start's scan) left an empty state: the next start is a
// first start again (a bulk start; a resume from the gateway). An outbox entry is not empty.
TEST(Resume, AStoreHoldingOnlyTheOutboxShardCountIsEmpty) {
  std::unique_ptr<KvStore> s = NewMemStore();
  std::unique_ptr<Outbox> outbox;
  ASSERT_TRUE(Outbox::Open(s.get(), OutboxOptions{}, 2, &outbox).ok());
  bool empty = false;
  ASSERT_TRUE(StoreIsEmpty(s.get(), &empty).ok());
  EXPECT_TRUE(empty);
  WriteBatch b;
  ASSERT_TRUE(outbox->Stage(0, 1000, 1, "an entry", &b).ok());
  ASSERT_TRUE(s->Write(b, true).ok());
  outbox->Committed();
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

// The real gateway side (MirrorStore + AgentStateHandler + DeviceRegistry on their own store)
// behind an HttpTransport: what the uploader sends is handled as the gateway handles it.
// The gateway's real state handler in process. `max_body_bytes` stands for the HTTP server's
// body limit (a 413 before the handler sees the request); `page_bytes` is the handler's GET page.
class InProcessGateway : public HttpTransport {
 public:
  explicit InProcessGateway(size_t max_body_bytes = SIZE_MAX, size_t page_bytes = size_t(4) << 20)
      : max_body_bytes_(max_body_bytes) {
    EXPECT_TRUE(gateway::DeviceRegistry::Open(kv_.get(), nullptr, &devices_).ok());
    EXPECT_TRUE(devices_->Add("laptop", &key_).ok());
    gateway::AgentStateHandlerOptions o;
    o.devices = devices_.get();
    o.page_bytes = page_bytes;
    mirror_ = std::make_unique<gateway::MirrorStore>(kv_.get(), gateway::MirrorOptions{});
    handler_ = std::make_unique<gateway::AgentStateHandler>(mirror_.get(), o);
  }
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++exchanges_;
    if (request.body.size() > max_body_bytes_) {
      response->status = 413;
      response->headers.clear();
      statuses_.push_back(413);
      seqs_.push_back("over the body limit");
      cv_.notify_all();
      return Status::Ok();
    }
    ServerRequest r;
    r.method = request.method;
    r.target = "/api/v1/agent/state";
    r.headers = request.headers;
    r.body = request.body;
    const ServerResponse a = handler_->Handle(r);
    response->status = a.status;
    response->body = a.body;
    response->headers = a.headers;
    statuses_.push_back(a.status);
    seqs_.push_back(HeaderOf(request, "X-Ccmon-State-Seq") +
                    (HeaderOf(request, "X-Ccmon-State-Full") == "1" ? " full" : ""));
    cv_.notify_all();
    return Status::Ok();
  }
  std::vector<HttpHeader> auth() const { return {{"Authorization", "Bearer " + key_}}; }
  // The device's mirror as a map, and its state sequence.
  std::map<std::string, std::string> Mirror(uint64_t* seq = nullptr) {
    std::map<std::string, std::string> out;
    gateway::MirrorMeta meta;
    const Status s = mirror_->Read(
        "laptop", &meta, [&](std::string_view k, std::string_view v) { out[std::string(k)] = v; });
    EXPECT_TRUE(s.ok()) << s.message();
    if (seq) *seq = meta.state_seq;
    return out;
  }
  bool WaitExchanges(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return statuses_.size() >= n; });
  }
  std::vector<std::string> seqs() {
    std::lock_guard<std::mutex> lock(mu_);
    return seqs_;
  }
  std::vector<unsigned> statuses() {
    std::lock_guard<std::mutex> lock(mu_);
    return statuses_;
  }

 private:
  static std::string HeaderOf(const HttpRequest& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  }
  size_t max_body_bytes_;
  size_t exchanges_ = 0;
  std::unique_ptr<KvStore> kv_ = NewMemStore();
  std::unique_ptr<gateway::DeviceRegistry> devices_;
  std::string key_;
  std::unique_ptr<gateway::MirrorStore> mirror_;
  std::unique_ptr<gateway::AgentStateHandler> handler_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<unsigned> statuses_;
  std::vector<std::string> seqs_;
};

// What the gateway should hold: the agent's keys but the outbox's, the deltas' and the local
// `m` keys the restore rewrites anyway... compared on the keys the restore keeps.
std::map<std::string, std::string> Mirrorable(KvStore* store) {
  std::map<std::string, std::string> out;
  auto it = store->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view k = it->key();
    if (k[0] == 'o' || k[0] == 'u') continue;
    out[std::string(k)] = it->value();
  }
  return out;
}

TEST(StateDeltas, EachCommitStagesItsBatchAtomicallyWithItsCursors) {
  std::unique_ptr<KvStore> mem = NewMemStore();
  testing_util::FaultStore fault(mem.get());
  std::unique_ptr<Outbox> outbox;
  ASSERT_TRUE(Outbox::Open(&fault, OutboxOptions{}, 1, &outbox).ok());
  EngineOptions o;
  o.live.device = "dev";
  o.live.prices = &PriceTable::Embedded();
  o.state_sequence = true;
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::Open(o, &fault, outbox.get(), &e).ok());
  e->set_stage_state_deltas(true);
  const auto files = MakeHistory(43, 6);
  LineParser parser;
  ParsedLine line;
  auto count = [&](size_t i, int64_t now) -> Status {
    for (const auto& l : files[i]) {
      parser.Parse(l, &line);
      if (Status s = e->AddLine(line); !s.ok()) return s;
    }
    return e->Commit({{"f" + std::to_string(i), "end"}}, now);
  };
  ASSERT_TRUE(count(0, kNow).ok());
  std::string v;
  ASSERT_TRUE(fault.Get(Engine::kStateSeqKey, &v).ok());
  EXPECT_EQ(v, "1");
  EXPECT_EQ(fault.Get(Engine::StateDeltaKey(1), &v).code(), Status::Code::kNotFound)
      << "no delta during the first catch-up (the snapshot after it covers it)";
  ASSERT_TRUE(e->MarkCaughtUp(kNow).ok());
  ASSERT_TRUE(count(1, kNow + 1).ok());
  EXPECT_EQ(e->state_seq(), 3u);
  // Delta 3 is exactly commit 3's batch without the outbox: replaying it over the state before
  // gives the state after.
  ASSERT_TRUE(fault.Get(Engine::StateDeltaKey(3), &v).ok());
  WriteBatch ops;
  ASSERT_TRUE(sm::DecodeStateBody(sm::CompressRecords(v), 1 << 30, &ops).ok());
  std::map<std::string, std::string> touched;
  bool cursor = false;
  for (const auto& op : ops.ops()) {
    EXPECT_NE(op.key[0], 'o');
    EXPECT_NE(op.key[0], 'u');
    if (op.key == "f1") cursor = true;
    if (op.type == WriteBatch::OpType::kPut) touched[op.key] = op.value;
  }
  EXPECT_TRUE(cursor) << "the file cursor travels in the delta";
  for (const auto& [k, val] : touched) {
    std::string now;
    ASSERT_TRUE(fault.Get(k, &now).ok()) << k;
    EXPECT_EQ(now, val) << k;
  }
  // A failed commit writes neither its cursor, nor its delta, nor its sequence.
  fault.FailNthWrite(1);
  EXPECT_FALSE(count(2, kNow + 2).ok());
  EXPECT_EQ(fault.Get("f2", &v).code(), Status::Code::kNotFound);
  EXPECT_EQ(fault.Get(Engine::StateDeltaKey(4), &v).code(), Status::Code::kNotFound);
  ASSERT_TRUE(fault.Get(Engine::kStateSeqKey, &v).ok());
  EXPECT_EQ(v, "3");
  // Reopened (as after a crash): the sequence continues from the store.
  e.reset();
  ASSERT_TRUE(Engine::Open(o, &fault, outbox.get(), &e).ok());
  EXPECT_EQ(e->state_seq(), 3u);
}

// The mirror through the real gateway side: deltas in order, a gap answered 409 and healed by a
// snapshot, retries acknowledged, the last upload at a stop; the gateway's copy equals the
// agent's state (without outbox and deltas) afterwards, and the sent deltas are deleted.
TEST(StateMirrorUploader, TheGatewaysCopyFollowsTheStateThroughDeltasGapsAndSnapshots) {
  TempDir dir;
  std::unique_ptr<KvStore> rocks;
  ASSERT_TRUE(OpenRocksStore(dir.path(), {}, &rocks).ok());
  State a(std::move(rocks));
  a.Reopen(kNever, /*state_sequence=*/true);
  a.engine->set_stage_state_deltas(true);
  InProcessGateway gw;
  UploaderOptions o;
  o.store = a.store.get();
  o.transport = &gw;
  o.state_url = "http://g/api/v1/agent/state";
  o.headers = gw.auth();
  o.interval = std::chrono::hours(1);  // Kick and Stop only
  o.gateway = 1;
  const auto files = MakeHistory(44, 10);
  for (size_t i = 0; i < 3; ++i) a.Count(files, i, kNow);
  ASSERT_TRUE(a.engine->MarkCaughtUp(kNow).ok());  // seq 4, the first delta
  // One uploader per phase, stopped (joined) before the state changes again, so that what
  // each one sends does not depend on timing.
  {
    StateMirrorUploader u(o);
    u.Start();
    // Delta 4 alone: the gateway has no copy -> 409 -> a snapshot at 4.
    ASSERT_TRUE(gw.WaitExchanges(2));
    u.Stop(false);
  }
  for (size_t i = 3; i < 6; ++i) a.Count(files, i, kNow + 1);  // deltas 5..7
  {
    StateMirrorUploader u(o);
    u.Start();
    ASSERT_TRUE(gw.WaitExchanges(3));
    u.Stop(false);
  }
  EXPECT_EQ(gw.seqs(), (std::vector<std::string>{"4-4", "4 full", "5-7"}));
  EXPECT_EQ(gw.statuses(), (std::vector<unsigned>{409, 204, 204}));
  uint64_t seq = 0;
  EXPECT_EQ(gw.Mirror(&seq), Mirrorable(a.store.get()));
  EXPECT_EQ(seq, 7u);
  // Deltas not staged for a while (the target's kind unknown): a gap, healed by a snapshot.
  a.engine->set_stage_state_deltas(false);
  a.Count(files, 6, kNow + 2);  // seq 8, no delta
  a.engine->set_stage_state_deltas(true);
  a.Count(files, 7, kNow + 3);  // delta 9
  a.Count(files, 8, kNow + 4);  // delta 10: the last upload at a stop carries them
  StateMirrorUploader u(o);
  u.Start();
  u.Stop(/*final_upload=*/true);  // whatever the thread did before the stop, the last upload
                                  // leaves the gateway's copy equal to the state
  const std::vector<std::string> seqs = gw.seqs();
  ASSERT_EQ(seqs.size(), 5u);
  EXPECT_EQ(seqs[3], "9-10");
  EXPECT_EQ(seqs[4], "10 full") << "the gap (8 was not staged) healed by a snapshot";
  EXPECT_EQ(gw.Mirror(&seq), Mirrorable(a.store.get()));
  EXPECT_EQ(seq, 10u);
  auto it = a.store->NewIterator();
  it->Seek("u");
  EXPECT_FALSE(it->Valid() && it->key()[0] == 'u') << "acknowledged deltas are deleted";
  const UploaderStats st = u.stats();
  EXPECT_EQ(st.snapshot_uploads, 1u);
  EXPECT_EQ(st.gaps, 1u);

  // The state is lost: the mirror restores it, and after a restored catch-up the deltas
  // continue the same copy.
  std::unique_ptr<KvStore> fresh = NewMemStore();
  Probe p;
  ProbeGateway(&gw, o.state_url, gw.auth(), &p);
  ASSERT_EQ(p.outcome, ProbeOutcome::kMirror) << p.detail;
  EXPECT_EQ(p.state_seq, 10u);
  RestoreStats rs;
  ASSERT_TRUE(RestoreState(fresh.get(), p.mirror, p.epoch, p.state_seq, kNow + 10, &rs).ok());
  State b(std::move(fresh));
  b.Reopen(kNow + 10, true);
  EXPECT_EQ(b.engine->state_seq(), 10u);
  EXPECT_EQ(b.engine->Exposition(false, false), a.engine->Exposition(false, false));
}

TEST(StateMirrorUploader, RetriedDeltasAreDuplicatesAndTheBacklogIsBounded) {
  State a(NewMemStore());
  a.Reopen(kNever, true);
  a.engine->set_stage_state_deltas(true);
  InProcessGateway gw;
  const auto files = MakeHistory(45, 8);
  a.Count(files, 0, kNow);
  ASSERT_TRUE(a.engine->MarkCaughtUp(kNow).ok());
  UploaderOptions o;
  o.store = a.store.get();
  o.transport = &gw;
  o.state_url = "u";
  o.headers = gw.auth();
  o.interval = std::chrono::hours(1);
  o.gateway = 1;
  {
    StateMirrorUploader u(o);
    u.Stop(false);  // never started: nothing sent
  }
  EXPECT_TRUE(gw.seqs().empty());
  {
    StateMirrorUploader u(o);
    u.Start();
    ASSERT_TRUE(gw.WaitExchanges(2));  // 409, snapshot at 2
    u.Stop(false);
  }
  // The agent crashed before deleting the deltas it sent: they come back (re-staged here).
  WriteBatch again;
  again.Put(Engine::StateDeltaKey(2), "");
  ASSERT_TRUE(a.store->Write(again, true).ok());
  {
    StateMirrorUploader u(o);
    u.Start();
    ASSERT_TRUE(gw.WaitExchanges(3));
    u.Stop(false);
  }
  EXPECT_EQ(gw.seqs().back(), "2-2");
  EXPECT_EQ(gw.statuses().back(), 204u) << "a delta the gateway holds: acknowledged";
  // A backlog over its bound is dropped for a snapshot.
  for (size_t i = 1; i < 5; ++i) a.Count(files, i, kNow + 1);
  o.max_backlog_bytes = 1;
  std::vector<std::string> warnings;
  o.log = [&](std::string_view level, std::string_view msg, std::string_view) {
    if (level == "warn") warnings.emplace_back(msg);
  };
  {
    StateMirrorUploader u(o);
    u.Start();
    ASSERT_TRUE(gw.WaitExchanges(4));
    u.Stop(false);
  }
  EXPECT_EQ(gw.seqs().back(), std::to_string(a.engine->state_seq()) + " full");
  EXPECT_EQ(gw.Mirror(), Mirrorable(a.store.get()));
  ASSERT_FALSE(warnings.empty());
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
  u.Start();
  ASSERT_TRUE(t.WaitRequests(1));
  u.Stop(true);
  EXPECT_EQ(t.requests().size(), 1u) << "no upload to a plain receiver";
  EXPECT_EQ(u.gateway(), 0);
  std::string v;
  ASSERT_TRUE(store->Get(kGatewayKey, &v).ok());
  EXPECT_EQ(v, "0");
}

TEST(StateMirrorUploader, ARefusedSnapshotIsLoggedAndNotRetriedAtOnce) {
  std::unique_ptr<KvStore> store = NewMemStore();
  WriteBatch b;
  b.Put("cX", std::string(100, 'x'));
  b.Put(Engine::StateDeltaKey(5), "");
  ASSERT_TRUE(store->Write(b, true).ok());
  ScriptedTransport t;
  t.Answer(409);                                           // the delta
  t.Answer(413, "", {{"X-Ccmon-State-Limit", "device"}});  // the snapshot: the device's limit
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
  u.Start();
  ASSERT_TRUE(t.WaitRequests(2));
  u.Kick();
  u.Stop(true);
  EXPECT_EQ(t.requests().size(), 2u) << "the refused snapshot waits before it is tried again";
  EXPECT_EQ(u.stats().refused, 1u);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("per-device limit"), std::string::npos) << warnings[0];
}

// An uploader of `store` to an in-process gateway that sends only at Kick and Stop, whose log
// lines ("LEVEL message") go to `lines` (guarded by `mu`).
UploaderOptions UploaderTo(KvStore* store, InProcessGateway* gw, std::mutex* mu,
                           std::vector<std::string>* lines) {
  UploaderOptions o;
  o.store = store;
  o.transport = gw;
  o.state_url = "u";
  o.headers = gw->auth();
  o.interval = std::chrono::hours(1);
  o.gateway = 1;
  o.log = [mu, lines](std::string_view level, std::string_view msg, std::string_view) {
    std::lock_guard<std::mutex> lock(*mu);
    lines->push_back(std::string(level) + " " + std::string(msg));
  };
  return o;
}

// The pages of a mirror: followed by their next keys; a mirror that changed between two pages
// is read again from the start; a next key that does not move forward is not followed.
TEST(ProbeGateway, FollowsPagesAndStartsAgainWhenTheMirrorChanged) {
  auto page = [](std::map<std::string, std::string> records) {
    sm::StateRecordWriter w;
    for (const auto& [k, v] : records) w.Put(k, v);
    return w.Finish();
  };
  auto headers = [](std::string seq, std::string next) {
    std::vector<HttpHeader> h = {{"X-Ccmon-Stream", "00000000000000ff"},
                                 {"X-Ccmon-State-Seq", seq}};
    if (!next.empty()) h.emplace_back("X-Ccmon-State-Next", sm::FormatKeyHex(next));
    return h;
  };
  ScriptedTransport t;
  t.Answer(200, page({{"a", "1"}}), headers("9", "a"));
  t.Answer(200, page({{"b", "2"}}), headers("10", ""));  // changed meanwhile
  t.Answer(200, page({{"a", "3"}}), headers("10", "a"));
  t.Answer(200, page({{"b", "4"}}), headers("10", ""));
  Probe p;
  ProbeGateway(&t, "u", {}, &p);
  ASSERT_EQ(p.outcome, ProbeOutcome::kMirror) << p.detail;
  EXPECT_EQ(p.state_seq, 10u);
  ASSERT_EQ(p.mirror.count(), 2u);
  EXPECT_EQ(p.mirror.ops()[0].value, "3");
  EXPECT_EQ(p.mirror.ops()[1].value, "4");
  const std::vector<HttpRequest> reqs = t.requests();
  auto after = [](const HttpRequest& r) {
    for (const auto& [k, v] : r.headers)
      if (k == "X-Ccmon-State-After") return v;
    return std::string();
  };
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(after(reqs[0]), "");
  EXPECT_EQ(after(reqs[1]), sm::FormatKeyHex("a"));
  EXPECT_EQ(after(reqs[2]), "") << "from the start again";
  // A next key that does not move forward, and a mirror gone between pages: kRetry.
  t.Answer(200, page({{"b", "1"}}), headers("9", "b"));
  t.Answer(200, page({{"b", "1"}}), headers("9", "b"));
  ProbeGateway(&t, "u", {}, &p);
  EXPECT_EQ(p.outcome, ProbeOutcome::kRetry);
  t.Answer(200, page({{"a", "1"}}), headers("9", "a"));
  t.Answer(204);
  ProbeGateway(&t, "u", {}, &p);
  EXPECT_EQ(p.outcome, ProbeOutcome::kRetry) << p.detail;
}

// A state bigger than a part goes in parts, with parts made smaller when the gateway's body
// limit refuses one, and comes back whole through the GET's pages.
TEST(StateMirrorUploader, ABigStateGoesInPartsAndComesBackInPages) {
  std::unique_ptr<KvStore> store = NewMemStore();
  {
    WriteBatch b;
    std::mt19937_64 rng(7);
    for (int i = 0; i < 3000; ++i) {
      std::string v(120, ' ');
      for (char& c : v) c = char('a' + rng() % 26);  // compresses only so far
      b.Put("c" + std::to_string(100000 + i), v);
    }
    b.Put(Engine::kStateSeqKey, "42");
    b.Put(Engine::StateDeltaKey(43), "");  // a staged delta: 409 (no copy yet), then a snapshot
    b.Put("o\x01xxxxxxxx", "an outbox entry: never mirrored");
    ASSERT_TRUE(store->Write(b, true).ok());
  }
  // Parts of 256 KiB uncompressed compress to ~160 KB: over the 120 KB body limit; parts of
  // 64 KiB pass.
  InProcessGateway gw(/*max_body_bytes=*/120'000, /*page_bytes=*/50'000);
  std::vector<std::string> infos;
  std::mutex mu;
  UploaderOptions o = UploaderTo(store.get(), &gw, &mu, &infos);
  o.max_upload_bytes = size_t(256) << 10;
  StateMirrorUploader u(o);
  u.Start();
  u.Stop(/*final_upload=*/true);
  uint64_t seq = 0;
  std::map<std::string, std::string> want = Mirrorable(store.get());
  EXPECT_EQ(gw.Mirror(&seq), want);
  EXPECT_EQ(seq, 43u) << "the snapshot at 42, then the staged delta 43";
  const UploaderStats st = u.stats();
  EXPECT_EQ(st.snapshot_uploads, 1u);
  EXPECT_GE(st.snapshot_parts, 5u) << "3000 records of ~130 bytes in parts of 64 KiB";
  EXPECT_EQ(st.refused, 0u);
  const std::vector<unsigned> statuses = gw.statuses();
  ASSERT_GE(statuses.size(), 2u);
  EXPECT_EQ(statuses[0], 409u) << "the delta: no copy yet";
  EXPECT_EQ(statuses[1], 413u) << "the first part, 256 KiB, was over the body limit";
  {
    std::lock_guard<std::mutex> lock(mu);
    bool smaller = false;
    for (const auto& line : infos) smaller |= line.find("smaller parts") != std::string::npos;
    EXPECT_TRUE(smaller);
  }
  // Fetched back in pages of ~50 KB: the whole mirror, once.
  Probe p;
  ProbeGateway(&gw, "u", gw.auth(), &p);
  ASSERT_EQ(p.outcome, ProbeOutcome::kMirror) << p.detail;
  EXPECT_EQ(p.state_seq, 43u);
  std::map<std::string, std::string> got;
  for (const auto& op : p.mirror.ops()) {
    EXPECT_TRUE(got.emplace(op.key, op.value).second) << "twice: " << op.key;
  }
  EXPECT_EQ(got, want);
}

// The last upload at a stop starts no request after its budget (the agent must stop within
// seconds); what is left goes at the next start.
TEST(StateMirrorUploader, TheFinalUploadKeepsToItsBudget) {
  for (bool in_budget : {false, true}) {
    std::unique_ptr<KvStore> store = NewMemStore();
    WriteBatch b;
    b.Put("cX", "1");
    b.Put(Engine::kStateSeqKey, "5");
    b.Put(Engine::StateDeltaKey(5), "");
    ASSERT_TRUE(store->Write(b, true).ok());
    InProcessGateway gw;
    std::vector<std::string> lines;
    std::mutex mu;
    UploaderOptions o = UploaderTo(store.get(), &gw, &mu, &lines);
    if (!in_budget) o.final_upload_budget = std::chrono::milliseconds(-1);  // already over
    StateMirrorUploader u(o);  // not started: only the final upload sends
    u.Stop(/*final_upload=*/true);
    // In budget: delta 5 -> 409 (no copy yet) -> a snapshot at 5. Over it: nothing.
    EXPECT_EQ(gw.statuses(),
              in_budget ? (std::vector<unsigned>{409, 204}) : std::vector<unsigned>{});
  }
}

// A 413 that is not the device's limit, with parts already at their smallest: refused, said
// so, and not retried at once.
TEST(StateMirrorUploader, ABodyLimitBelowTheSmallestPartIsRefused) {
  std::unique_ptr<KvStore> store = NewMemStore();
  WriteBatch b;
  b.Put("cX", std::string(100, 'x'));
  b.Put(Engine::StateDeltaKey(5), "");
  ASSERT_TRUE(store->Write(b, true).ok());
  InProcessGateway gw(/*max_body_bytes=*/30);
  std::vector<std::string> lines;
  std::mutex mu;
  UploaderOptions o = UploaderTo(store.get(), &gw, &mu, &lines);
  o.max_upload_bytes = kMinSnapshotPartBytes;
  StateMirrorUploader u(o);
  u.Start();
  u.Stop(true);
  EXPECT_EQ(u.stats().refused, 1u);
  EXPECT_EQ(gw.statuses(), (std::vector<unsigned>{409, 413})) << "one try, then the wait";
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::string> warnings;
  for (const auto& line : lines)
    if (line.starts_with("warn ")) warnings.push_back(line);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("body limit"), std::string::npos) << warnings[0];
}

}  // namespace
}  // namespace ccmon::agent
