// Blocking HTTP(S) exchanges on Boost.Beast, one connection per exchange, every step under a
// timeout. Used by ccmon-pricing (GET of LiteLLM's price file) and by ccmon-replay's
// remote-write backfill (POST through RealHttpTransport); the agent's keep-alive client comes
// later. Thread-safe: no shared state.
//
// Every request is checked before anything is sent: the URL by ParseHttpUrl (http/url.h), the
// method, and every header by ValidateHeaderField (http/header.h), so a caller can never send
// a header line it did not mean to (CR/LF injection), whatever it passes.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

#include "base/env.h"
#include "base/status.h"
#include "http/transport.h"

namespace ccmon {

struct HttpClientOptions {
  std::chrono::seconds timeout{30};          // per step: resolve, connect, handshake, write, read
  size_t max_body_bytes = size_t(64) << 20;  // response bodies; larger ones are an error
  int max_redirects = 5;                     // HttpGet only; HttpExchange never follows them

  // TLS (https:// only). The PEM files are read through `env` at each exchange (so a renewed
  // certificate is picked up), each at most kMaxPemFileBytes.
  // ca_file: the CAs to trust *instead of* the system store (empty: the system store, or
  //   $SSL_CERT_FILE / $SSL_CERT_DIR).
  std::string ca_file;
  // client_cert_file / client_key_file: a client certificate (chain) and its private key for
  //   mutual TLS; both or neither.
  std::string client_cert_file;
  std::string client_key_file;
  // insecure_skip_verify: accept any server certificate and host name (testing only: the
  //   connection is then open to interception).
  bool insecure_skip_verify = false;
  Env* env = nullptr;  // nullptr: Env::Default()
};

inline constexpr size_t kMaxPemFileBytes = size_t(4) << 20;
// Interim (1xx) responses skipped before the final one; more is an error.
inline constexpr int kMaxInterimResponses = 32;

// One request and its response (no redirects). A non-OK Status means no response: an invalid
// request (kInvalidArgument: bad URL, method or header, unreadable TLS files; nothing was
// sent), or resolve/connect/TLS failure, a timeout, or a body over options.max_body_bytes
// (kIoError). Every final HTTP status, 4xx and 5xx included, is a response. Interim responses
// (100 Continue, 103 Early Hints, …) are skipped: the response is the final one, whose header
// must arrive within one options.timeout of the request being sent, interim responses included
// (at most kMaxInterimResponses of them). 101 Switching Protocols is never asked for: kIoError.
Status HttpExchange(const HttpRequest& request, const HttpClientOptions& options,
                    HttpResponse* response);

// Fetches `url` (http:// or https://) and returns the body of a 200 response. Follows up to
// options.max_redirects redirects (relative ones against the current origin), never from
// https to http.
Status HttpGet(const std::string& url, const HttpClientOptions& options, std::string* body);

// The transport over HttpExchange. Thread-safe.
class RealHttpTransport : public HttpTransport {
 public:
  explicit RealHttpTransport(HttpClientOptions options) : options_(std::move(options)) {}
  Status Exchange(const HttpRequest& request, HttpResponse* response) override {
    return HttpExchange(request, options_, response);
  }

 private:
  HttpClientOptions options_;
};

}  // namespace ccmon
