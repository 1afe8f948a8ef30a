// A real Prometheus 2.42 scrapes ccmon's HttpServer + MetricsHandler (port 0): it negotiates
// OpenMetrics, and the claude_* families (ccmon's exact writers) and the self-metrics
// (prometheus-cpp's registry) come back through Prometheus's query API with their values.
// Skipped when the prometheus binary is missing (Debian package prometheus).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exposition/family.h"
#include "http/http_client.h"
#include "http/server.h"
#include "selfmetrics/metrics_handler.h"
#include "selfmetrics/self_metrics.h"
#include "testing/temp_dir.h"

namespace ccmon {
namespace {

using std::chrono::steady_clock;

std::string PrometheusBinary() {
  std::string p = CCMON_PROMETHEUS;
  return p.empty() || p.ends_with("-NOTFOUND") ? "" : p;
}

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string PercentEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
      out.push_back(char(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A Prometheus process, stopped (SIGTERM, then SIGKILL) and reaped at destruction.
class PrometheusProcess {
 public:
  PrometheusProcess(const std::string& binary, const std::string& dir, uint16_t target_port)
      : dir_(dir) {
    std::ofstream(dir + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        << "scrape_configs:\n  - job_name: ccmon\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << target_port << "']\n";
    port_ = FreePort();
    pid_ = ::fork();
    if (pid_ == 0) {
      int log = ::open((dir + "/prometheus.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::string config = "--config.file=" + dir + "/prometheus.yml";
      std::string storage = "--storage.tsdb.path=" + dir + "/data";
      std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      ::execl(binary.c_str(), binary.c_str(), config.c_str(), storage.c_str(), listen.c_str(),
              "--log.level=warn", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~PrometheusProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 1000; ++i) {  // up to 10 s for a clean exit
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  bool Exited() { return ::waitpid(pid_, nullptr, WNOHANG) == pid_ && (pid_ = -1, true); }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string Log() const {
    std::ifstream in(dir_ + "/prometheus.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

HttpResponse Get(const std::string& url) {
  HttpRequest req;
  req.url = url;
  HttpClientOptions opt;
  opt.timeout = std::chrono::seconds(5);
  HttpResponse res;
  if (!HttpExchange(req, opt, &res).ok()) res.status = 0;
  return res;
}

// Polls `query` until its single result's value is `want` (as Prometheus prints it) or the
// deadline passes; returns the last body.
bool QueryUntil(PrometheusProcess& prom, const std::string& query, const std::string& want,
                std::string* last) {
  auto deadline = steady_clock::now() + std::chrono::seconds(60);
  while (steady_clock::now() < deadline) {
    HttpResponse res = Get(prom.Url("/api/v1/query?query=" + PercentEncode(query)));
    *last = res.body;
    if (res.status == 200 && res.body.find(",\"" + want + "\"]") != std::string::npos) return true;
    if (prom.Exited()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(ServerScrape, Prometheus242ScrapesOpenMetricsAndQueriesTheValuesBack) {
  std::string binary = PrometheusBinary();
  if (binary.empty()) GTEST_SKIP() << "prometheus not installed (Debian package prometheus)";

  SelfMetrics self;
  SelfCounter lines;
  ASSERT_TRUE(self.AddCounter({"ccmon_agent_lines_read", "Lines read."}, {}, &lines).ok());
  lines.Increment(4242);
  SelfGauge behind;
  ASSERT_TRUE(
      self.AddGauge({"ccmon_agent_behind_bytes", "Bytes not read yet.", {}, "bytes"}, {}, &behind)
          .ok());
  behind.Set(0.5);
  SelfHistogram lag;
  ASSERT_TRUE(
      self.AddHistogram({"ccmon_agent_send_lag_seconds", "Lag.", {}, "seconds", {0.1, 1}}, {}, &lag)
          .ok());
  lag.Observe(0.05);
  lag.Observe(0.5);

  FamilyEvents cost;
  cost.desc.name = "claude_cost_usd";
  cost.desc.help = "Cost in USD at list prices.";
  cost.desc.unit = "usd";
  cost.desc.usd = true;
  cost.desc.label_names = {"device", "model"};
  cost.series_labels = {{"laptop", "anthropic/claude-sonnet-4-5"}};
  cost.events = {{0, 1000, 1234567890123}};  // $1.234567890123
  std::vector<FamilyEvents> claude = {cost};

  std::mutex mu;
  std::set<ExpositionFormat> formats;
  std::atomic<int> scrapes{0};
  MetricsHandler handler([&](ExpositionFormat f, std::string* body) {
    {
      std::lock_guard<std::mutex> lock(mu);
      formats.insert(f);
    }
    ++scrapes;
    return ComposeMetricsBody(f, claude, &self, body);
  });
  HttpServer server(ServerOptions{}, &handler);
  ASSERT_TRUE(server.Start().ok());

  testing_util::TempDir dir;
  PrometheusProcess prom(binary, dir.path(), server.port());
  std::string last;
  ASSERT_TRUE(QueryUntil(prom, "up{job=\"ccmon\"}", "1", &last)) << last << prom.Log();
  EXPECT_TRUE(QueryUntil(prom, "ccmon_agent_lines_read_total", "4242", &last)) << last;
  EXPECT_TRUE(QueryUntil(prom, "ccmon_agent_behind_bytes", "0.5", &last)) << last;
  EXPECT_TRUE(QueryUntil(prom, "ccmon_agent_send_lag_seconds_bucket{le=\"1\"}", "2", &last))
      << last;
  EXPECT_TRUE(QueryUntil(prom, "ccmon_agent_send_lag_seconds_count", "2", &last)) << last;
  EXPECT_TRUE(QueryUntil(prom, "claude_cost_usd_total{device=\"laptop\"}", "1.234567890123", &last))
      << last;
  // Every sample of the body was taken, none refused (a duplicate family or a bad line would
  // fail the whole scrape: up would be 0).
  EXPECT_TRUE(QueryUntil(prom, "scrape_samples_scraped{job=\"ccmon\"}", "8", &last)) << last;
  // A value that changes between scrapes is followed.
  lines.Increment(1);
  EXPECT_TRUE(QueryUntil(prom, "ccmon_agent_lines_read_total", "4243", &last)) << last;
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(formats, std::set<ExpositionFormat>{ExpositionFormat::kOpenMetrics});
  EXPECT_GE(scrapes, 2);
}

}  // namespace
}  // namespace ccmon
