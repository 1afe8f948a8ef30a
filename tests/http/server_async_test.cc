// HttpServer (src/http/server.h) with an AsyncHttpHandler, over real sockets on the loopback:
// completions called inline, from other threads, late, twice, never (handler_timeout), dropped
// (500), after the client left, during Stop; pipelined and concurrent connections each get their
// own answer in order.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"
#include "server_test_util.h"

namespace ccmon {
namespace {

using namespace server_testing;  // NOLINT
using std::chrono::milliseconds;

// Keeps every request and its completion until the test answers it (from the test's thread,
// which is not an io thread: a completion "from another thread").
class ParkingHandler : public AsyncHttpHandler {
 public:
  struct Parked {
    ServerRequest request;
    ResponseCompletion done;
  };
  void HandleAsync(ServerRequest request, ResponseCompletion done) override {
    if (request.target == "/inline") return done(Echo(request));
    if (request.target == "/drop") return;  // `done` destroyed here: 500
    if (request.target == "/throw") throw std::runtime_error("boom");
    std::lock_guard<std::mutex> lock(mu_);
    parked_.push_back(Parked{std::move(request), std::move(done)});
    cv_.notify_all();
  }
  // Waits (with a deadline) until `n` requests are parked.
  bool WaitParked(size_t n, milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return parked_.size() >= n; });
  }
  Parked Take(size_t i = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    Parked p = std::move(parked_[i]);
    parked_.erase(parked_.begin() + ptrdiff_t(i));
    return p;
  }
  size_t parked() {
    std::lock_guard<std::mutex> lock(mu_);
    return parked_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Parked> parked_;
};

struct Fixture {
  explicit Fixture(ServerOptions opt = {}) {
    opt.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu);
      log.emplace_back(line);
    };
    server = std::make_unique<HttpServer>(std::move(opt), &handler);
    status = server->Start();
  }
  ParkingHandler handler;
  std::mutex mu;
  std::vector<std::string> log;
  std::unique_ptr<HttpServer> server;
  Status status;
};

TEST(HttpServerAsync, InlineCompletionServesManyRequestsOnOneConnection) {
  Fixture f;
  ASSERT_TRUE(f.status.ok()) << f.status.ToString();
  RawConn c(f.server->port());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c.Send(Get("/inline", "X-N: " + std::to_string(i) + "\r\n")));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res)) << i;
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "GET /inline ");
    EXPECT_TRUE(res.keep_alive());
  }
  EXPECT_EQ(f.server->stats().requests, 50u);
  EXPECT_EQ(f.server->stats().pending_completions, 0u);
}

TEST(HttpServerAsync, CompletionFromAnotherThreadIsSentOnItsConnection) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send("POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  ASSERT_TRUE(f.handler.WaitParked(1));
  EXPECT_EQ(f.server->stats().pending_completions, 1u);
  ParkingHandler::Parked p = f.handler.Take();
  EXPECT_EQ(p.request.body, "abc");
  std::thread other([&] { p.done(Echo(p.request)); });
  other.join();
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.body(), "POST /later abc");
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(f.server->stats().pending_completions, 0u);
  // The connection goes on.
  ASSERT_TRUE(c.Send(Get("/inline")));
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.body(), "GET /inline ");
}

TEST(HttpServerAsync, PipelinedRequestsAreAnsweredInOrderOneAtATime) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  std::string burst;
  for (int i = 0; i < 10; ++i) burst += Get("/p" + std::to_string(i));
  ASSERT_TRUE(c.Send(burst));
  for (int i = 0; i < 10; ++i) {
    // The next request is handed over only once the one before is answered.
    ASSERT_TRUE(f.handler.WaitParked(1)) << i;
    EXPECT_EQ(f.handler.parked(), 1u);
    ParkingHandler::Parked p = f.handler.Take();
    EXPECT_EQ(p.request.target, "/p" + std::to_string(i));
    std::thread([&] { p.done(Echo(p.request)); }).join();
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res)) << i;
    EXPECT_EQ(res.body(), "GET /p" + std::to_string(i) + " ");
  }
}

