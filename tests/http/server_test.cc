// HttpServer (src/http/server.h) with real sockets on the loopback: keep-alive, pipelining,
// limits (413 by Content-Length and by chunked body, 431), timeouts against slow clients,
// connection limits, Stop with idle and in-flight connections, TLS through the project's own
// client, and hostile peers that must not take the server down.
#include "http/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/http_client.h"
#include "server_test_util.h"

namespace ccmon {
namespace {

using namespace server_testing;  // NOLINT
using std::chrono::milliseconds;

// A started server with an echo handler (or `fn`), and its log lines.
struct Fixture {
  explicit Fixture(ServerOptions opt = {},
                   std::function<ServerResponse(const ServerRequest&)> fn = Echo)
      : handler(std::move(fn)) {
    opt.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu);
      log.emplace_back(line);
    };
    server = std::make_unique<HttpServer>(std::move(opt), &handler);
    status = server->Start();
  }
  std::string Url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(server->port()) + path;
  }
  std::vector<std::string> Log() {
    std::lock_guard<std::mutex> lock(mu);
    return log;
  }
  FnHandler handler;
  std::mutex mu;
  std::vector<std::string> log;
  std::unique_ptr<HttpServer> server;
  Status status;
};

HttpRequest GetRequest(const std::string& url) {
  HttpRequest r;
  r.url = url;
  return r;
}

HttpResponse MustExchange(const HttpRequest& req, const HttpClientOptions& opt = {}) {
  HttpResponse res;
  Status s = HttpExchange(req, opt, &res);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return res;
}

TEST(HttpServer, ServesOneRequestThroughTheClient) {
  Fixture f;
  ASSERT_TRUE(f.status.ok()) << f.status.ToString();
  EXPECT_GT(f.server->port(), 0);
  HttpRequest req;
  req.method = "POST";
  req.url = f.Url("/api/v1/write?x=1");
  req.body = "payload";
  HttpResponse res = MustExchange(req);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, "POST /api/v1/write?x=1 payload");
  EXPECT_EQ(res.Header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(res.Header("Content-Length"), "30");
}

TEST(HttpServer, RequestCarriesHeadersPeerAndPath) {
  ServerRequest seen;
  std::mutex mu;
  Fixture f({}, [&](const ServerRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen = r;
    return ServerResponse::Text(200, "ok");
  });
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send(Get("/metrics?debug=1", "X-Scope-OrgID: team-a\r\nAccept: a/b\r\n")));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.Path(), "/metrics");
  EXPECT_EQ(seen.target, "/metrics?debug=1");
  EXPECT_EQ(seen.Header("x-scope-orgid"), "team-a");
  EXPECT_EQ(seen.Header("ACCEPT"), "a/b");
  EXPECT_EQ(seen.Header("missing"), "");
  EXPECT_EQ(seen.peer.rfind("127.0.0.1:", 0), 0u) << seen.peer;
  EXPECT_FALSE(seen.tls);
  EXPECT_FALSE(seen.head);
}

TEST(HttpServer, KeepAliveServesManyRequestsOnOneConnection) {
  std::mutex mu;
  std::set<std::string> peers;
  Fixture f({}, [&](const ServerRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    peers.insert(r.peer);
    return Echo(r);
  });
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(c.Send(Get("/r" + std::to_string(i))));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res)) << i;
    EXPECT_EQ(res.body(), "GET /r" + std::to_string(i) + " ");
    EXPECT_TRUE(res.keep_alive());
  }
  EXPECT_EQ(peers.size(), 1u);
  EXPECT_EQ(f.server->stats().connections_accepted, 1u);
  EXPECT_EQ(f.server->stats().requests, 100u);
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  std::string burst;
  for (int i = 0; i < 20; ++i) burst += Get("/p" + std::to_string(i));
  burst += "POST /last HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
  ASSERT_TRUE(c.Send(burst));
  for (int i = 0; i < 20; ++i) {
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res)) << i;
    EXPECT_EQ(res.body(), "GET /p" + std::to_string(i) + " ");
  }
  Response last;
  ASSERT_TRUE(c.ReadResponse(&last));
  EXPECT_EQ(last.body(), "POST /last abc");
}

