// The copy-merge rule as a pure function (docs/accounting.md A17, A18; ledger/copy_merge.h).
#include "ledger/copy_merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "base/string_pool.h"
#include "ledger/ledger.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

// A string table whose ids are in the opposite order of the strings, so that a rule comparing
// ids instead of strings picks other copies.
class Strings {
 public:
  Strings() {
    for (const char* s : {"sess-z", "sess-m", "sess-a", "model-z", "model-a", "/cwd/z", "/cwd/a"})
      pool_.Intern(s);
  }
  uint32_t operator[](const char* s) { return pool_.Intern(s); }
  const StringPool& pool() const { return pool_; }

 private:
  StringPool pool_;
};

class CopyMergeTest : public ::testing::Test {
 protected:
  RequestEntry Copy(int64_t ts, const char* session, const char* model, const char* cwd,
                    bool sidechain = false) {
    RequestEntry e;
    e.timestamp_ms = ts;
    e.session = s_[session];
    e.model = s_[model];
    e.cwd = s_[cwd];
    e.sidechain = sidechain;
    return e;
  }
  CopyMergeResult Merge(const RequestEntry& current, const RequestEntry& copy) {
    return MergeCopy(current, copy, s_.pool());
  }
  Strings s_;
};

TEST_F(CopyMergeTest, A17_EachTokenFieldAndWebSearchesAreTheMaximum) {
  RequestEntry a = Copy(1000, "sess-a", "model-a", "/cwd/a");
  a.tokens = TokenCounts{6, 2, 0, 8837, 16410};
  a.web_search_requests = 2;
  RequestEntry b = a;
  b.tokens = TokenCounts{5, 136, 3, 100, 16000};
  b.web_search_requests = 1;
  CopyMergeResult r = Merge(a, b);
  EXPECT_EQ(r.entry.tokens, (TokenCounts{6, 136, 3, 8837, 16410}));
  EXPECT_EQ(r.entry.web_search_requests, 2u);
  EXPECT_TRUE(r.effect.tokens_rose);
  EXPECT_FALSE(r.effect.web_searches_rose);
  EXPECT_FALSE(r.effect.attribution_moved);  // same attribution
  EXPECT_TRUE(r.effect.changed());

  // A copy that is smaller everywhere changes nothing.
  RequestEntry smaller = a;
  smaller.tokens = TokenCounts{1, 1, 0, 0, 1};
  smaller.web_search_requests = 0;
  CopyMergeResult none = Merge(a, smaller);
  EXPECT_EQ(none.entry, a);
  EXPECT_EQ(none.effect, CopyMergeEffect{});
  EXPECT_FALSE(none.effect.changed());

  RequestEntry more_searches = a;
  more_searches.web_search_requests = 3;
  CopyMergeResult w = Merge(a, more_searches);
  EXPECT_EQ(w.entry.web_search_requests, 3u);
  EXPECT_TRUE(w.effect.web_searches_rose);
  EXPECT_FALSE(w.effect.tokens_rose);
}

TEST_F(CopyMergeTest, A39_UsInferenceOnAnyCopyMakesTheRequestUs) {
  RequestEntry plain = Copy(1000, "sess-a", "claude-opus-4-6", "/cwd/a");
  RequestEntry us = plain;
  us.us_inference = true;
  CopyMergeResult r = Merge(plain, us);
  EXPECT_TRUE(r.entry.us_inference);
  EXPECT_TRUE(r.effect.became_us);
  EXPECT_TRUE(r.effect.changed());
  r = Merge(r.entry, plain);  // a copy without it does not undo it
  EXPECT_TRUE(r.entry.us_inference);
  EXPECT_FALSE(r.effect.changed());
  EXPECT_TRUE(Merge(us, plain).entry.us_inference);
}

