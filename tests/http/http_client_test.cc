// HttpGet and HttpExchange (src/http/http_client.h) against real servers on the loopback: plain
// HTTP, TLS with a self-signed certificate made here (trusted through $SSL_CERT_FILE, or not),
// redirects, errors, body limits and a server that never answers.
#include "http/http_client.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace ccmon {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

// A self-signed certificate for `san` (e.g. "IP:127.0.0.1"), kept as OpenSSL objects and as a
// PEM file that $SSL_CERT_FILE can point at.
class TestCertificate {
 public:
  explicit TestCertificate(const std::string& san) {
    key_.reset(EVP_EC_gen("P-256"));
    cert_.reset(X509_new());
    X509* x = cert_.get();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key_.get());
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("ccmon test"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, key_.get(), EVP_sha256());
    path_ = ::testing::TempDir() + "ccmon_net_test_cert_XXXXXX";
    int fd = ::mkstemp(path_.data());
    FILE* f = ::fdopen(fd, "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    key_path_ = ::testing::TempDir() + "ccmon_net_test_key_XXXXXX";
    fd = ::mkstemp(key_path_.data());
    f = ::fdopen(fd, "w");
    PEM_write_PrivateKey(f, key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
  }
  ~TestCertificate() {
    std::remove(path_.c_str());
    std::remove(key_path_.c_str());
  }
  X509* cert() const { return cert_.get(); }
  EVP_PKEY* key() const { return key_.get(); }
  const std::string& path() const { return path_; }          // the certificate (PEM)
  const std::string& key_path() const { return key_path_; }  // its private key (PEM)

 private:
  struct FreeKey {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  };
  struct FreeCert {
    void operator()(X509* c) const { X509_free(c); }
  };
  std::unique_ptr<EVP_PKEY, FreeKey> key_;
  std::unique_ptr<X509, FreeCert> cert_;
  std::string path_;
  std::string key_path_;
};

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A server on `address`:0 (127.0.0.1 unless given) for `connections` sequential connections.
// `respond` gets the request head and returns the raw response; std::nullopt means "never
// answer": the server then waits until the client hangs up. With a certificate it speaks TLS;
// with `client_ca` too it demands a client certificate issued by it. Failed handshakes are
// expected in some tests and end that connection only.
class TestServer {
 public:
  using Respond = std::function<std::optional<std::string>(const std::string& request)>;
  TestServer(int connections, Respond respond, const TestCertificate* cert = nullptr,
             const TestCertificate* client_ca = nullptr, const std::string& address = "127.0.0.1")
      : acceptor_(io_, {net::ip::make_address(address), 0}),
        tls_(ssl::context::tls_server),
        host_(address.find(':') != std::string::npos ? "[" + address + "]" : address) {
    if (cert) {
      SSL_CTX_use_certificate(tls_.native_handle(), cert->cert());
      SSL_CTX_use_PrivateKey(tls_.native_handle(), cert->key());
    }
    if (client_ca) {
      X509_STORE_add_cert(SSL_CTX_get_cert_store(tls_.native_handle()), client_ca->cert());
      SSL_CTX_set_verify(tls_.native_handle(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         nullptr);
    }
    thread_ = std::thread([this, connections, respond, tls = cert != nullptr] {
      for (int i = 0; i < connections; ++i) {
        boost::system::error_code ec;
        tcp::socket sock(io_);
        acceptor_.accept(sock, ec);
        if (ec) return;
        if (tls) {
          ssl::stream<tcp::socket> stream(std::move(sock), tls_);
          stream.handshake(ssl::stream_base::server, ec);
          if (!ec) Serve(stream, respond);
        } else {
          Serve(sock, respond);
        }
      }
    });
  }
  ~TestServer() { thread_.join(); }
  std::string url(const std::string& scheme, const std::string& path) const {
    return scheme + "://" + host_ + ":" + std::to_string(acceptor_.local_endpoint().port()) + path;
  }
  int requests() const { return requests_; }

 private:
  template <class Stream>
  void Serve(Stream& stream, const Respond& respond) {
    boost::system::error_code ec;
    net::streambuf buf;
    net::read_until(stream, buf, "\r\n\r\n", ec);
    if (ec) return;
    ++requests_;
    std::string head(net::buffers_begin(buf.data()), net::buffers_end(buf.data()));
    // A body (POST): read what Content-Length announces, past what came with the head.
    const size_t head_end = head.find("\r\n\r\n") + 4;
    const size_t cl = head.find("Content-Length: ");
    if (cl != std::string::npos && cl < head_end) {
      const size_t want = std::stoul(head.substr(cl + 16));
      const size_t have = head.size() - head_end;
      if (want > have) net::read(stream, buf, net::transfer_exactly(want - have), ec);
      if (ec) return;
      head.assign(net::buffers_begin(buf.data()), net::buffers_end(buf.data()));
    }
    std::optional<std::string> response = respond(head);
    if (!response) {  // stall: read until the client gives up and closes
      char c;
      while (!ec) net::read(stream, net::buffer(&c, 1), ec);
      return;
    }
    net::write(stream, net::buffer(*response), ec);
  }

  net::io_context io_;
  tcp::acceptor acceptor_;
  ssl::context tls_;
  std::string host_;
  std::thread thread_;
  std::atomic<int> requests_{0};
};

std::string Ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

TEST(HttpGet, PlainGetReturnsTheBodyAndSendsAHead) {
  std::string seen;
  TestServer server(1, [&](const std::string& req) {
    seen = req;
    return Ok("{\"a\":1}");
  });
  std::string body;
  Status s = HttpGet(server.url("http", "/prices.json"), HttpClientOptions{}, &body);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(body, "{\"a\":1}");
  EXPECT_EQ(seen.rfind("GET /prices.json HTTP/1.1\r\n", 0), 0u) << seen;
  EXPECT_NE(seen.find("User-Agent: ccmon-pricing/"), std::string::npos) << seen;
}

TEST(HttpExchange, PostsTheBodyWithTheGivenHeadersAndReturnsAnyStatus) {
  std::string seen;
  TestServer server(2, [&](const std::string& req) -> std::optional<std::string> {
    seen = req;
    if (req.find("second") != std::string::npos) {
      return std::string(
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy");
    }
    return std::string("HTTP/1.1 204 No Content\r\n\r\n");
  });
  HttpRequest req;
  req.method = "POST";
  req.url = server.url("http", "/api/v1/write");
  req.headers = {{"Content-Encoding", "snappy"}, {"X-Scope-OrgID", "team-a"}};
  req.body = std::string("first\0body", 10);
  HttpResponse res;
  ASSERT_TRUE(HttpExchange(req, HttpClientOptions{}, &res).ok());
  EXPECT_EQ(res.status, 204u);
  EXPECT_EQ(seen.rfind("POST /api/v1/write HTTP/1.1\r\n", 0), 0u) << seen;
  EXPECT_NE(seen.find("Content-Encoding: snappy\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Scope-OrgID: team-a\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Content-Length: 10\r\n"), std::string::npos) << seen;
  EXPECT_EQ(seen.substr(seen.size() - 10), std::string("first\0body", 10));

  req.body = "second";
  ASSERT_TRUE(HttpExchange(req, HttpClientOptions{}, &res).ok());
  EXPECT_EQ(res.status, 503u);
  EXPECT_EQ(res.Header("retry-after"), "7");
  EXPECT_EQ(res.body, "busy");
}

TEST(HttpExchange, NoServerIsAnErrorNotAResponse) {
  uint16_t port;
  {
    net::io_context io;
    tcp::acceptor a(io, {net::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  HttpResponse res;
  Status s = HttpExchange(req, HttpClientOptions{}, &res);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("connect"), std::string::npos) << s.message();
}

TEST(HttpGet, FollowsARelativeRedirect) {
  TestServer server(2, [](const std::string& req) -> std::optional<std::string> {
    if (req.rfind("GET /old ", 0) == 0) {
      return std::string("HTTP/1.1 301 Moved\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n");
    }
    return Ok(req.rfind("GET /new ", 0) == 0 ? "moved here" : "wrong path");
  });
  std::string body;
  Status s = HttpGet(server.url("http", "/old"), HttpClientOptions{}, &body);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(body, "moved here");
}

TEST(HttpGet, ErrorsNameTheProblem) {
  {
    TestServer server(1, [](const std::string&) {
      return std::string("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    });
    std::string body;
    Status s = HttpGet(server.url("http", "/missing"), HttpClientOptions{}, &body);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("HTTP 404"), std::string::npos) << s.message();
  }
  // A 5000-byte body against a 1000-byte limit, announced by Content-Length or read to EOF
  // (then the parser's own limit applies).
  for (const std::string& response :
       {Ok(std::string(5000, 'x')),
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(5000, 'x')}) {
    TestServer server(1, [&](const std::string&) { return response; });
    HttpClientOptions small;
    small.max_body_bytes = 1000;
    std::string body;
    Status s = HttpGet(server.url("http", "/big"), small, &body);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("body limit"), std::string::npos) << s.message();
  }
  std::string body;
  EXPECT_FALSE(HttpGet("ftp://example.com/x", HttpClientOptions{}, &body).ok());
  EXPECT_FALSE(HttpGet("http://", HttpClientOptions{}, &body).ok());
  EXPECT_FALSE(HttpGet("http://[::1/x", HttpClientOptions{}, &body).ok());
}

TEST(HttpGet, AServerThatNeverAnswersTimesOut) {
  TestServer server(1, [](const std::string&) { return std::nullopt; });
  HttpClientOptions opt;
  opt.timeout = std::chrono::seconds(1);
  std::string body;
  const auto start = std::chrono::steady_clock::now();
  Status s = HttpGet(server.url("http", "/slow"), opt, &body);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("timeout"), std::string::npos) << s.message();
  EXPECT_LT(elapsed, std::chrono::seconds(30));  // bounded by the timeout, not by the server
  EXPECT_EQ(server.requests(), 1);
}

// An HTTPS GET of a server presenting `served`, with only `trusted` in the CA store.
struct TlsResult {
  Status status;
  std::string body;
  int requests_seen;
};
TlsResult GetOverTls(const TestCertificate& served, const TestCertificate& trusted) {
  ScopedEnv trust("SSL_CERT_FILE", trusted.path());
  TestServer server(
      1, [](const std::string&) { return Ok("secret prices"); }, &served);
  TlsResult r;
  r.status = HttpGet(server.url("https", "/p.json"), HttpClientOptions{}, &r.body);
  r.requests_seen = server.requests();
  return r;
}

TEST(HttpGet, HttpsWithATrustedCertificate) {
  TestCertificate cert("IP:127.0.0.1");
  TlsResult r = GetOverTls(cert, cert);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.body, "secret prices");
}

TEST(HttpGet, HttpsRejectsAnUntrustedCertificate) {
  TestCertificate cert("IP:127.0.0.1");
  TestCertificate other("IP:127.0.0.1");
  TlsResult r = GetOverTls(cert, other);  // trusts a different certificate only
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("TLS handshake"), std::string::npos) << r.status.message();
  EXPECT_EQ(r.requests_seen, 0);
}

TEST(HttpGet, HttpsRejectsACertificateForAnotherHost) {
  TestCertificate cert("DNS:prices.example.com");
  TlsResult r = GetOverTls(cert, cert);
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("TLS handshake"), std::string::npos) << r.status.message();
  EXPECT_EQ(r.requests_seen, 0);
}

// Issue #6, 8.9: whatever the caller passes, no header line is injected and nothing is sent.
TEST(HttpExchange, RefusesInjectedHeadersBadMethodsAndFramingBeforeConnecting) {
  std::string seen;
  TestServer server(1, [&](const std::string& req) {
    seen = req;
    return std::string("HTTP/1.1 204 No Content\r\n\r\n");
  });
  const std::vector<std::pair<std::string, std::string>> bad_headers = {
      {"X-Evil", "a\r\nInjected: 1"},
      {"X-Evil", "a\nInjected: 1"},
      {"X-Evil", "a\rInjected: 1"},
      {"X-Evil", std::string("a\0Injected: 1", 13)},
      {"X-Evil\r\nInjected", "1"},
      {"X-Evil: a\r\nInjected", "1"},
      {"", "1"},
      {"Content-Length", "0"},
      {"Transfer-Encoding", "chunked"},
  };
  for (const auto& h : bad_headers) {
    HttpRequest req;
    req.method = "POST";
    req.url = server.url("http", "/api/v1/write");
    req.headers = {{"X-Ok", "1"}, h};
    req.body = "B";
    HttpResponse res;
    Status s = HttpExchange(req, HttpClientOptions{}, &res);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << h.first << ": " << s.message();
  }
  for (const char* method : {"", "GET\r\nX: 1", "FROB", "G T"}) {
    HttpRequest req;
    req.method = method;
    req.url = server.url("http", "/");
    HttpResponse res;
    EXPECT_EQ(HttpExchange(req, HttpClientOptions{}, &res).code(), Status::Code::kInvalidArgument)
        << method;
  }
  for (const std::string& url :
       {server.url("http", "/a b"), server.url("http", "/a\r\nX: 1"),
        std::string("http://127.0.0.1:99999/"), std::string("http://u:p@127.0.0.1/")}) {
    HttpRequest req;
    req.url = url;
    HttpResponse res;
    EXPECT_EQ(HttpExchange(req, HttpClientOptions{}, &res).code(), Status::Code::kInvalidArgument)
        << url;
  }
  EXPECT_EQ(server.requests(), 0);
  // The one connection the server takes: a valid request, which goes through unchanged.
  HttpRequest ok;
  ok.url = server.url("http", "/fine");
  ok.headers = {{"X-Ok", "a\tb"}};
  HttpResponse res;
  ASSERT_TRUE(HttpExchange(ok, HttpClientOptions{}, &res).ok());
  EXPECT_EQ(server.requests(), 1);
  EXPECT_NE(seen.find("\r\nX-Ok: a\tb\r\n"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("Injected"), std::string::npos) << seen;
}

TEST(HttpExchange, SendsHostWithThePortAndReturnsAllResponseHeaders) {
  std::string seen;
  TestServer server(1, [&](const std::string& req) {
    seen = req;
    return std::string(
        "HTTP/1.1 200 OK\r\nX-Prometheus-Remote-Write-Samples-Written: 5\r\n"
        "X-Two: a\r\nX-Two: b\r\nContent-Length: 0\r\n\r\n");
  });
  HttpRequest req;
  req.url = server.url("http", "/p?q=1");
  HttpResponse res;
  ASSERT_TRUE(HttpExchange(req, HttpClientOptions{}, &res).ok());
  const std::string port = server.url("", "").substr(std::string("://127.0.0.1:").size());
  EXPECT_EQ(seen.rfind("GET /p?q=1 HTTP/1.1\r\n", 0), 0u) << seen;
  EXPECT_NE(seen.find("Host: 127.0.0.1:" + port + "\r\n"), std::string::npos) << seen;
  EXPECT_EQ(res.Header("x-prometheus-remote-write-samples-written"), "5");
  int twos = 0;
  for (const auto& [k, v] : res.headers) twos += k == "X-Two";
  EXPECT_EQ(twos, 2);
}

// ---- Interim (1xx) responses

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

HttpResponse ExchangeWith(const std::string& raw_response, Status* status,
                          const TestCertificate* cert = nullptr) {
  std::optional<ScopedEnv> trust;
  if (cert) trust.emplace("SSL_CERT_FILE", cert->path());
  TestServer server(
      1, [&](const std::string&) { return raw_response; }, cert);
  HttpRequest req;
  req.method = "POST";
  req.url = server.url(cert ? "https" : "http", "/api/v1/write");
  req.body = "samples";
  HttpResponse res;
  *status = HttpExchange(req, HttpClientOptions{}, &res);
  return res;
}

TEST(HttpExchange, InterimResponsesAreSkippedForTheFinalOne) {
  Status s;
  HttpResponse res = ExchangeWith(std::string(kContinue) + "HTTP/1.1 204 No Content\r\n\r\n", &s);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(res.status, 204u);
  // Several kinds, with headers of their own (not the final response's), then a body.
  res = ExchangeWith(std::string(kContinue) +
                         "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                         "HTTP/1.1 102 Processing\r\n\r\n"
                         "HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 4\r\n\r\ndone",
                     &s);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, "done");
  EXPECT_EQ(res.Header("X-Final"), "yes");
  EXPECT_EQ(res.Header("Link"), "");
  // The same over TLS, and through HttpGet.
  TestCertificate cert("IP:127.0.0.1");
  res = ExchangeWith(std::string(kContinue) + "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", &s,
                     &cert);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(res.status, 503u);
  TestServer server(1, [](const std::string&) { return kContinue + Ok("prices"); });
  std::string body;
  s = HttpGet(server.url("http", "/p.json"), HttpClientOptions{}, &body);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(body, "prices");
}

TEST(HttpExchange, SwitchingProtocolsIsAnErrorNotAResponse) {
  Status s;
  ExchangeWith(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", &s);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("HTTP 101 (Switching Protocols), which was not asked for"),
            std::string::npos)
      << s.message();
}

TEST(HttpExchange, AtMost32InterimResponses) {
  std::string interim;
  for (int i = 0; i < kMaxInterimResponses; ++i) interim += kContinue;
  Status s;
  HttpResponse res = ExchangeWith(interim + "HTTP/1.1 204 No Content\r\n\r\n", &s);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(res.status, 204u);
  ExchangeWith(interim + kContinue + "HTTP/1.1 204 No Content\r\n\r\n", &s);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("more than 32 interim (1xx) responses"), std::string::npos)
      << s.message();
}

TEST(HttpExchange, AnInterimResponseAloneIsNoResponse) {
  // The server sends "100 Continue" and hangs up: there is no final response, so the exchange
  // fails (a sender retries it) instead of taking the 100 for an answer.
  TestServer server(
      1, [](const std::string&) -> std::optional<std::string> { return std::string(kContinue); });
  HttpClientOptions opt;
  opt.timeout = std::chrono::seconds(5);
  HttpRequest req;
  req.url = server.url("http", "/");
  HttpResponse res;
  Status s = HttpExchange(req, opt, &res);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIoError) << s.message();
  EXPECT_NE(s.message().find("read"), std::string::npos) << s.message();
}

