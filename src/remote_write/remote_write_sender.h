// RemoteWriteSender: delivers one encoded remote-write request (rw::Encode) at a time with the
// retry rules of the remote-write 1.0 spec, and says exactly what happened.
//
// How each answer is treated (ClassifyAnswer below is the one place that decides):
//   2xx                                  -> kSent
//   the transport refused the request    -> kRejected at once (bad URL or header: nothing was
//     (kInvalidArgument)                    sent, and a retry cannot fix it)
//   network error (no response)          -> retried
//   5xx, 429                             -> retried, after Retry-After when the answer has one
//   500 "too old sample"                 -> kRejected (RejectReason::kSampleTooOld)
//   401, 403 with retry_auth_failures    -> retried (see the option)
//   anything else (3xx, other 4xx, ...)  -> kRejected at once: the spec forbids retrying them
// Retrying ends after `max_retry_time` (kGaveUp) or when the caller's stop token is requested
// (kStopped); the caller decides what then happens to the request (replay reports it and
// exits non-zero; the agent keeps it in its outbox).
//
// Deliberate differences from Prometheus's queue manager (storage/remote/queue_manager.go,
// sendWriteRequestWithBackoff, and client.go):
//   - Full jitter: each wait is uniform in [0, backoff), the backoff doubling from min_backoff
//     to max_backoff. Prometheus sleeps exactly the backoff; with many agents behind one
//     receiver that outage would end in synchronised retry waves.
//   - A give-up time: after max_retry_time (default 300 s; 0 = never) the request is handed
//     back as kGaveUp. Prometheus retries recoverable errors without limit (since 2.11) and
//     loses the data only at shutdown; ccmon's callers keep or report it instead.
//   - 500 "too old sample" is final. Prometheus 2.42 (Debian 12) answers it for samples older
//     than its out-of-order window (prometheus/prometheus#13334, later made a 400); retrying
//     it can never succeed and would jam the sender.
//   - Retry-After (delta-seconds or an HTTP-date) is honoured on 429 and every 5xx, and 429 is
//     always retried (Prometheus retries 429 only with retry_on_http_429). The wait is clamped
//     to max_retry_after; a Retry-After of 0 or in the past means the jittered backoff, as in
//     Prometheus. A Retry-After wait does not advance the backoff (Prometheus doubles the
//     Retry-After value for the next wait).
//   - No Retry-Attempt header and no resharding: one request at a time.
// Stopping: a stop requested during a wait ends it at once; during an exchange, the exchange
// finishes first (bounded by the transport's timeouts) and no retry follows.
//
// Threading: Send() from one thread at a time; stats() and the stop token from any thread.
// The transport and clock are borrowed and must outlive the sender.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "http/transport.h"

namespace ccmon {

struct SendAnswer;  // below

struct RemoteWriteSenderOptions {
  std::string url;                  // e.g. http://127.0.0.1:9090/api/v1/write
  std::vector<HttpHeader> headers;  // auth, X-Scope-OrgID, ... (after the remote-write ones)
  std::string user_agent = "ccmon/0.1";
  std::chrono::milliseconds min_backoff{30};    // first backoff (Prometheus's default)
  std::chrono::milliseconds max_backoff{5000};  // backoff cap (Prometheus's default)
  std::chrono::seconds max_retry_time{300};     // give up after this much retrying; 0 = never
  std::chrono::seconds max_retry_after{300};    // a longer Retry-After is clamped to this
  // 401 and 403 are retried like a 5xx instead of being final. For a sender whose data has no
  // other copy (the agent's outbox): an expired or rotated credential must not make it drop
  // what it was refused for; the samples wait until the credential is fixed. Off by default
  // (the spec's rule: a 4xx is not retried).
  bool retry_auth_failures = false;
  // Called after each failed attempt that will be retried, before the wait (from Send's
  // thread): a caller can show a failure as it happens, not only when retrying ends.
  std::function<void(const SendAnswer& answer, int attempt)> on_retry;
};

enum class SendOutcome : uint8_t {
  kSent,      // a 2xx: the receiver took the request
  kRejected,  // a final answer other than 2xx (or a request the transport refused)
  kGaveUp,    // still failing when max_retry_time ran out
  kStopped,   // the stop token was requested before the request got through
};
const char* SendOutcomeName(SendOutcome outcome);

// What kind of answer an exchange got.
enum class AnswerKind : uint8_t {
  kNone,            // no exchange was made (stopped before the first attempt)
  kInvalidRequest,  // the transport refused the request as given; nothing was sent
  kNetworkError,    // no usable response (resolve, connect, TLS, timeout, body limit)
  kHttp,            // an HTTP response; see `status`
};

// Why a receiver refused samples, recognised from Prometheus's answers (bodies of its 400s, and
// of 2.42's 500 "too old sample"). kNone when not recognised or not a refusal.
enum class RejectReason : uint8_t {
  kNone,
  kSampleTooOld,     // "too old sample": older than the out-of-order window
  kOutOfBounds,      // "out of bounds": older than the head block accepts
  kOutOfOrder,       // "out of order sample": older than the series' newest sample
  kDuplicateSample,  // "duplicate sample for timestamp" with another value
};
const char* RejectReasonName(RejectReason reason);
// The receiver takes no samples this old (too old, out of bounds, out of order): backfill
// such history another way (promtool) instead.
bool IsTooOldForReceiver(RejectReason reason);

// Counts a receiver reported writing (the remote-write 2.0 response headers
// X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written, which a 1.0 receiver may
// send too). Present only when the receiver sent at least one of them; missing ones are 0.
struct WrittenCounts {
  int64_t samples = 0;
  int64_t histograms = 0;
  int64_t exemplars = 0;
  bool operator==(const WrittenCounts&) const = default;
};

// One exchange's answer, classified.
struct SendAnswer {
  AnswerKind kind = AnswerKind::kNone;
  unsigned status = 0;     // kHttp: the HTTP status
  bool retryable = false;  // the sender retries this answer
  // Retry-After as parsed (delta-seconds or HTTP-date), clamped to [0, max_retry_after].
  std::optional<std::chrono::milliseconds> retry_after;
  RejectReason reason = RejectReason::kNone;
  std::optional<WrittenCounts> written;
  // kHttp: the start of the body (at most 300 bytes, control characters replaced, trailing
  // line end cut; for a 3xx the redirect target); otherwise the transport's error.
  std::string detail;

