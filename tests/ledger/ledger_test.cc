// Ledger: requests and dedup (docs/accounting.md A14-A18, and the raw material of A32/A33).
#include "ledger/ledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <iterator>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/timeutil.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

using testing_util::AddLine;
using testing_util::DumpLedger;
using testing_util::Line;
using testing_util::Msg;

Msg Base() {
  Msg m;
  m.id = "msg_01";
  m.request_id = "req_01";
  m.model = "claude-opus-4-6";
  m.session = "sess-a";
  m.cwd = "/Users/USER/src/webapp";
  m.timestamp = "2026-04-21T00:29:54.704Z";
  return m;
}

class LedgerTest : public ::testing::Test {
 protected:
  Ledger::Change Add(Ledger* l, const Msg& m) {
    ParsedLine out;
    parser_.Parse(Line(m), &out);
    EXPECT_EQ(out.kind, LineKind::kUsage) << Line(m);
    return l->Add(out);
  }
  RequestEntry Only(const Ledger& l) {
    EXPECT_EQ(l.requests().size(), 1u);
    return l.requests().at(0);
  }
  std::string S(const Ledger& l, uint32_t id) { return l.strings().Get(id); }
  LineParser parser_;
};

TEST_F(LedgerTest, A16_DedupKeyForms) {
  // The encoding is the ledger's business; what matters is which pairs are the same key.
  EXPECT_EQ(Ledger::DedupKey("msg_1", true, "req_1"), Ledger::DedupKey("msg_1", true, "req_1"));
  EXPECT_EQ(Ledger::DedupKey("msg_1", false, "ignored"), Ledger::DedupKey("msg_1", false, ""));
  struct Form {
    const char* id;
    bool has_req;
    const char* req;
  } forms[] = {{"msg_1", true, "req_1"}, {"msg_1", false, ""},     {"msg_1req_1", false, ""},
               {"msg_1", true, ""},      {"msg_", true, "1req_1"}, {"msg_1r", true, "eq_1"},
               {"", true, "msg_1req_1"}, {"msg_1", true, "req_2"}, {"", false, ""}};
  std::set<std::string> keys;
  for (const Form& f : forms) keys.insert(Ledger::DedupKey(f.id, f.has_req, f.req));
  EXPECT_EQ(keys.size(), std::size(forms));
  // Ids may hold any byte (JSON can spell NUL as \u0000).
  EXPECT_NE(Ledger::DedupKey(std::string("m\0r", 3), false, ""), Ledger::DedupKey("m", true, "r"));
  EXPECT_NE(Ledger::DedupKey(std::string("m\0", 2), true, "r"),
            Ledger::DedupKey("m", true, std::string("\0r", 2)));
  // AppendDedupKey appends the same bytes.
  std::string out = "prefix";
  Ledger::AppendDedupKey("msg_1", true, "req_1", &out);
  EXPECT_EQ(out, "prefix" + Ledger::DedupKey("msg_1", true, "req_1"));
}

// BUG (fails at commit 7310f4b, whose key was id + NUL + requestId; fixed by the uncommitted
// length-prefixed key in ledger.cc): an id spelled with \u0000 collided with another id+requestId.
TEST_F(LedgerTest, A16_EscapedNulInIdsDoesNotMergeRequests) {
  Ledger l;
  Msg a = Base();
  a.id = "m\\u0000r";  // JSON escape: the id is "m", NUL, "r"
  a.request_id.reset();
  Msg b = Base();
  b.id = "m";
  b.request_id = "r";
  EXPECT_TRUE(Add(&l, a).new_request);
  EXPECT_TRUE(Add(&l, b).new_request);
  EXPECT_EQ(l.requests().size(), 2u);
}