TEST(HttpExchange, AServerDrippingInterimResponsesTimesOutWithinOneTimeout) {
  // A 100 Continue every 100 ms, for up to a minute: each arrives well within the 1 s timeout,
  // but the final response must arrive within one timeout of the request.
  net::io_context io;
  tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
  std::atomic<int> sent{0};
  std::thread drip([&] {
    boost::system::error_code ec;
    tcp::socket sock(io);
    acceptor.accept(sock, ec);
    if (ec) return;
    net::streambuf buf;
    net::read_until(sock, buf, "\r\n\r\n", ec);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (!ec && std::chrono::steady_clock::now() < give_up) {
      net::write(sock, net::buffer(std::string(kContinue)), ec);
      if (ec) break;
      ++sent;
      // Wait up to 100 ms for the client to hang up (readable: its close).
      pollfd p{sock.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) break;
    }
  });
  HttpClientOptions opt;
  opt.timeout = std::chrono::seconds(1);
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/";
  HttpResponse res;
  const auto start = std::chrono::steady_clock::now();
  Status s = HttpExchange(req, opt, &res);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  drip.join();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("timeout"), std::string::npos) << s.message();
  EXPECT_LT(elapsed, std::chrono::seconds(30));
  EXPECT_GE(sent.load(), 2);                     // it did drip
  EXPECT_LE(sent.load(), kMaxInterimResponses);  // and the timeout, not the count, ended it
}

