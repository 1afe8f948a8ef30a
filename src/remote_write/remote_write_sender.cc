#include "remote_write/remote_write_sender.h"

#include <algorithm>
#include <utility>

#include "http/retry_after.h"
#include "remote_write/write_request.h"

namespace ccmon {
namespace {

constexpr size_t kMaxDetailBytes = 300;

// The start of a body, fit for a one-line message: control characters (a receiver's line
// breaks, or terminal escapes from a hostile one) become spaces or '?'.
std::string Snippet(const std::string& body) {
  std::string s = body.substr(0, kMaxDetailBytes);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  for (char& c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    } else if (u < 0x20 || u == 0x7F) {
      c = '?';
    }
  }
  return s;
}

RejectReason ReasonFromBody(const std::string& body) {
  // Prometheus's storage errors, as its write handler returns them (storage.Err*); the first
  // one named decides.
  if (body.find("too old sample") != std::string::npos) return RejectReason::kSampleTooOld;
  if (body.find("out of bounds") != std::string::npos) return RejectReason::kOutOfBounds;
  if (body.find("out of order") != std::string::npos) return RejectReason::kOutOfOrder;
  if (body.find("duplicate sample for timestamp") != std::string::npos) {
    return RejectReason::kDuplicateSample;
  }
  return RejectReason::kNone;
}

// The remote-write 2.0 "written" headers; nullopt when none is present. A malformed value
// counts as 0, as in Prometheus.
std::optional<WrittenCounts> WrittenFromHeaders(const HttpResponse& res) {
  std::optional<WrittenCounts> out;
  auto read = [&](std::string_view name, int64_t WrittenCounts::*field) {
    const std::string_view v = res.Header(name);
    if (v.empty()) return;
    if (!out) out.emplace();
    int64_t n = 0;
    for (char c : v) {
      if (c < '0' || c > '9' || n > (INT64_MAX - 9) / 10) {
        n = 0;
        break;
      }
      n = n * 10 + (c - '0');
    }
    (*out).*field = n;
  };
  read("X-Prometheus-Remote-Write-Samples-Written", &WrittenCounts::samples);
  read("X-Prometheus-Remote-Write-Histograms-Written", &WrittenCounts::histograms);
  read("X-Prometheus-Remote-Write-Exemplars-Written", &WrittenCounts::exemplars);
  return out;
}

}  // namespace

const char* SendOutcomeName(SendOutcome outcome) {
  switch (outcome) {
    case SendOutcome::kSent:
      return "sent";
    case SendOutcome::kRejected:
      return "rejected";
    case SendOutcome::kGaveUp:
      return "gave_up";
    case SendOutcome::kStopped:
      return "stopped";
  }
  return "?";
}

const char* RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kNone:
      return "none";
    case RejectReason::kSampleTooOld:
      return "too_old_sample";
    case RejectReason::kOutOfBounds:
      return "out_of_bounds";
    case RejectReason::kOutOfOrder:
      return "out_of_order";
    case RejectReason::kDuplicateSample:
      return "duplicate_sample";
  }
  return "?";
}

bool IsTooOldForReceiver(RejectReason reason) {
  return reason == RejectReason::kSampleTooOld || reason == RejectReason::kOutOfBounds ||
         reason == RejectReason::kOutOfOrder;
}

std::string SendAnswer::Describe() const {
  switch (kind) {
    case AnswerKind::kNone:
      return "no attempt";
    case AnswerKind::kInvalidRequest:
    case AnswerKind::kNetworkError:
      return detail;
    case AnswerKind::kHttp:
      return "HTTP " + std::to_string(status) + (detail.empty() ? "" : ": " + detail);
  }
  return detail;
}

SendAnswer ClassifyAnswer(const Status& transport_status, const HttpResponse& response,
                          int64_t now_unix_ms, std::chrono::seconds max_retry_after,
                          bool retry_auth_failures) {
  SendAnswer a;
  if (!transport_status.ok()) {
    const bool invalid = transport_status.code() == Status::Code::kInvalidArgument;
    a.kind = invalid ? AnswerKind::kInvalidRequest : AnswerKind::kNetworkError;
    a.retryable = !invalid;
    a.detail = transport_status.message();
    return a;
  }
  a.kind = AnswerKind::kHttp;
  a.status = response.status;
  a.written = WrittenFromHeaders(response);
  std::chrono::milliseconds delay;
  if (ParseRetryAfter(response.Header("Retry-After"), now_unix_ms, &delay)) {
    a.retry_after =
        std::clamp<std::chrono::milliseconds>(delay, std::chrono::milliseconds(0), max_retry_after);
  }
  if (a.status_class() == 2) return a;
  if (a.status_class() == 3) {
    const std::string_view location = response.Header("Location");
    a.detail =
        "redirect to " + Snippet(std::string(location)) + " (not followed: give the final URL)";
  } else {
    a.detail = Snippet(response.body);
  }
  a.reason = ReasonFromBody(response.body);
  a.retryable =
      ((a.status_class() == 5 || a.status == 429) && a.reason != RejectReason::kSampleTooOld) ||
      (retry_auth_failures && IsAuthFailure(a));
  return a;
}