TEST_F(LedgerTest, A16_IdWithAndWithoutRequestIdAreDistinctKeys) {
  Ledger l;
  Msg a = Base();
  a.id = "msg_1";
  a.request_id = "req_1";
  Msg alone = a;
  alone.request_id.reset();
  Msg glued = a;  // "msg_1req_1" alone must not collide with msg_1 + req_1
  glued.id = "msg_1req_1";
  glued.request_id.reset();
  Msg other_req = a;
  other_req.request_id = "req_2";
  EXPECT_TRUE(Add(&l, a).new_request);
  EXPECT_TRUE(Add(&l, alone).new_request);
  EXPECT_TRUE(Add(&l, glued).new_request);
  EXPECT_TRUE(Add(&l, other_req).new_request);
  EXPECT_FALSE(Add(&l, a).new_request);
  EXPECT_FALSE(Add(&l, alone).new_request);
  ASSERT_EQ(l.requests().size(), 4u);
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < 4; ++i) keys.push_back(std::string(l.request_key(i)));
  EXPECT_EQ(keys, (std::vector<std::string>{Ledger::DedupKey("msg_1", true, "req_1"),
                                            Ledger::DedupKey("msg_1", false, ""),
                                            Ledger::DedupKey("msg_1req_1", false, ""),
                                            Ledger::DedupKey("msg_1", true, "req_2")}));
}

TEST_F(LedgerTest, A16_CopiesInOtherFilesAndSessionsAreOneRequest) {
  // A resumed session replays the request into a new file with a new sessionId.
  Ledger first, resumed;
  Msg m = Base();
  Add(&first, m);
  Msg copy = m;
  copy.session = "sess-resumed";
  copy.timestamp = "2026-04-22T10:00:00.000Z";
  Add(&resumed, copy);
  first.Merge(resumed);
  ASSERT_EQ(first.requests().size(), 1u);
  EXPECT_EQ(S(first, Only(first).session), "sess-a");
}

TEST_F(LedgerTest, A17_EachFieldIsTheMaximumOverCopies) {
  Ledger l;
  Msg m = Base();
  m.input = 6;
  m.output = 2;  // an early streamed block line
  m.cache_read = 16410;
  m.split = std::make_pair(uint64_t(0), uint64_t(8837));
  m.cache_creation = 8837;
  Ledger::Change c1 = Add(&l, m);
  EXPECT_TRUE(c1.counted);
  EXPECT_TRUE(c1.new_request);
  EXPECT_EQ(c1.index, 0u);

  Msg later = m;
  later.output = 136;
  later.cache_read = 16000;  // smaller in this copy: the max is per field
  later.split = std::make_pair(uint64_t(5), uint64_t(100));
  later.web_search = 2;
  Ledger::Change c2 = Add(&l, later);
  EXPECT_TRUE(c2.counted);
  EXPECT_FALSE(c2.new_request);
  EXPECT_EQ(c2.index, 0u);
  EXPECT_EQ(c2.before.tokens, (TokenCounts{6, 2, 0, 8837, 16410}));

  Msg mid = m;
  mid.output = 50;
  mid.web_search = 1;
  Add(&l, mid);
  const RequestEntry& e = Only(l);
  EXPECT_EQ(e.tokens, (TokenCounts{6, 136, 5, 8837, 16410}));
  EXPECT_EQ(e.web_search_requests, 2u);
  EXPECT_FALSE(e.has_cost_usd);
  EXPECT_FALSE(e.fast);
}

TEST_F(LedgerTest, A17_CostUsdIsMaxOverCopiesThatHaveItAndFastIsSticky) {
  Ledger l;
  Msg m = Base();
  Add(&l, m);  // no costUSD
  EXPECT_FALSE(Only(l).has_cost_usd);
  Msg zero = m;
  zero.cost_usd = "0";
  Add(&l, zero);
  EXPECT_TRUE(Only(l).has_cost_usd);
  EXPECT_EQ(Only(l).cost_usd, 0);
  Msg high = m;
  high.cost_usd = "0.5";
  high.speed = "fast";
  Add(&l, high);
  Msg low = m;
  low.cost_usd = "0.3";
  low.speed = "standard";
  Add(&l, low);
  Add(&l, m);
  EXPECT_TRUE(Only(l).has_cost_usd);
  EXPECT_EQ(Only(l).cost_usd, 500000000000);
  EXPECT_TRUE(Only(l).fast);
}