TEST(HttpExchange, IPv6LiteralUrls) {
  try {
    net::io_context io;
    tcp::acceptor probe(io, {net::ip::make_address("::1"), 0});
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  std::string seen;
  TestServer server(
      1,
      [&](const std::string& req) {
        seen = req;
        return std::string("HTTP/1.1 204 No Content\r\n\r\n");
      },
      nullptr, nullptr, "::1");
  HttpRequest req;
  req.url = server.url("http", "/api/v1/write");
  ASSERT_EQ(req.url.rfind("http://[::1]:", 0), 0u);
  HttpResponse res;
  Status s = HttpExchange(req, HttpClientOptions{}, &res);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(res.status, 204u);
  EXPECT_NE(seen.find("Host: [::1]:"), std::string::npos) << seen;
}

TEST(HttpGet, RefusesARedirectFromHttpsToHttp) {
  TestCertificate cert("IP:127.0.0.1");
  HttpClientOptions opt;
  opt.ca_file = cert.path();
  TestServer server(
      1,
      [](const std::string&) {
        return std::string(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/p.json\r\nContent-Length: "
            "0\r\n\r\n");
      },
      &cert);
  std::string body;
  Status s = HttpGet(server.url("https", "/p.json"), opt, &body);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("refusing a redirect from https to http"), std::string::npos)
      << s.message();
}

