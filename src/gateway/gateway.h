// RunGateway: ccmon-gateway's serve command — the RocksDB series store, the remote-write
// receiver, /metrics with the received series and the ccmon_gateway_* self-metrics, /healthz and
// /readyz on one HttpServer — until a stop is requested. And GatewaySelfMetrics.
//
// Threads: the server's io threads run the handlers; RunGateway's thread only starts, waits for
// the stop and shuts down (the server first, so every answered write is durable before the
// store closes).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <ostream>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/computed/computed.h"
#include "gateway/forward/forwarder.h"
#include "gateway/ingest/token_guard.h"
#include "gateway/ingest/write_handler.h"
#include "gateway/mirror/mirror_store.h"
#include "gateway/store/series_store.h"
#include "http/server.h"
#include "selfmetrics/self_metrics.h"

namespace ccmon::gateway {

struct GatewayConfig {
  // Not 9464: Claude Code's own Prometheus exporter (OTEL_METRICS_EXPORTER=prometheus) takes it.
  std::string listen = "127.0.0.1:9469";
  std::string data_dir = "./data";
  bool allow_anonymous = false;
  // Guards the admin API (/api/v1/devices); empty: the admin API answers 403.
  std::string admin_token;
  IngestLimits limits;
  size_t max_connections = 1024;
  // The write path is asynchronous (WriteHandler::HandleAsync): no io thread waits for a
  // group's synced batch, but the io thread that queues into an idle store writes the groups
  // (series_store.h) while requests keep coming, so with 2 threads one of them is mostly the
  // writer and one does all the reading: 4 (more than the usual 2 cores) measured better than 2
  // again with the async path (BENCHMARKS.md, "Gateway (issue 8)", "Branch gwasync").
  int io_threads = 4;
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds read_timeout{30'000};
  // --forward URL (repeatable), each with the headers and credentials given after it; empty:
  // no forwarding. Headers are built (credential files read) when the flags are parsed.
  std::vector<ForwardDestination> forward;
  // Per destination: payload bytes queued, and the age of the oldest entry, beyond which the
  // oldest entries are dropped (logged, counted). 0: no limit.
  uint64_t forward_queue_max_bytes = uint64_t(1) << 30;
  std::chrono::milliseconds forward_queue_max_age = std::chrono::hours(24 * 7);
  size_t forward_shards = 4;
  size_t forward_max_samples_per_send = 2000;
  std::chrono::milliseconds forward_batch_send_deadline{5000};
  // Guards /metrics and /api/metrics (Authorization: Bearer <token>); empty: open.
  std::string metrics_token;
  // HTTPS when both are set (PEM files; HttpServer reads them at start).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string config_file;  // where settings were read from ("" when none), for the log
  // What the configuration's reading noticed without failing (an unknown CCMON_GATEWAY_*
  // variable): logged at start as warnings.
  std::vector<std::string> config_warnings;
  // claude_device_online: a device is online while its last write is younger than this.
  std::chrono::milliseconds online_window = kDefaultOnlineWindow;
  // An agent's mirrored state (keys + values; /api/v1/agent/state, its resume) at most; 0: no
  // limit. Over it the upload is refused (413, logged).
  uint64_t max_agent_state_bytes = uint64_t(256) << 20;
};

// The ccmon_gateway_* families in a prometheus-cpp registry (selfmetrics), refreshed from the
// handler's, the store's and the server's counters each time /metrics is written. Thread-safe.
class GatewaySelfMetrics {
 public:
  // The pointers are borrowed; `server` may be null (tests) and may be set later; `forward`
  // may be null (no --forward), else its destinations get the ccmon_gateway_forward_* series.
  GatewaySelfMetrics(const WriteHandler* write, const SeriesStore* store,
                     const Forwarder* forward = nullptr);
  void set_server(const HttpServer* server) { server_.store(server); }
  // The /metrics token guard whose refusals are counted (may stay null: not counted).
  void set_metrics_guard(const TokenGuard* guard) { metrics_guard_.store(guard); }
  // The agents' state mirrors whose uploads and fetches are counted (may stay null).
  void set_mirror(const MirrorStore* mirror) { mirror_.store(mirror); }
  const SelfMetrics& registry() const { return metrics_; }

 private:
  void Collect();

  const WriteHandler* write_;
  const SeriesStore* store_;
  std::atomic<const HttpServer*> server_{nullptr};
  std::atomic<const TokenGuard*> metrics_guard_{nullptr};
  std::atomic<const MirrorStore*> mirror_{nullptr};
  // ccmon_gateway_agent_state_uploads_total{outcome}: applied, duplicate, gap, too_large.
  std::array<SelfCounter, 4> mirror_uploads_;
  SelfCounter mirror_fetches_;
  SelfMetrics metrics_;
  std::array<SelfCounter, kWriteStatusCodes.size()> requests_;
  std::array<SelfCounter, kRejectReasonCount> rejected_;
  std::array<SelfCounter, kLimitReasonCount> limited_;
  SelfCounter accepted_, duplicate_, resets_, created_, v2_, bad_http_, timeouts_,
      duplicate_batches_;
  SelfCounter series_cache_hits_, series_cache_misses_;  // WriteStats::series_cache_*
  SelfCounter metrics_unauthorized_, tls_failures_;
  SelfGauge series_, families_, store_bytes_, connections_;
  // Per forward destination, in the Forwarder's order.
  struct ForwardSeries {
    SelfGauge queue_samples, queue_bytes, lag;
    SelfCounter queued, sent, failed, dropped_limit, dropped_invalid, retries;
  };
  const Forwarder* forward_;
  std::vector<ForwardSeries> forward_series_;
};

// The /metrics body: the received series (gateway/store/exposition.h; names starting with
// "ccmon_gateway_" are left out, they are the gateway's own), the computed series when
// `computed` is not null (gateway/computed/computed.h; stored series of their names are left
// out), then the self-metrics.
Status GatewayMetricsBody(const SeriesStore& store, const GatewaySelfMetrics& self,
                          ExpositionFormat format, std::string* body,
                          const GatewayComputed* computed = nullptr);

// Runs until `stop` is requested. Log lines (no line end) go to `log`, from several threads at
// once; the line "listening" names the bound port (port=N), for scripts that listen on port 0.
// Returns 0 after a clean stop, 1 when the store or the listener cannot be opened (said in the
// log), 2 when the server refuses the configuration itself (a malformed listen address, TLS
// files that cannot be read or do not match).
int RunGateway(const GatewayConfig& config, std::stop_token stop,
               const std::function<void(std::string_view line)>& log);

}  // namespace ccmon::gateway
