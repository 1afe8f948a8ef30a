// QueueManager (src/remote_write/queue_manager.h) with in-memory shard sources, scripted
// transports and the fake clock: order per shard, full batches for a backlog, the deadline of
// a trickle, retries (500, 503, 429 + Retry-After), no retry on 400 and the rejection acked
// with its reason, a give-up that keeps the batch, source failures, and stopping during a
// backoff, an idle wait and a hanging exchange (those on the real clock, bounded at 1 s).
// Waits are on conditions with deadlines, never sleeps.
#include "remote_write/queue_manager.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "remote_write/write_request.h"
#include "testing/fake_clock.h"

namespace ccmon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing_util::FakeClock;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr auto kTestDeadline = seconds(20);  // how long a test waits for a condition at most

// One pending entry's payload: `samples` samples of series {__name__="m", s=<series>} at
// timestamps first_ts, first_ts+1, ... (value = timestamp).
std::string Payload(const std::string& series, int64_t first_ts, int samples) {
  rw::WriteRequest req;
  rw::Series s;
  s.labels = {{"__name__", "m"}, {"s", series}};
  for (int i = 0; i < samples; ++i) s.samples.push_back({first_ts + i, double(first_ts + i)});
  req.series.push_back(std::move(s));
  std::string compressed, raw;
  EXPECT_TRUE(rw::Encode(req, &compressed).ok());
  EXPECT_TRUE(snappy::Uncompress(compressed.data(), compressed.size(), &raw));
  return raw;
}

struct AckRecord {
  uint64_t through = 0;
  AckResult result;
};

// An in-memory outbox of one shard. Waits without a deadline block on a condition variable
// until an entry is appended (or the stop); waits with one are fake time: they advance the
// fake clock to the deadline (as FakeClock::WaitFor does) unless data is already there.
class MemSource : public ShardSource {
 public:
  explicit MemSource(FakeClock* clock) : clock_(clock) {}

  // Appends an entry created at `created_unix_ms` (default: the fake clock's now).
  uint64_t Append(std::string payload, size_t samples, int64_t created_unix_ms = -1) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back({++next_cursor_, std::move(payload), samples,
                        created_unix_ms >= 0 ? created_unix_ms : clock_->NowUnixMs()});
    cv_.notify_all();
    return next_cursor_;
  }
  void FailNextPeek(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    peek_failure_ = std::move(s);
  }
  void FailNextAck(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    ack_failure_ = std::move(s);
  }

  Status Peek(size_t max_samples, size_t max_bytes, SourceBatch* out) override {
    std::lock_guard<std::mutex> lock(mu_);
    *out = SourceBatch{};
    if (!peek_failure_.ok()) return std::exchange(peek_failure_, Status::Ok());
    ++peeks_;
    for (const Entry& e : entries_) {
      if (out->entries > 0 && (out->samples + e.samples > max_samples ||
                               out->payload.size() + e.payload.size() > max_bytes)) {
        out->more = true;
        break;
      }
      if (out->entries == 0) out->oldest_created_unix_ms = e.created_unix_ms;
      out->payload += e.payload;
      out->samples += e.samples;
      out->through_cursor = e.cursor;
      ++out->entries;
    }
    return Status::Ok();
  }

  bool WaitForData(uint64_t after_cursor, SteadyTime deadline, std::stop_token stop) override {
    std::unique_lock<std::mutex> lock(mu_);
    auto has_data = [&] { return !entries_.empty() && entries_.back().cursor > after_cursor; };
    if (deadline == SteadyTime::max()) {
      ++idle_waits_;
      cv_.notify_all();
      return cv_.wait(lock, stop, has_data);
    }
    if (has_data()) return true;
    lock.unlock();
    const auto d = std::chrono::duration_cast<milliseconds>(deadline - clock_->Now());
    if (d.count() > 0) clock_->WaitFor(d, stop);
    lock.lock();
    return has_data();
  }

  Status Ack(uint64_t through_cursor, const AckResult& result) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ack_failure_.ok()) return std::exchange(ack_failure_, Status::Ok());
    while (!entries_.empty() && entries_.front().cursor <= through_cursor) entries_.pop_front();
    acks_.push_back({through_cursor, result});
    cv_.notify_all();
    return Status::Ok();
  }

  // Waits until nothing is pending and the shard waits idle for more (true), or kTestDeadline.
  bool WaitUntilDrainedAndIdle(int idle_waits_at_least = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kTestDeadline,
                        [&] { return entries_.empty() && idle_waits_ >= idle_waits_at_least; });
  }
  bool WaitForAcks(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kTestDeadline, [&] { return acks_.size() >= n; });
  }
  std::vector<AckRecord> acks() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acks_;
  }
  size_t pending() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    uint64_t cursor;
    std::string payload;
    size_t samples;
    int64_t created_unix_ms;
  };
  FakeClock* clock_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Entry> entries_;
  uint64_t next_cursor_ = 0;
  Status peek_failure_, ack_failure_;
  std::vector<AckRecord> acks_;
  int peeks_ = 0;
  int idle_waits_ = 0;
};

