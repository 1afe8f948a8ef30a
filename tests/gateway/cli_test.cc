#include "gateway/cli.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

TEST(ParseServeFlagsTest, DefaultsAndEveryFlag) {
  GatewayConfig c;
  ASSERT_TRUE(ParseServeFlags({}, &c).ok());
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_FALSE(c.allow_anonymous);
  EXPECT_EQ(c.limits.max_future, std::chrono::minutes(10));
  EXPECT_EQ(c.io_threads, 4);
  Status s = ParseServeFlags({"--listen",
                              "0.0.0.0:1",
                              "--data-dir=/tmp/x",
                              "--allow-anonymous",
                              "--max-body-bytes",
                              "2048",
                              "--max-decoded-bytes",
                              "4096",
                              "--max-series-per-request",
                              "7",
                              "--max-labels-per-series",
                              "8",
                              "--max-label-name-bytes",
                              "9",
                              "--max-label-value-bytes",
                              "10",
                              "--max-future",
                              "90s",
                              "--max-connections",
                              "3",
                              "--io-threads",
                              "6"},
                             &c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.listen, "0.0.0.0:1");
  EXPECT_EQ(c.data_dir, "/tmp/x");
  EXPECT_TRUE(c.allow_anonymous);
  EXPECT_EQ(c.limits.max_body_bytes, 2048u);
  EXPECT_EQ(c.limits.max_decoded_bytes, 4096u);
  EXPECT_EQ(c.limits.max_series_per_request, 7u);
  EXPECT_EQ(c.limits.max_labels_per_series, 8u);
  EXPECT_EQ(c.limits.max_label_name_bytes, 9u);
  EXPECT_EQ(c.limits.max_label_value_bytes, 10u);
  EXPECT_EQ(c.limits.max_future, std::chrono::seconds(90));
  EXPECT_EQ(c.max_connections, 3u);
  EXPECT_EQ(c.io_threads, 6);
}

TEST(ParseServeFlagsTest, RefusesWhatIsWrong) {
  const std::vector<std::vector<std::string>> bad = {
      {"--max-body-bytes", "-1"},
      {"--max-body-bytes", "10"},
      {"--max-body-bytes", "99999999999999999999"},
      {"--max-future", "2d"},
      {"--max-future", "10x"},
      {"--max-future", ""},
      {"--io-threads", "0"},
      {"--listen"},
      {"--listen", ""},
      {"--listen", "127.0.0.1:99999"},
      {"--listen", "127.0.0.1"},
      {"--listen", "[::1"},
      {"--bogus", "1"},
      {"serve"},
      {"--allow-anonymous=yes"},
      {"--data-dir", "a", "--data-dir", "b"},
  };
  for (const auto& args : bad) {
    GatewayConfig c;
    EXPECT_FALSE(ParseServeFlags(args, &c).ok()) << args[0];
  }
  GatewayConfig c;
  Status s = ParseServeFlags({"--max-labels-per-series", "0"}, &c);
  EXPECT_NE(s.message().find("--max-labels-per-series wants an integer from 1 to 10000"),
            std::string::npos)
      << s.message();
}

TEST(ParseServeFlagsTest, OnlineWindow) {
  GatewayConfig c;
  EXPECT_EQ(c.online_window, std::chrono::seconds(45));  // 3 x the agent's --resend-interval
  ASSERT_TRUE(ParseServeFlags({"--online-window", "2m"}, &c).ok());
  EXPECT_EQ(c.online_window, std::chrono::minutes(2));
  for (const char* bad : {"0s", "0", "2d", "-1s", "x"}) {
    GatewayConfig d;
    EXPECT_FALSE(ParseServeFlags({"--online-window", bad}, &d).ok()) << bad;
  }
}

TEST(RunGatewayCliTest, UsageAndVersion) {
  std::ostringstream out, err;
  EXPECT_EQ(RunGatewayCli({}, out, err, nullptr), kExitUsage);
  EXPECT_EQ(RunGatewayCli({"device", "add"}, out, err, nullptr), kExitUsage);
  EXPECT_EQ(RunGatewayCli({"serve", "--max-future", "nope"}, out, err, nullptr), kExitUsage);
  EXPECT_EQ(RunGatewayCli({"--version"}, out, err, nullptr), kExitOk);
  EXPECT_NE(out.str().find("ccmon-gateway 0.1.0"), std::string::npos);
  EXPECT_EQ(RunGatewayCli({"serve", "--help"}, out, err, nullptr), kExitOk);
  EXPECT_NE(out.str().find("--allow-anonymous"), std::string::npos);
}