// Entries are stored packed (docs/store-format.md, "Ledger entries"): every field must come back
// as it went in, at the extremes of the timestamp range and with every flag set or clear.
TEST_F(LedgerTest, PackedEntriesKeepEveryFieldAtTheExtremes) {
  Ledger l;
  struct Case {
    const char* id;
    const char* ts;
    int64_t ms;
    bool flags;
  } cases[] = {{"m_first", "0000-01-01T00:00:00.000Z", -62167219200000, true},
               {"m_last", "9999-12-31T23:59:59.999Z", 253402300799999, true},
               {"m_epoch", "1970-01-01T00:00:00.000Z", 0, false},
               {"m_before", "1969-12-31T23:59:59.999Z", -1, true}};
  for (const Case& c : cases) {
    Msg m = Base();
    m.id = c.id;
    m.timestamp = c.ts;
    m.input = kMaxTokenCount;
    m.sidechain = c.flags;
    if (c.flags) {
      m.speed = "fast";
      m.inference_geo = "us";
      m.cost_usd = "12345.678901234567";
      m.web_search = 7;
    }
    Add(&l, m);
  }
  ASSERT_EQ(l.requests().size(), std::size(cases));
  for (uint32_t i = 0; i < l.requests().size(); ++i) {
    const RequestEntry e = l.requests()[i];
    const Case& c = cases[i];
    EXPECT_EQ(e.timestamp_ms, c.ms) << c.id;
    EXPECT_EQ(l.request_timestamp_ms(i), c.ms) << c.id;
    EXPECT_EQ(e.tokens.input, kMaxTokenCount) << c.id;
    EXPECT_EQ(e.sidechain, c.flags) << c.id;
    EXPECT_EQ(e.fast, c.flags) << c.id;
    EXPECT_EQ(e.us_inference, c.flags) << c.id;
    EXPECT_EQ(e.has_cost_usd, c.flags) << c.id;
    EXPECT_EQ(e.cost_usd, c.flags ? 12345678901234567 : 0) << c.id;
    EXPECT_EQ(e.web_search_requests, c.flags ? 7u : 0u) << c.id;
    EXPECT_EQ(S(l, e.session), "sess-a") << c.id;
  }
}

TEST_F(LedgerTest, A18_NonSidechainCopyWinsOverEarlierSidechain) {
  Ledger l;
  Msg side = Base();
  side.sidechain = true;
  side.session = "sess-0-side";
  side.cwd = "/Users/USER/side";
  side.model = "claude-haiku-4-5-20251001";
  side.timestamp = "2026-04-21T00:00:00.000Z";
  Msg main = Base();
  main.timestamp = "2026-04-21T01:00:00.000Z";
  Add(&l, side);
  EXPECT_TRUE(Only(l).sidechain);
  Add(&l, main);
  const RequestEntry& e = Only(l);
  EXPECT_FALSE(e.sidechain);
  EXPECT_EQ(e.timestamp_ms, 1776733200000);
  EXPECT_EQ(S(l, e.session), "sess-a");
  EXPECT_EQ(S(l, e.cwd), "/Users/USER/src/webapp");
  EXPECT_EQ(S(l, e.model), "claude-opus-4-6");
  // A later sidechain copy changes nothing.
  Msg side2 = side;
  side2.timestamp = "2026-04-20T00:00:00.000Z";
  Add(&l, side2);
  EXPECT_FALSE(Only(l).sidechain);
  EXPECT_EQ(Only(l).timestamp_ms, 1776733200000);
}