struct Answer {
  unsigned status = 204;
  std::string body;
  std::vector<HttpHeader> headers;
  bool network_error = false;
  bool invalid_request = false;
  bool hang = false;  // block until the shard's stop is requested
};
Answer Http(unsigned status, std::string body = "", std::vector<HttpHeader> headers = {}) {
  Answer a;
  a.status = status;
  a.body = std::move(body);
  a.headers = std::move(headers);
  return a;
}
Answer NetworkError() {
  Answer a;
  a.network_error = true;
  return a;
}
Answer InvalidRequest() {
  Answer a;
  a.invalid_request = true;
  return a;
}
Answer Hang() {
  Answer a;
  a.hang = true;
  return a;
}

// What one exchange carried: the decoded samples (series label s -> timestamps) and when.
struct Sent {
  size_t shard;
  int64_t at_unix_ms;
  std::map<std::string, std::vector<int64_t>> samples;
  size_t sample_count = 0;
};

// Scripted transports for every shard (one script per shard; 204 once it runs out) and a log
// of what they carried.
class Receiver {
 public:
  Receiver(Clock* clock, size_t shards) : clock_(clock), scripts_(shards) {}
  void Script(size_t shard, std::deque<Answer> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    scripts_[shard] = std::move(answers);
  }
  TransportFactory Factory() {
    return [this](size_t shard, std::stop_token stop) -> std::unique_ptr<HttpTransport> {
      return std::make_unique<Transport>(this, shard, stop);
    };
  }
  std::vector<Sent> sent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }
  std::vector<Sent> sent(size_t shard) const {
    std::vector<Sent> out;
    for (const Sent& s : sent()) {
      if (s.shard == shard) out.push_back(s);
    }
    return out;
  }
  bool WaitForExchanges(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kTestDeadline, [&] { return sent_.size() >= n; });
  }

 private:
  class Transport : public HttpTransport {
   public:
    Transport(Receiver* r, size_t shard, std::stop_token stop)
        : r_(r), shard_(shard), stop_(stop) {}
    Status Exchange(const HttpRequest& request, HttpResponse* response) override {
      Sent s{shard_, r_->clock_->NowUnixMs(), {}};
      rw::WriteRequest decoded;
      EXPECT_TRUE(rw::Decode(request.body, size_t(64) << 20, &decoded).ok());
      for (const rw::Series& series : decoded.series) {
        std::string key;
        for (const auto& [n, v] : series.labels) {
          if (n == "s") key = v;
        }
        for (const rw::Sample& x : series.samples) s.samples[key].push_back(x.timestamp_ms);
        s.sample_count += series.samples.size();
      }
      Answer a;
      {
        std::lock_guard<std::mutex> lock(r_->mu_);
        r_->sent_.push_back(s);
        auto& script = r_->scripts_[shard_];
        if (!script.empty()) {
          a = script.front();
          script.pop_front();
        }
        r_->cv_.notify_all();
      }
      if (a.hang) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, stop_, [] { return false; });
        return Status::IoError("exchange cancelled");
      }
      if (a.invalid_request) return Status::InvalidArgument("bad header");
      if (a.network_error) return Status::IoError("connect: Connection refused");
      response->status = a.status;
      response->body = a.body;
      response->headers = a.headers;
      return Status::Ok();
    }

   private:
    Receiver* r_;
    size_t shard_;
    std::stop_token stop_;
  };

  Clock* clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::deque<Answer>> scripts_;
  std::vector<Sent> sent_;
};

QueueManagerOptions Options(size_t shards, Receiver* receiver) {
  QueueManagerOptions o;
  o.shards = shards;
  o.sender.url = "http://receiver.test/api/v1/write";
  o.transport_factory = receiver->Factory();
  o.random01 = [] { return 0.5; };
  return o;
}

