// RemoteWriteSender: delivers encoded remote-write requests (rw::Encode) with the retry rules of
// the remote-write 1.0 spec and Prometheus's queue manager:
//   2xx                      -> sent;
//   network error, 5xx, 429  -> retried with exponential backoff and full jitter (Retry-After,
//                               when given in seconds, is honoured instead);
//   any other status         -> rejected at once, never retried (a retry cannot fix it);
//   500 "too old sample"     -> rejected: Prometheus 2.42 answers this for samples older than its
//                               out-of-order window, and a retry would jam the sender forever.
// Retrying stops after `max_retry_time` (0 = never): the result says so and the caller decides
// (replay reports it and exits non-zero; the agent keeps the request in its outbox).
// Transport and clock are injected (fakes in tests). Not thread-safe; one request at a time.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "http/http_client.h"

namespace ccmon {

// Monotonic time and waiting, so that tests drive backoff without sleeping.
class SenderClock {
 public:
  virtual ~SenderClock() = default;
  virtual std::chrono::steady_clock::time_point Now() = 0;
  virtual void SleepFor(std::chrono::milliseconds d) = 0;
};

class RealSenderClock : public SenderClock {
 public:
  std::chrono::steady_clock::time_point Now() override;
  void SleepFor(std::chrono::milliseconds d) override;
};

struct RemoteWriteSenderOptions {
  std::string url;  // e.g. http://127.0.0.1:9090/api/v1/write
  std::vector<std::pair<std::string, std::string>> headers;  // auth, X-Scope-OrgID, ...
  std::string user_agent = "ccmon/0.1";
  std::chrono::milliseconds min_backoff{30};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::seconds max_retry_time{300};
};

struct SendResult {
  enum class Outcome { kSent, kRejected, kGaveUp };
  Outcome outcome = Outcome::kSent;
  unsigned status = 0;  // the last HTTP status (0: no response)
  int attempts = 0;
  std::string message;  // for kRejected / kGaveUp: what the target said or what failed
};

class RemoteWriteSender {
 public:
  // `transport` and `clock` are borrowed. `random01` returns uniform values in [0, 1) (jitter).
  RemoteWriteSender(RemoteWriteSenderOptions options, HttpTransport* transport, SenderClock* clock,
                    std::function<double()> random01);

  // Sends one encoded request (snappy-compressed WriteRequest), retrying as described above.
  SendResult Send(const std::string& body);

 private:
  RemoteWriteSenderOptions options_;
  HttpTransport* transport_;
  SenderClock* clock_;
  std::function<double()> random01_;
};

}  // namespace ccmon