TEST_F(LedgerTest, A18_EarliestThenSmallestSessionModelCwd) {
  Ledger l;
  Msg late = Base();
  late.timestamp = "2026-04-21T02:00:00.000Z";
  late.session = "a-late";
  Msg early = Base();
  early.timestamp = "2026-04-21T01:00:00.000Z";
  early.session = "z-early";
  Add(&l, late);
  Add(&l, early);
  EXPECT_EQ(S(l, Only(l).session), "z-early");

  // Same timestamp: smallest sessionId, then model, then cwd.
  Ledger t;
  Msg x = Base();
  x.session = "s-b";
  x.model = "claude-a";
  x.cwd = "/a";
  Msg y = x;
  y.session = "s-a";
  y.model = "claude-z";
  y.cwd = "/z";
  Add(&t, x);
  Add(&t, y);
  EXPECT_EQ(S(t, Only(t).session), "s-a");
  EXPECT_EQ(S(t, Only(t).model), "claude-z");
  Msg z = y;
  z.model = "claude-b";
  z.cwd = "/zz";
  Add(&t, z);
  EXPECT_EQ(S(t, Only(t).model), "claude-b");
  EXPECT_EQ(S(t, Only(t).cwd), "/zz");
  Msg w = z;
  w.cwd = "/y";
  Add(&t, w);
  EXPECT_EQ(S(t, Only(t).cwd), "/y");
}

// Lines with copies, sidechains, ties, api errors, tool uses and a synthetic line.
std::vector<std::string> OrderCorpus() {
  std::vector<std::string> lines;
  Msg a = Base();
  a.output = 2;
  a.tools = {{"toolu_1", "Read"}};
  lines.push_back(Line(a));
  Msg a2 = a;
  a2.output = 136;
  a2.session = "sess-b";
  a2.cwd = "/Users/USER/other";
  a2.timestamp = "2026-04-21T00:29:54.704Z";  // same instant: session decides
  a2.tools = {{"toolu_1", "Read"}, {"toolu_2", "Bash"}};
  lines.push_back(Line(a2));
  Msg a3 = a;
  a3.sidechain = true;
  a3.timestamp = "2026-04-20T00:00:00.000Z";
  a3.cache_read = 99;
  a3.cost_usd = "0.25";
  lines.push_back(Line(a3));
  Msg b = Base();
  b.id = "msg_02";
  b.request_id.reset();
  b.speed = "fast";
  b.timestamp = "2026-04-21T03:00:00.000Z";
  b.web_search = 1;
  lines.push_back(Line(b));
  Msg err = Base();
  err.id = "msg_err";
  err.request_id.reset();
  err.model = "<synthetic>";
  err.api_error = true;
  err.timestamp = "2026-04-21T04:00:00.000Z";
  lines.push_back(Line(err));
  Msg err2 = err;
  err2.timestamp = "2026-04-21T03:30:00.000Z";
  err2.session = "sess-c";
  lines.push_back(Line(err2));
  return lines;
}

