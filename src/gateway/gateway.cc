#include "gateway/gateway.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

#include "gateway/admin_handler.h"
#include "gateway/cli.h"
#include "gateway/devices/device_registry.h"
#include "gateway/ingest/gateway_handler.h"
#include "gateway/mirror/mirror_store.h"
#include "gateway/mirror/state_handler.h"
#include "gateway/status/collect.h"
#include "gateway/status/status_handler.h"
#include "gateway/store/exposition.h"
#include "selfmetrics/metrics_handler.h"
#include "store/rocks_store.h"

namespace ccmon::gateway {
namespace {

SelfCounter Counter(SelfMetrics* m, const std::string& name, const std::string& help,
                    std::vector<std::string> label_names = {},
                    const std::vector<std::string>& values = {}) {
  SelfCounter c;
  (void)m->AddCounter(SelfFamily{name, help, std::move(label_names)}, values, &c);
  return c;
}

SelfGauge Gauge(SelfMetrics* m, const std::string& name, const std::string& help,
                const std::string& unit = "") {
  SelfGauge g;
  (void)m->AddGauge(SelfFamily{name, help, {}, unit}, {}, &g);
  return g;
}

}  // namespace

GatewaySelfMetrics::GatewaySelfMetrics(const WriteHandler* write, const SeriesStore* store,
                                       const Forwarder* forward)
    : write_(write), store_(store), forward_(forward) {
  for (size_t i = 0; i < kWriteStatusCodes.size(); ++i) {
    requests_[i] = Counter(&metrics_, "ccmon_gateway_write_requests",
                           "Remote-write requests answered, by status code", {"code"},
                           {std::to_string(kWriteStatusCodes[i])});
  }
  for (size_t i = 0; i < kRejectReasonCount; ++i) {
    rejected_[i] = Counter(&metrics_, "ccmon_gateway_samples_rejected",
                           "Samples of refused write requests, by reason", {"reason"},
                           {std::string(RejectReasonName(RejectReason(i)))});
  }
  for (size_t i = 0; i < kLimitReasonCount; ++i) {
    limited_[i] = Counter(&metrics_, "ccmon_gateway_write_requests_limited",
                          "Write requests refused or cut by a limit (429 rate_limit and overload, "
                          "400 series_limit), by reason",
                          {"reason"}, {std::string(LimitReasonName(LimitReason(i)))});
  }
  metrics_unauthorized_ = Counter(&metrics_, "ccmon_gateway_metrics_unauthorized",
                                  "Requests to /metrics refused for a missing or wrong token");
  tls_failures_ =
      Counter(&metrics_, "ccmon_gateway_tls_handshake_failures", "Failed TLS handshakes");
  accepted_ = Counter(&metrics_, "ccmon_gateway_samples_accepted", "Samples stored");
  duplicate_ = Counter(&metrics_, "ccmon_gateway_samples_duplicate",
                       "Samples at or before their series' last sample, dropped");
  resets_ = Counter(&metrics_, "ccmon_gateway_series_resets",
                    "Accepted counter samples below the series' previous value");
  created_ = Counter(&metrics_, "ccmon_gateway_series_created", "Series stored for the first time");
  v2_ = Counter(&metrics_, "ccmon_gateway_write_requests_v2", "Remote-write 2.0 requests received");
  duplicate_batches_ = Counter(&metrics_, "ccmon_gateway_write_requests_duplicate",
                               "Agent write requests acknowledged without being applied: their "
                               "batch (X-Ccmon-Batch) was applied before");
  series_cache_hits_ =
      Counter(&metrics_, "ccmon_gateway_series_cache_hits",
              "Series of write requests found in the series cache by their label bytes (their "
              "labels were not parsed again)");
  series_cache_misses_ =
      Counter(&metrics_, "ccmon_gateway_series_cache_misses",
              "Series of write requests the series cache did not know (decoded and stored the "
              "full way; inserted after their 2xx)");
  bad_http_ = Counter(&metrics_, "ccmon_gateway_http_bad_requests",
                      "HTTP requests refused before the handler (400, 413, 431)");
  timeouts_ = Counter(&metrics_, "ccmon_gateway_http_timeouts",
                      "Connections dropped by a read, write or idle timeout");
  {
    static constexpr const char* kOutcomes[] = {"applied", "duplicate", "gap", "too_large"};
    for (size_t i = 0; i < mirror_uploads_.size(); ++i) {
      mirror_uploads_[i] = Counter(&metrics_, "ccmon_gateway_agent_state_uploads",
                                   "Agent state uploads (their resume after a lost state), by "
                                   "outcome: applied, duplicate (acknowledged, not applied), gap "
                                   "(409: a snapshot is asked for), too_large (413)",
                                   {"outcome"}, {kOutcomes[i]});
    }
    mirror_fetches_ = Counter(&metrics_, "ccmon_gateway_agent_state_fetches",
                              "Agent states handed back to agents that lost theirs (200)");
  }
  series_ = Gauge(&metrics_, "ccmon_gateway_series", "Series held");
  families_ = Gauge(&metrics_, "ccmon_gateway_metric_families", "Metric families with metadata");
  store_bytes_ =
      Gauge(&metrics_, "ccmon_gateway_store_bytes", "Size of the store on disk", "bytes");
  connections_ = Gauge(&metrics_, "ccmon_gateway_http_connections", "Open HTTP connections");
  if (forward_ != nullptr) {
    for (const ForwardDestinationStats& d : forward_->stats()) {
      const std::vector<std::string> dest = {d.destination};
      ForwardSeries f;
      auto gauge = [&](const char* name, const char* help, const char* unit, SelfGauge* g) {
        (void)metrics_.AddGauge(SelfFamily{name, help, {"destination"}, unit}, dest, g);
      };
      gauge("ccmon_gateway_forward_queue_samples", "Samples queued for a forward destination", "",
            &f.queue_samples);
      gauge("ccmon_gateway_forward_queue_bytes", "Payload bytes queued for a forward destination",
            "bytes", &f.queue_bytes);
      gauge("ccmon_gateway_forward_lag_seconds",
            "Age of the oldest entry queued for a forward destination (0: none queued)", "seconds",
            &f.lag);
      f.queued = Counter(&metrics_, "ccmon_gateway_forward_samples_queued",
                         "Stored samples queued for a forward destination", {"destination"}, dest);
      f.sent = Counter(&metrics_, "ccmon_gateway_forward_samples_sent",
                       "Samples a forward destination took (2xx)", {"destination"}, dest);
      f.failed = Counter(&metrics_, "ccmon_gateway_forward_samples_failed",
                         "Samples a forward destination refused for good (a 4xx other than 429)",
                         {"destination"}, dest);
      f.dropped_limit =
          Counter(&metrics_, "ccmon_gateway_forward_samples_dropped",
                  "Samples never forwarded: queue_limit (the queue's age or size limit), invalid "
                  "(refused by the remote-write encoder)",
                  {"destination", "reason"}, {d.destination, "queue_limit"});
      f.dropped_invalid =
          Counter(&metrics_, "ccmon_gateway_forward_samples_dropped",
                  "Samples never forwarded: queue_limit (the queue's age or size limit), invalid "
                  "(refused by the remote-write encoder)",
                  {"destination", "reason"}, {d.destination, "invalid"});
      f.retries = Counter(&metrics_, "ccmon_gateway_forward_retries",
                          "Requests to a forward destination sent again", {"destination"}, dest);
      forward_series_.push_back(f);
    }
  }
  metrics_.OnCollect([this] { Collect(); });
}

void GatewaySelfMetrics::Collect() {
  const WriteStats w = write_->stats();
  for (size_t i = 0; i < requests_.size(); ++i)
    requests_[i].AdvanceTo(double(w.requests_by_code[i]));
  for (size_t i = 0; i < rejected_.size(); ++i)
    rejected_[i].AdvanceTo(double(w.samples_rejected[i]));
  for (size_t i = 0; i < limited_.size(); ++i) limited_[i].AdvanceTo(double(w.requests_limited[i]));
  if (const TokenGuard* guard = metrics_guard_.load(); guard != nullptr) {
    metrics_unauthorized_.AdvanceTo(double(guard->refused()));
  }
  if (const MirrorStore* mirror = mirror_.load(); mirror != nullptr) {
    const MirrorStats m = mirror->stats();
    mirror_uploads_[0].AdvanceTo(double(m.applied));
    mirror_uploads_[1].AdvanceTo(double(m.duplicate));
    mirror_uploads_[2].AdvanceTo(double(m.gap));
    mirror_uploads_[3].AdvanceTo(double(m.too_large));
    mirror_fetches_.AdvanceTo(double(m.served));
  }
  accepted_.AdvanceTo(double(w.samples_accepted));
  duplicate_.AdvanceTo(double(w.samples_duplicate));
  resets_.AdvanceTo(double(w.counter_resets));
  created_.AdvanceTo(double(w.series_created));
  v2_.AdvanceTo(double(w.v2_requests));
  duplicate_batches_.AdvanceTo(double(w.duplicate_batches));
  series_cache_hits_.AdvanceTo(double(w.series_cache_hits));
  series_cache_misses_.AdvanceTo(double(w.series_cache_misses));
  const SeriesStoreStats s = store_->Stats();
  series_.Set(double(s.series));
  families_.Set(double(s.families));
  store_bytes_.Set(double(s.store_bytes));
  if (forward_ != nullptr) {
    const std::vector<ForwardDestinationStats> fs = forward_->stats();
    for (size_t i = 0; i < fs.size() && i < forward_series_.size(); ++i) {
      ForwardSeries& f = forward_series_[i];
      f.queue_samples.Set(double(fs[i].queued_samples));
      f.queue_bytes.Set(double(fs[i].queued_bytes));
      f.lag.Set(fs[i].lag_seconds);
      f.queued.AdvanceTo(double(fs[i].samples_queued));
      f.sent.AdvanceTo(double(fs[i].samples_sent));
      f.failed.AdvanceTo(double(fs[i].samples_rejected));
      f.dropped_limit.AdvanceTo(double(fs[i].samples_dropped));
      f.dropped_invalid.AdvanceTo(double(fs[i].samples_invalid));
      f.retries.AdvanceTo(double(fs[i].retries));
    }
  }
  if (const HttpServer* server = server_.load(); server != nullptr) {
    const ServerStats ss = server->stats();
    bad_http_.AdvanceTo(double(ss.bad_requests));
    timeouts_.AdvanceTo(double(ss.timeouts));
    tls_failures_.AdvanceTo(double(ss.tls_failures));
    connections_.Set(double(ss.active_connections));
  }
}

Status GatewayMetricsBody(const SeriesStore& store, const GatewaySelfMetrics& self,
                          ExpositionFormat format, std::string* body,
                          const GatewayComputed* computed) {
  std::string rendered;
  store.Read([&](const SeriesTable& table) {
    WriteSeriesExposition(
        table, format,
        [computed](std::string_view name) {
          return name.starts_with("ccmon_gateway_") ||
                 (computed != nullptr && IsComputedFamily(name));
        },
        &rendered);
    if (computed != nullptr) computed->Write(table, format, &rendered);
  });
  ComposeRenderedMetricsBody(format, rendered, &self.registry(), body);
  return Status::Ok();
}

int RunGateway(const GatewayConfig& config, std::stop_token stop,
               const std::function<void(std::string_view line)>& log) {
  const int64_t started_ms = Clock::Real()->NowUnixMs();
  for (const std::string& warning : config.config_warnings) {
    log("level=warn msg=\"" + warning + "\"");
  }
  RocksStoreOptions ro;
  ro.block_cache_bytes = size_t(32) << 20;
  // 64 MiB (RocksDB's own default): twice the store's checkpoint interval (log_bytes),
  // so that an L record is mostly deleted by a checkpoint while its memtable is still in memory,
  // never flushed. At most two memtables: up to 128 MiB of the gateway's RSS under load.
  constexpr size_t kWriteBufferBytes = size_t(64) << 20;
  static_assert(kWriteBufferBytes >= 2 * GatewayStoreOptions{}.log_bytes);
  ro.write_buffer_bytes = kWriteBufferBytes;
  // A flush every ~1.6 s at the issue-8 load, of log records mostly deleted soon after:
  // compressing them cost ~3 % of the CPU per sample (BENCHMARKS.md "Session 23").
  ro.compress_flushes = false;
  ro.log = [&log](std::string_view m) {
    log("level=warn msg=\"rocksdb\" detail=\"" + std::string(m) + "\"");
  };
  std::unique_ptr<KvStore> kv;
  if (Status s = OpenRocksStore(config.data_dir, ro, &kv); !s.ok()) {
    log("level=error msg=\"cannot open the data dir\" error=\"" + s.message() + "\"");
    return 1;
  }
  std::unique_ptr<GatewayStore> store;
  // The store's own thread writes the groups: an io thread that led them would hold its own
  // connection's answer and next read while others queue (p99 doubled at the load,
  // BENCHMARKS.md "Branch gwasync" and the merge's re-measure).
  GatewayStoreOptions store_options;
  store_options.committer_thread = true;
  if (Status s = GatewayStore::Open(kv.get(), store_options, &store); !s.ok()) {
    log("level=error msg=\"cannot read the data dir\" dir=\"" + config.data_dir + "\" error=\"" +
        s.message() + "\"");
    return 1;
  }
  std::unique_ptr<DeviceRegistry> devices;
  if (Status s = DeviceRegistry::Open(kv.get(), nullptr, &devices); !s.ok()) {
    log("level=error msg=\"cannot read the devices\" dir=\"" + config.data_dir + "\" error=\"" +
        s.message() + "\"");
    return 1;
  }
  ComputedOptions co;
  co.online_window = config.online_window;
  std::unique_ptr<GatewayComputed> computed;
  if (Status s = GatewayComputed::Open(kv.get(), co, &computed); !s.ok()) {
    log("level=error msg=\"cannot read the device state\" dir=\"" + config.data_dir +
        "\" error=\"" + s.message() + "\"");
    return 1;
  }
  store->set_apply_listener(computed->apply_listener());
  {
    const SeriesStoreStats st = store->Stats();
    log("level=info msg=\"store opened\" dir=\"" + config.data_dir +
        "\" series=" + std::to_string(st.series) + " families=" + std::to_string(st.families) +
        " devices=" + std::to_string(devices->List().size()));
  }
  std::unique_ptr<Forwarder> forwarder;
  if (!config.forward.empty()) {
    ForwarderOptions fo;
    fo.destinations = config.forward;
    fo.shards = config.forward_shards;
    fo.max_samples_per_send = config.forward_max_samples_per_send;
    fo.batch_send_deadline = config.forward_batch_send_deadline;
    fo.queue.max_bytes = config.forward_queue_max_bytes;
    fo.queue.max_age = config.forward_queue_max_age;
    fo.log = log;
    if (Status s = Forwarder::Open(kv.get(), fo, Clock::Real(), &forwarder); !s.ok()) {
      log("level=error msg=\"cannot open the forward queues\" dir=\"" + config.data_dir +
          "\" error=\"" + s.message() + "\"");
      return 1;
    }
    store->add_apply_listener(forwarder.get());
    if (Status s = forwarder->Start(); !s.ok()) {
      log("level=error msg=\"cannot start forwarding\" error=\"" + s.message() + "\"");
      return 1;
    }
  }
  WriteHandlerOptions wo;
  wo.limits = config.limits;
  wo.allow_anonymous = config.allow_anonymous;
  wo.devices = devices.get();
  wo.log = [&log](std::string_view m) { log("level=error msg=\"" + std::string(m) + "\""); };
  wo.on_accepted = [&computed](std::string_view device, std::string_view user_agent) {
    computed->RecordWrite(device, user_agent);
  };
  // The series cache's slots are allocated here, at start: a size the machine cannot hold is a
  // clear error now, not a crash (--series-cache-entries is bounded, the memory is not).
  std::unique_ptr<WriteHandler> write_owner;
  try {
    write_owner = std::make_unique<WriteHandler>(store.get(), wo);
  } catch (const std::bad_alloc&) {
    log("level=error msg=\"cannot allocate the series cache: lower --series-cache-entries\" "
        "entries=" +
        std::to_string(config.limits.series_cache_entries));
    return 1;
  }
  WriteHandler& write = *write_owner;
  GatewaySelfMetrics self(&write, store.get(), forwarder.get());
  MetricsHandlerOptions mo;
  mo.metrics_paths = {"/metrics", "/api/metrics"};
  MetricsHandler metrics(
      [&](ExpositionFormat format, std::string* body) {
        return GatewayMetricsBody(*store, self, format, body, computed.get());
      },
      mo);
  std::atomic<bool> ready{true};
  AdminOptions ao;
  ao.admin_token = config.admin_token;
  AdminHandler admin(devices.get(), ao);
  // /healthz and /readyz stay open: probes must not need the metrics token.
  TokenGuard metrics_guard(config.metrics_token, {"/metrics", "/api/metrics"}, &metrics);
  self.set_metrics_guard(&metrics_guard);
  // The agents' state mirrors (their resume after a lost state dir).
  MirrorOptions mirror_options;
  mirror_options.max_bytes_per_device = config.max_agent_state_bytes;
  MirrorStore mirror(kv.get(), mirror_options);
  AgentStateHandlerOptions asho;
  asho.devices = devices.get();
  asho.log = [&log](std::string_view m) { log("level=warn msg=\"" + std::string(m) + "\""); };
  AgentStateHandler agent_state(&mirror, asho);
  self.set_mirror(&mirror);
  // The status page: guarded like /metrics (by the metrics token, or the admin token when a
  // metrics token is set); open when /metrics is.
  StatusSources status_sources;
  status_sources.store = store.get();
  status_sources.devices = devices.get();
  status_sources.computed = computed.get();
  status_sources.forwarder = forwarder.get();
  status_sources.mirror = &mirror;
  status_sources.version = GatewayVersion();
  status_sources.started_ms = started_ms;
  status_sources.online_window = config.online_window;
  status_sources.anonymous_writes = config.allow_anonymous;
  std::vector<std::string> status_tokens;
  if (!config.metrics_token.empty()) status_tokens = {config.metrics_token, config.admin_token};
  StatusHandler status([&status_sources] { return CollectGatewayStatus(status_sources); },
                       status_tokens);
  GatewayHandler handler(
      &write, &metrics_guard, [&ready] { return ready.load(); }, &admin, &agent_state, &status);

  ServerOptions so;
  so.listen = config.listen;
  so.max_body_bytes = config.limits.max_body_bytes;
  so.max_connections = config.max_connections;
  so.io_threads = config.io_threads;
  so.idle_timeout = config.idle_timeout;
  so.read_timeout = config.read_timeout;
  so.allowed_methods = {"GET", "HEAD", "POST", "DELETE"};
  so.tls_cert_file = config.tls_cert_file;
  so.tls_key_file = config.tls_key_file;
  so.log = [&log](std::string_view m) { log("level=warn msg=\"" + std::string(m) + "\""); };
  HttpServer server(so, &handler);
  if (Status s = server.Start(); !s.ok()) {
    // kInvalidArgument: options that can never work (the listen address, the TLS files).
    const bool config_error = s.code() == Status::Code::kInvalidArgument;
    log(std::string("level=error msg=\"") +
        (config_error ? "invalid server settings" : "cannot listen") + "\" listen=\"" +
        config.listen + "\" error=\"" + s.message() + "\"");
    return config_error ? 2 : 1;
  }
  self.set_server(&server);
  log("level=info msg=\"listening\" listen=\"" + config.listen +
      "\" port=" + std::to_string(server.port()) +
      (config.allow_anonymous ? " anonymous_writes=true" : " anonymous_writes=false") +
      (config.admin_token.empty() ? " admin_api=false" : " admin_api=true") +
      (config.tls_cert_file.empty() ? " tls=false" : " tls=true") +
      (config.metrics_token.empty() ? " metrics_token=false" : " metrics_token=true") +
      (config.config_file.empty() ? "" : " config=\"" + config.config_file + "\""));

  std::mutex mu;
  std::condition_variable_any cv;
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, stop, [] { return false; });
  }
  ready = false;
  log("level=info msg=\"stopping\"");
  server.Stop();  // in-flight writes finish (and are durable) before the store closes
  self.set_server(nullptr);
  // After the server: no Apply stages into the queues any more. What is not yet acknowledged
  // upstream stays queued for the next start.
  if (forwarder) forwarder->Stop();
  if (Status s = computed->Flush(); !s.ok()) {
    log("level=warn msg=\"cannot write the devices' last seen\" error=\"" + s.message() + "\"");
  }
  log("level=info msg=\"stopped\"");
  return 0;
}

}  // namespace ccmon::gateway