std::vector<ShardSource*> Sources(std::vector<std::unique_ptr<MemSource>>& v) {
  std::vector<ShardSource*> out;
  for (auto& s : v) out.push_back(s.get());
  return out;
}

TEST(QueueManager, EachShardSendsItsEntriesInOrderInParallel) {
  FakeClock clock;
  constexpr size_t kShards = 3;
  Receiver receiver(&clock, kShards);
  std::vector<std::unique_ptr<MemSource>> sources;
  const int64_t old = clock.NowUnixMs() - 60000;  // an old backlog: sent without waiting
  for (size_t shard = 0; shard < kShards; ++shard) {
    sources.push_back(std::make_unique<MemSource>(&clock));
    // Two series per shard, interleaved, 10 samples per entry, 50 entries.
    for (int i = 0; i < 50; ++i) {
      const std::string series = "s" + std::to_string(shard) + (i % 2 ? "b" : "a");
      sources.back()->Append(Payload(series, 1000 + i * 10, 10), 10, old);
    }
  }
  QueueManagerOptions opt = Options(kShards, &receiver);
  opt.max_samples_per_send = 100;
  QueueManager qm(opt, Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  for (auto& s : sources) ASSERT_TRUE(s->WaitUntilDrainedAndIdle());
  qm.Stop();

  for (size_t shard = 0; shard < kShards; ++shard) {
    const std::vector<Sent> sent = receiver.sent(shard);
    ASSERT_EQ(sent.size(), 5u) << shard;  // 500 samples in full batches of 100
    std::map<std::string, std::vector<int64_t>> all;
    for (const Sent& s : sent) {
      EXPECT_EQ(s.sample_count, 100u);
      for (const auto& [k, ts] : s.samples) all[k].insert(all[k].end(), ts.begin(), ts.end());
    }
    ASSERT_EQ(all.size(), 2u);
    for (const auto& [k, ts] : all) {
      EXPECT_EQ(ts.size(), 250u) << k;
      EXPECT_TRUE(std::is_sorted(ts.begin(), ts.end())) << k;
      EXPECT_EQ(k.substr(0, 2), "s" + std::to_string(shard));  // never on another shard
    }
    const std::vector<AckRecord> acks = sources[shard]->acks();
    ASSERT_EQ(acks.size(), 5u);
    for (size_t i = 0; i < acks.size(); ++i) {
      EXPECT_EQ(acks[i].through, 10 * (i + 1));
      EXPECT_EQ(acks[i].result.kind, AckResult::Kind::kSent);
    }
  }
  const QueueStats st = qm.stats();
  EXPECT_EQ(st.batches_sent, 15u);
  EXPECT_EQ(st.samples_sent, 1500u);
  EXPECT_EQ(st.retries, 0u);
  EXPECT_EQ(st.last_success_unix_ms, clock.NowUnixMs());
  ASSERT_EQ(st.shards.size(), kShards);
  for (const ShardStats& s : st.shards) {
    EXPECT_EQ(s.batches_sent, 5u);
    EXPECT_EQ(s.pending_samples, 0u);
    EXPECT_FALSE(s.in_flight);
  }
  EXPECT_EQ(clock.total_waited(), milliseconds(0));  // nothing waited for the deadline
}

TEST(QueueManager, AFreshBacklogGoesOutInFullBatchesAtOnceAndOnlyTheTailWaits) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  const int64_t t0 = clock.NowUnixMs();
  for (int i = 0; i < 45; ++i) sources[0]->Append(Payload("a", i * 100, 100), 100);  // 4500
  QueueManagerOptions opt = Options(1, &receiver);  // 2000 per send, 5 s deadline
  QueueManager qm(opt, Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  const std::vector<Sent> sent = receiver.sent();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].sample_count, 2000u);
  EXPECT_EQ(sent[1].sample_count, 2000u);
  EXPECT_EQ(sent[2].sample_count, 500u);
  EXPECT_EQ(sent[0].at_unix_ms, t0);  // full batches: no wait
  EXPECT_EQ(sent[1].at_unix_ms, t0);
  EXPECT_EQ(sent[2].at_unix_ms, t0 + 5000);  // the small tail: its oldest entry's deadline
}