std::string SendResult::Describe() const {
  switch (outcome) {
    case SendOutcome::kSent:
      return "sent";
    case SendOutcome::kRejected:
      return last.Describe();
    case SendOutcome::kGaveUp:
      return "gave up after " + std::to_string(attempts) + " attempts: " + last.Describe();
    case SendOutcome::kStopped:
      return "stopped after " + std::to_string(attempts) + " attempts" +
             (last.kind == AnswerKind::kNone ? "" : ": " + last.Describe());
  }
  return "?";
}

RemoteWriteSender::RemoteWriteSender(RemoteWriteSenderOptions options, HttpTransport* transport,
                                     Clock* clock, std::function<double()> random01)
    : options_(std::move(options)),
      transport_(transport),
      clock_(clock),
      random01_(std::move(random01)) {
  options_.min_backoff = std::max(options_.min_backoff, std::chrono::milliseconds(1));
  options_.max_backoff = std::max(options_.max_backoff, options_.min_backoff);
  if (!random01_) {
    own_rng_.seed(std::random_device{}());
    random01_ = [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(own_rng_); };
  }
}

SenderStats RemoteWriteSender::stats() const {
  SenderStats s;
  s.sends = counters_.sends.load(std::memory_order_relaxed);
  s.attempts = counters_.attempts.load(std::memory_order_relaxed);
  s.retries = counters_.retries.load(std::memory_order_relaxed);
  s.sent = counters_.sent.load(std::memory_order_relaxed);
  s.rejected = counters_.rejected.load(std::memory_order_relaxed);
  s.gave_up = counters_.gave_up.load(std::memory_order_relaxed);
  s.stopped = counters_.stopped.load(std::memory_order_relaxed);
  return s;
}

SendResult RemoteWriteSender::Send(const std::string& body, std::stop_token stop,
                                   const std::vector<HttpHeader>& extra_headers) {
  counters_.sends.fetch_add(1, std::memory_order_relaxed);
  HttpRequest req;
  req.method = "POST";
  req.url = options_.url;
  req.headers = {{"Content-Encoding", std::string(rw::kContentEncoding)},
                 {"Content-Type", std::string(rw::kContentType)},
                 {std::string(rw::kVersionHeader), std::string(rw::kVersion)},
                 {"User-Agent", options_.user_agent}};
  for (const auto& h : options_.headers) req.headers.push_back(h);
  for (const auto& h : extra_headers) req.headers.push_back(h);
  req.body = body;

  SendResult result;
  auto finish = [&](SendOutcome outcome) {
    result.outcome = outcome;
    std::atomic<uint64_t>& counter = outcome == SendOutcome::kSent       ? counters_.sent
                                     : outcome == SendOutcome::kRejected ? counters_.rejected
                                     : outcome == SendOutcome::kGaveUp   ? counters_.gave_up
                                                                         : counters_.stopped;
    counter.fetch_add(1, std::memory_order_relaxed);
    return result;
  };
  const auto start = clock_->Now();
  std::chrono::milliseconds backoff = options_.min_backoff;
  for (;;) {
    if (stop.stop_requested()) return finish(SendOutcome::kStopped);
    if (result.attempts > 0) counters_.retries.fetch_add(1, std::memory_order_relaxed);
    ++result.attempts;
    counters_.attempts.fetch_add(1, std::memory_order_relaxed);
    HttpResponse res;
    const Status s = transport_->Exchange(req, &res);
    result.last = ClassifyAnswer(s, res, clock_->NowUnixMs(), options_.max_retry_after,
                                 options_.retry_auth_failures);
    if (result.last.kind == AnswerKind::kHttp && result.last.status_class() == 2) {
      return finish(SendOutcome::kSent);
    }
    if (!result.last.retryable) return finish(SendOutcome::kRejected);

    std::chrono::milliseconds wait;
    if (result.last.retry_after && result.last.retry_after->count() > 0) {
      wait = *result.last.retry_after;
    } else {
      wait = std::chrono::milliseconds(int64_t(random01_() * double(backoff.count())));
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    const auto elapsed = clock_->Now() - start;
    if (options_.max_retry_time.count() > 0 && elapsed + wait > options_.max_retry_time) {
      return finish(SendOutcome::kGaveUp);
    }
    if (options_.on_retry) options_.on_retry(result.last, result.attempts);
    if (!clock_->WaitFor(wait, stop)) return finish(SendOutcome::kStopped);
    result.waited += wait;
  }
}

}  // namespace ccmon