// One raw request over a plain socket; returns the whole response (until the server closes).
std::string HttpRaw(int port, const std::string& req) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, size_t(n));
  close(fd);
  return resp;
}

// One HTTP/1.0 request over a plain socket; returns the whole response.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, size_t(n));
  close(fd);
  return resp;
}

class Logs {
 public:
  void Add(std::string_view line) {
    std::lock_guard<std::mutex> lock(mu_);
    text_ += std::string(line) + "\n";
    cv_.notify_all();
  }
  // Waits (30 s at most) for a line matching `re`; returns its first group.
  std::string WaitFor(const std::regex& re) {
    std::unique_lock<std::mutex> lock(mu_);
    std::smatch m;
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return std::regex_search(text_, m, re); });
    return m.size() > 1 ? m[1].str() : "";
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
};

TEST(RunGatewayTest, ServesAndStopsCleanlyAndReleasesTheDataDir) {
  testing_util::TempDir dir;
  GatewayConfig c;
  c.listen = "127.0.0.1:0";
  c.data_dir = dir.path() + "/data";
  for (int run = 0; run < 2; ++run) {  // the second run reopens the same RocksDB
    Logs logs;
    std::stop_source stop;
    int code = -1;
    std::thread t([&] { code = RunGateway(c, stop.get_token(), [&](auto l) { logs.Add(l); }); });
    const std::string port = logs.WaitFor(std::regex("msg=\"listening\".* port=(\\d+)"));
    ASSERT_FALSE(port.empty()) << logs.text();
    EXPECT_NE(HttpGet(std::stoi(port), "/healthz").find("200 OK"), std::string::npos);
    EXPECT_NE(HttpGet(std::stoi(port), "/readyz").find("ready"), std::string::npos);
    const std::string metrics = HttpGet(std::stoi(port), "/metrics");
    EXPECT_NE(metrics.find("ccmon_gateway_series 0"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("ccmon_gateway_write_requests_total{code=\"204\"} 0"),
              std::string::npos);
    for (const char* family :
         {"ccmon_gateway_write_requests_total{code=\"429\"} 0",
          "ccmon_gateway_write_requests_limited_total{reason=\"rate_limit\"} 0",
          "ccmon_gateway_write_requests_limited_total{reason=\"overload\"} 0",
          "ccmon_gateway_write_requests_limited_total{reason=\"series_limit\"} 0",
          "ccmon_gateway_metrics_unauthorized_total 0",
          "ccmon_gateway_tls_handshake_failures_total 0"}) {
      EXPECT_NE(metrics.find(family), std::string::npos) << family;
    }
    // Over a real socket: a body announced over --max-body-bytes is refused from its
    // Content-Length (413, nothing read), a write without a key is 401, and the gateway keeps
    // serving.
    const std::string big = HttpRaw(std::stoi(port),
                                    "POST /api/v1/write HTTP/1.1\r\nHost: x\r\n"
                                    "Content-Type: application/x-protobuf\r\n"
                                    "Content-Length: 99999999999\r\n\r\n");
    EXPECT_NE(big.find(" 413 "), std::string::npos) << big;
    const std::string anon = HttpRaw(std::stoi(port),
                                     "POST /api/v1/write HTTP/1.1\r\nHost: x\r\n"
                                     "Connection: close\r\nContent-Length: 1\r\n\r\nx");
    EXPECT_NE(anon.find(" 401 "), std::string::npos) << anon;
    EXPECT_NE(HttpGet(std::stoi(port), "/healthz").find("200 OK"), std::string::npos);
    stop.request_stop();
    t.join();
    EXPECT_EQ(code, 0) << logs.text();
    EXPECT_NE(logs.text().find("msg=\"stopped\""), std::string::npos);
  }
}

TEST(RunGatewayTest, ADataDirThatIsNotADatabaseFails) {
  testing_util::TempDir dir;
  { std::ofstream(dir.path() + "/notes.txt") << "my files"; }
  GatewayConfig c;
  c.listen = "127.0.0.1:0";
  c.data_dir = dir.path();
  Logs logs;
  std::stop_source stop;
  EXPECT_EQ(RunGateway(c, stop.get_token(), [&](auto l) { logs.Add(l); }), 1);
  EXPECT_NE(logs.text().find("cannot open the data dir"), std::string::npos) << logs.text();
}

}  // namespace
}  // namespace ccmon::gateway
