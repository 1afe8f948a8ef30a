// PersistentHttpTransport (src/http/persistent_transport.h) against real servers on 127.0.0.1:
// a scripted raw-socket HTTP/1.1 server that counts the connections it accepts and can close an
// idle connection, close one as the next request arrives, reset one mid-response or never
// answer; plain and TLS (a self-signed certificate made here). No sleeps: every wait is on a
// condition with a deadline.
#include "http/persistent_transport.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ccmon {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// A self-signed P-256 certificate for IP:127.0.0.1, with its key, as OpenSSL objects and as a
// PEM file for HttpClientOptions::ca_file.
class SelfSignedCert {
 public:
  SelfSignedCert() {
    key_ = EVP_EC_gen("P-256");
    cert_ = X509_new();
    X509_set_version(cert_, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert_), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert_), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert_), 24 * 3600);
    X509_set_pubkey(cert_, key_);
    X509_NAME* name = X509_get_subject_name(cert_);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("ccmon keep-alive"), -1, -1,
                               0);
    X509_set_issuer_name(cert_, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert_, cert_, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(cert_, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(cert_, key_, EVP_sha256());
    path_ = ::testing::TempDir() + "ccmon_persistent_cert_XXXXXX";
    const int fd = ::mkstemp(path_.data());
    FILE* f = ::fdopen(fd, "w");
    PEM_write_X509(f, cert_);
    std::fclose(f);
  }
  ~SelfSignedCert() {
    std::remove(path_.c_str());
    X509_free(cert_);
    EVP_PKEY_free(key_);
  }
  X509* cert() const { return cert_; }
  EVP_PKEY* key() const { return key_; }
  const std::string& path() const { return path_; }

 private:
  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
  std::string path_;
};

// What the server does with one request.
enum class Action {
  kRespond,           // the response; the connection stays open
  kRespondThenClose,  // the response, then close without saying so (an idle close)
  kCloseInstead,      // close without answering (the request raced an idle close)
  kResetMidResponse,  // half of the response's head, then a TCP reset
  kHang,              // never answer; wait for the client to go away
};

struct Reply {
  Action action = Action::kRespond;
  std::string response;
};

std::string Response(unsigned status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// An HTTP/1.1 server on 127.0.0.1:0 serving one connection at a time, any number of requests
// on each, answering from `script(connection index, request index overall, request)`.
class KeepAliveServer {
 public:
  using Script = std::function<Reply(int connection, int request, const std::string& raw)>;

  explicit KeepAliveServer(Script script, const SelfSignedCert* cert = nullptr)
      : script_(std::move(script)),
        acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}),
        tls_(ssl::context::tls_server) {
    if (cert) {
      SSL_CTX_use_certificate(tls_.native_handle(), cert->cert());
      SSL_CTX_use_PrivateKey(tls_.native_handle(), cert->key());
    }
    thread_ = std::thread([this, tls = cert != nullptr] { Run(tls); });
  }
  ~KeepAliveServer() {
    stopping_ = true;
    boost::system::error_code ec;
    tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ec);  // unblocks accept()
    thread_.join();
  }

  std::string url(const std::string& scheme, const std::string& path = "/api/v1/write") const {
    return scheme + "://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path;
  }
  int connections() const { return connections_; }
  int requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // Waits until `n` requests arrived (true), or 10 s passed.
  bool WaitForRequests(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, Clock::now() + std::chrono::seconds(10),
                          [&] { return requests_ >= n; });
  }

 private:
  void Run(bool tls) {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket sock(io_);
      acceptor_.accept(sock, ec);
      if (ec || stopping_) return;
      const int conn = connections_++;
      if (tls) {
        ssl::stream<tcp::socket&> stream(sock, tls_);
        stream.handshake(ssl::stream_base::server, ec);
        if (!ec) Serve(stream, sock, conn);
      } else {
        Serve(sock, sock, conn);
      }
    }
  }

  template <class Stream>
  void Serve(Stream& stream, tcp::socket& sock, int conn) {
    net::streambuf buf;
    for (;;) {
      boost::system::error_code ec;
      const size_t head_bytes = net::read_until(stream, buf, "\r\n\r\n", ec);
      if (ec) return;  // the client closed the connection
      std::string head(net::buffers_begin(buf.data()),
                       net::buffers_begin(buf.data()) + std::ptrdiff_t(head_bytes));
      buf.consume(head_bytes);
      size_t content_length = 0;
      const size_t cl = head.find("Content-Length: ");
      if (cl != std::string::npos) content_length = std::stoul(head.substr(cl + 16));
      if (buf.size() < content_length) {
        net::read(stream, buf, net::transfer_exactly(content_length - buf.size()), ec);
        if (ec) return;
      }
      const std::string body(net::buffers_begin(buf.data()),
                             net::buffers_begin(buf.data()) + std::ptrdiff_t(content_length));
      buf.consume(content_length);
      int request;
      {
        std::lock_guard<std::mutex> lock(mu_);
        request = requests_++;
        cv_.notify_all();
      }
      const Reply reply = script_(conn, request, head + body);
      switch (reply.action) {
        case Action::kRespond:
          net::write(stream, net::buffer(reply.response), ec);
          if (ec) return;
          break;
        case Action::kRespondThenClose:
          net::write(stream, net::buffer(reply.response), ec);
          return;  // the socket closes with the caller's scope
        case Action::kCloseInstead:
          return;
        case Action::kResetMidResponse:
          net::write(stream, net::buffer(reply.response.substr(0, reply.response.size() / 2)), ec);
          sock.set_option(net::socket_base::linger(true, 0), ec);
          sock.close(ec);
          return;
        case Action::kHang: {
          char c;
          while (!ec) net::read(stream, net::buffer(&c, 1), ec);
          return;
        }
      }
    }
  }

  Script script_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  ssl::context tls_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int requests_ = 0;
};

