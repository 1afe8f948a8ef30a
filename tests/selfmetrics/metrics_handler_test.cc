// MetricsHandler (src/selfmetrics/metrics_handler.h) behind a real HttpServer: negotiation as
// Prometheus 2.42 asks, HEAD, /healthz, 404/405, and a failing body callback.
#include "selfmetrics/metrics_handler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "http/http_client.h"
#include "http/server.h"
#include "http/server_test_util.h"  // tests/http: RawConn
#include "selfmetrics/self_metrics.h"

namespace ccmon {
namespace {

constexpr char kPrometheusAccept[] =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

class MetricsHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SelfCounter c;
    ASSERT_TRUE(self_.AddCounter({"ccmon_test_scrapes", "Scrapes."}, {}, &c).ok());
    scrapes_ = c;
    handler_ = std::make_unique<MetricsHandler>(
        [this](ExpositionFormat f, std::string* body) {
          if (fail_) return Status::IoError("store closed");
          scrapes_.Increment();
          ComposeRenderedMetricsBody(f, "", &self_, body);
          return Status::Ok();
        },
        MetricsHandlerOptions{{"/metrics", "/api/metrics"}, "/healthz"});
    server_ = std::make_unique<HttpServer>(ServerOptions{}, handler_.get());
    ASSERT_TRUE(server_->Start().ok());
  }

  HttpResponse Do(const std::string& method, const std::string& path,
                  const std::string& accept = "") {
    HttpRequest req;
    req.method = method;
    req.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    if (!accept.empty()) req.headers.emplace_back("Accept", accept);
    HttpResponse res;
    Status s = HttpExchange(req, {}, &res);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return res;
  }

  SelfMetrics self_;
  SelfCounter scrapes_;
  std::atomic<bool> fail_{false};
  std::unique_ptr<MetricsHandler> handler_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(MetricsHandlerTest, PrometheusGetsOpenMetrics) {
  HttpResponse res = Do("GET", "/metrics", kPrometheusAccept);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.Header("Content-Type"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(res.body,
            "# TYPE ccmon_test_scrapes counter\n# HELP ccmon_test_scrapes Scrapes.\n"
            "ccmon_test_scrapes_total 1\n# EOF\n");
}

TEST_F(MetricsHandlerTest, OthersGetText) {
  HttpResponse res = Do("GET", "/metrics?format=ignored");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.Header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res.body,
            "# HELP ccmon_test_scrapes_total Scrapes.\n# TYPE ccmon_test_scrapes_total counter\n"
            "ccmon_test_scrapes_total 1\n");
  EXPECT_EQ(Do("GET", "/api/metrics").status, 200u);  // the second path
}

TEST_F(MetricsHandlerTest, HeadHealthAndWrongMethodsAndPaths) {
  // HEAD through a raw connection: the project's client would wait for the body its
  // Content-Length announces.
  server_testing::RawConn c(server_->port());
  ASSERT_TRUE(c.Send(std::string("HEAD /metrics HTTP/1.1\r\nHost: x\r\nAccept: ") +
                     kPrometheusAccept + "\r\n\r\n"));
  server_testing::Response head;
  ASSERT_TRUE(c.ReadResponse(&head, /*head=*/true));
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(head.body(), "");
  // The GET body's length (the counter's next value has as many digits).
  EXPECT_EQ(head["Content-Length"],
            std::to_string(Do("GET", "/metrics", kPrometheusAccept).body.size()));
  EXPECT_EQ(head["Content-Type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
  HttpResponse health = Do("GET", "/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.body, "ok\n");
  for (const char* path : {"/metrics", "/healthz"}) {
    HttpResponse post = Do("POST", path);
    EXPECT_EQ(post.status, 405u) << path;
    EXPECT_EQ(post.Header("Allow"), "GET, HEAD");
  }
  EXPECT_EQ(Do("GET", "/").status, 404u);
  EXPECT_EQ(Do("GET", "/metricsx").status, 404u);
  EXPECT_EQ(Do("GET", "/metrics/").status, 404u);
  EXPECT_EQ(Do("DELETE", "/nope").status, 404u);
  EXPECT_EQ(scrapes_.Value(), 2);  // the HEAD and the GET above produced bodies
}

TEST_F(MetricsHandlerTest, FailingBodyIs500WithTheReason) {
  fail_ = true;
  HttpResponse res = Do("GET", "/metrics");
  EXPECT_EQ(res.status, 500u);
  EXPECT_EQ(res.body, "metrics unavailable: store closed\n");
  EXPECT_EQ(Do("GET", "/healthz").status, 200u);
}

}  // namespace
}  // namespace ccmon