TEST_F(LedgerTest, A18_ResultDoesNotDependOnOrder) {
  const std::vector<std::string> lines = OrderCorpus();
  std::vector<size_t> perm(lines.size());
  std::iota(perm.begin(), perm.end(), 0);
  Ledger reference;
  for (const auto& l : lines) AddLine(&reference, parser_, l);
  const std::string want = DumpLedger(reference);
  ASSERT_EQ(reference.requests().size(), 2u);
  ASSERT_EQ(reference.api_errors().size(), 1u);
  int permutations = 0;
  do {
    Ledger one;
    for (size_t i : perm) AddLine(&one, parser_, lines[i]);
    ASSERT_EQ(DumpLedger(one), want) << "permutation " << permutations;
    // Split across two ledgers at every point, merged both ways.
    for (size_t cut = 0; cut <= perm.size(); ++cut) {
      Ledger left, right;
      for (size_t k = 0; k < perm.size(); ++k)
        AddLine(k < cut ? &left : &right, parser_, lines[perm[k]]);
      Ledger l2 = left, r2 = right;
      l2.Merge(right);
      r2.Merge(left);
      ASSERT_EQ(DumpLedger(l2), want) << "permutation " << permutations << " cut " << cut;
      ASSERT_EQ(DumpLedger(r2), want) << "permutation " << permutations << " cut " << cut;
    }
    ++permutations;
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_EQ(permutations, 720);
  // And the values themselves.
  auto k = [](const char* id, bool has, const char* req) {
    return testing_util::Printable(Ledger::DedupKey(id, has, req));
  };
  std::set<std::string> rows;
  std::istringstream in(want);
  for (std::string row; std::getline(in, row);) rows.insert(row);
  EXPECT_EQ(
      rows,
      (std::set<std::string>{
          "E " + k("msg_err", false, "") + " ts=1776742200000",
          "R " + k("msg_01", true, "req_01") +
              " ts=1776731394704 model=claude-opus-4-6 cwd=/Users/USER/src/webapp "
              "session=sess-a tok=4/136/0/0/99 web=0 cost=250000000000 fast=0 us=0 side=0",
          "R " + k("msg_02", false, "") +
              " ts=1776740400000 model=claude-opus-4-6 cwd=/Users/USER/src/webapp session=sess-a "
              "tok=4/6/0/0/0 web=1 cost=- fast=1 us=0 side=0",
          "S sess-a first=1776643200000 cwd=/Users/USER/src/webapp",
          "S sess-b first=1776731394704 cwd=/Users/USER/other",
          "T toolu_1 ts=1776643200000 name=Read",
          "T toolu_2 ts=1776731394704 name=Bash",
      }));
}

TEST_F(LedgerTest, A14_SyntheticLinesAreNotRequests) {
  Ledger l;
  Msg s = Base();
  s.model = "<synthetic>";
  s.tools = {{"toolu_s", "Read"}};
  Ledger::Change c = Add(&l, s);
  EXPECT_FALSE(c.counted);
  EXPECT_FALSE(c.new_request);
  EXPECT_TRUE(l.requests().empty());
  EXPECT_TRUE(l.sessions().empty());
  EXPECT_TRUE(l.tool_uses().empty());
  EXPECT_TRUE(l.api_errors().empty());  // not an API error either (no flag)
  // A request whose copy is synthetic is unaffected by it.
  Msg real = Base();
  Add(&l, real);
  Msg synth_copy = real;
  synth_copy.model = "<synthetic>";
  synth_copy.output = 999999;
  EXPECT_FALSE(Add(&l, synth_copy).counted);
  EXPECT_EQ(Only(l).tokens.output, 6u);
}

TEST_F(LedgerTest, A15_ApiErrorsOncePerKeyWhateverTheModel) {
  Ledger l;
  Msg e = Base();
  e.id = "msg_e1";
  e.request_id.reset();
  e.model = "<synthetic>";
  e.api_error = true;
  e.timestamp = "2026-09-23T10:31:00.000Z";
  Add(&l, e);
  Msg e_copy = e;
  e_copy.timestamp = "2026-09-23T10:30:00.000Z";
  Add(&l, e_copy);
  ASSERT_EQ(l.api_errors().size(), 1u);
  EXPECT_EQ(l.api_errors().at(Ledger::DedupKey("msg_e1", false, "")), 1790159400000);
  // An API error line with a real model is an error and a request.
  Msg real_err = Base();
  real_err.id = "msg_e2";
  real_err.api_error = true;
  Ledger::Change c = Add(&l, real_err);
  EXPECT_TRUE(c.counted);
  EXPECT_EQ(l.api_errors().size(), 2u);
  EXPECT_EQ(l.requests().size(), 1u);
  EXPECT_TRUE(l.api_errors().count(Ledger::DedupKey("msg_e2", true, "req_01")));
}

TEST_F(LedgerTest, A32_SessionsComeFromCountedLines) {
  Ledger l;
  Msg late = Base();
  late.id = "m1";
  late.timestamp = "2026-04-21T05:00:00.000Z";
  late.cwd = "/w/late";
  Msg early = Base();
  early.id = "m2";
  early.timestamp = "2026-04-21T01:00:00.000Z";
  early.cwd = "/w/early";
  Msg sub = Base();  // a subagent line of the same session
  sub.id = "m3";
  sub.sidechain = true;
  sub.timestamp = "2026-04-21T03:00:00.000Z";
  sub.cwd = "/w/sub";
  Add(&l, late);
  Add(&l, sub);
  Add(&l, early);
  ASSERT_EQ(l.sessions().size(), 1u);
  const auto& [sid, s] = *l.sessions().begin();
  EXPECT_EQ(S(l, sid), "sess-a");
  EXPECT_EQ(s.first_ms, 1776733200000);
  EXPECT_EQ(S(l, s.cwd), "/w/early");
  // Same instant: the smaller cwd.
  Msg tie = early;
  tie.id = "m4";
  tie.cwd = "/w/a-first";
  Add(&l, tie);
  EXPECT_EQ(S(l, l.sessions().begin()->second.cwd), "/w/a-first");
  // A session with only synthetic lines is no session.
  Msg synth = Base();
  synth.session = "sess-synth";
  synth.model = "<synthetic>";
  Add(&l, synth);
  EXPECT_EQ(l.sessions().size(), 1u);
}

TEST_F(LedgerTest, A33_ToolUsesAreDistinctIdsAtTheirEarliestLine) {
  Ledger l;
  Msg a = Base();
  a.tools = {{"toolu_1", "Read"}, {"toolu_2", "Bash"}};
  a.timestamp = "2026-04-21T02:00:00.000Z";
  Add(&l, a);
  Msg copy = a;  // the same blocks replayed later in a resumed session
  copy.session = "sess-resumed";
  copy.timestamp = "2026-04-22T02:00:00.000Z";
  Add(&l, copy);
  Msg earlier = a;
  earlier.id = "msg_other";
  earlier.tools = {{"toolu_2", "Bash"}};
  earlier.timestamp = "2026-04-21T01:00:00.000Z";
  Add(&l, earlier);
  ASSERT_EQ(l.tool_uses().size(), 2u);
  EXPECT_EQ(l.tool_uses().at("toolu_1").timestamp_ms, 1776736800000);
  EXPECT_EQ(S(l, l.tool_uses().at("toolu_1").name), "Read");
  EXPECT_EQ(l.tool_uses().at("toolu_2").timestamp_ms, 1776733200000);
}

TEST_F(LedgerTest, A27_ModelIsCanonicalInTheLedger) {
  Ledger l;
  Msg m = Base();
  m.model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
  Add(&l, m);
  Msg n = Base();
  n.id = "msg_x";
  n.model = "claude-sonnet-4-5@20250929";
  Add(&l, n);
  ASSERT_EQ(l.requests().size(), 2u);
  EXPECT_EQ(S(l, l.requests()[0].model), "claude-sonnet-4-5-20250929");
  EXPECT_EQ(l.requests()[0].model, l.requests()[1].model);
}

// ---- A39: US-only inference
// ----------------------------------------------------------------------

TEST_F(LedgerTest, A39_AnyUsCopyMakesTheRequestUsInEveryOrder) {
  Msg plain = Base();
  Msg us = Base();
  us.inference_geo = "us";
  us.output = 2;
  for (bool us_first : {false, true}) {
    Ledger l;
    Add(&l, us_first ? us : plain);
    Ledger::Change c = Add(&l, us_first ? plain : us);
    EXPECT_TRUE(Only(l).us_inference);
    EXPECT_EQ(c.effect.became_us, !us_first);
  }
  Ledger a, b;
  Add(&a, plain);
  Add(&b, us);
  a.Merge(b);
  EXPECT_TRUE(Only(a).us_inference);
  Ledger none;
  Add(&none, plain);
  EXPECT_FALSE(Only(none).us_inference);
}

// ---- A7: agent_progress copies
// --------------------------------------------------------------------

// The parent's agent_progress copy of a subagent line (docs/accounting.md A7).
std::string ProgressCopy(const Msg& sub, const std::string& outer_session,
                         const std::string& outer_cwd) {
  std::string own = Line(sub);
  // The nested record: type, message, requestId, uuid, timestamp of the subagent's line.
  size_t msg = own.find(R"("message":)");
  size_t req = own.find(R"(,"requestId")");
  std::string message =
      own.substr(msg, (req == std::string::npos ? own.find(R"(,"type":"assistant")") : req) - msg);
  std::string nested =
      R"({"type":"assistant",)" + message +
      (sub.request_id ? R"(,"requestId":")" + *sub.request_id + R"(")" : std::string()) +
      R"(,"uuid":"n1","timestamp":")" + sub.timestamp + R"("})";
  return R"({"parentUuid":"p","isSidechain":false,"cwd":")" + outer_cwd + R"(","sessionId":")" +
         outer_session + R"(","type":"progress","data":{"message":)" + nested +
         R"(,"type":"agent_progress","agentId":"a1"},"uuid":"u9","timestamp":"2030-01-01T00:00:00.000Z"})";
}

