// HttpServer: the HTTP/1.1 server (Boost.Beast) behind the agent's pull mode (/metrics) and the
// gateway (remote-write receiving, admin API, /metrics). The shape is Beast's examples': a
// listener accepting connections, one session per connection on its own strand, a pure request
// handler, and shared state that Stop() uses to find the sessions.
//
// What the server promises, whatever the peer does:
// - a request is handed to the handler only complete (header and body read), within the limits
//   of ServerOptions; beyond them the peer gets an answer and the connection is closed:
//   a header over max_header_bytes -> 431; a body over max_body_bytes -> 413, decided from
//   Content-Length before any of the body is read, or while reading a chunked body; a
//   malformed request (an HTTP version other than 1.0/1.1 included) -> 400; a method outside
//   allowed_methods -> 405 with Allow (the connection stays open);
// - every wait is bounded: idle_timeout for the first byte of each request, read_timeout for the
//   rest of it (header and body: a client that dribbles bytes is dropped), write_timeout for the
//   response (a client that does not read it is dropped). Timeouts are counted, not answered;
// - at most max_connections connections are served at once; one more is answered 503 (with
//   Connection: close and Retry-After: 1) and closed; beyond twice the limit it is closed at once;
// - the handler's exceptions never escape: a throwing handler, or a response the server cannot
//   send as given (a 1xx status, a header with CR/LF), becomes a 500, and is logged;
// - HEAD is answered like GET without the body (the handler sees method "GET", head = true);
// - responses go out in the order of the requests (pipelined requests are answered one by one).
//
// Threads: Start() runs options.io_threads threads; the handler is called on them, concurrently
// for different connections, so it must be thread-safe. Start, Stop, port and stats may be
// called from any thread, but Stop (and the destructor) never from the handler.
//
// An AsyncHttpHandler answers through a ResponseCompletion instead of its return value, so that
// a request waiting for something (the gateway's group commit) does not hold an io thread: the
// session waits for the completion without a thread, under options.handler_timeout, and then
// sends the answer on its strand. Everything above holds for it too.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "http/transport.h"

namespace ccmon {

// A complete request as the handler sees it.
struct ServerRequest {
  std::string method;  // "GET", "POST", … as sent ("GET" for HEAD, see `head`)
  bool head = false;   // a HEAD request: the server drops the response body
  // The request target as sent: origin-form "/path?query" (or "*" for OPTIONS).
  std::string target;
  std::vector<HttpHeader> headers;  // as received, in order
  std::string body;
  std::string peer;  // "127.0.0.1:54321" or "[::1]:54321"
  bool tls = false;  // arrived over HTTPS

  // The first header named `name` (ASCII case-insensitive), or "" when absent.
  std::string_view Header(std::string_view name) const;
  // The target without its query ("/metrics" of "/metrics?x=1").
  std::string_view Path() const;
};

// The handler's answer. The server adds Content-Length and Connection; headers named
// Content-Length, Transfer-Encoding or Connection are the server's and are ignored here.
struct ServerResponse {
  unsigned status = 200;  // 200..599; anything else is answered 500
  std::vector<HttpHeader> headers;
  std::string body;  // not sent for HEAD, 204 and 304

  // A response with one Content-Type header.
  static ServerResponse Text(unsigned status, std::string body,
                             std::string content_type = "text/plain; charset=utf-8");
};

// Pure request -> response. Thread-safe (see HttpServer). May throw (answered 500) but should
// not block for long: it runs on an io thread, and Stop() waits for it.
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual ServerResponse Handle(const ServerRequest& request) = 0;
};

// The one answer to a request of an AsyncHttpHandler. Move-only. Call it exactly once, from any
// thread, at any time (also inline, inside HandleAsync, which is the cheapest: no hand-off to
// another thread): the server sends the response on the connection's strand. A completion
// destroyed without being called answers 500, so a handler that drops it never leaves
// a connection waiting. Calling it after the connection closed, after handler_timeout answered
// for it, or after Stop gave up on it, is harmless: the response is dropped.
// Not thread-safe itself: one owner at a time.
class ResponseCompletion {
 public:
  ResponseCompletion() = default;
  // `send` receives the response (a test, or a wrapper, may build a completion of its own).
  explicit ResponseCompletion(std::function<void(ServerResponse)> send) : send_(std::move(send)) {}
  ResponseCompletion(ResponseCompletion&& other) noexcept;
  ResponseCompletion& operator=(ResponseCompletion&& other) noexcept;
  ResponseCompletion(const ResponseCompletion&) = delete;
  ResponseCompletion& operator=(const ResponseCompletion&) = delete;
  ~ResponseCompletion();  // not called yet: answers 500

  // Sends `response`. Precondition: not called before (a second call is ignored).
  void operator()(ServerResponse response);
  // True until called (or moved from).
  explicit operator bool() const { return static_cast<bool>(send_); }

 private:
  std::function<void(ServerResponse)> send_;
};