TEST(HttpServerAsync, CompletionsInReverseOrderReachTheirOwnConnections) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  std::vector<std::unique_ptr<RawConn>> conns;
  for (int i = 0; i < 6; ++i) {
    conns.push_back(std::make_unique<RawConn>(f.server->port()));
    ASSERT_TRUE(conns.back()->Send(Get("/c" + std::to_string(i))));
  }
  ASSERT_TRUE(f.handler.WaitParked(6));
  EXPECT_EQ(f.server->stats().pending_completions, 6u);
  std::vector<ParkingHandler::Parked> parked;
  for (int i = 0; i < 6; ++i) parked.push_back(f.handler.Take());
  std::thread answer([&] {
    for (size_t i = parked.size(); i-- > 0;) parked[i].done(Echo(parked[i].request));
  });
  answer.join();
  for (int i = 0; i < 6; ++i) {
    Response res;
    ASSERT_TRUE(conns[size_t(i)]->ReadResponse(&res)) << i;
    EXPECT_EQ(res.body(), "GET /c" + std::to_string(i) + " ");
  }
  EXPECT_EQ(f.server->stats().pending_completions, 0u);
}

TEST(HttpServerAsync, CompletionAfterTheClientLeftIsDroppedAndTheServerGoesOn) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  {
    RawConn gone(f.server->port());
    ASSERT_TRUE(gone.Send(Get("/later")));
    ASSERT_TRUE(f.handler.WaitParked(1));
  }  // closed before the answer
  ParkingHandler::Parked p = f.handler.Take();
  p.done(ServerResponse::Text(200, std::string(1 << 20, 'x')));
  // The session goes away (no leak: ASan), and nothing waits for it.
  EXPECT_TRUE(WaitUntil([&] { return f.server->stats().active_connections == 0; }));
  EXPECT_EQ(f.server->stats().pending_completions, 0u);
  RawConn next(f.server->port());
  ASSERT_TRUE(next.Send(Get("/inline")));
  Response res;
  ASSERT_TRUE(next.ReadResponse(&res));
  EXPECT_EQ(res.body(), "GET /inline ");
}

TEST(HttpServerAsync, DroppedCompletionAndThrowingHandlerAre500) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  Response res;
  ASSERT_TRUE(c.Send(Get("/drop")));
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 500);
  ASSERT_TRUE(c.Send(Get("/throw")));
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(f.server->stats().handler_failures, 1u);  // the throw (logged)
  ASSERT_TRUE(c.Send(Get("/inline")));
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 200);
  std::lock_guard<std::mutex> lock(f.mu);
  ASSERT_EQ(f.log.size(), 1u);
  EXPECT_NE(f.log[0].find("boom"), std::string::npos) << f.log[0];
}

TEST(HttpServerAsync, AnUnsendableAnswerIs500) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send(Get("/later")));
  ASSERT_TRUE(f.handler.WaitParked(1));
  ServerResponse bad = ServerResponse::Text(200, "x");
  bad.headers.emplace_back("X-Evil", "a\r\nSet-Cookie: b");
  f.handler.Take().done(std::move(bad));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.count("Set-Cookie"), 0u);
  EXPECT_EQ(f.server->stats().handler_failures, 1u);
}

TEST(HttpServerAsync, ACompletionNeverCalledIsAnswered503AfterTheHandlerTimeout) {
  ServerOptions opt;
  opt.handler_timeout = milliseconds(200);
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.Send(Get("/never")));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_GE(Clock::now() - t0, milliseconds(150));
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(res["Retry-After"], "1");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(f.server->stats().handler_timeouts, 1u);
  EXPECT_EQ(f.server->stats().pending_completions, 1u);
  // The late answer is dropped, harmlessly; a second call is ignored.
  ParkingHandler::Parked p = f.handler.Take();
  p.done(Echo(p.request));
  p.done(Echo(p.request));
  EXPECT_EQ(f.server->stats().pending_completions, 0u);
  RawConn next(f.server->port());
  ASSERT_TRUE(next.Send(Get("/inline")));
  ASSERT_TRUE(next.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 200);
}

