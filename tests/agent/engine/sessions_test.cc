// The agent's session series (docs/accounting.md A41): claude_active_sessions{device} rises
// and falls back to 0 by itself through the resend commits, and
// claude_session_duration_seconds{device} observes every session exactly once — at the end of
// the first catch-up for the history, 30 minutes after its last line afterwards — across
// reopens (in-memory and RocksDB stores) and failed commits, with little held in memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "agent/engine/engine.h"
#include "base/record_codec.h"
#include "engine_test_util.h"
#include "remote_write/write_request.h"
#include "store/mem_store.h"
#include "store/outbox.h"
#include "store/rocks_store.h"
#include "testing/fault_store.h"
#include "testing/temp_dir.h"

namespace ccmon::agent {
namespace {

using namespace ccmon::agent::testing;
using ccmon::testing_util::FaultStore;
using ccmon::testing_util::TempDir;

constexpr int64_t kMin = 60000;
constexpr int64_t kHistoryStart = 1767225600000;  // MakeHistory's first timestamp
constexpr int64_t kNow = kHistoryStart + 400LL * 86400000;

std::string Prompt(const std::string& session, int64_t ts, const std::string& uuid) {
  return json{{"type", "user"},
              {"sessionId", session},
              {"cwd", "/w/p"},
              {"timestamp", Ts(ts)},
              {"uuid", uuid},
              {"isSidechain", false},
              {"message", {{"role", "user"}, {"content", "go on"}}}}
      .dump();
}

std::string Request(const std::string& session, int64_t ts, const std::string& id) {
  return Assistant(session, "/w/p", ts, id, "claude-opus-4-6", 10, 0, false, {}, 0).dump();
}

struct Histogram {
  uint64_t count = 0;
  PicoSum sum = 0;
  std::vector<uint64_t> buckets;
  bool operator==(const Histogram&) const = default;
};

// What A41 says the histogram holds for `files` once every session is closed: per sessionId,
// the span of its request lines (not <synthetic>) and prompt lines, for those with a request.
Histogram ExpectedDurations(const std::vector<std::vector<std::string>>& files) {
  struct Span {
    int64_t first = INT64_MAX, last = INT64_MIN;
    bool request = false;
  };
  std::map<std::string, Span> spans;
  LineParser parser;
  ParsedLine line;
  for (const auto& f : files) {
    for (const auto& l : f) {
      parser.Parse(l, &line);
      const bool request = line.kind == LineKind::kUsage && !line.IsSynthetic();
      if (!request && line.kind != LineKind::kPrompt) continue;
      Span& s = spans[std::string(line.session_id)];
      s.first = std::min(s.first, line.timestamp_ms);
      s.last = std::max(s.last, line.timestamp_ms);
      s.request |= request;
    }
  }
  Histogram h;
  const auto& bounds = SessionDurationBuckets();
  h.buckets.assign(bounds.size(), 0);
  for (const auto& [id, s] : spans) {
    if (!s.request) continue;
    const int64_t seconds = (s.last - s.first) / 1000;
    ++h.count;
    h.sum += seconds;
    for (size_t b = 0; b < bounds.size(); ++b)
      if (seconds <= bounds[b]) ++h.buckets[b];
  }
  return h;
}

size_t SessionsWithRequests(const std::vector<std::vector<std::string>>& files) {
  std::set<std::string> ids;
  LineParser parser;
  ParsedLine line;
  for (const auto& f : files)
    for (const auto& l : f) {
      parser.Parse(l, &line);
      if (line.kind == LineKind::kUsage && !line.IsSynthetic())
        ids.insert(std::string(line.session_id));
    }
  return ids.size();
}

struct Harness {
  TempDir tmp;
  std::unique_ptr<KvStore> base;
  std::unique_ptr<FaultStore> store;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<Engine> engine;
  EngineOptions options;
  bool rocks = false;