// TLS options: a CA file instead of the system store, insecure_skip_verify, client
// certificates; each checked against servers that accept and refuse.
struct TlsCase {
  Status status;
  int requests_seen = 0;
};
TlsCase PostOverTls(const TestCertificate& served, const HttpClientOptions& opt,
                    const TestCertificate* client_ca = nullptr) {
  TestServer server(
      1, [](const std::string&) { return std::string("HTTP/1.1 204 No Content\r\n\r\n"); }, &served,
      client_ca);
  HttpRequest req;
  req.method = "POST";
  req.url = server.url("https", "/api/v1/write");
  req.body = "B";
  HttpResponse res;
  TlsCase c;
  c.status = HttpExchange(req, opt, &res);
  if (c.status.ok() && res.status != 204) c.status = Status::IoError("unexpected status");
  c.requests_seen = server.requests();
  return c;
}

TEST(HttpClientTls, CaFileReplacesTheSystemStore) {
  TestCertificate cert("IP:127.0.0.1");
  TestCertificate other("IP:127.0.0.1");
  ScopedEnv trust("SSL_CERT_FILE", other.path());  // the "system store" trusts `other` only
  HttpClientOptions opt;
  opt.ca_file = cert.path();
  TlsCase c = PostOverTls(cert, opt);
  EXPECT_TRUE(c.status.ok()) << c.status.message();
  EXPECT_EQ(c.requests_seen, 1);
  // The CA file is all that is trusted: a server the system store trusts is refused.
  opt.ca_file = cert.path();
  c = PostOverTls(other, opt);
  EXPECT_FALSE(c.status.ok());
  EXPECT_NE(c.status.message().find("TLS handshake"), std::string::npos) << c.status.message();
  EXPECT_EQ(c.requests_seen, 0);
}

