// StatusHandler: the routes and their content types, methods, and access — open without a token;
// with tokens, Bearer or Basic (any user, the token as password) with the metrics or the admin
// token, one 401 with both challenges for everything else.
#include "gateway/status/status_handler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "base/base64.h"
#include "gateway/status/status_page.h"

namespace ccmon::gateway {
namespace {

ServerRequest Get(std::string target, std::string authorization = "") {
  ServerRequest r;
  r.method = "GET";
  r.target = std::move(target);
  if (!authorization.empty()) r.headers.push_back({"Authorization", authorization});
  return r;
}

std::string_view HeaderOf(const ServerResponse& r, std::string_view name) {
  for (const auto& h : r.headers) {
    if (h.first == name) return h.second;
  }
  return {};
}

size_t HeaderCount(const ServerResponse& r, std::string_view name) {
  size_t n = 0;
  for (const auto& h : r.headers) n += h.first == name ? 1 : 0;
  return n;
}

struct Fixture {
  std::atomic<int> snapshots{0};
  GatewayStatus Snapshot() {
    ++snapshots;
    GatewayStatus s;
    s.version = "9.9.9";
    s.now_ms = s.started_ms = 1767225600000;
    DeviceStatus d;
    d.name = "laptop";
    s.devices.push_back(d);
    return s;
  }
};

TEST(StatusHandlerTest, OpenWithoutTokens) {
  Fixture f;
  StatusHandler h([&] { return f.Snapshot(); }, {"", ""});
  EXPECT_FALSE(h.guarded());
  for (const char* path : {"/", "/status", "/?x=1"}) {
    const ServerResponse r = h.Handle(Get(path));
    EXPECT_EQ(r.status, 200u) << path;
    EXPECT_EQ(HeaderOf(r, "Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(HeaderOf(r, "Content-Security-Policy"), StatusContentSecurityPolicy());
    EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-store");
    EXPECT_EQ(HeaderOf(r, "X-Content-Type-Options"), "nosniff");
    EXPECT_NE(r.body.find("data-device=\"laptop\""), std::string::npos);
  }
  const ServerResponse j = h.Handle(Get("/api/v1/status"));
  EXPECT_EQ(j.status, 200u);
  EXPECT_EQ(HeaderOf(j, "Content-Type"), "application/json");
  EXPECT_TRUE(j.body.starts_with("{\"destinations\":[]"));
  EXPECT_NE(j.body.find("\"version\":\"9.9.9\""), std::string::npos);
  EXPECT_EQ(f.snapshots.load(), 4) << "a fresh snapshot per request";
}

TEST(StatusHandlerTest, OnlyGetAndHead) {
  Fixture f;
  StatusHandler h([&] { return f.Snapshot(); }, {});
  for (const char* method : {"POST", "DELETE", "PUT"}) {
    ServerRequest r = Get("/");
    r.method = method;
    const ServerResponse resp = h.Handle(r);
    EXPECT_EQ(resp.status, 405u) << method;
    EXPECT_EQ(HeaderOf(resp, "Allow"), "GET, HEAD");
  }
  EXPECT_EQ(f.snapshots.load(), 0);
  EXPECT_TRUE(IsStatusPath("/"));
  EXPECT_TRUE(IsStatusPath("/status"));
  EXPECT_TRUE(IsStatusPath("/api/v1/status"));
  EXPECT_FALSE(IsStatusPath("/status/"));
  EXPECT_FALSE(IsStatusPath("/metrics"));
}

TEST(StatusHandlerTest, TokensAsBearerOrBasicPassword) {
  Fixture f;
  const std::string metrics = "metrics-token-123", admin = "admin-token-456";
  StatusHandler h([&] { return f.Snapshot(); }, {metrics, admin});
  EXPECT_TRUE(h.guarded());
  auto status = [&](std::string authorization, std::string path = "/") {
    return h.Handle(Get(path, authorization)).status;
  };
  EXPECT_EQ(status("Bearer " + metrics), 200u);
  EXPECT_EQ(status("bearer  " + metrics + " "), 200u);
  EXPECT_EQ(status("Bearer " + admin, "/api/v1/status"), 200u);
  EXPECT_EQ(status("Basic " + Base64Encode("anyone:" + metrics)), 200u);
  EXPECT_EQ(status("basic " + Base64Encode(":" + admin)), 200u);
  EXPECT_EQ(status("Basic " + Base64Encode("u:" + metrics), "/status"), 200u);
  EXPECT_EQ(f.snapshots.load(), 6);
  const uint64_t refused_before = h.refused();
  for (const std::string& bad :
       {std::string(), std::string("Bearer"), std::string("Bearer wrong"),
        "Bearer " + metrics + "x", "Token " + metrics, "Basic " + Base64Encode(metrics),
        "Basic " + Base64Encode("u:" + metrics + "x"), "Basic " + Base64Encode("u:"),
        std::string("Basic not-base64!"), "Basic " + Base64Encode("u:" + metrics).substr(1),
        "Basic " + Base64Encode(metrics + ":u")}) {
    const ServerResponse r = h.Handle(Get("/", bad));
    EXPECT_EQ(r.status, 401u) << bad;
    EXPECT_EQ(HeaderCount(r, "WWW-Authenticate"), 2u);
    EXPECT_EQ(r.body.find("laptop"), std::string::npos) << "nothing of the page";
  }
  EXPECT_EQ(h.refused() - refused_before, 11u);
  EXPECT_EQ(f.snapshots.load(), 6) << "no snapshot for a refused request";
  const ServerResponse r = h.Handle(Get("/api/v1/status"));
  EXPECT_EQ(r.status, 401u);
  bool basic = false, bearer = false;
  for (const auto& hd : r.headers) {
    if (hd.first != "WWW-Authenticate") continue;
    basic = basic || hd.second.starts_with("Basic realm=");
    bearer = bearer || hd.second.starts_with("Bearer realm=");
  }
  EXPECT_TRUE(basic && bearer) << "a browser prompts (Basic); scripts see Bearer";
}

TEST(StatusHandlerTest, AnEmptyTokenNeverOpensAGuardedPage) {
  Fixture f;
  StatusHandler h([&] { return f.Snapshot(); }, {"metrics-token", ""});
  EXPECT_EQ(h.Handle(Get("/", "Bearer ")).status, 401u);
  EXPECT_EQ(h.Handle(Get("/", "Basic " + Base64Encode("u:"))).status, 401u);
  EXPECT_EQ(h.Handle(Get("/", "Basic " + Base64Encode(":"))).status, 401u);
}

}  // namespace
}  // namespace ccmon::gateway
