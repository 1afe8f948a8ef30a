// RemoteWriteSender with a scripted transport and the fake clock (no sleeps): which answers are
// retried and how they are classified, how long it waits (backoff, jitter, Retry-After), when
// it gives up, how it stops, what it counts, and what goes on the wire. One test stops a sender
// that waits on the real clock from another thread.
#include "remote_write/remote_write_sender.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "http/http_client.h"
#include "testing/fake_clock.h"

namespace ccmon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing_util::FakeClock;

struct Answer {
  bool network_error = false;
  unsigned status = 204;
  std::string body = {};
  std::vector<HttpHeader> headers = {};
  bool invalid_request = false;
};

Answer Net() { return Answer{true}; }
Answer Http(unsigned status, std::string body = {}, std::vector<HttpHeader> headers = {}) {
  return Answer{false, status, std::move(body), std::move(headers)};
}
Answer RetryAfter(unsigned status, std::string value) {
  return Http(status, "", {{"Retry-After", std::move(value)}});
}

// Answers from a script; records every request. Thread-safe, and signals each exchange (the
// real-clock stop test waits for the first one).
class ScriptedTransport : public HttpTransport {
 public:
  explicit ScriptedTransport(std::deque<Answer> answers) : answers_(std::move(answers)) {}
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    Answer a;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      if (answers_.empty()) {
        cv_.notify_all();
        return Status::IoError("script exhausted");
      }
      a = answers_.front();
      answers_.pop_front();
      cv_.notify_all();
    }
    if (a.invalid_request) return Status::InvalidArgument("URL port 99999 is out of range");
    if (a.network_error) return Status::IoError("receiver: connect: Connection refused");
    response->status = a.status;
    response->body = a.body;
    response->headers = a.headers;
    return Status::Ok();
  }
  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // Waits until `n` exchanges started, or `deadline` passes.
  bool WaitForExchanges(size_t n, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return requests_.size() >= n; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Answer> answers_;
  std::vector<HttpRequest> requests_;
};

RemoteWriteSenderOptions Options() {
  RemoteWriteSenderOptions o;
  o.url = "http://receiver/api/v1/write";
  o.headers = {{"Authorization", "Bearer t0k"}, {"X-Scope-OrgID", "team-a"}};
  o.min_backoff = milliseconds(100);
  o.max_backoff = milliseconds(800);
  o.max_retry_time = seconds(60);
  return o;
}

std::string Header(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "<absent>";
}

TEST(RemoteWriteSender, SendsWithTheRemoteWriteHeaders) {
  ScriptedTransport t({Http(204)});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("BODY");
  EXPECT_EQ(r.outcome, SendOutcome::kSent);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.retries(), 0);
  EXPECT_EQ(r.last.kind, AnswerKind::kHttp);
  EXPECT_EQ(r.last.status, 204u);
  EXPECT_EQ(r.Describe(), "sent");
  ASSERT_EQ(t.requests().size(), 1u);
  const HttpRequest req = t.requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "http://receiver/api/v1/write");
  EXPECT_EQ(req.body, "BODY");
  EXPECT_EQ(Header(req, "Content-Encoding"), "snappy");
  EXPECT_EQ(Header(req, "Content-Type"), "application/x-protobuf");
  EXPECT_EQ(Header(req, "X-Prometheus-Remote-Write-Version"), "0.1.0");
  EXPECT_EQ(Header(req, "User-Agent"), "ccmon/0.1");
  EXPECT_EQ(Header(req, "Authorization"), "Bearer t0k");
  EXPECT_EQ(Header(req, "X-Scope-OrgID"), "team-a");
  EXPECT_TRUE(clock.waits().empty());
}