  unsigned status_class() const { return status / 100; }  // 2 for 2xx ... 5 for 5xx; 0: none
  // "HTTP 400: out of bounds" ("HTTP 503" for an empty body), or the transport's error.
  std::string Describe() const;
};

// Interprets one exchange: the transport's Status and, when OK, its response. `now_unix_ms` is
// the wall clock for an HTTP-date Retry-After. `retry_auth_failures`: see
// RemoteWriteSenderOptions.
SendAnswer ClassifyAnswer(const Status& transport_status, const HttpResponse& response,
                          int64_t now_unix_ms, std::chrono::seconds max_retry_after,
                          bool retry_auth_failures = false);
// 401 or 403: the receiver refused the credentials, not the data.
inline bool IsAuthFailure(const SendAnswer& a) {
  return a.kind == AnswerKind::kHttp && (a.status == 401 || a.status == 403);
}

struct SendResult {
  SendOutcome outcome = SendOutcome::kSent;
  int attempts = 0;                     // exchanges made; retries = attempts - 1
  std::chrono::milliseconds waited{0};  // backoff waits completed (not one cut by a stop)
  SendAnswer last;                      // the last exchange's answer (kNone: none made)

  int retries() const { return attempts > 1 ? attempts - 1 : 0; }
  // For messages: "HTTP 400: out of bounds" (kRejected), "gave up after 5 attempts: <last>",
  // "stopped after 2 attempts: <last>", "sent".
  std::string Describe() const;
};

// Running totals since construction (the agent's self-metrics).
struct SenderStats {
  uint64_t sends = 0;     // Send() calls
  uint64_t attempts = 0;  // exchanges
  uint64_t retries = 0;   // exchanges that repeated an earlier one
  uint64_t sent = 0, rejected = 0, gave_up = 0, stopped = 0;  // Send() outcomes
  bool operator==(const SenderStats&) const = default;
};

class RemoteWriteSender {
 public:
  // `random01` returns uniform values in [0, 1) for the jitter; empty: a generator of the
  // sender's own, seeded from std::random_device. Backoffs are clamped to at least 1 ms and
  // max_backoff to at least min_backoff.
  RemoteWriteSender(RemoteWriteSenderOptions options, HttpTransport* transport, Clock* clock,
                    std::function<double()> random01 = {});

  // Sends one encoded request (snappy-compressed WriteRequest), retrying as described above,
  // until it is sent, rejected, given up on, or `stop` is requested. `extra_headers` go after
  // the options' headers, on every attempt (a batch's identity, see queue_manager.h).
  SendResult Send(const std::string& body, std::stop_token stop = {},
                  const std::vector<HttpHeader>& extra_headers = {});

  SenderStats stats() const;

 private:
  RemoteWriteSenderOptions options_;
  HttpTransport* transport_;
  Clock* clock_;
  std::function<double()> random01_;
  std::mt19937_64 own_rng_;

  struct Counters {
    std::atomic<uint64_t> sends{0}, attempts{0}, retries{0};
    std::atomic<uint64_t> sent{0}, rejected{0}, gave_up{0}, stopped{0};
  } counters_;
};

}  // namespace ccmon