TEST(HttpServer, ConnectionCloseAndHttp10CloseAfterTheResponse) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  {
    RawConn c(f.server->port());
    ASSERT_TRUE(c.Send(Get("/", "Connection: close\r\n")));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res));
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(c.WaitClosed());
  }
  {
    RawConn c(f.server->port());
    ASSERT_TRUE(c.Send("GET /old HTTP/1.0\r\n\r\n"));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res));
    EXPECT_EQ(res.version(), 10u);
    EXPECT_EQ(res.body(), "GET /old ");
    EXPECT_TRUE(c.WaitClosed());
  }
}

TEST(HttpServer, KeepAliveOffClosesEveryConnection) {
  ServerOptions opt;
  opt.keep_alive = false;
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send(Get("/a") + Get("/b")));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(f.handler.calls, 1);
}

TEST(HttpServer, BodyOverTheLimitByContentLengthIs413BeforeReadingIt) {
  ServerOptions opt;
  opt.max_body_bytes = 1000;
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  // Only the header is sent: the answer must not wait for the body.
  ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n"));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res, false, milliseconds(5000)));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(f.handler.calls, 0);
  EXPECT_EQ(f.server->stats().bad_requests, 1u);
}

TEST(HttpServer, BodyAtTheLimitIsServedOneOverIs413) {
  ServerOptions opt;
  opt.max_body_bytes = 1000;
  Fixture f(opt, [](const ServerRequest& r) {
    return ServerResponse::Text(200, std::to_string(r.body.size()));
  });
  ASSERT_TRUE(f.status.ok());
  HttpRequest req;
  req.method = "POST";
  req.url = f.Url();
  req.body.assign(1000, 'x');
  HttpResponse res = MustExchange(req);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, "1000");
  req.body.push_back('y');
  res = MustExchange(req);
  EXPECT_EQ(res.status, 413u);
}

TEST(HttpServer, ChunkedBodyOverTheLimitIs413) {
  ServerOptions opt;
  opt.max_body_bytes = 1000;
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  std::string chunk(600, 'z');
  ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" +
                     chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n"));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(f.handler.calls, 0);

  // A chunked body within the limit is decoded for the handler.
  RawConn ok(f.server->port());
  ASSERT_TRUE(
      ok.Send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  ASSERT_TRUE(ok.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "POST /c abcde");
}

TEST(HttpServer, HeaderOverTheLimitIs431) {
  ServerOptions opt;
  opt.max_header_bytes = 1024;
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send(Get("/", "X-Big: " + std::string(2000, 'b') + "\r\n")));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(f.handler.calls, 0);
  // Many small fields add up the same way.
  RawConn many(f.server->port());
  std::string fields;
  for (int i = 0; i < 200; ++i) fields += "X-F" + std::to_string(i) + ": v\r\n";
  ASSERT_TRUE(many.Send(Get("/", fields)));
  ASSERT_TRUE(many.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 431);
}

TEST(HttpServer, MalformedRequestsAre400AndTheServerGoesOn) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  const char* bad[] = {
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
      "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
      "GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const char* b : bad) {
    RawConn c(f.server->port());
    ASSERT_TRUE(c.Send(b));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res)) << b;
    EXPECT_EQ(res.result_int(), 400) << b;
    EXPECT_TRUE(c.WaitClosed()) << b;
  }
  RawConn v12(f.server->port());
  ASSERT_TRUE(v12.Send("GET / HTTP/1.2\r\nHost: x\r\n\r\n"));
  Response res;
  ASSERT_TRUE(v12.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 400);
  RawConn v2(f.server->port());
  ASSERT_TRUE(v2.Send("GET / HTTP/2.0\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(v2.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 400);  // Beast reads only HTTP/1.x
  EXPECT_EQ(f.handler.calls, 0);
  EXPECT_EQ(MustExchange(GetRequest(f.Url())).status, 200u);
}

TEST(HttpServer, HeadIsGetWithoutTheBody) {
  Fixture f({}, [](const ServerRequest& r) {
    return ServerResponse::Text(200, r.head ? "head-of-" + r.method : "a body of 17 bytes");
  });
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + Get("/after")));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res, /*head=*/true));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_length], "11");  // "head-of-GET"
  EXPECT_EQ(res.body(), "");
  // The next response on the connection starts right after the header: no body bytes leaked.
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.body(), "a body of 17 bytes");
}