// Every status class and the network error: retried or final, and how it is classified.
TEST(RemoteWriteSender, RetryTableForEveryStatusClass) {
  struct Row {
    Answer first;
    bool retried;
    SendOutcome outcome;  // when not retried
    AnswerKind kind;
  };
  const Row rows[] = {
      {Http(200), false, SendOutcome::kSent, AnswerKind::kHttp},
      {Http(204), false, SendOutcome::kSent, AnswerKind::kHttp},
      {Http(301, "", {{"Location", "http://elsewhere/"}}), false, SendOutcome::kRejected,
       AnswerKind::kHttp},
      {Http(400, "bad"), false, SendOutcome::kRejected, AnswerKind::kHttp},
      {Http(401, "no"), false, SendOutcome::kRejected, AnswerKind::kHttp},
      {Http(403, "no"), false, SendOutcome::kRejected, AnswerKind::kHttp},
      {Http(404, "no"), false, SendOutcome::kRejected, AnswerKind::kHttp},
      {Http(409, "conflict"), false, SendOutcome::kRejected, AnswerKind::kHttp},
      {Http(413, "too big"), false, SendOutcome::kRejected, AnswerKind::kHttp},
      {Http(429, "slow down"), true, SendOutcome::kSent, AnswerKind::kHttp},
      {Http(500, "boom"), true, SendOutcome::kSent, AnswerKind::kHttp},
      {Http(502, "bad gateway"), true, SendOutcome::kSent, AnswerKind::kHttp},
      {Http(503, "unavailable"), true, SendOutcome::kSent, AnswerKind::kHttp},
      {Net(), true, SendOutcome::kSent, AnswerKind::kNetworkError},
      {Answer{false, 0, {}, {}, true}, false, SendOutcome::kRejected, AnswerKind::kInvalidRequest},
  };
  for (const Row& row : rows) {
    const std::string name = row.first.network_error     ? "network error"
                             : row.first.invalid_request ? "invalid request"
                                                         : std::to_string(row.first.status);
    ScriptedTransport t({row.first, Http(204)});
    FakeClock clock;
    RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
    SendResult r = sender.Send("B");
    SenderStats st = sender.stats();
    if (row.retried) {
      EXPECT_EQ(r.outcome, SendOutcome::kSent) << name;
      EXPECT_EQ(r.attempts, 2) << name;
      EXPECT_EQ(st.retries, 1u) << name;
      EXPECT_EQ(clock.waits(), std::vector<milliseconds>{milliseconds(50)}) << name;
    } else {
      EXPECT_EQ(r.outcome, row.outcome) << name;
      EXPECT_EQ(r.attempts, 1) << name;
      EXPECT_EQ(st.retries, 0u) << name;
      EXPECT_TRUE(clock.waits().empty()) << name;
      EXPECT_EQ(r.last.kind, row.kind) << name;
      EXPECT_FALSE(r.last.retryable) << name;
      if (row.kind == AnswerKind::kHttp) {
        EXPECT_EQ(r.last.status, row.first.status) << name;
        EXPECT_EQ(r.last.status_class(), row.first.status / 100) << name;
      }
    }
    EXPECT_EQ(t.requests().size(), size_t(r.attempts)) << name;
  }
}

// retry_auth_failures (the agent's): 401 and 403 are retried like an outage, other 4xx stay
// final, and without the option they are final as the spec says.
TEST(RemoteWriteSender, AuthFailuresAreRetriedOnlyWhenAsked) {
  for (unsigned status : {401u, 403u}) {
    ScriptedTransport t({Http(status, "bad token"), Http(status, "bad token"), Http(204)});
    FakeClock clock;
    RemoteWriteSenderOptions o = Options();
    o.retry_auth_failures = true;
    RemoteWriteSender sender(o, &t, &clock, [] { return 0.5; });
    SendResult r = sender.Send("B");
    EXPECT_EQ(r.outcome, SendOutcome::kSent) << status;
    EXPECT_EQ(r.attempts, 3) << status;
    EXPECT_EQ(clock.waits(), (std::vector<milliseconds>{milliseconds(50), milliseconds(100)}))
        << status;

    ScriptedTransport final_t({Http(status, "bad token"), Http(204)});
    RemoteWriteSender strict(Options(), &final_t, &clock, [] { return 0.5; });
    EXPECT_EQ(strict.Send("B").outcome, SendOutcome::kRejected) << status;
  }
  for (unsigned status : {400u, 404u, 407u, 413u}) {
    HttpResponse res;
    res.status = status;
    const SendAnswer a = ClassifyAnswer(Status::Ok(), res, 0, seconds(300), true);
    EXPECT_FALSE(a.retryable) << status;
    EXPECT_FALSE(IsAuthFailure(a)) << status;
  }
  HttpResponse forbidden;
  forbidden.status = 403;
  EXPECT_TRUE(IsAuthFailure(ClassifyAnswer(Status::Ok(), forbidden, 0, seconds(300))));
  // A transport error is never an auth failure, whatever its text.
  EXPECT_FALSE(IsAuthFailure(
      ClassifyAnswer(Status::IoError("HTTP 401"), HttpResponse{}, 0, seconds(300), true)));
}