TEST(HttpClientTls, UnreadableOrEmptyCaFilesAreInvalidArguments) {
  TestCertificate cert("IP:127.0.0.1");
  HttpRequest req;
  req.url = "https://127.0.0.1:1/";  // nothing is contacted: the options fail first
  HttpResponse res;
  HttpClientOptions opt;
  opt.ca_file = "/nonexistent/ca.pem";
  Status s = HttpExchange(req, opt, &res);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("CA file"), std::string::npos) << s.message();
  opt.ca_file = cert.key_path();  // PEM, but no certificate in it
  s = HttpExchange(req, opt, &res);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("no PEM certificate"), std::string::npos) << s.message();
  opt.ca_file = "/dev/zero";
  s = HttpExchange(req, opt, &res);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("larger than"), std::string::npos) << s.message();
}

TEST(HttpClientTls, InsecureSkipVerifyAcceptsAnyCertificate) {
  TestCertificate cert("DNS:prices.example.com");  // untrusted, and for another host
  TestCertificate other("IP:127.0.0.1");
  ScopedEnv trust("SSL_CERT_FILE", other.path());
  HttpClientOptions opt;
  TlsCase c = PostOverTls(cert, opt);
  EXPECT_FALSE(c.status.ok());  // refused by default
  opt.insecure_skip_verify = true;
  c = PostOverTls(cert, opt);
  EXPECT_TRUE(c.status.ok()) << c.status.message();
  EXPECT_EQ(c.requests_seen, 1);
}