TEST(HttpServer, UnknownMethodsAre405WithAllow) {
  ServerOptions opt;
  opt.allowed_methods = {"GET", "POST"};
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  for (const char* m : {"TRACE", "DELETE", "FOO", "PATCH"}) {
    RawConn c(f.server->port());
    ASSERT_TRUE(c.Send(std::string(m) + " / HTTP/1.1\r\nHost: x\r\n\r\n" + Get("/next")));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res)) << m;
    EXPECT_EQ(res.result_int(), 405) << m;
    EXPECT_EQ(res[http::field::allow], "GET, POST");
    ASSERT_TRUE(c.ReadResponse(&res)) << m;  // the connection stays usable
    EXPECT_EQ(res.body(), "GET /next ");
  }
  EXPECT_EQ(f.handler.calls, 4);
}

TEST(HttpServer, ExpectContinueGets100ThenTheAnswer) {
  Fixture f;
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(
      c.Send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  Response interim;
  ASSERT_TRUE(c.ReadResponse(&interim, /*head=*/true));
  EXPECT_EQ(interim.result_int(), 100);
  ASSERT_TRUE(c.Send("body"));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.body(), "POST /e body");
  // Through the project's client (which skips interim responses) too.
  HttpRequest req;
  req.method = "PUT";
  req.url = f.Url("/x");
  req.headers = {{"Expect", "100-continue"}};
  req.body = "12345";
  EXPECT_EQ(MustExchange(req).body, "PUT /x 12345");
}

TEST(HttpServer, ThrowingHandlerIs500LoggedAndTheServerGoesOn) {
  Fixture f({}, [](const ServerRequest& r) -> ServerResponse {
    if (r.target == "/throw") throw std::runtime_error("boom");
    if (r.target == "/throw-int") throw 42;
    if (r.target == "/bad-header") {
      ServerResponse res = ServerResponse::Text(200, "x");
      res.headers.emplace_back("X-Injected", "a\r\nSet-Cookie: evil=1");
      return res;
    }
    if (r.target == "/interim") return ServerResponse::Text(101, "");
    return Echo(r);
  });
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  for (const char* t : {"/throw", "/throw-int", "/bad-header", "/interim"}) {
    ASSERT_TRUE(c.Send(Get(t)));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res)) << t;
    EXPECT_EQ(res.result_int(), 500) << t;
    EXPECT_EQ(res.count("Set-Cookie"), 0u);
  }
  ASSERT_TRUE(c.Send(Get("/fine")));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  EXPECT_EQ(res.body(), "GET /fine ");
  auto log = f.Log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_NE(log[0].find("boom"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("GET /throw"), std::string::npos) << log[0];
  EXPECT_EQ(f.server->stats().handler_failures, 4u);
}

TEST(HttpServer, ServerOwnsFramingHeaders) {
  Fixture f({}, [](const ServerRequest&) {
    ServerResponse r = ServerResponse::Text(200, "abc");
    r.headers.emplace_back("Content-Length", "999");
    r.headers.emplace_back("Transfer-Encoding", "chunked");
    r.headers.emplace_back("Connection", "close");
    r.headers.emplace_back("Set-Cookie", "a=1");
    r.headers.emplace_back("Set-Cookie", "b=2");
    return r;
  });
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send(Get() + Get()));
  for (int i = 0; i < 2; ++i) {
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res));
    EXPECT_EQ(res.body(), "abc");
    EXPECT_EQ(res[http::field::content_length], "3");
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(res.count(http::field::set_cookie), 2u);
  }
}

TEST(HttpServer, NoContentHasNoBody) {
  Fixture f({}, [](const ServerRequest&) { return ServerResponse::Text(204, "ignored"); });
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send(Get() + Get()));
  for (int i = 0; i < 2; ++i) {
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res));
    EXPECT_EQ(res.result_int(), 204);
    EXPECT_EQ(res.body(), "");
  }
}

TEST(HttpServer, IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  ServerOptions opt;
  opt.idle_timeout = milliseconds(200);
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send(Get()));
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  auto t0 = Clock::now();
  EXPECT_TRUE(c.WaitClosed(milliseconds(5000)));
  EXPECT_GE(Clock::now() - t0, milliseconds(150));
  // A connection that never sends anything goes the same way.
  RawConn silent(f.server->port());
  EXPECT_TRUE(silent.WaitClosed(milliseconds(5000)));
  EXPECT_TRUE(WaitUntil([&] { return f.server->stats().timeouts >= 2; }));
}