TEST(RemoteWriteSender, OnRetrySeesEveryRetriedAnswerButNotTheLast) {
  ScriptedTransport t({Http(503, "busy"), Net(), Http(204)});
  FakeClock clock;
  RemoteWriteSenderOptions o = Options();
  std::vector<std::pair<int, std::string>> seen;
  o.on_retry = [&](const SendAnswer& a, int attempt) { seen.emplace_back(attempt, a.Describe()); };
  RemoteWriteSender sender(o, &t, &clock, [] { return 0.5; });
  EXPECT_EQ(sender.Send("B").outcome, SendOutcome::kSent);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::pair<int, std::string>(1, "HTTP 503: busy")));
  EXPECT_EQ(seen[1].first, 2);

  // A final answer is not a retry.
  ScriptedTransport final_t({Http(400, "bad")});
  seen.clear();
  RemoteWriteSender strict(o, &final_t, &clock, [] { return 0.5; });
  EXPECT_EQ(strict.Send("B").outcome, SendOutcome::kRejected);
  EXPECT_TRUE(seen.empty());
}

TEST(RemoteWriteSender, RejectionsDescribeTheAnswer) {
  ScriptedTransport t({Http(400, "out of bounds\n")});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendOutcome::kRejected);
  EXPECT_EQ(r.Describe(), "HTTP 400: out of bounds");
  EXPECT_EQ(r.last.reason, RejectReason::kOutOfBounds);

  ScriptedTransport redirect({Http(307, "ignored", {{"Location", "http://new/api/v1/write"}})});
  RemoteWriteSender s2(Options(), &redirect, &clock, [] { return 0.5; });
  EXPECT_EQ(s2.Send("B").Describe(),
            "HTTP 307: redirect to http://new/api/v1/write (not followed: give the final URL)");

  // A hostile body cannot put line breaks or terminal escapes into the message.
  ScriptedTransport hostile({Http(400, "line1\r\nline2\x1b[31m red\n")});
  RemoteWriteSender s3(Options(), &hostile, &clock, [] { return 0.5; });
  EXPECT_EQ(s3.Send("B").Describe(), "HTTP 400: line1  line2?[31m red");
}

// The typed reason of Prometheus's refusals, decided once, in ClassifyAnswer.
TEST(RemoteWriteSender, ClassifiesPrometheusRefusals) {
  struct Row {
    unsigned status;
    const char* body;
    RejectReason reason;
    bool too_old_for_receiver;
    bool retryable;
  };
  const Row rows[] = {
      {500, "too old sample", RejectReason::kSampleTooOld, true, false},
      {400, "too old sample", RejectReason::kSampleTooOld, true, false},
      {400, "out of bounds", RejectReason::kOutOfBounds, true, false},
      {400, "out of order sample", RejectReason::kOutOfOrder, true, false},
      {400, "duplicate sample for timestamp", RejectReason::kDuplicateSample, false, false},
      {400, "snappy: corrupt input", RejectReason::kNone, false, false},
      {500, "label name \"case\" is not unique: invalid sample", RejectReason::kNone, false, true},
      {503, "", RejectReason::kNone, false, true},
  };
  for (const Row& row : rows) {
    HttpResponse res;
    res.status = row.status;
    res.body = row.body;
    SendAnswer a = ClassifyAnswer(Status::Ok(), res, 0, seconds(300));
    EXPECT_EQ(a.reason, row.reason) << row.body;
    EXPECT_EQ(IsTooOldForReceiver(a.reason), row.too_old_for_receiver) << row.body;
    EXPECT_EQ(a.retryable, row.retryable) << row.status << " " << row.body;
  }
  // A 2xx is never a refusal, whatever its body says.
  HttpResponse ok;
  ok.status = 204;
  ok.body = "out of bounds";
  EXPECT_EQ(ClassifyAnswer(Status::Ok(), ok, 0, seconds(300)).reason, RejectReason::kNone);
}

TEST(RemoteWriteSender, PrometheusTooOldSample500IsPermanent) {
  ScriptedTransport t({Http(500, "too old sample"), Http(204)});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendOutcome::kRejected);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.last.reason, RejectReason::kSampleTooOld);
  EXPECT_TRUE(clock.waits().empty());
}