TEST_F(CopyMergeTest, A17_CostUsdIsTheMaximumOverCopiesThatHaveItAndFastIsSticky) {
  RequestEntry plain = Copy(1000, "sess-a", "model-a", "/cwd/a");
  RequestEntry zero = plain;
  zero.has_cost_usd = true;
  zero.cost_usd = 0;
  CopyMergeResult r = Merge(plain, zero);
  EXPECT_TRUE(r.entry.has_cost_usd);
  EXPECT_EQ(r.entry.cost_usd, 0);
  EXPECT_TRUE(r.effect.cost_usd_changed);  // a costUSD of 0 still replaces the computed cost

  RequestEntry high = plain;
  high.has_cost_usd = true;
  high.cost_usd = 500;
  high.fast = true;
  r = Merge(r.entry, high);
  EXPECT_EQ(r.entry.cost_usd, 500);
  EXPECT_TRUE(r.effect.cost_usd_changed);
  EXPECT_TRUE(r.entry.fast);
  EXPECT_TRUE(r.effect.became_fast);

  RequestEntry low = plain;
  low.has_cost_usd = true;
  low.cost_usd = 300;
  r = Merge(r.entry, low);
  EXPECT_EQ(r.entry.cost_usd, 500);
  EXPECT_TRUE(r.entry.fast);  // a standard copy does not undo fast
  EXPECT_FALSE(r.entry.us_inference);
  EXPECT_FALSE(r.effect.changed());
  r = Merge(r.entry, plain);  // a copy without costUSD keeps it
  EXPECT_TRUE(r.entry.has_cost_usd);
  EXPECT_EQ(r.entry.cost_usd, 500);
  EXPECT_FALSE(r.effect.changed());

  // Without any costUSD the merged cost_usd is 0, whatever the inputs held.
  RequestEntry stray = plain;
  stray.cost_usd = 7;
  EXPECT_EQ(Merge(plain, stray).entry.cost_usd, 0);
  EXPECT_EQ(Merge(stray, plain).entry.cost_usd, 0);
}

TEST_F(CopyMergeTest, A18_PreferredCopyNonSidechainThenEarliestThenSessionModelCwd) {
  const StringPool& p = s_.pool();
  auto prefer = [&](const RequestEntry& a, const RequestEntry& b) {
    const bool ab = PreferredCopy(a, b, p);
    EXPECT_NE(ab, PreferredCopy(b, a, p)) << "not a strict order";
    return ab;
  };
  // Non-sidechain wins even when later.
  EXPECT_TRUE(prefer(Copy(2000, "sess-z", "model-z", "/cwd/z"),
                     Copy(1000, "sess-a", "model-a", "/cwd/a", /*sidechain=*/true)));
  // Then the earliest timestamp, whatever the strings.
  EXPECT_TRUE(
      prefer(Copy(1000, "sess-z", "model-z", "/cwd/z"), Copy(2000, "sess-a", "model-a", "/cwd/a")));
  // Then the smallest session, model, cwd, as strings (ids are in the opposite order here).
  EXPECT_TRUE(
      prefer(Copy(1000, "sess-a", "model-z", "/cwd/z"), Copy(1000, "sess-m", "model-a", "/cwd/a")));
  EXPECT_TRUE(
      prefer(Copy(1000, "sess-a", "model-a", "/cwd/z"), Copy(1000, "sess-a", "model-z", "/cwd/a")));
  EXPECT_TRUE(
      prefer(Copy(1000, "sess-a", "model-a", "/cwd/a"), Copy(1000, "sess-a", "model-a", "/cwd/z")));
  // The same attribution is not preferred either way.
  EXPECT_FALSE(PreferredCopy(Copy(1000, "sess-a", "model-a", "/cwd/a"),
                             Copy(1000, "sess-a", "model-a", "/cwd/a"), p));
  // Strings compare byte-wise: "sess-a" < "sess-a2" < "sess-b".
  EXPECT_TRUE(prefer(Copy(1000, "sess-a", "model-a", "/cwd/a"),
                     Copy(1000, "sess-a2", "model-a", "/cwd/a")));
}