TEST_F(LedgerTest, A7_ProgressCopyAndTheSubagentsOwnLineAreOneRequest) {
  Msg sub = Base();
  sub.sidechain = true;
  sub.model = "claude-haiku-4-5-20251001";
  sub.output = 3;  // the copy was written while the response streamed
  sub.tools = {{"toolu_sub1", "Grep"}};
  Msg final_line = sub;
  final_line.output = 40;
  for (int order = 0; order < 2; ++order) {
    Ledger l;
    ParsedLine out;
    parser_.Parse(ProgressCopy(sub, sub.session, sub.cwd), &out);
    ASSERT_EQ(out.kind, LineKind::kUsage);
    ASSERT_TRUE(out.progress_copy);
    if (order == 0) l.Add(out);
    Add(&l, final_line);
    if (order == 1) {
      parser_.Parse(ProgressCopy(sub, sub.session, sub.cwd), &out);
      l.Add(out);
    }
    RequestEntry e = Only(l);
    EXPECT_EQ(e.tokens.output, 40u) << order;  // the maximum over copies (A17)
    EXPECT_TRUE(e.sidechain);
    EXPECT_EQ(S(l, e.model), "claude-haiku-4-5-20251001");
    EXPECT_EQ(l.tool_uses().size(), 1u);
    EXPECT_EQ(l.sessions().size(), 1u);
  }
}