TEST(QueueManager, ATrickleWaitsForTheDeadlineFromItsOldestEntry) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  const int64_t t0 = clock.NowUnixMs();
  // Created 2 s and 1 s ago: the batch is due 3 s from now, and both go together.
  sources[0]->Append(Payload("a", 1, 1), 1, t0 - 2000);
  sources[0]->Append(Payload("a", 2, 1), 1, t0 - 1000);
  QueueManager qm(Options(1, &receiver), Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  // A new line after the queue went idle: sent 5 s after its creation.
  const int64_t t1 = clock.NowUnixMs();
  sources[0]->Append(Payload("a", 3, 1), 1);
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle(2));
  qm.Stop();
  const std::vector<Sent> sent = receiver.sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].at_unix_ms, t0 + 3000);
  EXPECT_EQ(sent[0].samples.at("a"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(sent[1].at_unix_ms, t1 + 5000);
}

TEST(QueueManager, AnEntryStampedInTheFutureWaitsOneDeadlineAtMost) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  const int64_t t0 = clock.NowUnixMs();
  sources[0]->Append(Payload("a", 1, 1), 1, t0 + 3600 * 1000);  // the wall clock stepped back
  QueueManager qm(Options(1, &receiver), Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  ASSERT_EQ(receiver.sent().size(), 1u);
  EXPECT_EQ(receiver.sent()[0].at_unix_ms, t0 + 5000);
}

TEST(QueueManager, AFactoryWithoutATransportIsAnErrorNotACrash) {
  FakeClock clock;
  MemSource source(&clock);
  source.Append(Payload("a", 1, 1), 1, 0);
  QueueManagerOptions opt;
  opt.sender.url = "http://receiver.test/api/v1/write";
  opt.transport_factory = [](size_t, std::stop_token) { return std::unique_ptr<HttpTransport>(); };
  QueueManager qm(opt, {&source}, &clock);
  ASSERT_TRUE(qm.Start().ok());
  qm.Stop();
  EXPECT_EQ(qm.stats().errors, 1u);
  EXPECT_EQ(source.pending(), 1u);
}

TEST(QueueManager, ZeroDeadlineSendsEveryEntryAtOnce) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  sources[0]->Append(Payload("a", 1, 1), 1);
  QueueManagerOptions opt = Options(1, &receiver);
  opt.batch_send_deadline = milliseconds(0);
  QueueManager qm(opt, Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  ASSERT_EQ(receiver.sent().size(), 1u);
  EXPECT_EQ(clock.total_waited(), milliseconds(0));
}

TEST(QueueManager, RetriesServerErrorsAndHonoursRetryAfter) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  receiver.Script(0, {Http(500, "internal"), Http(503),
                      Http(429, "slow down", {{"Retry-After", "7"}}), NetworkError(), Http(204)});
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  sources[0]->Append(Payload("a", 1, 3), 3, 0);
  QueueManager qm(Options(1, &receiver), Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  const std::vector<Sent> sent = receiver.sent();
  ASSERT_EQ(sent.size(), 5u);
  for (const Sent& s : sent) EXPECT_EQ(s.samples.at("a"), (std::vector<int64_t>{1, 2, 3}));
  // Jitter 0.5 of the backoff 30, 60 ms; then Retry-After 7 s (backoff not advanced); 120/2.
  EXPECT_EQ(clock.waits(), (std::vector<milliseconds>{milliseconds(15), milliseconds(30),
                                                      milliseconds(7000), milliseconds(60)}));
  const QueueStats st = qm.stats();
  EXPECT_EQ(st.retries, 4u);
  EXPECT_EQ(st.samples_retried, 12u);
  EXPECT_EQ(st.batches_sent, 1u);
  EXPECT_EQ(st.batches_rejected, 0u);
  ASSERT_EQ(sources[0]->acks().size(), 1u);
  EXPECT_EQ(sources[0]->acks()[0].result.kind, AckResult::Kind::kSent);
  EXPECT_EQ(sources[0]->acks()[0].result.http_status, 204u);
  // Each failed attempt was shown as it happened; the success came after the last of them.
  EXPECT_EQ(st.last_error.rfind("shard 0: attempt 4 failed: ", 0), 0u) << st.last_error;
  EXPECT_NE(st.last_error.find("(retrying)"), std::string::npos) << st.last_error;
  EXPECT_GE(st.last_success_unix_ms, st.last_error_unix_ms);
}

TEST(QueueManager, A400IsNotRetriedButAckedAsRejectedWithItsReasonAndTheQueueMovesOn) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  receiver.Script(0, {Http(400, "out of order sample"), Http(404, "no such path"), Http(200)});
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  QueueManagerOptions opt = Options(1, &receiver);
  opt.max_samples_per_send = 2;  // one entry per request
  sources[0]->Append(Payload("a", 1, 2), 2, 0);
  sources[0]->Append(Payload("a", 3, 2), 2, 0);
  sources[0]->Append(Payload("a", 5, 2), 2, 0);
  QueueManager qm(opt, Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  EXPECT_EQ(receiver.sent().size(), 3u);  // no retries
  const std::vector<AckRecord> acks = sources[0]->acks();
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0].result.kind, AckResult::Kind::kRejected);
  EXPECT_EQ(acks[0].result.http_status, 400u);
  EXPECT_EQ(acks[0].result.reason, RejectReason::kOutOfOrder);
  EXPECT_EQ(acks[0].result.detail, "HTTP 400: out of order sample");
  EXPECT_EQ(acks[1].result.kind, AckResult::Kind::kRejected);
  EXPECT_EQ(acks[1].result.reason, RejectReason::kNone);
  EXPECT_EQ(acks[2].result.kind, AckResult::Kind::kSent);
  const QueueStats st = qm.stats();
  EXPECT_EQ(st.batches_rejected, 2u);
  EXPECT_EQ(st.samples_rejected, 4u);
  EXPECT_EQ(st.rejected(RejectReason::kOutOfOrder), 1u);
  EXPECT_EQ(st.rejected(RejectReason::kNone), 1u);
  EXPECT_EQ(st.batches_sent, 1u);
  EXPECT_EQ(st.retries, 0u);
  EXPECT_NE(st.last_error.find("HTTP 404: no such path"), std::string::npos) << st.last_error;
  EXPECT_EQ(clock.total_waited(), milliseconds(0));
}