// A handler that may answer later. The server calls HandleAsync (never Handle) with the request,
// which the handler owns from then on (it may move it anywhere). Thread-safe like HttpHandler;
// HandleAsync itself should return soon (it runs on an io thread). Exceptions thrown by
// HandleAsync before it called `done` are answered 500 (the completion, dropped, answers it).
// Stop() waits for every completion handed out (see HttpServer::Stop), so a handler must call
// or drop each one eventually.
class AsyncHttpHandler : public HttpHandler {
 public:
  virtual void HandleAsync(ServerRequest request, ResponseCompletion done) = 0;
  // The synchronous form, for callers without a server (tests, wrappers): HandleAsync, waited
  // for on the calling thread. Must not be called from a thread `done` needs.
  ServerResponse Handle(const ServerRequest& request) override;
};

struct ServerOptions {
  // "host:port": an IPv4 address, "[IPv6]", a host name resolved once at Start (its first
  // address), or "" for every IPv4 interface (":9100"). Port 0 picks a free port (see port()).
  std::string listen = "127.0.0.1:0";
  size_t max_header_bytes = 16 << 10;               // request line + header fields
  size_t max_body_bytes = 1 << 20;                  // after chunked decoding
  std::chrono::milliseconds idle_timeout{60'000};   // waiting for a request's first byte
  std::chrono::milliseconds read_timeout{30'000};   // the rest of the request (and TLS handshake)
  std::chrono::milliseconds write_timeout{30'000};  // one response
  size_t max_connections = 1024;                    // served at once (>= 1)
  bool keep_alive = true;                           // false: every response closes its connection
  int io_threads = 2;                               // >= 1
  // An AsyncHttpHandler's completion not called by then: the request is answered 503
  // (Retry-After: 1) and its connection closed; the late completion is dropped. Counted in
  // ServerStats::handler_timeouts.
  std::chrono::milliseconds handler_timeout{60'000};
  // Stop(): how long in-flight responses may take before their connections are closed.
  std::chrono::milliseconds shutdown_grace{5'000};
  // Methods handed to the handler; others are answered 405 with "Allow: <these>". HEAD is
  // accepted whenever GET is.
  std::vector<std::string> allowed_methods = {"GET", "HEAD", "POST", "PUT", "DELETE"};
  // TLS (HTTPS) when both are set: a PEM certificate chain and its PEM private key, read through
  // `env` at Start (each at most kMaxPemFileBytes of http/http_client.h). TLS 1.2 or later.
  std::string tls_cert_file;
  std::string tls_key_file;
  Env* env = nullptr;  // nullptr: Env::Default()
  // Where handler exceptions, refused responses and accept errors are reported, one line each
  // (no trailing newline). nullptr: standard error. Called from io threads, concurrently.
  std::function<void(std::string_view)> log;
};

// Checks `listen` the way ServerOptions::listen is read at Start: its form (host:port,
// [IPv6]:port, :port) and the port's range; a host name is resolved only at Start. For flag
// parsing, so that a bad address is a usage error before anything (a data dir, a state dir) is
// created. The error quotes the address.
Status CheckListenAddress(const std::string& listen);

// Counters since Start, for self-metrics. Monotonic except active_connections.
struct ServerStats {
  uint64_t connections_accepted = 0;  // served (not counting the refused ones)
  uint64_t connections_refused = 0;   // over max_connections (503 or closed)
  uint64_t active_connections = 0;
  uint64_t requests = 0;             // complete requests handed to the handler (or 405/505)
  uint64_t bad_requests = 0;         // answered 400/413/431 without reaching the handler
  uint64_t timeouts = 0;             // connections dropped by a read, write or idle timeout
  uint64_t tls_failures = 0;         // failed TLS handshakes
  uint64_t handler_failures = 0;     // handler exceptions and unsendable responses (500)
  uint64_t handler_timeouts = 0;     // async completions not called within handler_timeout (503)
  uint64_t pending_completions = 0;  // async completions handed out and not yet called
};

class HttpServer {
 public:
  // `handler` is not owned and must outlive the server. An AsyncHttpHandler is called through
  // HandleAsync.
  HttpServer(ServerOptions options, HttpHandler* handler);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the io threads. Errors: kInvalidArgument for options that can
  // never work (a malformed listen address, a port over 65535, zero threads or connections,
  // unreadable or mismatched TLS files); kIoError for what the host refused, with the reason
  // named ("address already in use", "permission denied", "address not available", a name that
  // does not resolve). At most once per server; a server that failed to start may not retry.
  Status Start();

  // The bound port (the picked one for port 0); 0 before a successful Start.
  uint16_t port() const { return port_.load(); }

  // Stops accepting, closes connections waiting for a request (idle keep-alive, or a request
  // whose header has not arrived), lets requests already read be handled and their responses
  // written (with Connection: close) for up to options.shutdown_grace, then closes whatever is
  // left and joins the io threads. Waits for a handler that is running, and for every
  // ResponseCompletion handed out to be called or destroyed (without a bound: a handler that
  // keeps one forever keeps Stop waiting). Idempotent; a no-op before Start. Not from a handler,
  // nor from a thread a pending completion needs.
  void Stop();

  ServerStats stats() const;

  struct State;  // the listener's and sessions' shared state (server.cc)

 private:
  Status StartLocked();

  std::unique_ptr<State> state_;
  std::atomic<uint16_t> port_{0};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace ccmon