TEST(RemoteWriteSender, BacksOffWithFullJitterDoublingToTheCap) {
  ScriptedTransport t({Net(), Http(500), Http(503), Http(502), Http(500), Http(500), Http(204)});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendOutcome::kSent);
  EXPECT_EQ(r.attempts, 7);
  EXPECT_EQ(r.retries(), 6);
  // Half of 100, 200, 400, then 800 (the cap) three times.
  const std::vector<milliseconds> want = {milliseconds(50),  milliseconds(100), milliseconds(200),
                                          milliseconds(400), milliseconds(400), milliseconds(400)};
  EXPECT_EQ(clock.waits(), want);
  EXPECT_EQ(r.waited, milliseconds(1550));
  for (const HttpRequest& req : t.requests()) EXPECT_EQ(req.body, "B");  // the same request
}

TEST(RemoteWriteSender, JitterSpansZeroToTheBackoff) {
  ScriptedTransport t({Http(503), Http(503), Http(204)});
  FakeClock clock;
  double draws[] = {0.0, 0.999};
  int i = 0;
  RemoteWriteSender sender(Options(), &t, &clock, [&] { return draws[i++]; });
  EXPECT_EQ(sender.Send("B").outcome, SendOutcome::kSent);
  EXPECT_EQ(clock.waits(), (std::vector<milliseconds>{milliseconds(0), milliseconds(199)}));
}

TEST(RemoteWriteSender, RetryAfterInSecondsIsHonouredOn429And5xx) {
  ScriptedTransport t({RetryAfter(429, "3"), RetryAfter(503, "7"), Http(500), Http(204)});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendOutcome::kSent);
  // 3 s and 7 s as asked; the backoff did not advance meanwhile (then half of 100 ms).
  EXPECT_EQ(clock.waits(), (std::vector<milliseconds>{seconds(3), seconds(7), milliseconds(50)}));
}

TEST(RemoteWriteSender, RetryAfterAsAnHttpDate) {
  FakeClock clock;  // 2026-01-01T00:00:00Z
  ScriptedTransport t({RetryAfter(503, "Thu, 01 Jan 2026 00:00:42 GMT"), Http(204)});
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  EXPECT_EQ(sender.Send("B").outcome, SendOutcome::kSent);
  EXPECT_EQ(clock.waits(), std::vector<milliseconds>{seconds(42)});
}

TEST(RemoteWriteSender, RetryAfterMalformedZeroOrPastFallsBackToTheBackoff) {
  for (const char* value : {"soon", "-5", "1.5", "Thu, 01 Jan 2026 00:00:42 UTC", "0",
                            "Wed, 31 Dec 2025 23:59:00 GMT", ""}) {
    ScriptedTransport t({RetryAfter(503, value), Http(204)});
    FakeClock clock;
    RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
    SendResult r = sender.Send("B");
    EXPECT_EQ(r.outcome, SendOutcome::kSent) << value;
    EXPECT_EQ(clock.waits(), std::vector<milliseconds>{milliseconds(50)}) << value;
  }
  // What the classification keeps: nothing for a malformed value, 0 for zero or a past date.
  HttpResponse res;
  res.status = 503;
  res.headers = {{"Retry-After", "soon"}};
  EXPECT_FALSE(ClassifyAnswer(Status::Ok(), res, 1767225600000, seconds(300)).retry_after);
  res.headers = {{"retry-after", "Wed, 31 Dec 2025 23:59:00 GMT"}};
  EXPECT_EQ(ClassifyAnswer(Status::Ok(), res, 1767225600000, seconds(300)).retry_after,
            milliseconds(0));
}

TEST(RemoteWriteSender, RetryAfterIsClampedToItsMaximum) {
  RemoteWriteSenderOptions o = Options();
  o.max_retry_after = seconds(20);
  o.max_retry_time = seconds(0);  // never give up: the clamp alone bounds the wait
  ScriptedTransport t({RetryAfter(429, "999999999999999999999"),
                       RetryAfter(503, "Fri, 31 Dec 9999 23:59:59 GMT"), Http(204)});
  FakeClock clock;
  RemoteWriteSender sender(o, &t, &clock, [] { return 0.5; });
  EXPECT_EQ(sender.Send("B").outcome, SendOutcome::kSent);
  EXPECT_EQ(clock.waits(), (std::vector<milliseconds>{seconds(20), seconds(20)}));
}