HttpRequest Post(const std::string& url, std::string body = "payload") {
  HttpRequest r;
  r.method = "POST";
  r.url = url;
  r.body = std::move(body);
  return r;
}

Reply Ok(const std::string& body = "") { return {Action::kRespond, Response(200, body)}; }

TEST(PersistentTransport, ReusesOneConnectionForManyRequests) {
  KeepAliveServer server([](int, int request, const std::string& raw) {
    return Ok("r" + std::to_string(request) +
              (raw.find("payload") != std::string::npos ? "" : "?"));
  });
  PersistentHttpTransport t(HttpClientOptions{});
  for (int i = 0; i < 50; ++i) {
    HttpResponse res;
    ASSERT_TRUE(t.Exchange(Post(server.url("http")), &res).ok()) << i;
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(res.body, "r" + std::to_string(i));
  }
  EXPECT_EQ(server.connections(), 1);
  const PersistentTransportStats s = t.stats();
  EXPECT_EQ(s.exchanges, 50u);
  EXPECT_EQ(s.connections_opened, 1u);
  EXPECT_EQ(s.reused, 49u);
  EXPECT_EQ(s.repeated, 0u);
  EXPECT_TRUE(t.connected());
}

TEST(PersistentTransport, AnIdleCloseByTheServerIsNotAnError) {
  // Every response is followed by the server closing the connection without a word.
  KeepAliveServer server([](int, int, const std::string&) {
    return Reply{Action::kRespondThenClose, Response(204, "")};
  });
  PersistentHttpTransport t(HttpClientOptions{});
  for (int i = 0; i < 5; ++i) {
    HttpResponse res;
    Status s = t.Exchange(Post(server.url("http")), &res);
    ASSERT_TRUE(s.ok()) << i << ": " << s.message();
    EXPECT_EQ(res.status, 204u);
  }
  EXPECT_EQ(server.connections(), 5);
  EXPECT_EQ(server.requests(), 5);  // each request reached the server once
  const PersistentTransportStats st = t.stats();
  EXPECT_EQ(st.connections_opened, 5u);
  // Found closed before reuse, or met while reusing it and repeated: never an error.
  EXPECT_EQ(st.stale_closed + st.repeated, 4u);
}

TEST(PersistentTransport, ACloseRacingTheNextRequestIsRepeatedOnceOnAFreshConnection) {
  // The second request arrives on the old connection, which the server then closes unanswered
  // (what an idle timeout firing as the request arrives looks like to the client).
  KeepAliveServer server([](int conn, int request, const std::string&) {
    if (conn == 0 && request == 1) return Reply{Action::kCloseInstead, ""};
    return Ok("fine");
  });
  PersistentHttpTransport t(HttpClientOptions{});
  HttpResponse res;
  ASSERT_TRUE(t.Exchange(Post(server.url("http")), &res).ok());
  Status s = t.Exchange(Post(server.url("http")), &res);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(res.body, "fine");
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests(), 3);  // the one lost to the close, and its repetition
  EXPECT_EQ(t.stats().repeated, 1u);
}

TEST(PersistentTransport, NoRepeatWhenAFreshConnectionIsClosedUnanswered) {
  KeepAliveServer server([](int, int, const std::string&) {
    return Reply{Action::kCloseInstead, ""};
  });
  PersistentHttpTransport t(HttpClientOptions{});
  HttpResponse res;
  Status s = t.Exchange(Post(server.url("http")), &res);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(t.stats().repeated, 0u);
  EXPECT_FALSE(t.connected());
}