TEST_F(LedgerTest, A7_ProgressCopyAloneCountsWhenTheSubagentTranscriptIsMissing) {
  Msg sub = Base();
  sub.sidechain = true;
  sub.input = 9;
  sub.output = 77;
  Ledger l;
  ParsedLine out;
  parser_.Parse(ProgressCopy(sub, "parent-session", "/Users/USER/src/parent"), &out);
  ASSERT_EQ(out.kind, LineKind::kUsage);
  l.Add(out);
  RequestEntry e = Only(l);
  EXPECT_EQ(e.tokens.input, 9u);
  EXPECT_EQ(e.tokens.output, 77u);
  EXPECT_TRUE(e.sidechain);
  EXPECT_EQ(S(l, e.session), "parent-session");  // the outer line's
  EXPECT_EQ(S(l, e.cwd), "/Users/USER/src/parent");
  EXPECT_EQ(e.timestamp_ms, 1776731394704);  // the nested record's
  ASSERT_EQ(l.sessions().size(), 1u);
  EXPECT_EQ(S(l, l.sessions().begin()->first), "parent-session");
}

TEST_F(LedgerTest, A7_A18_MainTranscriptCopyWinsAttributionOverAProgressCopy) {
  // A request in a main transcript (isSidechain:false) that a progress line also copied (a /btw
  // style replay): the main copy is preferred, even when the progress copy is earlier.
  Msg main_line = Base();
  main_line.timestamp = "2026-04-21T00:29:55.000Z";
  main_line.session = "sess-main";
  Msg earlier = main_line;
  earlier.timestamp = "2026-04-21T00:29:50.000Z";
  Ledger l;
  ParsedLine out;
  parser_.Parse(ProgressCopy(earlier, "sess-progress", "/elsewhere"), &out);
  l.Add(out);
  Add(&l, main_line);
  RequestEntry e = Only(l);
  EXPECT_FALSE(e.sidechain);
  EXPECT_EQ(S(l, e.session), "sess-main");
  EXPECT_EQ(e.timestamp_ms, 1776731395000);
}

// ---- A38: prompts
// ----------------------------------------------------------------------------------

ParsedLine PromptLine(const std::string& uuid, const std::string& ts, const std::string& session,
                      const std::string& cwd) {
  static std::deque<std::string> keep;  // the views of a ParsedLine must outlive it
  ParsedLine p;
  p.kind = LineKind::kPrompt;
  p.uuid = keep.emplace_back(uuid);
  EXPECT_TRUE(ParseIso8601Ms(ts, &p.timestamp_ms));
  p.session_id = keep.emplace_back(session);
  p.cwd = keep.emplace_back(cwd);
  return p;
}

