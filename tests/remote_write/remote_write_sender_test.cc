// RemoteWriteSender with a scripted transport and a fake clock: which answers are retried, how
// long it waits, when it gives up, and what goes on the wire.
#include "remote_write/remote_write_sender.h"

#include <gtest/gtest.h>

#include <deque>

namespace ccmon {
namespace {

using std::chrono::milliseconds;

struct Answer {
  // A constructor, so that the scripts can name only the leading fields ({false, 503}) without
  // -Wmissing-field-initializers.
  Answer(bool network_error = false, unsigned status = 204, std::string body = "",
         std::string retry_after = "")
      : network_error(network_error),
        status(status),
        body(std::move(body)),
        retry_after(std::move(retry_after)) {}
  bool network_error = false;
  unsigned status = 204;
  std::string body;
  std::string retry_after;
};

class ScriptedTransport : public HttpTransport {
 public:
  explicit ScriptedTransport(std::deque<Answer> answers) : answers_(std::move(answers)) {}
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    requests.push_back(request);
    if (answers_.empty()) return Status::IoError("script exhausted");
    Answer a = answers_.front();
    answers_.pop_front();
    if (a.network_error) return Status::IoError("connect: Connection refused");
    response->status = a.status;
    response->body = a.body;
    response->retry_after = a.retry_after;
    return Status::Ok();
  }
  std::vector<HttpRequest> requests;

 private:
  std::deque<Answer> answers_;
};

class FakeClock : public SenderClock {
 public:
  std::chrono::steady_clock::time_point Now() override { return now; }
  void SleepFor(milliseconds d) override {
    sleeps.push_back(d);
    now += d;
  }
  std::chrono::steady_clock::time_point now{};
  std::vector<milliseconds> sleeps;
};

RemoteWriteSenderOptions Options() {
  RemoteWriteSenderOptions o;
  o.url = "http://receiver/api/v1/write";
  o.headers = {{"Authorization", "Bearer t0k"}, {"X-Scope-OrgID", "team-a"}};
  o.min_backoff = milliseconds(100);
  o.max_backoff = milliseconds(800);
  o.max_retry_time = std::chrono::seconds(60);
  return o;
}

std::string Header(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "<absent>";
}

TEST(RemoteWriteSender, SendsWithTheRemoteWriteHeaders) {
  ScriptedTransport t({Answer{}});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("BODY");
  EXPECT_EQ(r.outcome, SendResult::Outcome::kSent);
  EXPECT_EQ(r.attempts, 1);
  ASSERT_EQ(t.requests.size(), 1u);
  const HttpRequest& req = t.requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "http://receiver/api/v1/write");
  EXPECT_EQ(req.body, "BODY");
  EXPECT_EQ(Header(req, "Content-Encoding"), "snappy");
  EXPECT_EQ(Header(req, "Content-Type"), "application/x-protobuf");
  EXPECT_EQ(Header(req, "X-Prometheus-Remote-Write-Version"), "0.1.0");
  EXPECT_EQ(Header(req, "User-Agent"), "ccmon/0.1");
  EXPECT_EQ(Header(req, "Authorization"), "Bearer t0k");
  EXPECT_EQ(Header(req, "X-Scope-OrgID"), "team-a");
  EXPECT_TRUE(clock.sleeps.empty());
}

TEST(RemoteWriteSender, RetriesNetworkErrors5xxAnd429WithJitteredBackoff) {
  ScriptedTransport t({{true},
                       {false, 500, "boom"},
                       {false, 503},
                       {false, 429, "", "3"},
                       {false, 502},
                       {false, 500},
                       {false, 500},
                       {false, 204}});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendResult::Outcome::kSent);
  EXPECT_EQ(r.attempts, 8);
  // Half of 100, 200, 400 ms; Retry-After 3 s (the backoff does not advance); then 800 capped.
  EXPECT_EQ(clock.sleeps,
            (std::vector<milliseconds>{milliseconds(50), milliseconds(100), milliseconds(200),
                                       milliseconds(3000), milliseconds(400), milliseconds(400),
                                       milliseconds(400)}));
  for (const HttpRequest& req : t.requests) EXPECT_EQ(req.body, "B");  // the same request
}

TEST(RemoteWriteSender, JitterSpansZeroToTheBackoff) {
  ScriptedTransport t({{false, 503}, {false, 503}, {false, 204}});
  FakeClock clock;
  double draws[] = {0.0, 0.999};
  int i = 0;
  RemoteWriteSender sender(Options(), &t, &clock, [&] { return draws[i++]; });
  EXPECT_EQ(sender.Send("B").outcome, SendResult::Outcome::kSent);
  EXPECT_EQ(clock.sleeps, (std::vector<milliseconds>{milliseconds(0), milliseconds(199)}));
}

TEST(RemoteWriteSender, OtherStatusesAreRejectedWithoutRetry) {
  for (unsigned status : {400u, 401u, 403u, 404u, 413u, 301u}) {
    ScriptedTransport t({{false, status, "out of bounds\n"}, {false, 204}});
    FakeClock clock;
    RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
    SendResult r = sender.Send("B");
    EXPECT_EQ(r.outcome, SendResult::Outcome::kRejected) << status;
    EXPECT_EQ(r.attempts, 1) << status;
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.message, "HTTP " + std::to_string(status) + ": out of bounds") << r.message;
    EXPECT_TRUE(clock.sleeps.empty());
  }
}

TEST(RemoteWriteSender, PrometheusTooOldSample500IsPermanent) {
  ScriptedTransport t({{false, 500, "too old sample"}, {false, 204}});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendResult::Outcome::kRejected);
  EXPECT_EQ(r.attempts, 1);
}

TEST(RemoteWriteSender, GivesUpAfterMaxRetryTime) {
  std::deque<Answer> answers(100, Answer{true});
  ScriptedTransport t(answers);
  FakeClock clock;
  RemoteWriteSenderOptions o = Options();
  o.max_retry_time = std::chrono::seconds(2);
  RemoteWriteSender sender(o, &t, &clock, [] { return 0.999; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendResult::Outcome::kGaveUp);
  EXPECT_NE(r.message.find("Connection refused"), std::string::npos) << r.message;
  milliseconds slept{0};
  for (auto d : clock.sleeps) slept += d;
  EXPECT_LE(slept, std::chrono::seconds(2));
  EXPECT_GT(slept, milliseconds(1000));  // it did retry for most of the allowed time
  EXPECT_EQ(size_t(r.attempts), clock.sleeps.size() + 1);
}

}  // namespace
}  // namespace ccmon