TEST(QueueManager, TooOldSampleIsFinalAndCountedByReason) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  receiver.Script(0, {Http(500, "too old sample")});
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  sources[0]->Append(Payload("a", 1, 1), 1, 0);
  QueueManager qm(Options(1, &receiver), Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  EXPECT_EQ(receiver.sent().size(), 1u);
  EXPECT_EQ(qm.stats().rejected(RejectReason::kSampleTooOld), 1u);
}

TEST(QueueManager, AGiveUpKeepsTheBatchAtTheHeadAndTriesAgainAfterAPause) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  // 503 with Retry-After 2 s: the third wait would pass the 5 s retry time.
  std::deque<Answer> script;
  for (int i = 0; i < 3; ++i) script.push_back(Http(503, "", {{"Retry-After", "2"}}));
  script.push_back(Http(204));
  receiver.Script(0, script);
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  sources[0]->Append(Payload("a", 1, 1), 1, 0);
  sources[0]->Append(Payload("a", 2, 1), 1, 0);
  QueueManagerOptions opt = Options(1, &receiver);
  opt.sender.max_retry_time = seconds(5);
  opt.pause_after_give_up = seconds(10);
  opt.max_samples_per_send = 1;
  QueueManager qm(opt, Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  const std::vector<Sent> sent = receiver.sent();
  ASSERT_EQ(sent.size(), 5u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(sent[i].samples.at("a"), std::vector<int64_t>{1}) << i;
  EXPECT_EQ(sent[4].samples.at("a"), std::vector<int64_t>{2});
  EXPECT_EQ(clock.waits(), (std::vector<milliseconds>{seconds(2), seconds(2), seconds(10)}));
  const QueueStats st = qm.stats();
  EXPECT_EQ(st.gave_up, 1u);
  EXPECT_EQ(st.batches_sent, 2u);
  EXPECT_EQ(st.batches_rejected, 0u);
  EXPECT_NE(st.last_error.find("gave up after 3 attempts: HTTP 503"), std::string::npos)
      << st.last_error;
  const std::vector<AckRecord> acks = sources[0]->acks();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].through, 1u);
}

