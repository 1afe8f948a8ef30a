// PersistentHttpTransport: an HttpTransport that keeps one HTTP/1.1 connection open across
// exchanges (keep-alive), for a sender that talks to one receiver all day: a remote-write queue
// shard (remote_write/queue_manager.h), later the gateway's forwarder. Plain or TLS with the
// same HttpClientOptions as HttpExchange (CA file, client certificate and key, insecure); the
// PEM files are read at each new connection, so a renewed certificate is picked up at the next
// reconnect.
//
// Contract: HttpTransport's (http/transport.h), plus:
// - The connection is opened by the first exchange and reused by the next ones to the same
//   origin (scheme, host, port); a request to another origin closes it and opens a new one.
// - It is closed after a response that says `Connection: close` (or HTTP/1.0 without
//   keep-alive, or a body delimited by the end of the connection), after a request that says
//   `Connection: close`, after any failed exchange, and when the peer is found to have closed
//   it while idle (checked without blocking before each reuse).
// - A server may close an idle connection at any time (Prometheus, Go servers and proxies do);
//   that is not an error. When an exchange on a *reused* connection fails while writing the
//   request, or on its first read before a single byte of the response arrived, the server
//   cannot have processed it: the exchange is repeated once, on a fresh connection. A failure
//   after part of a response arrived, a timeout, or any failure on a fresh connection is
//   returned (kIoError) for the caller's retry policy to judge.
// - Every step (resolve, connect, TLS handshake, write, response header, body) is bounded by
//   options.timeout; a repeated exchange gets fresh timeouts.
// - Cancel() (from any thread), or a request on the stop token given at construction, ends an
//   exchange in progress at once (kIoError "cancelled") and makes every later Exchange fail the
//   same way without touching the network. Cancellation is final.
//
// Threading: NOT thread-safe: Exchange() from one thread at a time (one transport per shard).
// Cancel(), cancelled() and stats() may be called from any thread at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stop_token>

#include "base/status.h"
#include "http/http_client.h"
#include "http/transport.h"

namespace ccmon {

// Running totals since construction (self-metrics; tests count connections with them).
struct PersistentTransportStats {
  uint64_t exchanges = 0;           // Exchange() calls
  uint64_t connections_opened = 0;  // TCP (and TLS) connections established
  uint64_t reused = 0;              // exchanges that started on an already open connection
  uint64_t stale_closed = 0;        // idle connections found closed by the peer before reuse
  uint64_t repeated = 0;            // exchanges repeated on a fresh connection (see above)
  bool operator==(const PersistentTransportStats&) const = default;
};

class PersistentHttpTransport : public HttpTransport {
 public:
  // `stop`: a request on it acts as Cancel() (e.g. a queue shard's thread token).
  explicit PersistentHttpTransport(HttpClientOptions options, std::stop_token stop = {});
  ~PersistentHttpTransport() override;
  PersistentHttpTransport(const PersistentHttpTransport&) = delete;
  PersistentHttpTransport& operator=(const PersistentHttpTransport&) = delete;

  Status Exchange(const HttpRequest& request, HttpResponse* response) override;

  // Ends the exchange in progress (if any) and refuses later ones. Thread-safe, idempotent,
  // does not block.
  void Cancel();
  bool cancelled() const;

  // Whether a connection is open now (it may still turn out closed by the peer). Same thread
  // as Exchange().
  bool connected() const;

  PersistentTransportStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ccmon