TEST(HttpServer, SlowlorisIsDroppedAfterTheReadTimeoutAndOthersAreServed) {
  ServerOptions opt;
  opt.idle_timeout = milliseconds(300);
  opt.read_timeout = milliseconds(300);
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn slow(f.server->port());
  // One header byte every 20 ms: each byte arrives well within any per-read timeout, the whole
  // request never does. Between bytes the client waits for the close it expects.
  std::string req = Get("/", "X-Pad: " + std::string(1000, 'p') + "\r\n");
  auto t0 = Clock::now();
  bool closed = false;
  for (size_t i = 0; i < req.size() && !closed; ++i) {
    if (!slow.Send(req.substr(i, 1))) break;
    closed = slow.WaitClosed(milliseconds(20));
    // Meanwhile another client is served normally.
    if (i == 3) {
      EXPECT_EQ(MustExchange(GetRequest(f.Url())).status, 200u);
    }
  }
  if (!closed) closed = slow.WaitClosed(milliseconds(5000));
  EXPECT_TRUE(closed);
  auto took = Clock::now() - t0;
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(3000));
  EXPECT_EQ(slow.pending(), "");  // dropped without an answer
  EXPECT_EQ(f.handler.calls, 1);
  // (The timer closes the socket before the session counts the timeout.)
  EXPECT_TRUE(WaitUntil([&] { return f.server->stats().timeouts >= 1; }));
}

TEST(HttpServer, SlowBodyIsDroppedAfterTheReadTimeout) {
  ServerOptions opt;
  opt.read_timeout = milliseconds(300);
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a little"));
  EXPECT_TRUE(c.WaitClosed(milliseconds(5000)));
  EXPECT_EQ(f.handler.calls, 0);
}

// The session keeps one timer and re-arms it only for a deadline earlier than the pending one
// (server.cc SetDeadline): a short read_timeout after a long idle wait must still cut a slow
// request at its own bound, not at the idle one.
TEST(HttpServer, ReadTimeoutShorterThanTheIdleTimeoutStillCutsASlowRequest) {
  ServerOptions opt;
  opt.idle_timeout = milliseconds(20'000);
  opt.read_timeout = milliseconds(300);
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  ASSERT_TRUE(c.Send(Get()));  // one request served: the idle deadline is pending after it
  Response res;
  ASSERT_TRUE(c.ReadResponse(&res));
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.Send("GET / HT"));  // and never the rest
  EXPECT_TRUE(c.WaitClosed(milliseconds(5000)));
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(3000));
  EXPECT_TRUE(WaitUntil([&] { return f.server->stats().timeouts == 1; }));
}

// ... and a deadline later than the pending one is left to it, which re-arms for the later one
// when it fires: a connection busy for several times every timeout, each request quick, is
// never cut.
TEST(HttpServer, AConnectionBusyLongerThanEveryTimeoutIsNotCut) {
  ServerOptions opt;
  opt.idle_timeout = milliseconds(150);
  opt.read_timeout = milliseconds(150);
  opt.write_timeout = milliseconds(150);
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  const auto t0 = Clock::now();
  int served = 0;
  while (Clock::now() - t0 < milliseconds(1000)) {
    ASSERT_TRUE(c.Send(Get()));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res)) << "after " << served << " requests";
    EXPECT_EQ(res.result_int(), 200);
    ++served;
  }
  EXPECT_GT(served, 10);
  EXPECT_EQ(f.server->stats().timeouts, 0u);
  // Then left idle, it is closed after the idle timeout as before.
  EXPECT_TRUE(c.WaitClosed(milliseconds(5000)));
  EXPECT_TRUE(WaitUntil([&] { return f.server->stats().timeouts == 1; }));
}

