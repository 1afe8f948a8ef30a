// GET /metrics throughput of HttpServer + MetricsHandler, keep-alive, from a simple load loop:
// C connections, each sending one request after the other for S seconds.
//
//   server_bench [--body-bytes 102400] [--connections 4] [--seconds 5] [--io-threads 2]
//   server_bench --url http://127.0.0.1:9090/metrics [--connections 4] [--seconds 5]
//
// Without --url it serves a body of --body-bytes (OpenMetrics-shaped lines) itself and loads
// that; with --url it loads another server the same way (bench/server_bench.sh: Prometheus's
// own /metrics). Prints one line: requests/s, MB/s, body bytes.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"
#include "http/url.h"
#include "selfmetrics/metrics_handler.h"

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

int main(int argc, char** argv) {
  size_t body_bytes = 100 << 10;
  int connections = 4, seconds = 5, io_threads = 2;
  std::string url;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--body-bytes")
      body_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (flag == "--connections")
      connections = std::atoi(argv[i + 1]);
    else if (flag == "--seconds")
      seconds = std::atoi(argv[i + 1]);
    else if (flag == "--io-threads")
      io_threads = std::atoi(argv[i + 1]);
    else if (flag == "--url")
      url = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  std::string body;
  while (body.size() < body_bytes) {
    body += "ccmon_bench_series_total{device=\"laptop\",n=\"" + std::to_string(body.size()) +
            "\"} 12345\n";
  }
  body.resize(body_bytes);
  ccmon::MetricsHandler handler([&](ccmon::ExpositionFormat, std::string* out) {
    *out = body;  // a copy per scrape, as a real body is rendered per scrape
    return ccmon::Status::Ok();
  });
  ccmon::ServerOptions opt;
  opt.io_threads = io_threads;
  ccmon::HttpServer server(opt, &handler);
  std::string host = "127.0.0.1", target = "/metrics";
  uint16_t port = 0;
  if (url.empty()) {
    if (ccmon::Status s = server.Start(); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    port = server.port();
  } else {
    ccmon::HttpUrl u;
    if (ccmon::Status s = ccmon::ParseHttpUrl(url, &u); !s.ok() || u.tls) {
      std::fprintf(stderr, "bad --url (http:// only)\n");
      return 2;
    }
    host = u.host;
    port = u.port;
    target = u.target;
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> requests{0}, bytes{0}, errors{0};
  std::vector<std::thread> threads;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      net::io_context ioc;
      tcp::socket sock(ioc);
      boost::system::error_code ec;
      sock.connect({net::ip::make_address(host), port}, ec);
      if (ec) {
        ++errors;
        return;
      }
      boost::beast::flat_buffer buf;
      http::request<http::empty_body> req{http::verb::get, target, 11};
      req.set(http::field::host, host);
      req.set(http::field::accept, "application/openmetrics-text;version=1.0.0");
      while (std::chrono::steady_clock::now() < deadline) {
        http::write(sock, req, ec);
        http::response_parser<http::string_body> p;
        p.body_limit(1 << 30);
        if (!ec) http::read(sock, buf, p, ec);
        if (ec || p.get().result_int() != 200) {
          ++errors;
          return;
        }
        ++requests;
        bytes += p.get().body().size();
      }
    });
  }
  auto t0 = std::chrono::steady_clock::now();
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  server.Stop();
  uint64_t n = requests;
  std::printf(
      "%s: %.0f requests/s, %.1f MB/s, body %llu bytes, %d connections, %d s, errors %llu\n",
      url.empty() ? "ccmon HttpServer" : url.c_str(), n / secs, bytes / secs / 1e6,
      (unsigned long long)(n ? bytes / n : 0), connections, seconds,
      (unsigned long long)errors.load());
  return errors ? 1 : 0;
}