TEST(RemoteWriteSender, GivesUpAfterMaxRetryTime) {
  std::deque<Answer> answers(100, Net());
  ScriptedTransport t(answers);
  FakeClock clock;
  RemoteWriteSenderOptions o = Options();
  o.max_retry_time = seconds(2);
  RemoteWriteSender sender(o, &t, &clock, [] { return 0.999; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendOutcome::kGaveUp);
  EXPECT_EQ(r.last.kind, AnswerKind::kNetworkError);
  EXPECT_NE(r.Describe().find("gave up after " + std::to_string(r.attempts) +
                              " attempts: receiver: connect: Connection refused"),
            std::string::npos)
      << r.Describe();
  EXPECT_LE(clock.total_waited(), seconds(2));
  EXPECT_GT(clock.total_waited(), milliseconds(1000));  // it did retry for most of the time
  EXPECT_EQ(size_t(r.attempts), clock.waits().size() + 1);
  EXPECT_EQ(sender.stats().gave_up, 1u);
}

TEST(RemoteWriteSender, ARetryAfterBeyondTheGiveUpTimeGivesUpAtOnce) {
  RemoteWriteSenderOptions o = Options();
  o.max_retry_time = seconds(10);
  ScriptedTransport t({RetryAfter(503, "30"), Http(204)});
  FakeClock clock;
  RemoteWriteSender sender(o, &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendOutcome::kGaveUp);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.last.retry_after, seconds(30));
  EXPECT_TRUE(clock.waits().empty());
}

TEST(RemoteWriteSender, TimeSpentInExchangesCountsTowardsTheGiveUpTime) {
  // Each failed exchange takes 4 s (a connect timeout); waits are 0 (jitter draw 0).
  class SlowTransport : public HttpTransport {
   public:
    explicit SlowTransport(FakeClock* clock) : clock_(clock) {}
    Status Exchange(const HttpRequest&, HttpResponse*) override {
      ++calls;
      clock_->AdvanceBy(seconds(4));
      return Status::IoError("timeout");
    }
    int calls = 0;

   private:
    FakeClock* clock_;
  };
  FakeClock clock;
  SlowTransport t(&clock);
  RemoteWriteSenderOptions o = Options();
  o.max_retry_time = seconds(10);
  RemoteWriteSender sender(o, &t, &clock, [] { return 0.0; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendOutcome::kGaveUp);
  EXPECT_EQ(t.calls, 3);  // at 4 s and 8 s it may retry; at 12 s it is past 10 s
}

TEST(RemoteWriteSender, StopDuringAWaitReturnsStopped) {
  ScriptedTransport t({Http(503), Http(503), Http(204)});
  FakeClock clock;
  std::stop_source stop;
  int waits_seen = 0;
  clock.set_on_wait([&](milliseconds) {
    if (++waits_seen == 2) stop.request_stop();  // during the second backoff
  });
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B", stop.get_token());
  EXPECT_EQ(r.outcome, SendOutcome::kStopped);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(t.requests().size(), 2u);  // no exchange after the stop
  EXPECT_EQ(clock.stopped_waits(), 1);
  EXPECT_EQ(r.Describe(), "stopped after 2 attempts: HTTP 503");
  EXPECT_EQ(sender.stats().stopped, 1u);
}

TEST(RemoteWriteSender, AStopRequestedBeforeSendMakesNoAttempt) {
  ScriptedTransport t({Http(204)});
  FakeClock clock;
  std::stop_source stop;
  stop.request_stop();
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B", stop.get_token());
  EXPECT_EQ(r.outcome, SendOutcome::kStopped);
  EXPECT_EQ(r.attempts, 0);
  EXPECT_EQ(r.last.kind, AnswerKind::kNone);
  EXPECT_TRUE(t.requests().empty());
}

// The real clock: a sender in a one-hour backoff, stopped from another thread, returns at once.
TEST(RemoteWriteSender, StopFromAnotherThreadEndsARealBackoffPromptly) {
  std::deque<Answer> answers(10, Http(503));
  ScriptedTransport t(answers);
  RemoteWriteSenderOptions o = Options();
  o.min_backoff = std::chrono::hours(1);
  o.max_backoff = std::chrono::hours(1);
  o.max_retry_time = seconds(0);
  RemoteWriteSender sender(o, &t, Clock::Real(), [] { return 0.999; });
  std::stop_source stop;
  std::promise<SendResult> done;
  std::future<SendResult> result = done.get_future();
  std::thread sending([&] { done.set_value(sender.Send("B", stop.get_token())); });
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(t.WaitForExchanges(1, start + seconds(30)));
  // The sender now waits ~1 h; it must not be done on its own.
  EXPECT_EQ(result.wait_for(milliseconds(0)), std::future_status::timeout);
  stop.request_stop();
  const bool returned = result.wait_for(seconds(10)) == std::future_status::ready;
  if (!returned) {
    ADD_FAILURE() << "the sender did not return within 10 s of the stop";
    std::abort();  // the thread would otherwise wait an hour
  }
  sending.join();
  SendResult r = result.get();
  EXPECT_EQ(r.outcome, SendOutcome::kStopped);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.waited, milliseconds(0));  // the wait the stop cut short is not counted
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(40));
}