TEST_F(CopyMergeTest, A18_AttributionMovesToThePreferredCopyAndIsReported) {
  RequestEntry first = Copy(2000, "sess-m", "model-a", "/cwd/a", /*sidechain=*/true);
  first.tokens = TokenCounts{10, 10, 0, 0, 0};
  // An earlier copy of the same session and cwd: attribution moves, labels do not.
  RequestEntry earlier = Copy(1000, "sess-m", "model-a", "/cwd/a", /*sidechain=*/true);
  CopyMergeResult r = Merge(first, earlier);
  EXPECT_EQ(r.entry.timestamp_ms, 1000);
  EXPECT_TRUE(r.effect.attribution_moved);
  EXPECT_FALSE(r.effect.labels_moved);
  EXPECT_FALSE(r.effect.tokens_rose);
  EXPECT_EQ(r.entry.tokens, first.tokens);
  // A later main-chain copy in another cwd: attribution and labels move.
  RequestEntry main = Copy(3000, "sess-z", "model-a", "/cwd/z");
  r = Merge(r.entry, main);
  EXPECT_TRUE(r.effect.attribution_moved);
  EXPECT_TRUE(r.effect.labels_moved);
  EXPECT_EQ(r.entry.timestamp_ms, 3000);
  EXPECT_FALSE(r.entry.sidechain);
  EXPECT_EQ(r.entry.session, s_["sess-z"]);
  EXPECT_EQ(r.entry.cwd, s_["/cwd/z"]);
  EXPECT_EQ(r.entry.tokens, first.tokens);  // tokens stay the maximum whoever attributes
  // A later sidechain copy changes nothing.
  r = Merge(r.entry, Copy(500, "sess-a", "model-z", "/cwd/a", /*sidechain=*/true));
  EXPECT_FALSE(r.effect.changed());
  EXPECT_EQ(r.entry.timestamp_ms, 3000);
  // Another model at the same instant and session: labels move.
  r = Merge(r.entry, Copy(3000, "sess-z", "model-a", "/cwd/a"));
  EXPECT_TRUE(r.effect.labels_moved);
}

// Random copies drawn from small domains, so that sidechain flags, timestamps, sessions, models
// and cwds tie often and every tie-break is exercised.
std::vector<RequestEntry> RandomCopies(std::mt19937* rng, Strings* s, size_t n) {
  const char* sessions[] = {"sess-z", "sess-m", "sess-a"};
  const char* models[] = {"model-z", "model-a"};
  const char* cwds[] = {"/cwd/z", "/cwd/a"};
  auto pick = [&](int n) { return int((*rng)() % uint32_t(n)); };
  std::vector<RequestEntry> copies;
  for (size_t i = 0; i < n; ++i) {
    RequestEntry e;
    e.timestamp_ms = 1000 + pick(2);
    e.sidechain = pick(2);
    e.session = (*s)[sessions[pick(3)]];
    e.model = (*s)[models[pick(2)]];
    e.cwd = (*s)[cwds[pick(2)]];
    e.tokens = TokenCounts{uint64_t(pick(4)), uint64_t(pick(4)), uint64_t(pick(4)),
                           uint64_t(pick(4)), uint64_t(pick(4))};
    e.web_search_requests = pick(3);
    e.has_cost_usd = pick(3) == 0;
    e.cost_usd = e.has_cost_usd ? pick(4) : 0;
    e.fast = pick(4) == 0;
    e.us_inference = pick(4) == 0;
    copies.push_back(e);
  }
  return copies;
}

RequestEntry Fold(const std::vector<RequestEntry>& copies, const std::vector<size_t>& order,
                  const StringPool& p) {
  RequestEntry e = copies[order[0]];
  for (size_t i = 1; i < order.size(); ++i) e = MergeCopy(e, copies[order[i]], p).entry;
  return e;
}