TEST(HttpClientTls, ClientCertificateForMutualTls) {
  TestCertificate server_cert("IP:127.0.0.1");
  TestCertificate client("DNS:ccmon-agent");
  TestCertificate stranger("DNS:ccmon-agent");
  HttpClientOptions opt;
  opt.ca_file = server_cert.path();
  // Without a client certificate the server refuses the connection.
  TlsCase c = PostOverTls(server_cert, opt, &client);
  EXPECT_FALSE(c.status.ok());
  EXPECT_EQ(c.requests_seen, 0);
  // With one the server trusts, the request goes through.
  opt.client_cert_file = client.path();
  opt.client_key_file = client.key_path();
  c = PostOverTls(server_cert, opt, &client);
  EXPECT_TRUE(c.status.ok()) << c.status.message();
  EXPECT_EQ(c.requests_seen, 1);
  // With one the server does not trust, it is refused.
  opt.client_cert_file = stranger.path();
  opt.client_key_file = stranger.key_path();
  c = PostOverTls(server_cert, opt, &client);
  EXPECT_FALSE(c.status.ok());
  EXPECT_EQ(c.requests_seen, 0);
}

TEST(HttpClientTls, ClientCertificateOptionsAreChecked) {
  TestCertificate a("DNS:a");
  TestCertificate b("DNS:b");
  HttpRequest req;
  req.url = "https://127.0.0.1:1/";
  HttpResponse res;
  HttpClientOptions opt;
  opt.client_cert_file = a.path();  // no key
  Status s = HttpExchange(req, opt, &res);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("both a certificate file and a key file"), std::string::npos);
  opt.client_key_file = b.key_path();  // someone else's key
  s = HttpExchange(req, opt, &res);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("does not match"), std::string::npos) << s.message();
  opt.client_key_file = a.path();  // a certificate where the key should be
  s = HttpExchange(req, opt, &res);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("not a PEM private key"), std::string::npos) << s.message();
  opt.client_cert_file = a.key_path();  // a key where the certificate should be
  opt.client_key_file = a.key_path();
  s = HttpExchange(req, opt, &res);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("not a PEM certificate"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ccmon
