// LiveAccounting: replay's rules line by line (docs/accounting.md A40). The central property:
// fed the lines of a history in file order, with commits, restarts and a bounded cache in between,
// its series equal replay's `metrics` for the same lines, byte for byte, and no conflict is
// counted when copies do not move a request (as on ccgen corpora).
#include "agent/engine/live_accounting.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "engine_test_util.h"
#include "exposition/text_format.h"
#include "ledger/ledger.h"
#include "metrics/accounting.h"
#include "metrics/metrics.h"
#include "transcript/line_parser.h"
#include "transcript/model_id.h"

namespace ccmon::agent {
namespace {

using namespace ccmon::agent::testing;

struct LiveRun {
  MapRecords records;
  std::unique_ptr<LiveAccounting> live;
  LiveOptions options;
  LiveRun() {
    options.device = "dev";
    options.prices = &PriceTable::Embedded();
    Reopen();
  }
  void Reopen() {
    live.reset();
    Status s = LiveAccounting::Open(options, &records, &live);
    ASSERT_TRUE(s.ok()) << s.message();
  }
};

TEST(LiveAccounting, A40_EqualsReplayLineByLineWithCommitsRestartsAndATinyCache) {
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    SCOPED_TRACE(seed);
    const auto files = MakeHistory(seed, 40);
    LiveRun run;
    run.options.cache_records = 16;  // most lookups go to the store
    run.Reopen();
    LineParser parser;
    ParsedLine line;
    std::mt19937 rng(seed);
    for (const auto& f : files) {
      for (const auto& l : f) {
        parser.Parse(l, &line);
        ASSERT_TRUE(run.live->AddLine(line).ok());
        if (rng() % 7 == 0) run.records.Commit(run.live.get());
        if (rng() % 50 == 0) {  // a restart: only what was committed survives
          run.records.Commit(run.live.get());
          run.Reopen();
        }
      }
    }
    ASSERT_TRUE(run.live->Settle(INT64_MAX / 2, true).ok());
    run.records.Commit(run.live.get());
    EXPECT_EQ(run.live->stats().conflicts, 0u);
    EXPECT_EQ(run.live->series().Exposition(false), ReplayText(files, "dev"));
    run.Reopen();  // and the same after a restart
    EXPECT_EQ(run.live->series().Exposition(false), ReplayText(files, "dev"));
    EXPECT_EQ(run.live->stats().pending, 0u);
  }
}

// The parse thread prepares the line-only parts (record key, canonical model) and the counting
// thread takes them (LiveAccounting::Prepare, AddLine(line, prepared)): the same series, records
// and stats as AddLine(line) computing them itself, with commits, restarts and a tiny cache.
TEST(LiveAccounting, A40_PreparedLinesCountExactlyAsUnpreparedOnes) {
  for (uint32_t seed : {11u, 12u, 13u}) {
    SCOPED_TRACE(seed);
    const auto files = MakeHistory(seed, 30);
    LiveRun plain, prepared;
    for (LiveRun* r : {&plain, &prepared}) {
      r->options.cache_records = 16;
      r->Reopen();
    }
    LineParser parser;
    ParsedLine line;
    std::string key, model;
    PreparedLine p;
    std::mt19937 rng(seed);
    size_t requests = 0;
    for (const auto& f : files) {
      for (const auto& l : f) {
        parser.Parse(l, &line);
        ASSERT_TRUE(plain.live->AddLine(line).ok());
        LiveAccounting::Prepare(line, &key, &model, &p);
        if (p.request) {
          ++requests;
          EXPECT_EQ(p.request_key[0], LiveAccounting::kRequestPrefix);
          EXPECT_EQ(p.canonical_model, CanonicalModel(line.model));
        }
        ASSERT_TRUE(prepared.live->AddLine(line, p).ok());
        const bool commit = rng() % 5 == 0, restart = rng() % 60 == 0;
        for (LiveRun* r : {&plain, &prepared}) {
          if (commit || restart) r->records.Commit(r->live.get());
          if (restart) r->Reopen();
        }
      }
    }
    ASSERT_GT(requests, 100u);
    for (LiveRun* r : {&plain, &prepared}) {
      ASSERT_TRUE(r->live->Settle(INT64_MAX / 2, true).ok());
      r->records.Commit(r->live.get());
    }
    EXPECT_EQ(prepared.live->series().Exposition(false), plain.live->series().Exposition(false));
    EXPECT_EQ(prepared.live->series().Exposition(false), ReplayText(files, "dev"));
    EXPECT_EQ(prepared.records.map, plain.records.map);
    EXPECT_EQ(prepared.live->stats().copies, plain.live->stats().copies);
    EXPECT_EQ(prepared.live->stats().requests, plain.live->stats().requests);
  }
}

// Prepare marks only request lines: prompts, synthetic lines and other lines are counted by
// AddLine's own path.
TEST(LiveAccounting, PrepareSkipsLinesThatAreNotRequests) {
  LineParser parser;
  ParsedLine line;
  std::string key = "stale", model = "stale";
  PreparedLine p;
  p.request = true;
  parser.Parse(
      R"({"type":"user","uuid":"u1","sessionId":"s","timestamp":"2025-01-01T00:00:00Z","message":{"role":"user","content":"hi"}})",
      &line);
  LiveAccounting::Prepare(line, &key, &model, &p);
  EXPECT_FALSE(p.request);
  EXPECT_TRUE(p.request_key.empty());
  parser.Parse("not json", &line);
  LiveAccounting::Prepare(line, &key, &model, &p);
  EXPECT_FALSE(p.request);
}

// Find + ApplyTo is Apply: a series created by Find and first applied with a zero delta is
// still sent with that increment's event time, as Apply would do.
TEST(SeriesTable, FindThenApplyToIsApply) {
  SeriesTable a, b;
  const SeriesIncrement zero = ToolCallContribution("dev", "Bash");
  SeriesIncrement z = zero;
  z.delta = 0;
  a.Apply(z, 1000);
  bool created = false;
  SeriesState* s = b.Find(z, &created);
  EXPECT_TRUE(created);
  b.ApplyTo(s, created, z, 1000);
  bool again = true;
  EXPECT_EQ(b.Find(z, &again), s);  // the same address, not created twice
  EXPECT_FALSE(again);
  SeriesIncrement one = zero;
  a.Apply(one, 2000);
  b.ApplyTo(s, false, one, 2000);
  ASSERT_EQ(a.series().size(), 1u);
  ASSERT_EQ(b.series().size(), 1u);
  const SeriesState& x = a.series().begin()->second;
  EXPECT_EQ(x.value, s->value);
  EXPECT_EQ(x.pending_event_ms, s->pending_event_ms);
  EXPECT_EQ(s->pending_event_ms, 2000);
  EXPECT_EQ(a.Exposition(false), b.Exposition(false));
  // A zero delta on an existing series changes nothing (its event time included).
  b.ApplyTo(s, false, z, 5000);
  EXPECT_EQ(s->pending_event_ms, 2000);
}

TEST(LiveAccounting, A40_FilesInAnyOrderGiveTheSameTotals) {
  auto files = MakeHistory(9, 30);
  const std::string expected = ReplayText(files, "dev");
  std::reverse(files.begin(), files.end());
  LiveRun run;
  LineParser parser;
  ParsedLine line;
  for (const auto& f : files)
    for (const auto& l : f) {
      parser.Parse(l, &line);
      ASSERT_TRUE(run.live->AddLine(line).ok());
    }
  ASSERT_TRUE(run.live->Settle(INT64_MAX / 2, true).ok());
  EXPECT_EQ(run.live->series().Exposition(false), expected);
}

size_t CountWithPrefix(const MapRecords& records, char prefix) {
  size_t n = 0;
  for (const auto& [k, v] : records.map) n += k[0] == prefix;
  return n;
}

// The pending records (h<dedup key>) are kept beside the cache, not in it: a request not yet
// observed has one in the store after each commit, and it is deleted once observed.
TEST(LiveAccounting, A40_PendingRecordsAreCommittedUntilObservedAndThenDeleted) {
  const auto files = MakeHistory(7, 20);
  LiveRun run;
  LineParser parser;
  ParsedLine line;
  for (size_t i = 0; i < files.size() / 2; ++i)
    for (const auto& l : files[i]) {
      parser.Parse(l, &line);
      ASSERT_TRUE(run.live->AddLine(line).ok());
    }
  ASSERT_TRUE(run.live->Settle(0).ok());  // settles the requests whose session moved on
  run.records.Commit(run.live.get());
  const uint64_t observed_before = run.live->stats().observed;
  const size_t pending = CountWithPrefix(run.records, LiveAccounting::kPendingPrefix);
  ASSERT_GT(pending, 0u);
  ASSERT_EQ(pending, run.live->stats().pending);
  ASSERT_GT(observed_before, 0u);

  // A restart: the pending requests come back from their records and settle once.
  run.Reopen();
  ASSERT_TRUE(run.live->Settle(INT64_MAX / 2, true).ok());
  EXPECT_EQ(run.live->stats().observed, pending);
  run.records.Commit(run.live.get());
  EXPECT_EQ(CountWithPrefix(run.records, LiveAccounting::kPendingPrefix), 0u);

  // The rest of the history: the same totals as replay, no pending record left.
  for (size_t i = files.size() / 2; i < files.size(); ++i)
    for (const auto& l : files[i]) {
      parser.Parse(l, &line);
      ASSERT_TRUE(run.live->AddLine(line).ok());
    }
  ASSERT_TRUE(run.live->Settle(INT64_MAX / 2, true).ok());
  run.records.Commit(run.live.get());
  EXPECT_EQ(CountWithPrefix(run.records, LiveAccounting::kPendingPrefix), 0u);
  run.Reopen();
  EXPECT_EQ(run.live->series().Exposition(false), ReplayText(files, "dev"));
}

// A request stamped ahead of the wall clock (a clock ahead of ours; a hostile line from year 9999)
// still settles: its event time counts as the time it was first seen quiet, so it is observed in
// the histogram settle_after later, as replay observes it. It waited for its own timestamp
// before: never, for year 9999, with 0 conflicts counted.
TEST(LiveAccounting, A40_ARequestStampedInTheFutureSettlesAfterSettleAfterOfWallTime) {
  const int64_t now = 1'780'000'000'000;  // 2026-05-28
  for (const int64_t ts : {int64_t(253'402'300'799'000) /* 9999-12-31T23:59:59Z */,
                           now + 3'600'000 /* an hour ahead */}) {
    SCOPED_TRACE(Ts(ts));
    const std::vector<std::vector<std::string>> files = {
        {Assistant("s1", "/p", ts, "msg_future", "claude-sonnet-4-5", 5, 0, false, {}, 0).dump()}};
    for (const bool catch_up_end : {false, true}) {
      LiveRun run;
      LineParser parser;
      ParsedLine line;
      parser.Parse(files[0][0], &line);
      ASSERT_TRUE(run.live->AddLine(line).ok());
      ASSERT_TRUE(run.live->Settle(now, catch_up_end).ok());
      EXPECT_EQ(run.live->stats().observed, 0u) << "not quiet yet";
      ASSERT_TRUE(run.live->Settle(now + run.options.settle_after_ms, false).ok());
      EXPECT_EQ(run.live->stats().observed, 1u);
      EXPECT_EQ(run.live->stats().pending, 0u);
      EXPECT_EQ(run.live->stats().conflicts, 0u);
      run.records.Commit(run.live.get());
      run.Reopen();
      EXPECT_EQ(run.live->series().Exposition(false), ReplayText(files, "dev"));
    }
  }
}

// A request record is decoded once, when read from the store: a malformed one is Corruption at
// each read (the cache keeps no half-decoded entry), never a crash or a count.
TEST(LiveAccounting, A40_AMalformedRequestRecordIsCorruptionAtEachRead) {
  const auto files = MakeHistory(11, 2);
  LineParser parser;
  ParsedLine line;
  for (const std::string damage : {"truncated", "version"}) {
    SCOPED_TRACE(damage);
    LiveRun run;
    for (const auto& l : files[0]) {
      parser.Parse(l, &line);
      ASSERT_TRUE(run.live->AddLine(line).ok());
    }
    run.records.Commit(run.live.get());
    size_t damaged = 0;
    for (auto& [k, v] : run.records.map) {
      if (k[0] != LiveAccounting::kRequestPrefix) continue;
      if (damage == "truncated")
        v.resize(v.size() / 2);
      else
        v[0] = char(0x7f);
      ++damaged;
    }
    ASSERT_GT(damaged, 0u);
    run.Reopen();
    const std::string text = run.live->series().Exposition(false);
    // The same lines again: each request line reads its record back.
    bool request_line = false;
    for (const auto& l : files[0]) {
      parser.Parse(l, &line);
      if (line.kind != LineKind::kUsage || line.IsSynthetic()) continue;
      request_line = true;
      for (int attempt = 0; attempt < 2; ++attempt) {
        Status s = run.live->AddLine(line);
        EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.message();
      }
      break;
    }
    EXPECT_TRUE(request_line);
    EXPECT_EQ(run.live->series().Exposition(false), text);  // nothing counted
  }
}

}  // namespace
}  // namespace ccmon::agent