  explicit Harness(bool use_rocks = false) : rocks(use_rocks) {
    options.live.device = "dev";
    options.live.prices = &PriceTable::Embedded();
    options.shards = 2;
    options.sync = false;
    OpenStore();
    Reopen();
  }
  void OpenStore() {
    store.reset();
    base.reset();
    if (rocks) {
      Status s = OpenRocksStore(tmp / "db", RocksStoreOptions(), &base);
      ASSERT_TRUE(s.ok()) << s.message();
    } else {
      base = NewMemStore();
    }
    store = std::make_unique<FaultStore>(base.get());
  }
  // A restart: a new engine (and, for RocksDB, the database closed and opened again).
  void Reopen() {
    engine.reset();
    outbox.reset();
    if (rocks) OpenStore();
    Status s = Outbox::Open(store.get(), OutboxOptions{}, int(options.shards), &outbox);
    ASSERT_TRUE(s.ok()) << s.message();
    s = Engine::Open(options, store.get(), outbox.get(), &engine);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void Add(const std::string& l) {
    parser.Parse(l, &line);
    Status s = engine->AddLine(line);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void Commit(int64_t now_ms) {
    Status s = engine->Commit({}, now_ms);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  Histogram Durations() const {
    Histogram h;
    for (const auto& [key, s] : engine->series().series()) {
      if (s.family != MetricFamily::kSessionDuration) continue;
      h.count = s.count;
      h.sum = s.value;
      h.buckets = s.buckets;
    }
    return h;
  }
  int64_t Active() const {
    return int64_t(engine->series().Value(MetricFamily::kActiveSessions, {"dev"}));
  }
  // The samples in the outbox (removed) of one series name: (timestamp, value) in order.
  std::vector<std::pair<int64_t, double>> Drain(const std::string& name) {
    std::vector<std::pair<int64_t, double>> out;
    for (uint32_t shard = 0; shard < options.shards; ++shard) {
      for (;;) {
        OutboxBatch b;
        EXPECT_TRUE(outbox->Peek(shard, 1, 1 << 30, &b).ok());
        if (b.empty()) break;
        std::string body;
        rw::Compress(b.payload, &body);
        rw::WriteRequest req;
        EXPECT_TRUE(rw::Decode(body, 1 << 30, &req).ok());
        for (const auto& series : req.series)
          for (const auto& [n, v] : series.labels)
            if (n == "__name__" && v == name)
              for (const auto& sample : series.samples)
                out.emplace_back(sample.timestamp_ms, sample.value);
        EXPECT_TRUE(outbox->Remove(shard, b.last_seq).ok());
      }
    }
    return out;
  }

  LineParser parser;
  ParsedLine line;
};

Histogram EmptyHistogram() {
  Histogram h;
  h.buckets.assign(SessionDurationBuckets().size(), 0);
  return h;
}

// A history with a few sessions still going at `now`: MakeHistory's (long over) plus `recent`
// sessions whose last request is `age` before now.
std::vector<std::vector<std::string>> HistoryAndRecent(uint32_t seed, int sessions, int recent,
                                                       int64_t now, int64_t age) {
  auto files = MakeHistory(seed, sessions);
  for (int r = 0; r < recent; ++r) {
    const std::string s = "recent-" + std::to_string(seed) + "-" + std::to_string(r);
    const int64_t last = now - age - r * 1000;
    files.push_back({Prompt(s, last - 20 * kMin, s + "-u1"), Request(s, last - 19 * kMin, s + "a"),
                     Request(s, last, s + "b")});
  }
  return files;
}

TEST(Sessions, A41_ActiveSessionsRiseAndFallToZeroByThemselvesThroughResendCommits) {
  Harness h;
  h.options.resend_interval_ms = 15000;
  h.Reopen();
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  EXPECT_EQ(h.Drain("claude_active_sessions"),
            (std::vector<std::pair<int64_t, double>>{{kNow, 0}}));
  // Three sessions with a request, one with only a prompt (not a session, A32): 3 active.
  h.Add(Request("s1", kNow + 1000, "m1"));
  h.Add(Request("s2", kNow + kMin, "m2"));
  h.Add(Request("s3", kNow + kMin + 1000, "m3"));
  h.Add(Prompt("s4", kNow + kMin, "u4"));
  h.Commit(kNow + kMin + 2000);
  EXPECT_EQ(h.Active(), 3);
  // s3 again later: it stays active longer.
  h.Add(Request("s3", kNow + 2 * kMin, "m4"));
  h.Commit(kNow + 2 * kMin + 1000);
  // Then no input at all: only the commits the agent makes at the resend interval.
  std::vector<std::pair<int64_t, double>> samples = h.Drain("claude_active_sessions");
  for (int64_t t = kNow + 2 * kMin + 15000; t <= kNow + 10 * kMin; t += 15000) {
    h.Commit(t);
    auto more = h.Drain("claude_active_sessions");
    samples.insert(samples.end(), more.begin(), more.end());
  }
  EXPECT_EQ(h.Active(), 0);
  ASSERT_FALSE(samples.empty());
  for (size_t i = 1; i < samples.size(); ++i) EXPECT_GT(samples[i].first, samples[i - 1].first);
  // 3 at the first commit, 2 once s1 and s2 are 5 minutes old, 0 five minutes after s3's last.
  auto value_at = [&](int64_t t) {
    double v = -1;
    for (const auto& [ts, value] : samples)
      if (ts <= t) v = value;
    return v;
  };
  EXPECT_EQ(value_at(kNow + kMin + 2000), 3);
  EXPECT_EQ(value_at(kNow + 5 * kMin + 30000), 2);  // s1: 5 minutes after its request
  EXPECT_EQ(value_at(kNow + 6 * kMin + 30000), 1);  // s2 too
  EXPECT_EQ(value_at(kNow + 7 * kMin), 0);          // s3: 5 minutes after its last request
  EXPECT_EQ(samples.back().second, 0);
  // Changes are sent when they happen (resends aside): the fall to 2 within the interval.
  bool fell_to_two = false;
  for (const auto& [ts, value] : samples)
    if (value == 2 && ts > kNow + 5 * kMin && ts <= kNow + 5 * kMin + 15000) fell_to_two = true;
  EXPECT_TRUE(fell_to_two);
  EXPECT_EQ(h.engine->live_stats().conflicts, 0u);  // a falling gauge is no conflict
}

TEST(Sessions, A41_ActiveCountsTheNewestRequestClampedToNowNotPrompts) {
  Harness h;
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  // A request an hour in the future (a clock ahead of ours) counts as now: active for 5 minutes.
  h.Add(Request("ahead", kNow + 3600000, "m1"));
  // A session whose newest request is 6 minutes old, with a prompt just now: not active.
  h.Add(Request("quiet", kNow - 6 * kMin, "m2"));
  h.Add(Prompt("quiet", kNow - 1000, "u2"));
  h.Commit(kNow);
  EXPECT_EQ(h.Active(), 1);
  h.Commit(kNow + 5 * kMin - 1);
  EXPECT_EQ(h.Active(), 1);
  h.Commit(kNow + 5 * kMin);
  EXPECT_EQ(h.Active(), 0);
}

TEST(Sessions, A41_ADurationIsObservedOnceThirtyMinutesAfterTheSessionsLastLine) {
  Harness h;
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  h.Drain("x");
  // Prompt at 0, requests until 10 min: a 600 s session.
  h.Add(Prompt("s1", kNow, "u1"));
  h.Add(Request("s1", kNow + 5000, "m1"));
  h.Add(Request("s1", kNow + 10 * kMin, "m2"));
  h.Commit(kNow + 10 * kMin + 100);
  h.Commit(kNow + 40 * kMin - 1);  // idle 29:59.999
  EXPECT_EQ(h.Durations(), EmptyHistogram());
  h.Commit(kNow + 40 * kMin);
  Histogram want = EmptyHistogram();
  want.count = 1;
  want.sum = 600;
  for (size_t b = 0; b < want.buckets.size(); ++b) want.buckets[b] = b >= 2 ? 1 : 0;  // le=600
  EXPECT_EQ(h.Durations(), want);
  EXPECT_EQ(h.engine->live_stats().sessions_in_memory, 0u);
  // Its samples: stamped when the session became idle; count then 1.
  const auto counts = h.Drain("claude_session_duration_seconds_count");
  ASSERT_FALSE(counts.empty());
  EXPECT_EQ(counts.back(), (std::pair<int64_t, double>{kNow + 40 * kMin, 1}));
  h.Commit(kNow + 100 * kMin);
  EXPECT_EQ(h.Durations(), want);
}

TEST(Sessions, A41_ASessionThatComesBackIsActiveAgainButNotObservedAgain) {
  Harness h;
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  h.Add(Request("s1", kNow, "m1"));
  h.Add(Request("s1", kNow + 2 * kMin, "m2"));
  h.Commit(kNow + 2 * kMin);
  h.Commit(kNow + 33 * kMin);
  ASSERT_EQ(h.Durations().count, 1u);
  ASSERT_EQ(h.Durations().sum, 120);
  // An hour later the same session has lines again (a prompt, then a request).
  h.Add(Prompt("s1", kNow + 90 * kMin, "u9"));
  h.Add(Request("s1", kNow + 91 * kMin, "m3"));
  h.Commit(kNow + 91 * kMin);
  EXPECT_EQ(h.Active(), 1);
  EXPECT_EQ(h.engine->live_stats().sessions_reopened, 1u);
  // A restart in between does not forget that it was observed.
  h.Reopen();
  h.Commit(kNow + 92 * kMin);
  EXPECT_EQ(h.Active(), 1);
  h.Commit(kNow + 200 * kMin);
  EXPECT_EQ(h.Active(), 0);
  EXPECT_EQ(h.Durations().count, 1u);
  EXPECT_EQ(h.Durations().sum, 120);
  EXPECT_EQ(h.engine->live_stats().sessions_in_memory, 0u);
  // And once more, lines of it read in the same commit as its close: still once.
  h.Add(Request("s1", kNow + 300 * kMin, "m4"));
  h.Commit(kNow + 400 * kMin);
  h.Commit(kNow + 401 * kMin);
  EXPECT_EQ(h.Durations().count, 1u);
}

TEST(Sessions, A41_APromptOnlySessionIsNoSessionAndIsNeverObserved) {
  Harness h;
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  h.Add(Prompt("p1", kNow, "u1"));
  h.Add(Prompt("p1", kNow + kMin, "u2"));
  h.Commit(kNow + kMin);
  EXPECT_EQ(h.Active(), 0);
  h.Commit(kNow + 60 * kMin);
  EXPECT_EQ(h.Durations(), EmptyHistogram());
  EXPECT_EQ(h.engine->live_stats().sessions_in_memory, 0u);
  // A prompt followed by its request: the prompt starts the session.
  h.Add(Prompt("p2", kNow + 100 * kMin, "u3"));
  h.Commit(kNow + 100 * kMin);
  h.Add(Request("p2", kNow + 101 * kMin, "m1"));
  h.Commit(kNow + 101 * kMin);
  h.Commit(kNow + 200 * kMin);
  EXPECT_EQ(h.Durations().count, 1u);
  EXPECT_EQ(h.Durations().sum, 60);
}

TEST(Sessions, A41_TheCatchUpsEndObservesTheWholeHistoryAtOnceWithLittleInMemory) {
  const int64_t now = kNow;
  // 300 sessions over a year ago, 5 recent ones (10 min old: still open).
  const auto files = HistoryAndRecent(41, 300, 5, now, 10 * kMin);
  Harness h;
  h.options.live.cache_records = 64;
  h.Reopen();
  size_t lines = 0;
  for (const auto& f : files) {
    for (const auto& l : f) {
      h.Add(l);
      if (++lines % 50 == 0) h.Commit(now);  // the catch-up's steps
    }
  }
  h.Commit(now);
  // During the catch-up: nothing observed, nothing queued, only recent sessions kept in memory.
  EXPECT_EQ(h.Durations(), EmptyHistogram());
  EXPECT_EQ(h.outbox->Stats().total.entries, 0u);
  EXPECT_LE(h.engine->live_stats().max_sessions_in_memory, 20u);
  ASSERT_TRUE(h.engine->MarkCaughtUp(now).ok());
  // Every old session at once (the recent ones are still open), in the first samples.
  const size_t old_sessions = SessionsWithRequests(files) - 5;
  EXPECT_EQ(h.Durations().count, old_sessions);
  EXPECT_EQ(h.engine->live_stats().sessions_in_memory, 5u);
  EXPECT_EQ(h.Active(), 0);
  const auto counts = h.Drain("claude_session_duration_seconds_count");
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0], (std::pair<int64_t, double>{now, double(old_sessions)}));
  // 20 minutes later the recent ones are idle too: the histogram then holds every session.
  h.Commit(now + 21 * kMin);
  h.Commit(now + 22 * kMin + 1);
  EXPECT_EQ(h.Durations(), ExpectedDurations(files));
  EXPECT_EQ(h.engine->live_stats().sessions_in_memory, 0u);
}

TEST(Sessions, A41_FilesInAnyOrderAndRestartsDuringTheCatchUpGiveTheSameDurations) {
  auto files = HistoryAndRecent(42, 60, 3, kNow, 40 * kMin);
  const Histogram want = ExpectedDurations(files);
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    std::shuffle(files.begin(), files.end(), rng);
    Harness h;
    h.options.live.cache_records = 8;
    h.Reopen();
    for (size_t i = 0; i < files.size(); ++i) {
      for (const auto& l : files[i]) h.Add(l);
      h.Commit(kNow);
      if (rng() % 4 == 0) h.Reopen();  // committed: nothing read again
    }
    ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
    EXPECT_EQ(h.Durations(), want);
    h.Reopen();
    h.Commit(kNow + 100 * kMin);
    EXPECT_EQ(h.Durations(), want);
  }
}

// Live input in time order with commits, reopens and failed commits (some of which land) at
// random points, time running so that sessions close all along: every session observed once.
void RunLiveWithFaults(bool rocks, uint32_t seed) {
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  // Sessions interleaved in time: each line (time, text), sorted.
  std::vector<std::pair<int64_t, std::string>> timeline;
  std::vector<std::vector<std::string>> files;
  for (int s = 0; s < 40; ++s) {
    const std::string id = "live-" + std::to_string(seed) + "-" + std::to_string(s);
    int64_t t = kNow + int64_t(rng() % 240) * kMin;
    std::vector<std::string> file;
    const int n = 1 + int(rng() % 6);
    for (int i = 0; i < n; ++i) {
      t += int64_t(rng() % 8) * kMin + 1234;
      std::string l = i % 2 ? Request(id, t, id + "-" + std::to_string(i))
                            : Prompt(id, t, id + "-u" + std::to_string(i));
      if (i == n - 1) l = Request(id, t, id + "-last");
      timeline.emplace_back(t, l);
      file.push_back(l);
    }
    files.push_back(file);
  }
  std::stable_sort(timeline.begin(), timeline.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  const Histogram want = ExpectedDurations(files);

  Harness h(rocks);
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  size_t cursor = 0;  // lines committed
  int failures = 0;
  int64_t now = kNow;  // the wall clock: never backwards, a little after the newest line read
  std::vector<std::pair<int64_t, double>> counts;
  while (cursor < timeline.size()) {
    const size_t to = std::min(timeline.size(), cursor + 1 + rng() % 5);
    for (size_t i = cursor; i < to; ++i) h.Add(timeline[i].second);
    now = std::max(now, timeline[to - 1].first) + int64_t(rng() % 30000);
    if (rng() % 4 == 0) {
      h.store->set_keep_failed_writes(true);
      h.store->FailNthWrite(1);
    }
    const int failed_before = h.store->failed_writes();
    Status s = h.engine->Commit({{"fcursor", std::to_string(to)}}, now);
    const bool fired = h.store->failed_writes() > failed_before;
    h.store->ClearFaults();
    ASSERT_EQ(!s.ok(), fired);
    if (!s.ok()) {
      ++failures;
      if (rng() % 2)
        h.store->LandFailedWrites();
      else
        h.store->DropFailedWrites();
      h.Reopen();  // the engine is ahead of the store: start over from its cursor
      std::string v;
      cursor = h.store->Get("fcursor", &v).ok() ? size_t(std::stoull(v)) : 0;
      continue;
    }
    cursor = to;
    auto c = h.Drain("claude_session_duration_seconds_count");
    counts.insert(counts.end(), c.begin(), c.end());
    if (rng() % 6 == 0) h.Reopen();
  }
  h.Commit(timeline.back().first + 31 * kMin);
  h.Commit(timeline.back().first + 32 * kMin);
  auto c = h.Drain("claude_session_duration_seconds_count");
  counts.insert(counts.end(), c.begin(), c.end());
  EXPECT_GT(failures, 2);
  EXPECT_EQ(h.Durations(), want);
  EXPECT_EQ(h.engine->live_stats().sessions_in_memory, 0u);
  // The count's samples: never lower than the one before (a failed commit's samples were
  // never sent, or sent with the same values), strictly ascending in time, ending at the total.
  ASSERT_FALSE(counts.empty());
  for (size_t i = 1; i < counts.size(); ++i) EXPECT_LE(counts[i - 1].second, counts[i].second);
  EXPECT_EQ(counts.back().second, double(want.count));
}

TEST(Sessions, A41_EachSessionOnceThroughFailedCommitsAndReopensInMemory) {
  for (uint32_t seed : {51u, 52u, 53u}) RunLiveWithFaults(false, seed);
}

TEST(Sessions, A41_EachSessionOnceThroughFailedCommitsAndReopensOnRocksDb) {
  RunLiveWithFaults(true, 54u);
}

TEST(Sessions, A41_AFailedCatchUpEndObservesNothingAndTheRetryObservesEverything) {
  const auto files = HistoryAndRecent(43, 40, 0, kNow, 0);
  Harness h;
  for (const auto& f : files) {
    for (const auto& l : f) h.Add(l);
    h.Commit(kNow);
  }
  h.store->FailNthWrite(1);
  ASSERT_FALSE(h.engine->MarkCaughtUp(kNow).ok());
  h.store->ClearFaults();
  h.Reopen();
  EXPECT_FALSE(h.engine->caught_up());
  EXPECT_EQ(h.Durations(), EmptyHistogram());
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow + 1000).ok());
  EXPECT_EQ(h.Durations(), ExpectedDurations(files));
  h.Reopen();
  h.Commit(kNow + 100 * kMin);
  EXPECT_EQ(h.Durations(), ExpectedDurations(files));
}

TEST(Sessions, A41_AFutureLineClosesItsSession30MinutesAfterItWasRead) {
  Harness h;
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  h.Add(Request("f", kNow - 10 * kMin, "m1"));
  h.Add(Request("f", kNow + 365LL * 86400000, "m2"));  // a year ahead
  h.Commit(kNow);
  h.Commit(kNow + 31 * kMin);
  EXPECT_EQ(h.Durations().count, 1u);
  EXPECT_EQ(h.Durations().sum, 600);  // clamped to the read time
}

TEST(Sessions, A41_ABacklogReadOverSeveralCommitsDoesNotCloseASessionEarly) {
  // After a restart with a backlog: a session open at the stop, idle by its known lines, whose
  // later lines are read a few commits (less than settle_after) later.
  Harness h;
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  h.Add(Request("b", kNow, "m1"));
  h.Commit(kNow);
  h.Reopen();
  const int64_t back = kNow + 120 * kMin;
  h.Commit(back);  // the first step read other files
  h.Commit(back + 10000);
  h.Add(Request("b", kNow + 60 * kMin, "m2"));  // its backlog
  h.Commit(back + 20000);
  h.Commit(back + 120000);
  EXPECT_EQ(h.Durations().count, 1u);
  EXPECT_EQ(h.Durations().sum, 3600);
}

TEST(Sessions, A41_PullModeShowsBothSeriesAfterReplaysFamilies) {
  const auto files = MakeHistory(44, 10);
  Harness h;
  for (const auto& f : files)
    for (const auto& l : f) h.Add(l);
  h.Commit(kNow);
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  const std::string replay = ReplayText(files, "dev");
  EXPECT_EQ(h.engine->Exposition(false, false), replay);
  const std::string text = h.engine->Exposition(false);
  ASSERT_EQ(text.substr(0, replay.size()), replay);
  const Histogram d = h.Durations();
  std::string want =
      "# HELP claude_active_sessions Claude Code sessions with a request in the last 5 minutes "
      "(ccmon-agent only).\n"
      "# TYPE claude_active_sessions gauge\n"
      "claude_active_sessions{device=\"dev\"} 0\n"
      "# HELP claude_session_duration_seconds Claude Code session durations (first to last "
      "line), observed once a session has been idle for 30 minutes (ccmon-agent only).\n"
      "# TYPE claude_session_duration_seconds histogram\n";
  const auto& bounds = SessionDurationBuckets();
  for (size_t b = 0; b < bounds.size(); ++b)
    want += "claude_session_duration_seconds_bucket{device=\"dev\",le=\"" +
            std::to_string(bounds[b]) + "\"} " + std::to_string(d.buckets[b]) + "\n";
  want += "claude_session_duration_seconds_bucket{device=\"dev\",le=\"+Inf\"} " +
          std::to_string(d.count) + "\n";
  want += "claude_session_duration_seconds_count{device=\"dev\"} " + std::to_string(d.count) + "\n";
  want += "claude_session_duration_seconds_sum{device=\"dev\"} " + FormatValue(d.sum, false) + "\n";
  EXPECT_EQ(text.substr(replay.size()), want);
  EXPECT_EQ(d.count, 10u);
  // OpenMetrics: a gauge, and a histogram with its unit.
  const std::string om = h.engine->Exposition(true);
  EXPECT_NE(om.find("# TYPE claude_active_sessions gauge\n# HELP claude_active_sessions "),
            std::string::npos);
  EXPECT_NE(om.find("\nclaude_active_sessions{device=\"dev\"} 0\n"), std::string::npos);
  EXPECT_NE(om.find("# TYPE claude_session_duration_seconds histogram\n"
                    "# UNIT claude_session_duration_seconds seconds\n"),
            std::string::npos);
  EXPECT_EQ(om.find("claude_active_sessions_total"), std::string::npos);
}

TEST(Sessions, A41_RemoteWriteCarriesTheGaugeUnderItsOwnNameAndTheHistogramsBuckets) {
  Harness h;
  h.Add(Request("s", kNow - 100 * kMin, "m1"));
  h.Add(Request("s", kNow - 40 * kMin, "m2"));
  h.Commit(kNow);
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  std::map<std::string, double> values;
  for (uint32_t shard = 0; shard < h.options.shards; ++shard) {
    OutboxBatch b;
    ASSERT_TRUE(h.outbox->Peek(shard, 1000, 1 << 30, &b).ok());
    if (b.empty()) continue;
    std::string body;
    rw::Compress(b.payload, &body);
    rw::WriteRequest req;
    ASSERT_TRUE(rw::Decode(body, 1 << 30, &req).ok());
    for (const auto& series : req.series) {
      std::string key;
      for (const auto& [n, v] : series.labels)
        if (n == "__name__" || n == "le") key += v + ";";
      values[key] = series.samples.back().value;
    }
  }
  EXPECT_EQ(values.at("claude_active_sessions;"), 0);
  EXPECT_EQ(values.at("claude_session_duration_seconds_count;"), 1);
  EXPECT_EQ(values.at("claude_session_duration_seconds_sum;"), 3600);
  EXPECT_EQ(values.at("claude_session_duration_seconds_bucket;1800;"), 0);
  EXPECT_EQ(values.at("claude_session_duration_seconds_bucket;3600;"), 1);
  EXPECT_EQ(values.at("claude_session_duration_seconds_bucket;+Inf;"), 1);
  EXPECT_EQ(values.count("claude_active_sessions_total;"), 0u);
}

// An open-session record as LiveAccounting writes it (docs/store-format.md).
std::string SessionRecord(int64_t first, int64_t last, int64_t last_request, uint8_t flags,
                          uint8_t version = 1) {
  std::string r(1, char(version));
  PutSignedVarint(&r, first);
  PutSignedVarint(&r, last);
  PutSignedVarint(&r, last_request);
  r.push_back(char(flags));
  return r;
}

TEST(Sessions, A41_AMalformedOpenSessionRecordIsCorruptionNotACrash) {
  const int64_t t = kNow - 10 * kMin;
  const std::vector<std::pair<std::string, bool>> records = {
      {SessionRecord(t, kNow - kMin, kNow - kMin, 1), true},  // well-formed, active
      {SessionRecord(t, t, kNever, 0), true},                 // prompts only: not active
      {"", false},
      {"\x01", false},
      {SessionRecord(t, t, t, 1, /*version=*/2), false},
      {SessionRecord(t, t, t, 7), false},          // unknown flag
      {SessionRecord(t + 1, t, t, 1), false},      // first after last
      {SessionRecord(t, t, kNever, 1), false},     // a request without its time
      {SessionRecord(t, t + 5, t + 6, 1), false},  // newest request after the last
      {SessionRecord(t, t, t, 0), false},          // no request, yet a time
      {SessionRecord(kNever, t, t, 1), false},     // would overflow a difference
      {SessionRecord(t, INT64_MAX, INT64_MAX, 1), false},
      {SessionRecord(t, t, t, 1) + "x", false},  // trailing bytes
  };
  for (const auto& [record, good] : records) {
    SCOPED_TRACE(::testing::PrintToString(record));
    Harness h;
    ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
    WriteBatch batch;
    batch.Put("dsess", record);
    ASSERT_TRUE(h.store->Write(batch, false).ok());
    h.engine.reset();
    h.outbox.reset();
    ASSERT_TRUE(Outbox::Open(h.store.get(), OutboxOptions{}, 2, &h.outbox).ok());
    Status s = Engine::Open(h.options, h.store.get(), h.outbox.get(), &h.engine);
    if (good) {
      ASSERT_TRUE(s.ok()) << s.message();
      h.Commit(kNow);
      EXPECT_EQ(h.Active(), record.back() & 1);
      EXPECT_EQ(h.engine->live_stats().sessions_in_memory, 1u);
    } else {
      EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.message();
    }
  }
}

TEST(Sessions, A41_ThousandsOfSessionsInTheCatchUpKeepMemorySmall) {
  // 3000 short sessions (no copies), read in steps of 200 lines with a tiny record cache.
  Harness h;
  h.options.live.cache_records = 32;
  h.Reopen();
  std::vector<std::vector<std::string>> files;
  int64_t t = kHistoryStart;
  for (int s = 0; s < 3000; ++s) {
    const std::string id = "many-" + std::to_string(s);
    t += 7 * kMin;
    files.push_back({Prompt(id, t, id + "-u"), Request(id, t + 1000, id + "-a"),
                     Request(id, t + 4 * kMin, id + "-b")});
  }
  size_t lines = 0;
  for (const auto& f : files)
    for (const auto& l : f) {
      h.Add(l);
      if (++lines % 200 == 0) h.Commit(kNow);
    }
  h.Commit(kNow);
  EXPECT_LE(h.engine->live_stats().max_sessions_in_memory, 70u);  // one step's sessions
  ASSERT_TRUE(h.engine->MarkCaughtUp(kNow).ok());
  EXPECT_EQ(h.Durations(), ExpectedDurations(files));
  EXPECT_EQ(h.engine->live_stats().sessions_in_memory, 0u);
  // Closed: the open records are gone from the store too.
  std::unique_ptr<KvIterator> it = h.store->NewIterator();
  it->Seek("d");
  EXPECT_FALSE(it->Valid() && it->key().starts_with("d"));
}

}  // namespace
}  // namespace ccmon::agent