TEST_F(LedgerTest, A38_PromptsOncePerUuidAtTheirEarliestCopy) {
  const std::string u1 = "18b7c636-19c0-4199-8f42-ee2f5e8d22a2";
  const std::string u2 = "7dc49413-9085-4129-bdce-2e3beed562f1";
  std::vector<ParsedLine> lines = {
      PromptLine(u1, "2026-04-21T00:00:05Z", "sess-b", "/w/a"),
      PromptLine(u1, "2026-04-21T00:00:01Z", "sess-z", "/w/late"),  // earliest copy wins
      PromptLine(u1, "2026-04-21T00:00:01Z", "sess-c", "/w/b"),     // tie: smallest session
      PromptLine(u2, "2026-04-21T00:00:09Z", "sess-b", "/w/a"),
      PromptLine(u2, "2026-04-21T00:00:09Z", "sess-b", "/w/0"),  // tie: smallest cwd
      PromptLine("not-a-uuid", "2026-04-21T00:00:02Z", "sess-b", "/w/a"),
  };
  std::vector<size_t> order(lines.size());
  std::iota(order.begin(), order.end(), 0);
  std::string want;
  do {
    Ledger l;
    for (size_t i : order) l.AddPrompt(lines[i]);
    // Also as two ledgers merged.
    Ledger left, right;
    for (size_t k = 0; k < order.size(); ++k) (k % 2 ? left : right).AddPrompt(lines[order[k]]);
    left.Merge(right);
    for (const Ledger* x : {&l, &left}) {
      std::map<std::string, std::string> got;
      for (const auto& [uuid, p] : x->prompts()) {
        got[uuid] = std::to_string(p.timestamp_ms) + " " + x->strings().Get(p.session) + " " +
                    x->strings().Get(p.cwd);
      }
      ASSERT_EQ(got.size(), 3u);
      EXPECT_EQ(got[u1], "1776729601000 sess-c /w/b");
      EXPECT_EQ(got[u2], "1776729609000 sess-b /w/0");
      EXPECT_EQ(got["not-a-uuid"], "1776729602000 sess-b /w/a");
      if (want.empty()) want = DumpLedger(*x);
      EXPECT_EQ(DumpLedger(*x), want);
    }
  } while (std::next_permutation(order.begin(), order.end()));
  Ledger l;
  EXPECT_TRUE(l.AddPrompt(lines[0]));
  EXPECT_FALSE(l.AddPrompt(lines[1]));
}

TEST(PromptKey, A38_UuidsPackInto17BytesAndEveryKeyDecodes) {
  std::string k;
  Ledger::AppendPromptKey("18b7c636-19c0-4199-8f42-ee2f5e8d22a2", &k);
  EXPECT_EQ(k.size(), 17u);
  EXPECT_EQ(Ledger::DecodePromptKey(k), "18b7c636-19c0-4199-8f42-ee2f5e8d22a2");
  // Anything else is kept as is (uppercase too, so that different strings stay different).
  std::vector<std::string> ids = {"18B7C636-19C0-4199-8F42-EE2F5E8D22A2",
                                  "18b7c636-19c0-4199-8f42-ee2f5e8d22a",
                                  "18b7c636-19c0-4199-8f42-ee2f5e8d22a2x",
                                  "18b7c636x19c0-4199-8f42-ee2f5e8d22a2",
                                  "u1",
                                  "",
                                  std::string("\0\x01", 2),
                                  "00000000-0000-0000-0000-000000000000",
                                  "ffffffff-ffff-ffff-ffff-ffffffffffff",
                                  std::string("\x00", 1) + std::string(16, 'a')};
  std::set<std::string> keys;
  for (const std::string& id : ids) {
    std::string key;
    Ledger::AppendPromptKey(id, &key);
    EXPECT_EQ(Ledger::DecodePromptKey(key), id);
    keys.insert(key);
  }
  EXPECT_EQ(keys.size(), ids.size());
}

}  // namespace
}  // namespace ccmon
