// Helpers of the HttpServer tests: a raw blocking client that can misbehave (partial requests,
// pipelining, never reading), a handler from a lambda, a deadline wait, and a self-signed
// certificate made with OpenSSL's C API.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "http/server.h"

namespace ccmon {
namespace server_testing {

namespace http = boost::beast::http;
using Response = http::response<http::string_body>;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Polls `pred` until it holds or `timeout` passes (a condition with a deadline, not a sleep
// standing in for one).
inline bool WaitUntil(const std::function<bool()>& pred,
                      milliseconds timeout = milliseconds(10000)) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// A handler from a lambda; counts its calls.
class FnHandler : public HttpHandler {
 public:
  explicit FnHandler(std::function<ServerResponse(const ServerRequest&)> fn) : fn_(std::move(fn)) {}
  ServerResponse Handle(const ServerRequest& r) override {
    ++calls;
    return fn_(r);
  }
  std::atomic<int> calls{0};

 private:
  std::function<ServerResponse(const ServerRequest&)> fn_;
};

// A blocking TCP client whose every read is bounded by a deadline (poll), so a server bug fails
// the test instead of hanging it.
class RawConn {
 public:
  explicit RawConn(uint16_t port, bool v6 = false) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int rc;
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      a.sin6_addr = in6addr_loopback;
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    connected_ = rc == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawConn() { Close(); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Shrinks the receive buffer (before reading) so a large response cannot be absorbed.
  void SetSmallReceiveBuffer() {
    int n = 4096;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(size_t(n));
    }
    return true;
  }

  // Reads one response (HEAD: `head`, no body expected). False if the connection ended or the
  // deadline passed first, or the bytes are not HTTP.
  bool ReadResponse(Response* out, bool head = false, milliseconds timeout = milliseconds(10000)) {
    http::response_parser<http::string_body> p;
    p.eager(true);
    p.skip(head);
    p.body_limit(uint64_t(1) << 30);
    auto deadline = Clock::now() + timeout;
    for (;;) {
      if (!pending_.empty()) {
        boost::beast::error_code ec;
        size_t used = p.put(boost::asio::buffer(pending_), ec);
        pending_.erase(0, used);
        if (ec && ec != http::error::need_more) return false;
        if (p.is_done()) {
          *out = p.release();
          return true;
        }
        if (used > 0 && ec != http::error::need_more) continue;
      }
      int r = ReadSome(deadline);
      if (r == 0) {  // EOF: a response without a length ends here
        boost::beast::error_code ec;
        p.put_eof(ec);
        if (!ec && p.is_done()) {
          *out = p.release();
          return true;
        }
        return false;
      }
      if (r < 0) return false;
    }
  }

  // True when the server closes the connection (EOF or reset) within `timeout`; bytes that
  // arrive meanwhile are kept for ReadResponse.
  bool WaitClosed(milliseconds timeout = milliseconds(10000)) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      int r = ReadSome(deadline);
      if (r == 0) return true;
      if (r == -1) return true;   // reset
      if (r == -2) return false;  // deadline
    }
  }

  // Whatever was read but not parsed.
  const std::string& pending() const { return pending_; }

 private:
  // > 0 bytes appended to pending_, 0 EOF, -1 error (reset), -2 deadline.
  int ReadSome(Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return -2;
      pollfd pfd{fd_, POLLIN, 0};
      int pr = ::poll(&pfd, 1, int(std::min<long long>(left, 1000)));
      if (pr == 0) continue;
      if (pr < 0) return -1;
      char buf[16384];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return 0;
      if (n < 0) return -1;
      pending_.append(buf, size_t(n));
      return int(n);
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

// A self-signed certificate for `san` ("IP:127.0.0.1") written as PEM files for the server
// (certificate + key) and the client (the certificate as its CA file).
class TestCertificate {
 public:
  explicit TestCertificate(const std::string& san) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("ccmon server test"), -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, key, EVP_sha256());
    cert_path_ = Write("cert", [&](FILE* f) { PEM_write_X509(f, x); });
    key_path_ = Write("key", [&](FILE* f) {
      PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    });
    X509_free(x);
    EVP_PKEY_free(key);
  }
  ~TestCertificate() {
    std::remove(cert_path_.c_str());
    std::remove(key_path_.c_str());
  }
  const std::string& cert_path() const { return cert_path_; }
  const std::string& key_path() const { return key_path_; }

 private:
  static std::string Write(const char* what, const std::function<void(FILE*)>& write) {
    std::string path = ::testing::TempDir() + "ccmon_server_test_" + what + "_XXXXXX";
    int fd = ::mkstemp(path.data());
    FILE* f = ::fdopen(fd, "w");
    write(f);
    std::fclose(f);
    return path;
  }
  std::string cert_path_, key_path_;
};

// A pipelinable GET request's bytes, with `extra` header lines ("Name: value\r\n" each).
inline std::string Get(const std::string& target = "/", const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n";
}

// Answers "METHOD TARGET BODY" (200, text).
inline ServerResponse Echo(const ServerRequest& r) {
  return ServerResponse::Text(200, r.method + " " + r.target + " " + r.body);
}

}  // namespace server_testing
}  // namespace ccmon