// The agent's setting: a refused credential keeps the batch (given up on after the retry time,
// kept at the head, tried again after the pause) until the receiver takes it; nothing is acked
// as rejected.
TEST(QueueManager, AnAuthFailureWithRetryAuthFailuresKeepsTheBatchUntilAccepted) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  std::deque<Answer> script;
  for (int i = 0; i < 4; ++i) script.push_back(Http(401, "token expired"));
  script.push_back(Http(204));
  receiver.Script(0, script);
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  sources[0]->Append(Payload("a", 1, 1), 1, 0);
  QueueManagerOptions opt = Options(1, &receiver);
  opt.sender.retry_auth_failures = true;
  opt.sender.max_retry_time = seconds(1);
  opt.sender.min_backoff = milliseconds(1000);
  opt.sender.max_backoff = milliseconds(1000);
  opt.pause_after_give_up = seconds(10);
  QueueManager qm(opt, Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  const QueueStats st = qm.stats();
  EXPECT_EQ(receiver.sent().size(), 5u);
  EXPECT_EQ(st.batches_sent, 1u);
  EXPECT_EQ(st.batches_rejected, 0u);
  EXPECT_EQ(st.gave_up, 1u);
  EXPECT_NE(st.last_error.find("HTTP 401: token expired"), std::string::npos) << st.last_error;
  const std::vector<AckRecord> acks = sources[0]->acks();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].through, 1u);
  EXPECT_EQ(acks[0].result.kind, AckResult::Kind::kSent);
}

TEST(QueueManager, ARequestRefusedAsInvalidIsKeptNotRejected) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  receiver.Script(0, {InvalidRequest(), Http(204)});
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  sources[0]->Append(Payload("a", 1, 1), 1, 0);
  QueueManager qm(Options(1, &receiver), Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  ASSERT_EQ(sources[0]->acks().size(), 1u);
  EXPECT_EQ(sources[0]->acks()[0].result.kind, AckResult::Kind::kSent);
  const QueueStats st = qm.stats();
  EXPECT_EQ(st.errors, 1u);
  EXPECT_EQ(st.batches_rejected, 0u);
  EXPECT_EQ(clock.waits(), std::vector<milliseconds>{seconds(1)});  // pause_after_error
}

TEST(QueueManager, SourceFailuresArePausedAndRetriedNothingLost) {
  FakeClock clock;
  Receiver receiver(&clock, 1);
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  sources[0]->Append(Payload("a", 1, 1), 1, 0);
  sources[0]->FailNextPeek(Status::IoError("disk on fire"));
  sources[0]->FailNextAck(Status::IoError("write failed"));
  QueueManager qm(Options(1, &receiver), Sources(sources), &clock);
  ASSERT_TRUE(qm.Start().ok());
  ASSERT_TRUE(sources[0]->WaitUntilDrainedAndIdle());
  qm.Stop();
  // The ack failed once: the batch was sent again (a duplicate, never a loss).
  EXPECT_EQ(receiver.sent().size(), 2u);
  EXPECT_EQ(sources[0]->acks().size(), 1u);
  const QueueStats st = qm.stats();
  EXPECT_EQ(st.errors, 2u);
  EXPECT_EQ(st.batches_sent, 1u);
  EXPECT_NE(st.last_error.find("ack: write failed"), std::string::npos) << st.last_error;
}

TEST(QueueManager, StartRefusesBadOptions) {
  FakeClock clock;
  Receiver receiver(&clock, 2);
  MemSource a(&clock), b(&clock);
  {
    QueueManager qm(Options(2, &receiver), {&a}, &clock);
    EXPECT_EQ(qm.Start().code(), Status::Code::kInvalidArgument);
  }
  {
    QueueManager qm(Options(0, &receiver), {}, &clock);
    EXPECT_EQ(qm.Start().code(), Status::Code::kInvalidArgument);
  }
  {
    QueueManagerOptions o = Options(kMaxShards + 1, &receiver);
    QueueManager qm(o, std::vector<ShardSource*>(kMaxShards + 1, &a), &clock);
    EXPECT_EQ(qm.Start().code(), Status::Code::kInvalidArgument);
  }
  {
    QueueManagerOptions o = Options(2, &receiver);
    o.max_samples_per_send = 0;
    QueueManager qm(o, {&a, &b}, &clock);
    EXPECT_EQ(qm.Start().code(), Status::Code::kInvalidArgument);
  }
  {
    QueueManager qm(Options(2, &receiver), {&a, nullptr}, &clock);
    EXPECT_EQ(qm.Start().code(), Status::Code::kInvalidArgument);
  }
  {
    QueueManager qm(Options(2, &receiver), {&a, &b}, &clock);
    ASSERT_TRUE(qm.Start().ok());
    EXPECT_EQ(qm.Start().code(), Status::Code::kInvalidArgument);  // once
  }
  EXPECT_TRUE(receiver.sent().empty());
}

