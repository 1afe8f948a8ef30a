#include "remote_write/remote_write_sender.h"

#include <algorithm>
#include <cctype>
#include <thread>

#include "remote_write/write_request.h"

namespace ccmon {
namespace {

// Retry-After as delta-seconds; HTTP-dates are not used by remote-write receivers, so anything
// else means "not given" (the backoff applies).
bool ParseRetryAfter(const std::string& v, std::chrono::milliseconds* out) {
  if (v.empty() || v.size() > 9) return false;
  for (char c : v) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  *out = std::chrono::seconds(std::stol(v));
  return true;
}

std::string Snippet(const std::string& body) {
  std::string s = body.substr(0, 300);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::chrono::steady_clock::time_point RealSenderClock::Now() {
  return std::chrono::steady_clock::now();
}

void RealSenderClock::SleepFor(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

RemoteWriteSender::RemoteWriteSender(RemoteWriteSenderOptions options, HttpTransport* transport,
                                     SenderClock* clock, std::function<double()> random01)
    : options_(std::move(options)),
      transport_(transport),
      clock_(clock),
      random01_(std::move(random01)) {}

SendResult RemoteWriteSender::Send(const std::string& body) {
  HttpRequest req;
  req.method = "POST";
  req.url = options_.url;
  req.headers = {{"Content-Encoding", std::string(rw::kContentEncoding)},
                 {"Content-Type", std::string(rw::kContentType)},
                 {std::string(rw::kVersionHeader), std::string(rw::kVersion)},
                 {"User-Agent", options_.user_agent}};
  for (const auto& h : options_.headers) req.headers.push_back(h);
  req.body = body;

  SendResult result;
  const auto start = clock_->Now();
  std::chrono::milliseconds backoff = options_.min_backoff;
  for (;;) {
    ++result.attempts;
    HttpResponse res;
    Status s = transport_->Exchange(req, &res);
    std::chrono::milliseconds wait{0};
    bool have_retry_after = false;
    if (s.ok()) {
      result.status = res.status;
      if (res.status >= 200 && res.status < 300) {
        result.outcome = SendResult::Outcome::kSent;
        result.message.clear();
        return result;
      }
      result.message = "HTTP " + std::to_string(res.status) + ": " + Snippet(res.body);
      const bool retryable = (res.status >= 500 && res.status < 600) || res.status == 429;
      if (!retryable || res.body.find("too old sample") != std::string::npos) {
        result.outcome = SendResult::Outcome::kRejected;
        return result;
      }
      have_retry_after = ParseRetryAfter(res.retry_after, &wait);
    } else {
      result.status = 0;
      result.message = s.message();
    }
    if (!have_retry_after) {
      // Full jitter: uniform in [0, backoff), backoff doubling up to max_backoff.
      wait = std::chrono::milliseconds(int64_t(random01_() * double(backoff.count())));
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    const auto elapsed = clock_->Now() - start;
    if (options_.max_retry_time.count() > 0 && elapsed + wait > options_.max_retry_time) {
      result.outcome = SendResult::Outcome::kGaveUp;
      result.message =
          "gave up after " + std::to_string(result.attempts) + " attempts: " + result.message;
      return result;
    }
    clock_->SleepFor(wait);
  }
}

}  // namespace ccmon