TEST(RemoteWriteSender, CountsAttemptsRetriesAndOutcomes) {
  ScriptedTransport t({Http(503), Http(204),               // sent after 1 retry
                       Http(400),                          // rejected
                       Net(), Net(), Net(), Net(), Net(),  // gave up
                       Http(204)});                        // sent
  FakeClock clock;
  RemoteWriteSenderOptions o = Options();
  o.max_retry_time = seconds(1);
  RemoteWriteSender sender(o, &t, &clock, [] { return 0.999; });
  EXPECT_EQ(sender.Send("1").outcome, SendOutcome::kSent);
  EXPECT_EQ(sender.Send("2").outcome, SendOutcome::kRejected);
  SendResult gave_up = sender.Send("3");
  EXPECT_EQ(gave_up.outcome, SendOutcome::kGaveUp);
  // Backoffs 0.999 x 100, 200, 400 = 99 + 199 + 399 = 697 ms; the next, 799 ms, would pass 1 s.
  EXPECT_EQ(gave_up.attempts, 4);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(sender.Send("4", stop.get_token()).outcome, SendOutcome::kStopped);
  // The script's remaining answers: Net, Http(204).
  EXPECT_EQ(sender.Send("5").outcome, SendOutcome::kSent);
  SenderStats want;
  want.sends = 5;
  want.attempts = 2 + 1 + 4 + 0 + 2;
  want.retries = 1 + 0 + 3 + 0 + 1;
  want.sent = 2;
  want.rejected = 1;
  want.gave_up = 1;
  want.stopped = 1;
  EXPECT_EQ(sender.stats(), want);
}

TEST(RemoteWriteSender, ReportsTheCountsAReceiverSaysItWrote) {
  ScriptedTransport t({Http(204, "",
                            {{"X-Prometheus-Remote-Write-Samples-Written", "17"},
                             {"x-prometheus-remote-write-exemplars-written", "2"}}),
                       Http(204)});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  ASSERT_TRUE(r.last.written.has_value());
  EXPECT_EQ(*r.last.written, (WrittenCounts{17, 0, 2}));
  EXPECT_FALSE(sender.Send("B").last.written.has_value());  // a 1.0 receiver says nothing
}

TEST(RemoteWriteSender, ARequestTheTransportRefusesIsRejectedWithoutRetrying) {
  // kInvalidArgument from the transport: final, not a network error to retry for 5 minutes.
  ScriptedTransport t({Answer{false, 0, {}, {}, true}});
  FakeClock clock;
  RemoteWriteSender sender(Options(), &t, &clock, [] { return 0.5; });
  SendResult r = sender.Send("B");
  EXPECT_EQ(r.outcome, SendOutcome::kRejected);
  EXPECT_EQ(r.last.kind, AnswerKind::kInvalidRequest);
  EXPECT_EQ(r.Describe(), "URL port 99999 is out of range");

  // The same through the real transport: a bad port or an injected header never connects.
  RealHttpTransport real(HttpClientOptions{});
  for (const auto& [url, header] : std::vector<std::pair<std::string, HttpHeader>>{
           {"http://127.0.0.1:99999/api/v1/write", {"X-Ok", "1"}},
           {"http://127.0.0.1:1/api/v1/write", {"X-Evil", "a\r\nInjected: 1"}}}) {
    RemoteWriteSenderOptions o = Options();
    o.url = url;
    o.headers = {header};
    RemoteWriteSender s(o, &real, &clock, [] { return 0.5; });
    SendResult rr = s.Send("B");
    EXPECT_EQ(rr.outcome, SendOutcome::kRejected) << url;
    EXPECT_EQ(rr.last.kind, AnswerKind::kInvalidRequest) << rr.Describe();
    EXPECT_EQ(rr.attempts, 1);
  }
  EXPECT_TRUE(clock.waits().empty());
}

TEST(RemoteWriteSender, NamesOfOutcomesAndReasons) {
  EXPECT_STREQ(SendOutcomeName(SendOutcome::kGaveUp), "gave_up");
  EXPECT_STREQ(SendOutcomeName(SendOutcome::kStopped), "stopped");
  EXPECT_STREQ(RejectReasonName(RejectReason::kSampleTooOld), "too_old_sample");
}

}  // namespace
}  // namespace ccmon