// Bodies larger than what the connection's buffer holds (its bound is max_header_bytes + 64 KiB),
// sent whole or in pieces, and small ones after them on the same connection: each is read
// complete whatever room an earlier request reserved.
TEST(HttpServer, BodiesOfEverySizeOnOneConnection) {
  ServerOptions opt;
  opt.max_body_bytes = 1 << 20;
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  for (size_t size : {size_t(10), size_t(20'000), size_t(300'000), size_t(5), size_t(70'000)}) {
    for (bool pieces : {false, true}) {
      const std::string body(size, char('a' + size % 26));
      const std::string req =
          "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" +
          body;
      if (pieces) {
        for (size_t at = 0; at < req.size(); at += 7000) {
          ASSERT_TRUE(c.Send(std::string_view(req).substr(at, 7000)));
        }
      } else {
        ASSERT_TRUE(c.Send(req));
      }
      Response res;
      ASSERT_TRUE(c.ReadResponse(&res)) << size;
      EXPECT_EQ(res.result_int(), 200);
      EXPECT_EQ(res.body(), "POST /b " + body) << size;
    }
  }
}

TEST(HttpServer, ClientThatNeverReadsIsDroppedAfterTheWriteTimeout) {
  ServerOptions opt;
  opt.write_timeout = milliseconds(300);
  std::string big(32 << 20, 'x');
  Fixture f(opt, [&](const ServerRequest&) { return ServerResponse::Text(200, big); });
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  c.SetSmallReceiveBuffer();
  ASSERT_TRUE(c.Send(Get()));
  ASSERT_TRUE(WaitUntil([&] { return f.server->stats().timeouts >= 1; }));
  EXPECT_TRUE(WaitUntil([&] { return f.server->stats().active_connections == 0; }));
}

TEST(HttpServer, ManyConcurrentClients) {
  ServerOptions opt;
  opt.io_threads = 2;
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  constexpr int kClients = 32, kRequests = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      RawConn c(f.server->port());
      for (int i = 0; i < kRequests; ++i) {
        std::string target = "/c" + std::to_string(t) + "/" + std::to_string(i);
        if (!c.Send(Get(target))) return;
        Response res;
        if (!c.ReadResponse(&res)) return;
        if (res.body() == "GET " + target + " ") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kClients * kRequests);
  EXPECT_EQ(f.server->stats().connections_accepted, uint64_t(kClients));
  EXPECT_TRUE(WaitUntil([&] { return f.server->stats().active_connections == 0; }));
}

TEST(HttpServer, ConnectionsOverTheLimitGet503) {
  ServerOptions opt;
  opt.max_connections = 3;
  Fixture f(opt);
  ASSERT_TRUE(f.status.ok());
  std::vector<std::unique_ptr<RawConn>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawConn>(f.server->port()));
    ASSERT_TRUE(held.back()->Send(Get()));
    Response res;
    ASSERT_TRUE(held.back()->ReadResponse(&res));  // served: counted now
  }
  RawConn extra(f.server->port());
  ASSERT_TRUE(extra.Send(Get("/extra")));
  Response res;
  ASSERT_TRUE(extra.ReadResponse(&res));
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(res[http::field::retry_after], "1");
  EXPECT_TRUE(extra.WaitClosed());
  EXPECT_EQ(f.server->stats().connections_refused, 1u);
  // One leaves: a new connection is served again.
  held.pop_back();
  ASSERT_TRUE(WaitUntil([&] { return f.server->stats().active_connections == 2; }));
  RawConn again(f.server->port());
  ASSERT_TRUE(again.Send(Get("/again")));
  ASSERT_TRUE(again.ReadResponse(&res));
  EXPECT_EQ(res.body(), "GET /again ");
}

TEST(HttpServer, StopClosesIdleConnectionsAndFinishesInFlightOnes) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  Fixture f({}, [&](const ServerRequest& r) {
    if (r.target == "/slow") {
      std::unique_lock<std::mutex> lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    }
    return Echo(r);
  });
  ASSERT_TRUE(f.status.ok());
  RawConn idle(f.server->port());
  ASSERT_TRUE(idle.Send(Get("/first")));
  Response res;
  ASSERT_TRUE(idle.ReadResponse(&res));
  RawConn half(f.server->port());  // a request whose header never completes
  ASSERT_TRUE(half.Send("GET /half HTTP/1.1\r\nHost"));
  RawConn busy(f.server->port());
  ASSERT_TRUE(busy.Send(Get("/slow")));
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    f.server->Stop();
    stopped = true;
  });
  EXPECT_TRUE(idle.WaitClosed());
  EXPECT_TRUE(half.WaitClosed());
  EXPECT_FALSE(stopped);  // the in-flight request holds Stop
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(busy.ReadResponse(&res));
  EXPECT_EQ(res.body(), "GET /slow ");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(busy.WaitClosed());
  stopper.join();
  EXPECT_TRUE(stopped);
  // Nothing listens any more.
  RawConn after(f.server->port());
  EXPECT_FALSE(after.connected() && after.Send(Get()) && after.ReadResponse(&res));
  f.server->Stop();  // idempotent
}