TEST(PersistentTransport, AResetMidResponseIsAnErrorForThePolicyNotRepeated) {
  KeepAliveServer server([](int, int request, const std::string&) {
    if (request == 1) return Reply{Action::kResetMidResponse, Response(200, "never whole")};
    return Ok("ok");
  });
  PersistentHttpTransport t(HttpClientOptions{});
  HttpResponse res;
  ASSERT_TRUE(t.Exchange(Post(server.url("http")), &res).ok());
  Status s = t.Exchange(Post(server.url("http")), &res);
  EXPECT_EQ(s.code(), Status::Code::kIoError);  // the server may have processed it: not ours
  EXPECT_EQ(t.stats().repeated, 0u);
  EXPECT_EQ(server.requests(), 2);
  // The next exchange (the policy's retry) goes out on a fresh connection.
  s = t.Exchange(Post(server.url("http")), &res);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(res.body, "ok");
  EXPECT_EQ(server.connections(), 2);
}

TEST(PersistentTransport, HonoursConnectionCloseFromTheServerAndTheRequest) {
  KeepAliveServer server([](int, int request, const std::string&) {
    if (request == 0)
      return Reply{Action::kRespondThenClose, Response(200, "a", "Connection: close\r\n")};
    return Ok("b");
  });
  PersistentHttpTransport t(HttpClientOptions{});
  HttpResponse res;
  ASSERT_TRUE(t.Exchange(Post(server.url("http")), &res).ok());
  EXPECT_FALSE(t.connected());  // closed at once, not found stale later
  HttpRequest req = Post(server.url("http"));
  req.headers.push_back({"Connection", "close"});
  ASSERT_TRUE(t.Exchange(req, &res).ok());
  EXPECT_FALSE(t.connected());
  ASSERT_TRUE(t.Exchange(Post(server.url("http")), &res).ok());
  EXPECT_TRUE(t.connected());
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(t.stats().stale_closed, 0u);
  EXPECT_EQ(t.stats().repeated, 0u);
}

TEST(PersistentTransport, AnotherOriginGetsAConnectionOfItsOwn) {
  KeepAliveServer a([](int, int, const std::string&) { return Ok("a"); });
  KeepAliveServer b([](int, int, const std::string&) { return Ok("b"); });
  PersistentHttpTransport t(HttpClientOptions{});
  HttpResponse res;
  for (const KeepAliveServer* s : {&a, &b, &a}) {
    ASSERT_TRUE(t.Exchange(Post(s->url("http")), &res).ok());
    EXPECT_EQ(res.body, s == &a ? "a" : "b");
  }
  EXPECT_EQ(a.connections(), 2);
  EXPECT_EQ(b.connections(), 1);
}

TEST(PersistentTransport, AReusedConnectionThatStopsAnsweringTimesOutAndIsNotRepeated) {
  KeepAliveServer server([](int, int request, const std::string&) {
    return request == 0 ? Ok() : Reply{Action::kHang, ""};
  });
  HttpClientOptions opt;
  opt.timeout = std::chrono::seconds(1);
  PersistentHttpTransport t(opt);
  HttpResponse res;
  ASSERT_TRUE(t.Exchange(Post(server.url("http")), &res).ok());
  Status s = t.Exchange(Post(server.url("http")), &res);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("timeout"), std::string::npos) << s.message();
  EXPECT_EQ(t.stats().repeated, 0u);
  EXPECT_EQ(server.requests(), 2);
}

