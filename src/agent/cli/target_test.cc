#include "agent/cli/target_test.h"

#include "remote_write/remote_write_sender.h"
#include "remote_write/write_request.h"

namespace ccmon {

TargetTestResult TestTarget(const std::string& url, const std::vector<HttpHeader>& headers,
                            HttpTransport* transport) {
  TargetTestResult r;
  std::string body;
  const Status encoded = rw::Encode(rw::WriteRequest(), &body);
  HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.headers = {{"Content-Encoding", std::string(rw::kContentEncoding)},
                 {"Content-Type", std::string(rw::kContentType)},
                 {std::string(rw::kVersionHeader), std::string(rw::kVersion)},
                 {"User-Agent", "ccmon-agent/test"}};
  for (const HttpHeader& h : headers) req.headers.push_back(h);
  req.body = body;
  HttpResponse resp;
  const Status sent = encoded.ok() ? transport->Exchange(req, &resp) : encoded;
  const SendAnswer answer = ClassifyAnswer(sent, resp, 0, std::chrono::seconds(0));
  r.status = answer.kind == AnswerKind::kHttp ? answer.status : 0;
  switch (answer.kind) {
    case AnswerKind::kNone:
    case AnswerKind::kInvalidRequest:
      r.summary = "invalid request: " + answer.detail;
      r.advice = "check --url and --header";
      return r;
    case AnswerKind::kNetworkError:
      r.summary = "network error: " + answer.detail;
      r.advice =
          "the target could not be reached: check the host and port in --url, that the receiver "
          "runs, and TLS settings (--ca-file, client certificate) for https";
      return r;
    case AnswerKind::kHttp:
      break;
  }
  const unsigned s = answer.status;
  const std::string head = answer.Describe();
  if (s / 100 == 2) {
    r.ok = true;
    r.summary = head + ": ok, the target accepts remote-write requests from this agent";
  } else if (s == 401 || s == 403) {
    r.summary = head + ": authentication refused";
    r.advice =
        "check the credentials: --key, --bearer-token-file or basic auth (and for Mimir "
        "the X-Scope-OrgID header)";
  } else if (s == 404) {
    r.summary = head + ": not found";
    r.advice =
        "wrong path, or the receiver is off: Prometheus needs "
        "--web.enable-remote-write-receiver and the path /api/v1/write; Mimir "
        "/api/v1/push; VictoriaMetrics /api/v1/write";
  } else if (s == 405) {
    r.summary = head + ": method not allowed";
    r.advice = "the URL is not a remote-write endpoint (it does not take POST)";
  } else if (s / 100 == 3) {
    r.summary = head + ": redirect (not followed)";
    r.advice = "use the final URL in --url";
  } else if (s == 429 || s / 100 == 5) {
    r.summary = head + ": the target is reachable but failing or overloaded";
    r.advice = "the agent retries such answers; look at the receiver's logs";
  } else {
    r.summary = head + ": refused";
    r.advice = "the target answered but does not take this request; check --url";
  }
  return r;
}

}  // namespace ccmon