TEST_F(CopyMergeTest, A17_A18_EveryOrderAndGroupingGivesTheSameEntry) {
  std::mt19937 rng(20260421);
  for (int round = 0; round < 200; ++round) {
    const size_t n = 4 + round % 2;  // 4 and 5 copies
    std::vector<RequestEntry> copies = RandomCopies(&rng, &s_, n);
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    const RequestEntry want = Fold(copies, order, s_.pool());
    int permutations = 0;
    do {
      ASSERT_EQ(Fold(copies, order, s_.pool()), want)
          << "round " << round << " perm " << permutations;
      // Disjoint halves merged separately, then together (associativity), both ways round.
      for (size_t cut = 1; cut < n; ++cut) {
        std::vector<size_t> left(order.begin(), order.begin() + cut);
        std::vector<size_t> right(order.begin() + cut, order.end());
        const RequestEntry l = Fold(copies, left, s_.pool());
        const RequestEntry r = Fold(copies, right, s_.pool());
        ASSERT_EQ(MergeCopy(l, r, s_.pool()).entry, want) << "round " << round << " cut " << cut;
        ASSERT_EQ(MergeCopy(r, l, s_.pool()).entry, want) << "round " << round << " cut " << cut;
      }
      ++permutations;
    } while (std::next_permutation(order.begin(), order.end()));
    ASSERT_EQ(permutations, n == 4 ? 24 : 120);
    // Idempotent: merging the result with any of its copies, or itself, changes nothing.
    EXPECT_FALSE(MergeCopy(want, want, s_.pool()).effect.changed());
    for (const RequestEntry& c : copies) {
      CopyMergeResult again = MergeCopy(want, c, s_.pool());
      EXPECT_EQ(again.entry, want);
      EXPECT_FALSE(again.effect.changed());
    }
  }
}

// The effect describes exactly the difference between the entry before and after.
TEST_F(CopyMergeTest, EffectMatchesTheDifference) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::vector<RequestEntry> c = RandomCopies(&rng, &s_, 2);
    CopyMergeResult r = Merge(c[0], c[1]);
    const RequestEntry& a = c[0];
    const RequestEntry& e = r.entry;
    EXPECT_EQ(r.effect.tokens_rose, !(e.tokens == a.tokens));
    EXPECT_EQ(r.effect.web_searches_rose, e.web_search_requests != a.web_search_requests);
    EXPECT_EQ(r.effect.cost_usd_changed,
              e.has_cost_usd != a.has_cost_usd || e.cost_usd != a.cost_usd);
    EXPECT_EQ(r.effect.became_fast, e.fast != a.fast);
    EXPECT_EQ(r.effect.became_us, e.us_inference != a.us_inference);
    EXPECT_EQ(r.effect.attribution_moved,
              e.timestamp_ms != a.timestamp_ms || e.sidechain != a.sidechain ||
                  e.session != a.session || e.model != a.model || e.cwd != a.cwd);
    EXPECT_EQ(r.effect.labels_moved, e.model != a.model || e.cwd != a.cwd);
    EXPECT_EQ(r.effect.changed(), !(e == a));
  }
}

// The ledger reports the effect of each line's copy (Ledger::Change::effect).
TEST(LedgerCopyMerge, A17_A18_AddReportsTheEffectOfEachCopy) {
  using testing_util::Line;
  using testing_util::Msg;
  LineParser parser;
  Ledger l;
  auto add = [&](const Msg& m) {
    ParsedLine out;
    parser.Parse(Line(m), &out);
    EXPECT_EQ(out.kind, LineKind::kUsage);
    return l.Add(out);
  };
  Msg m;
  m.output = 2;
  m.timestamp = "2026-04-21T01:00:00.000Z";
  Ledger::Change c = add(m);
  EXPECT_TRUE(c.new_request);
  EXPECT_FALSE(c.effect.changed());
  Msg streamed = m;
  streamed.output = 136;
  c = add(streamed);
  EXPECT_FALSE(c.new_request);
  EXPECT_TRUE(c.effect.tokens_rose);
  EXPECT_FALSE(c.effect.attribution_moved);
  EXPECT_EQ(c.before.tokens.output, 2u);
  EXPECT_EQ(l.requests()[c.index].tokens.output, 136u);
  c = add(m);  // the same copy again
  EXPECT_FALSE(c.effect.changed());
  Msg resumed_earlier = m;
  resumed_earlier.timestamp = "2026-04-21T00:00:00.000Z";
  resumed_earlier.cwd = "/Users/USER/src/other";
  c = add(resumed_earlier);
  EXPECT_TRUE(c.effect.attribution_moved);
  EXPECT_TRUE(c.effect.labels_moved);
  EXPECT_FALSE(c.effect.tokens_rose);
  EXPECT_EQ(l.strings().Get(l.requests()[c.index].cwd), "/Users/USER/src/other");
}

}  // namespace
}  // namespace ccmon