TEST(PersistentTransport, InvalidRequestsAreRefusedWithoutTouchingTheConnection) {
  KeepAliveServer server([](int, int, const std::string&) { return Ok(); });
  PersistentHttpTransport t(HttpClientOptions{});
  HttpResponse res;
  ASSERT_TRUE(t.Exchange(Post(server.url("http")), &res).ok());
  HttpRequest bad = Post(server.url("http"));
  bad.headers.push_back({"X-Evil", "a\r\nInjected: yes"});
  EXPECT_EQ(t.Exchange(bad, &res).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(t.Exchange(Post("http://127.0.0.1:99999/"), &res).code(),
            Status::Code::kInvalidArgument);
  ASSERT_TRUE(t.Exchange(Post(server.url("http")), &res).ok());
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(server.requests(), 2);
}

TEST(PersistentTransport, ConnectionRefusedIsAnIoError) {
  uint16_t port;
  {
    net::io_context io;
    tcp::acceptor probe(io, {net::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }  // closed: nothing listens there now
  PersistentHttpTransport t(HttpClientOptions{});
  HttpResponse res;
  Status s = t.Exchange(Post("http://127.0.0.1:" + std::to_string(port) + "/"), &res);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("connect"), std::string::npos) << s.message();
  EXPECT_FALSE(t.connected());
}

// Runs `exchange` on a thread, waits until the server has the request, interrupts it with
// `interrupt`, and returns how long the exchange took after the interruption and its Status.
std::pair<Clock::duration, Status> InterruptHangingExchange(
    KeepAliveServer& server, PersistentHttpTransport& t, const std::function<void()>& interrupt) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  std::thread worker([&] {
    HttpResponse res;
    done.set_value(t.Exchange(Post(server.url("http")), &res));
  });
  EXPECT_TRUE(server.WaitForRequests(1));
  const auto start = Clock::now();
  interrupt();
  const bool finished = result.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  const auto took = Clock::now() - start;
  worker.join();
  EXPECT_TRUE(finished);
  return {took, result.get()};
}

TEST(PersistentTransport, CancelEndsAHangingExchangeAtOnceAndEveryLaterOne) {
  KeepAliveServer server([](int, int, const std::string&) { return Reply{Action::kHang, ""}; });
  PersistentHttpTransport t(HttpClientOptions{});  // 30 s timeouts: only Cancel can end it
  auto [took, s] = InterruptHangingExchange(server, t, [&] { t.Cancel(); });
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("cancelled"), std::string::npos) << s.message();
  EXPECT_TRUE(t.cancelled());
  HttpResponse res;
  EXPECT_EQ(t.Exchange(Post(server.url("http")), &res).code(), Status::Code::kIoError);
  EXPECT_EQ(server.requests(), 1);  // the later one never reached the network
  t.Cancel();                       // idempotent
}

TEST(PersistentTransport, AStopTokenCancelsLikeCancel) {
  KeepAliveServer server([](int, int, const std::string&) { return Reply{Action::kHang, ""}; });
  std::stop_source stop;
  PersistentHttpTransport t(HttpClientOptions{}, stop.get_token());
  auto [took, s] = InterruptHangingExchange(server, t, [&] { stop.request_stop(); });
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_TRUE(t.cancelled());
}

TEST(PersistentTransport, AStopAlreadyRequestedRefusesTheFirstExchange) {
  KeepAliveServer server([](int, int, const std::string&) { return Ok(); });
  std::stop_source stop;
  stop.request_stop();
  PersistentHttpTransport t(HttpClientOptions{}, stop.get_token());
  HttpResponse res;
  EXPECT_EQ(t.Exchange(Post(server.url("http")), &res).code(), Status::Code::kIoError);
  EXPECT_EQ(server.connections(), 0);
}

TEST(PersistentTransport, TlsKeepAliveReusesOneHandshake) {
  SelfSignedCert cert;
  KeepAliveServer server(
      [](int, int request, const std::string&) { return Ok("tls" + std::to_string(request)); },
      &cert);
  HttpClientOptions opt;
  opt.ca_file = cert.path();
  PersistentHttpTransport t(opt);
  for (int i = 0; i < 10; ++i) {
    HttpResponse res;
    Status s = t.Exchange(Post(server.url("https")), &res);
    ASSERT_TRUE(s.ok()) << i << ": " << s.message();
    EXPECT_EQ(res.body, "tls" + std::to_string(i));
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(t.stats().connections_opened, 1u);
  EXPECT_EQ(t.stats().stale_closed, 0u);
}

TEST(PersistentTransport, TlsIdleCloseReconnectsAndAnUntrustedServerIsRefused) {
  SelfSignedCert cert;
  KeepAliveServer server(
      [](int, int, const std::string&) {
        return Reply{Action::kRespondThenClose, Response(204, "")};
      },
      &cert);
  HttpClientOptions opt;
  opt.ca_file = cert.path();
  PersistentHttpTransport t(opt);
  for (int i = 0; i < 3; ++i) {
    HttpResponse res;
    Status s = t.Exchange(Post(server.url("https")), &res);
    ASSERT_TRUE(s.ok()) << i << ": " << s.message();
  }
  EXPECT_EQ(server.connections(), 3);

  SelfSignedCert other;  // a CA that did not sign the server's certificate
  HttpClientOptions wrong;
  wrong.ca_file = other.path();
  PersistentHttpTransport untrusting(wrong);
  HttpResponse res;
  Status s = untrusting.Exchange(Post(server.url("https")), &res);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("handshake"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ccmon