TEST(HttpServer, StopClosesAStalledResponseAfterTheGraceTime) {
  ServerOptions opt;
  opt.shutdown_grace = milliseconds(300);
  opt.write_timeout = milliseconds(60000);
  std::string big(32 << 20, 'x');
  Fixture f(opt, [&](const ServerRequest&) { return ServerResponse::Text(200, big); });
  ASSERT_TRUE(f.status.ok());
  RawConn c(f.server->port());
  c.SetSmallReceiveBuffer();
  ASSERT_TRUE(c.Send(Get()));
  ASSERT_TRUE(WaitUntil([&] { return f.handler.calls == 1; }));
  auto t0 = Clock::now();
  f.server->Stop();
  auto took = Clock::now() - t0;
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(5000));
}

TEST(HttpServer, StopBeforeStartAndDestroyWithoutStop) {
  FnHandler h(Echo);
  {
    HttpServer s({}, &h);
    s.Stop();
    s.Stop();
  }
  {
    HttpServer s({}, &h);
    ASSERT_TRUE(s.Start().ok());
    RawConn c(s.port());
    ASSERT_TRUE(c.Send(Get()));
    Response res;
    ASSERT_TRUE(c.ReadResponse(&res));
  }  // the destructor stops it with a connection open
}

TEST(HttpServer, StartErrorsAreClear) {
  FnHandler h(Echo);
  auto start = [&](const std::string& listen) {
    ServerOptions opt;
    opt.listen = listen;
    HttpServer s(opt, &h);
    return s.Start();
  };
  for (const char* bad :
       {"127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:80x", "::1:80",
        "[::1]", "[::1]80", "[nonsense]:0", "127.0.0.1:123456"}) {
    Status s = start(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad << ": " << s.ToString();
  }
  // Address in use.
  HttpServer first({}, &h);
  ASSERT_TRUE(first.Start().ok());
  Status s = start("127.0.0.1:" + std::to_string(first.port()));
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("address already in use"), std::string::npos) << s.ToString();
  // Not an address of this host (TEST-NET-1).
  s = start("192.0.2.1:0");
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("address not available"), std::string::npos) << s.ToString();
  s = start("no-such-host.invalid:0");
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("cannot resolve"), std::string::npos) << s.ToString();
  if (::geteuid() != 0) {
    s = start("127.0.0.1:1");
    EXPECT_NE(s.message().find("permission denied"), std::string::npos) << s.ToString();
  }
  // Options that can never work.
  ServerOptions opt;
  opt.io_threads = 0;
  EXPECT_EQ(HttpServer(opt, &h).Start().code(), Status::Code::kInvalidArgument);
  opt = {};
  opt.max_connections = 0;
  EXPECT_EQ(HttpServer(opt, &h).Start().code(), Status::Code::kInvalidArgument);
  opt = {};
  opt.allowed_methods = {"GET", "BAD METHOD"};
  EXPECT_EQ(HttpServer(opt, &h).Start().code(), Status::Code::kInvalidArgument);
  // Twice.
  EXPECT_EQ(first.Start().code(), Status::Code::kInvalidArgument);
}

TEST(HttpServer, ListensOnIpv6Loopback) {
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor probe(ioc);
    boost::system::error_code ec;
    probe.open(boost::asio::ip::tcp::v6(), ec);
    if (!ec) probe.bind({boost::asio::ip::address_v6::loopback(), 0}, ec);
    if (ec) GTEST_SKIP() << "no IPv6 loopback here: " << ec.message();
  }
  ServerOptions opt;
  opt.listen = "[::1]:0";
  ServerRequest seen;
  std::mutex mu;
  Fixture f(opt, [&](const ServerRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen = r;
    return Echo(r);
  });
  ASSERT_TRUE(f.status.ok()) << f.status.ToString();
  HttpResponse res =
      MustExchange(GetRequest("http://[::1]:" + std::to_string(f.server->port()) + "/6"));
  EXPECT_EQ(res.body, "GET /6 ");
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.peer.rfind("[::1]:", 0), 0u) << seen.peer;
}

