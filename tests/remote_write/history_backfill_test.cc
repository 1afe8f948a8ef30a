// BackfillRemoteWrite with a transport that decodes what it receives: the requests carry exactly
// the history's samples, in time order across requests, each series ascending, metadata first.
#include "remote_write/history_backfill.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <stop_token>

#include "exposition/history.h"
#include "remote_write/write_request.h"
#include "testing/fake_clock.h"

namespace ccmon {
namespace {

class DecodingTransport : public HttpTransport {
 public:
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    rw::WriteRequest req;
    Status s = rw::Decode(request.body, 64 << 20, &req);
    EXPECT_TRUE(s.ok()) << s.message();
    requests.push_back(req);
    const bool reject = reject_from && requests.size() >= reject_from;
    response->status = reject ? reject_status : 204;
    if (reject) response->body = reject_body;
    if (stop_at && requests.size() == stop_at) stop->request_stop();
    return Status::Ok();
  }
  std::vector<rw::WriteRequest> requests;
  size_t reject_from = 0;  // 1-based request number from which to answer reject_status
  unsigned reject_status = 400;
  std::string reject_body = "out of bounds";
  size_t stop_at = 0;  // 1-based request number after which to request `stop`
  std::stop_source* stop = nullptr;
};

// A sender over `transport` on the fake clock; no test here expects a retry.
struct Harness {
  explicit Harness(DecodingTransport* transport)
      : sender(Options(), transport, &clock, [] { return 0.5; }) {}
  ~Harness() { EXPECT_TRUE(clock.waits().empty()) << "no retry expected"; }
  static RemoteWriteSenderOptions Options() {
    RemoteWriteSenderOptions o;
    o.url = "http://x/api/v1/write";
    return o;
  }
  testing_util::FakeClock clock;
  RemoteWriteSender sender;
};

std::vector<FamilyEvents> Families() {
  FamilyEvents tokens;
  tokens.desc = FamilyDesc{"claude_tokens", MetricType::kCounter,          "Tokens.", "tokens",
                           false,           {"device", "project", "type"}, {}};
  tokens.series_labels = {{"d", "p1", "input"}, {"d", "", "output"}};  // empty project label
  FamilyEvents cost;
  cost.desc = FamilyDesc{
      "claude_cost_per_request_usd", MetricType::kHistogram, "Cost.", "usd", true, {"device"}, {}};
  cost.series_labels = {{"d"}};
  const int64_t t0 = 1767225600000;  // 2026-01-01
  for (int i = 0; i < 40; ++i) {
    const int64_t t = t0 + int64_t(i) * 3600 * 1000 * 7;  // every 7 hours: gaps and restatements
    tokens.events.push_back(MetricEvent{uint32_t(i % 2), t, 100 + i});
    cost.events.push_back(MetricEvent{0, t, __int128(1000000000) * (i + 1)});
  }
  return {tokens, cost};
}

TEST(RemoteWriteBackfill, SendsTheHistoryInTimeOrderAndNothingElse) {
  const auto fams = Families();
  DecodingTransport transport;
  Harness h(&transport);
  BackfillStats stats;
  ASSERT_TRUE(BackfillRemoteWrite(fams, 60000, 50, &h.sender, &stats).ok());

  // What the OpenMetrics history holds, per series (labels as remote-write sends them).
  struct Sink : HistorySink {
    void BeginFamily(const FamilyDesc&) override {}
    void Sample(const HistorySeries& s, __int128 value, int64_t ms) override {
      std::vector<std::pair<std::string, std::string>> labels = {{"__name__", s.name}};
      for (size_t i = 0; i < s.label_names->size(); ++i)
        if (!(*s.label_values)[i].empty())
          labels.emplace_back((*s.label_names)[i], (*s.label_values)[i]);
      if (s.extra_name) labels.emplace_back(s.extra_name, s.extra_value);
      std::sort(labels.begin(), labels.end());
      want[labels].push_back({ms, std::stod(FormatValue(value, s.usd))});
      ++n;
    }
    std::map<std::vector<std::pair<std::string, std::string>>, std::vector<rw::Sample>> want;
    size_t n = 0;
  } sink;
  EmitHistory(fams, 60000, &sink);

  std::map<std::vector<std::pair<std::string, std::string>>, std::vector<rw::Sample>> got;
  int64_t previous_request_max = INT64_MIN;
  size_t total = 0;
  for (size_t r = 0; r < transport.requests.size(); ++r) {
    const rw::WriteRequest& req = transport.requests[r];
    EXPECT_EQ(req.metadata.size(), r == 0 ? 2u : 0u) << "request " << r;
    EXPECT_LE(req.sample_count(), 50u);
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    for (const rw::Series& s : req.series) {
      for (const rw::Sample& x : s.samples) {
        min_ts = std::min(min_ts, x.timestamp_ms);
        max_ts = std::max(max_ts, x.timestamp_ms);
      }
      auto& dst = got[s.labels];
      dst.insert(dst.end(), s.samples.begin(), s.samples.end());
      total += s.samples.size();
    }
    EXPECT_GE(min_ts, previous_request_max) << "request " << r << " goes back in time";
    previous_request_max = max_ts;
  }
  EXPECT_EQ(got, sink.want);
  EXPECT_EQ(total, sink.n);
  EXPECT_EQ(stats.samples_sent, sink.n);
  EXPECT_EQ(stats.requests, transport.requests.size());
  EXPECT_EQ(transport.requests[0].metadata[0],
            (rw::Metadata{rw::MetricKind::kCounter, "claude_tokens", "Tokens.", "tokens"}));
}

// The agent's --label k=v: every series carries them, besides its own labels.
TEST(RemoteWriteBackfill, ExtraLabelsAreOnEverySeries) {
  DecodingTransport transport;
  Harness h(&transport);
  BackfillStats stats;
  ASSERT_TRUE(
      BackfillRemoteWrite(Families(), 60000, 50, &h.sender, &stats, {}, {{"team", "core"}}).ok());
  size_t series = 0;
  for (const rw::WriteRequest& req : transport.requests) {
    for (const rw::Series& s : req.series) {
      ++series;
      EXPECT_NE(std::find(s.labels.begin(), s.labels.end(),
                          std::pair<std::string, std::string>("team", "core")),
                s.labels.end());
      EXPECT_NE(std::find_if(s.labels.begin(), s.labels.end(),
                             [](const auto& l) { return l.first == "device"; }),
                s.labels.end());
    }
  }
  EXPECT_GT(series, 0u);
}

TEST(RemoteWriteBackfill, StopsAtARejectedRequestAndSaysHowFarItGot) {
  DecodingTransport transport;
  transport.reject_from = 3;
  Harness h(&transport);
  BackfillStats stats;
  Status s = BackfillRemoteWrite(Families(), 60000, 50, &h.sender, &stats);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("remote-write request 3 (samples 101-150"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("rejected: HTTP 400: out of bounds"), std::string::npos);
  EXPECT_NE(s.message().find("the 100 samples before it were stored"), std::string::npos);
  EXPECT_EQ(transport.requests.size(), 3u);
  EXPECT_EQ(stats.samples_sent, 100u);
  // The typed answer, for replay's hint (no searching in the message).
  EXPECT_EQ(stats.failed_send.outcome, SendOutcome::kRejected);
  EXPECT_EQ(stats.failed_send.last.status, 400u);
  EXPECT_EQ(stats.failed_send.last.reason, RejectReason::kOutOfBounds);
}

TEST(RemoteWriteBackfill, APrometheusTooOldSample500StopsItWithItsReason) {
  DecodingTransport transport;
  transport.reject_from = 1;
  transport.reject_status = 500;
  transport.reject_body = "too old sample";
  Harness h(&transport);
  BackfillStats stats;
  Status s = BackfillRemoteWrite(Families(), 60000, 50, &h.sender, &stats);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rejected: HTTP 500: too old sample"), std::string::npos)
      << s.message();
  EXPECT_EQ(transport.requests.size(), 1u);  // not retried
  EXPECT_TRUE(IsTooOldForReceiver(stats.failed_send.last.reason));
}

TEST(RemoteWriteBackfill, AnAcceptedBackfillHasNoFailedSend) {
  DecodingTransport transport;
  Harness h(&transport);
  BackfillStats stats;
  ASSERT_TRUE(BackfillRemoteWrite(Families(), 60000, 50, &h.sender, &stats).ok());
  EXPECT_EQ(stats.failed_send.outcome, SendOutcome::kSent);
  EXPECT_EQ(stats.failed_send.last.reason, RejectReason::kNone);
}

TEST(RemoteWriteBackfill, AStopEndsItAfterTheCurrentRequest) {
  DecodingTransport transport;
  std::stop_source stop;
  transport.stop_at = 2;
  transport.stop = &stop;
  Harness h(&transport);
  BackfillStats stats;
  Status s = BackfillRemoteWrite(Families(), 60000, 50, &h.sender, &stats, stop.get_token());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("remote-write request 3 (samples 101-150) was not delivered: "
                             "stopped after 0 attempts"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(transport.requests.size(), 2u);
  EXPECT_EQ(stats.samples_sent, 100u);
  EXPECT_EQ(stats.failed_send.outcome, SendOutcome::kStopped);
}

TEST(RemoteWriteBackfill, AnEmptyHistorySendsOneEmptyRequestThatChecksTheTarget) {
  DecodingTransport transport;
  Harness h(&transport);
  BackfillStats stats;
  ASSERT_TRUE(BackfillRemoteWrite({}, 60000, 50, &h.sender, &stats).ok());
  ASSERT_EQ(transport.requests.size(), 1u);
  EXPECT_TRUE(transport.requests[0].series.empty());
  EXPECT_EQ(stats.samples_sent, 0u);
}

}  // namespace
}  // namespace ccmon