// Stop() on the real clock: measured from the call, bounded at 1 s.
template <class Prepare>
void ExpectStopWithinOneSecond(std::deque<Answer> script, Prepare wait_until_busy) {
  FakeClock stamps;  // only for the sources' creation times
  Receiver receiver(Clock::Real(), 2);
  receiver.Script(0, script);
  receiver.Script(1, script);
  std::vector<std::unique_ptr<MemSource>> sources;
  for (int i = 0; i < 2; ++i) {
    sources.push_back(std::make_unique<MemSource>(&stamps));
    sources.back()->Append(Payload("a", 1, 1), 1, 0);
  }
  QueueManagerOptions opt = Options(2, &receiver);
  opt.random01 = {};
  QueueManager qm(opt, Sources(sources), Clock::Real());
  ASSERT_TRUE(qm.Start().ok());
  wait_until_busy(receiver, qm);
  const auto start = std::chrono::steady_clock::now();
  qm.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(1));
  for (auto& s : sources) {
    EXPECT_EQ(s->pending(), 1u);  // nothing acked that was not answered
    EXPECT_TRUE(s->acks().empty());
  }
  EXPECT_EQ(qm.stats().batches_sent, 0u);
}

TEST(QueueManager, StopDuringABackoffEndsAtOnce) {
  std::deque<Answer> script;
  for (int i = 0; i < 100; ++i) script.push_back(Http(503, "", {{"Retry-After", "60"}}));
  ExpectStopWithinOneSecond(script, [](Receiver& r, QueueManager& qm) {
    ASSERT_TRUE(r.WaitForExchanges(2));  // both shards now wait 60 s
  });
}

TEST(QueueManager, StopDuringAHangingExchangeEndsAtOnce) {
  ExpectStopWithinOneSecond({Hang()}, [](Receiver& r, QueueManager& qm) {
    ASSERT_TRUE(r.WaitForExchanges(2));
    EXPECT_EQ(qm.stats().in_flight, 2u);
  });
}

TEST(QueueManager, StopWhileIdleEndsAtOnce) {
  FakeClock clock;
  Receiver receiver(&clock, 2);
  std::vector<std::unique_ptr<MemSource>> sources;
  sources.push_back(std::make_unique<MemSource>(&clock));
  sources.push_back(std::make_unique<MemSource>(&clock));
  QueueManager qm(Options(2, &receiver), Sources(sources), Clock::Real());
  ASSERT_TRUE(qm.Start().ok());
  for (auto& s : sources) ASSERT_TRUE(s->WaitUntilDrainedAndIdle());
  const auto start = std::chrono::steady_clock::now();
  qm.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(1));
  qm.Stop();  // idempotent
  EXPECT_TRUE(receiver.sent().empty());
}

TEST(ShardOf, StableHashAndEvenSpread) {
  using Labels = std::vector<std::pair<std::string, std::string>>;
  const Labels a = {{"__name__", "claude_tokens_total"}, {"model", "m"}, {"type", "input"}};
  const Labels shuffled = {{"type", "input"}, {"__name__", "claude_tokens_total"}, {"model", "m"}};
  EXPECT_EQ(SeriesHash(a), SeriesHash(shuffled));
  EXPECT_NE(SeriesHash({{"a", "bc"}}), SeriesHash({{"ab", "c"}}));
  EXPECT_NE(SeriesHash({{"a", "b"}, {"c", "d"}}), SeriesHash({{"a", "bc"}, {"", "d"}}));
  // Pinned: the agent persists shard assignments, so the hash must never change.
  EXPECT_EQ(SeriesHash({}), 14695981039346656037ull);
  // FNV-1a 64 of "a\xFFb\xFF", computed independently (Python).
  EXPECT_EQ(SeriesHash({{"a", "b"}}), 0xd2b371819297f98aull);
  EXPECT_EQ(ShardOf(12345, 1), 0u);
  EXPECT_EQ(ShardOf(12345, 0), 0u);
  std::vector<int> counts(3);
  for (int i = 0; i < 3000; ++i) {
    const size_t s = ShardOf(SeriesHash({{"__name__", "m"}, {"i", std::to_string(i)}}), 3);
    ASSERT_LT(s, 3u);
    ++counts[s];
  }
  for (int c : counts) {
    EXPECT_GT(c, 850);
    EXPECT_LT(c, 1150);
  }
}

}  // namespace
}  // namespace ccmon