// --- TLS -----------------------------------------------------------------------------------

struct TlsFixture {
  TlsFixture() : cert("IP:127.0.0.1") {
    ServerOptions opt;
    opt.tls_cert_file = cert.cert_path();
    opt.tls_key_file = cert.key_path();
    opt.read_timeout = milliseconds(500);
    opt.idle_timeout = milliseconds(500);
    f = std::make_unique<Fixture>(opt, [](const ServerRequest& r) {
      return ServerResponse::Text(200, std::string(r.tls ? "tls " : "plain ") + r.body);
    });
  }
  std::string Url() const { return "https://127.0.0.1:" + std::to_string(f->server->port()) + "/"; }
  HttpClientOptions Trusting() const {
    HttpClientOptions o;
    o.ca_file = cert.cert_path();
    o.timeout = std::chrono::seconds(10);
    return o;
  }
  TestCertificate cert;
  std::unique_ptr<Fixture> f;
};

TEST(HttpServerTls, RoundTripWithTheProjectsClientAndACaFile) {
  TlsFixture t;
  ASSERT_TRUE(t.f->status.ok()) << t.f->status.ToString();
  HttpRequest req;
  req.method = "POST";
  req.url = t.Url();
  req.body = std::string(100000, 's');
  HttpResponse res = MustExchange(req, t.Trusting());
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, "tls " + req.body);
}

TEST(HttpServerTls, BadHandshakesDoNotHurtTheServer) {
  TlsFixture t;
  ASSERT_TRUE(t.f->status.ok());
  // Plain HTTP to the TLS port.
  RawConn plain(t.f->server->port());
  ASSERT_TRUE(plain.Send(Get()));
  EXPECT_TRUE(plain.WaitClosed());
  // Garbage that looks like a TLS record, then a reset (which may come before the accept, so
  // it is not counted below).
  {
    RawConn junk(t.f->server->port());
    ASSERT_TRUE(junk.Send(std::string("\x16\x03\x01\x00\x05hello", 10)));
    linger lg{1, 0};
    ::setsockopt(junk.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  // A client that connects and says nothing is dropped after the read timeout.
  RawConn silent(t.f->server->port());
  EXPECT_TRUE(silent.WaitClosed());
  // And a good client is still served.
  EXPECT_EQ(MustExchange(GetRequest(t.Url()), t.Trusting()).body, "tls ");
  EXPECT_TRUE(WaitUntil([&] { return t.f->server->stats().tls_failures >= 2; }))
      << t.f->server->stats().tls_failures;
}

TEST(HttpServerTls, UntrustedCertificateIsRefusedByTheClient) {
  TlsFixture t;
  ASSERT_TRUE(t.f->status.ok());
  TestCertificate other("IP:127.0.0.1");
  HttpClientOptions o;
  o.ca_file = other.cert_path();
  HttpResponse res;
  Status s = HttpExchange(GetRequest(t.Url()), o, &res);
  EXPECT_EQ(s.code(), Status::Code::kIoError) << s.ToString();
  EXPECT_EQ(MustExchange(GetRequest(t.Url()), t.Trusting()).status, 200u);
}

TEST(HttpServerTls, BadCertificateFilesAreStartErrors) {
  TestCertificate a("IP:127.0.0.1"), b("IP:127.0.0.1");
  FnHandler h(Echo);
  auto start = [&](const std::string& cert, const std::string& key) {
    ServerOptions opt;
    opt.tls_cert_file = cert;
    opt.tls_key_file = key;
    return HttpServer(opt, &h).Start();
  };
  EXPECT_EQ(start(a.cert_path(), "").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(start("/nonexistent/cert.pem", a.key_path()).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(start(a.key_path(), a.key_path()).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(start(a.cert_path(), a.cert_path()).code(), Status::Code::kInvalidArgument);
  Status s = start(a.cert_path(), b.key_path());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s.ToString();
  EXPECT_EQ(start("/dev/zero", a.key_path()).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(start(a.cert_path(), a.key_path()).ok());
}

}  // namespace
}  // namespace ccmon