// The handler's bound is the session's deadline while it waits (server.cc SetDeadline): one
// longer than the read timeout pending before it is kept, not cut at the read timeout's time.
TEST(HttpServerAsync, AHandlerTimeoutLongerThanTheReadTimeoutIsKept) {
  ServerOptions opt;
  opt.read_timeout = milliseconds(100);
  opt.handler_timeout = milliseconds(600);
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.Send(Get("/never")));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_GE(Clock::now() - t0, milliseconds(550));
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(f.server->stats().handler_timeouts, 1u);
  EXPECT_EQ(f.server->stats().timeouts, 0u);
  ParkingHandler::Parked p = f.handler.Take();
  p.done(Echo(p.request));  // late: dropped
}

TEST(HttpServerAsync, StopWaitsForAPendingCompletionAndSendsItsAnswer) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  RawConn idle(f.server->port());
  ASSERT_TRUE(idle.Send(Get("/inline")));
  Response res;
  ASSERT_TRUE(idle.ReadResponse(&res));
  RawConn busy(f.server->port());
  ASSERT_TRUE(busy.Send(Get("/later")));
  ASSERT_TRUE(f.handler.WaitParked(1));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    f.server->Stop();
    stopped = true;
  });
  EXPECT_TRUE(idle.WaitClosed());
  EXPECT_FALSE(stopped);  // the pending completion holds Stop
  ParkingHandler::Parked p = f.handler.Take();
  p.done(Echo(p.request));
  ASSERT_TRUE(busy.ReadResponse(&res));
  EXPECT_EQ(res.body(), "GET /later ");
  EXPECT_FALSE(res.keep_alive());  // Stop began: the connection closes after it
  stopper.join();
  EXPECT_TRUE(stopped);
}

TEST(HttpServerAsync, StopPastItsGraceStillWaitsForTheCompletion) {
  ServerOptions opt;
  opt.shutdown_grace = milliseconds(100);
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn busy(f.server->port());
  ASSERT_TRUE(busy.Send(Get("/later")));
  ASSERT_TRUE(f.handler.WaitParked(1));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    f.server->Stop();
    stopped = true;
  });
  EXPECT_TRUE(busy.WaitClosed());  // forced closed after the grace time
  EXPECT_FALSE(stopped);           // but the completion handed out is still waited for
  EXPECT_EQ(f.server->stats().pending_completions, 1u);
  ParkingHandler::Parked p = f.handler.Take();
  p.done(Echo(p.request));  // dropped: the connection is gone
  stopper.join();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(f.server->stats().pending_completions, 0u);
}

TEST(HttpServerAsync, SynchronousHandleWaitsForTheCompletion) {
  class Later : public AsyncHttpHandler {
   public:
    void HandleAsync(ServerRequest request, ResponseCompletion done) override {
      worker = std::thread([request = std::move(request), done = std::move(done)]() mutable {
        done(Echo(request));
      });
    }
    std::thread worker;
  } later;
  ServerRequest r;
  r.method = "POST";
  r.target = "/x";
  r.body = "b";
  ServerResponse res = later.Handle(r);
  later.worker.join();
  EXPECT_EQ(res.body, "POST /x b");
}

TEST(HttpServerAsync, ManyConnectionsWithCompletionsFromAWorkerThread) {
  class Worker : public AsyncHttpHandler {
   public:
    Worker() {
      thread_ = std::thread([this] {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
          cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
          if (queue_.empty()) return;
          auto [request, done] = std::move(queue_.front());
          queue_.pop_front();
          lock.unlock();
          done(Echo(request));
          lock.lock();
        }
      });
    }
    ~Worker() override {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
    void HandleAsync(ServerRequest request, ResponseCompletion done) override {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.emplace_back(std::move(request), std::move(done));
      cv_.notify_all();
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::deque<std::pair<ServerRequest, ResponseCompletion>> queue_;
    std::thread thread_;
  } worker;
  ServerOptions opt;
  opt.io_threads = 4;
  HttpServer server(opt, &worker);
  ASSERT_TRUE(server.Start().ok());
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      RawConn c(server.port());
      for (int i = 0; i < 50; ++i) {
        const std::string target = "/t" + std::to_string(t) + "/" + std::to_string(i);
        if (!c.Send(Get(target))) return;
        Response res;
        if (!c.ReadResponse(&res) || res.body() != "GET " + target + " ") return;
        ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 8 * 50);
  server.Stop();
  EXPECT_EQ(server.stats().pending_completions, 0u);
}

}  // namespace
}  // namespace ccmon
