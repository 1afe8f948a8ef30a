// RunAgent (agent/agent.h): the agent's threads and their wiring (docs/agent-design.md).
//
//   ingest thread (this one)  Tailer -> Ingestor -> Engine -> RocksDB batch (+ outbox entries)
//   shard threads             QueueManager: outbox shard -> remote-write -> ack (Remove)
//   io threads (pull mode)    HttpServer: GET /metrics -> the last published exposition
// The store is the only thing they share (thread-safe); the exposition text is published under
// a mutex after each commit.
#include "agent/agent.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "agent/backfill.h"
#include "agent/cli/cli.h"
#include "agent/engine/bulk_start.h"
#include "agent/engine/engine.h"
#include "agent/engine/family_metadata.h"
#include "agent/engine/ingest.h"
#include "agent/resume.h"
#include "agent/self_metrics.h"
#include "base/clock.h"
#include "base/env.h"
#include "exposition/negotiate.h"
#include "http/endpoint_headers.h"
#include "http/http_client.h"
#include "http/server.h"
#include "pricing/pricing.h"
#include "remote_write/outbox/outbox_source.h"
#include "remote_write/queue_manager.h"
#include "selfmetrics/metrics_handler.h"
#include "state_mirror/state_records.h"
#include "store/outbox.h"
#include "store/rocks_store.h"
#include "tail/tailer.h"
#include "transcript/discovery.h"

namespace ccmon {
namespace {

using agent::Engine;
using agent::Ingestor;

// Present once --backfill sent the history (value: its end, unix ms): never sent twice, and
// the live samples wait until after its end.
constexpr std::string_view kBackfilledKey = "mbackfilled";

// --backfill on a first start (docs/agent-design.md "Backfill"). 0: go on counting live;
// otherwise the exit status.
// *history_end_ms: the backfilled history's end (kNever: none), after which live samples go.
int MaybeBackfill(const AgentConfig& config, const agent::BackfillOptions& options, KvStore* store,
                  Clock* clock, std::stop_token stop, Logger& log, int64_t* history_end_ms) {
  *history_end_ms = agent::kNever;
  std::string v;
  if (store->Get(agent::kResumedKey, &v).ok()) {
    if (config.backfill && !store->Get(kBackfilledKey, &v).ok())
      log.Info("--backfill ignored: this state was resumed from the gateway's mirror");
    return 0;
  }
  if (store->Get(Engine::kCaughtUpKey, &v).ok()) {
    if (config.backfill) {
      log.Info(
          "--backfill ignored: this state has sent live samples already (a backfill now "
          "would be refused as out of order); `ccmon-agent reset` starts over");
    }
    return 0;
  }
  int64_t end_ms = 0;
  if (store->Get(kBackfilledKey, &v).ok()) {
    end_ms = std::atoll(v.c_str());
  } else if (config.backfill) {
    log.Info("backfill: sending the history with its timestamps", {{"url", config.url}});
    agent::BackfillResult r;
    const Status s = agent::BackfillHistory(options, stop, &r);
    for (const std::string& w : r.warnings) log.Warn("backfill: " + w);
    if (r.future_events > 0) {
      log.Warn("backfill: events dated after now (a clock ahead of this one) were sent as of now",
               {{"events", r.future_events}});
    }
    if (stop.stop_requested()) return -1;
    if (!s.ok()) {
      log.Error(
          "backfill failed; nothing is counted live until it succeeds (restart to try "
          "again, or start without --backfill)",
          {{"error", s.message()}, {"samples_stored", r.samples_sent}});
      if (IsTooOldForReceiver(r.failed_send.last.reason)) {
        log.Error(
            "the target does not take samples this old: give Prometheus an out-of-order "
            "window, or backfill it with `ccmon-replay openmetrics` and promtool (README)");
      }
      return 1;
    }
    end_ms = r.end_ms;
    WriteBatch batch;
    batch.Put(kBackfilledKey, std::to_string(end_ms));
    if (Status ws = store->Write(batch, true); !ws.ok()) {
      log.Error("cannot record the backfill", {{"error", ws.message()}});
      return 1;
    }
    log.Info("backfill done", {{"files", r.files},
                               {"series", r.series},
                               {"samples", r.samples_sent},
                               {"requests", r.requests},
                               {"history_ends_unix", end_ms / 1000}});
  }
  if (end_ms <= 0) return 0;
  *history_end_ms = end_ms;
  // The history's last samples are at the end of its newest event's step, which may be up to
  // a step ahead of now: the first live samples must come after them.
  const int64_t wait_ms = end_ms + 1000 - clock->NowUnixMs();
  if (wait_ms > 0) {
    log.Info("waiting for the backfilled history's end before counting live",
             {{"seconds", int64_t((wait_ms + 999) / 1000)}});
    clock->WaitFor(std::chrono::milliseconds(wait_ms), stop);
    if (stop.stop_requested()) return -1;
  }
  return 0;
}

// A new (empty) state with a ccmon-gateway target: fetch the gateway's mirror of the lost state
// and write it into the store before anything is counted (docs/agent-design.md "Resume").
// While the gateway cannot answer, retries with backoff (nothing is counted meanwhile: counting
// from scratch would lower the device's totals). 0: go on; -1: stop requested; 1: the store
// failed.
int ResumeFromGateway(HttpTransport* transport, const std::string& state_url,
                      const std::vector<HttpHeader>& headers, KvStore* store, Clock* clock,
                      std::stop_token stop, Logger& log, const AgentRunHooks& hooks) {
  std::chrono::milliseconds backoff{500};
  AgentStatus waiting;
  for (int attempt = 1;; ++attempt) {
    agent::Probe probe;
    agent::ProbeGateway(transport, state_url, headers, &probe);
    switch (probe.outcome) {
      case agent::ProbeOutcome::kNotGateway: {
        log.Info("resume: the target is not a ccmon-gateway; starting with a new state",
                 {{"answer", probe.detail}});
        WriteBatch b;
        b.Put(agent::kGatewayKey, "0");
        return store->Write(b, true).ok() ? 0 : 1;
      }
      case agent::ProbeOutcome::kNoMirror: {
        log.Info("resume: the gateway holds no state of this device; starting with a new state");
        WriteBatch b;
        b.Put(agent::kGatewayKey, "1");
        return store->Write(b, true).ok() ? 0 : 1;
      }
      case agent::ProbeOutcome::kMirror: {
        agent::RestoreStats rs;
        if (Status s = agent::RestoreState(store, probe.mirror, probe.epoch, probe.state_seq,
                                           clock->NowUnixMs(), &rs);
            !s.ok()) {
          log.Error("resume: cannot write the restored state", {{"error", s.message()}});
          return 1;
        }
        log.Info(
            "resume: the state was restored from the gateway's mirror; the surviving "
            "transcripts are read again from the restored offsets",
            {{"records", rs.records},
             {"files", rs.files},
             {"series", rs.series},
             {"mirror_state_seq", probe.state_seq}});
        return 0;
      }
      case agent::ProbeOutcome::kRetry:
        break;
    }
    if (attempt == 1 || attempt % 10 == 0) {
      log.Warn(
          "resume: waiting for the gateway to hand back this device's state; nothing is counted "
          "until it answers (--resume off starts from scratch)",
          {{"url", state_url}, {"answer", probe.detail}, {"attempt", attempt}});
    }
    waiting.last_error = "waiting for the gateway to resume the lost state: " + probe.detail;
    hooks.publish_status(waiting);
    clock->WaitFor(backoff, stop);
    if (stop.stop_requested()) return -1;
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(30));
  }
}

}  // namespace

int RunAgent(const AgentConfig& config, std::stop_token stop, const AgentRunHooks& hooks) {
  Logger& log = *hooks.log;
#ifdef __GLIBC__
  // glibc gives each thread its own malloc arena; the agent's threads (ingest, shards, RocksDB's,
  // the server's) would each keep freed memory. Two arenas are plenty for a desktop agent.
  mallopt(M_ARENA_MAX, 2);
  // Blocks of 128 KiB and more (line buffers, batches, payloads) are mmap'ed and returned at
  // free, and the heap's top is returned beyond 128 KiB: freed memory does not stay resident
  // (glibc's default raises the threshold with every large free). -1 MiB at the first start's
  // peak (BENCHMARKS.md "Agent").
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
  Env* env = Env::Default();
  Clock* clock = Clock::Real();

  // Replay's discovery, plus the projects/ dirs that do not exist yet (a first Claude Code run
  // creates them while the agent runs).
  const DiscoveryEnv denv = DiscoveryEnv::FromEnv(env);
  const std::vector<std::string> project_dirs = WatchedProjectDirs(
      config.config_dirs.empty() ? ConfigDirs(denv) : config.config_dirs, denv.home, env);
  const agent::IngestOptions io;
  auto tailer_options = [&] {
    TailerOptions to;
    to.project_dirs = project_dirs;
    to.watch_mode = config.watch == AgentWatchMode::kPoll ? WatchMode::kPoll : WatchMode::kInotify;
    to.rescan_interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(config.rescan_interval);
    to.env = env;
    to.clock = clock;
    // Twice a step: the step's files and those its parse thread reads ahead (ingest.h).
    to.max_offer_bytes = 2 * io.step_bytes;
    return to;
  };
  // A first start's look (docs/agent-design.md "Bulk first start"), taken on a thread of its
  // own while the state opens (RocksDB creating a database waits on the disk): the tailer's
  // watcher, then the discovery's listing for the bulk start. Only where the state dir holds no
  // database yet; the bulk start decides later whether it applies.
  const bool bulk_allowed = env->GetEnvVar("CCMON_AGENT_BULK_START").value_or("") != "off";
  struct EarlyLook {
    std::unique_ptr<Watcher> watcher;
    std::string watcher_problem;
    DiscoveryResult listing;
  };
  std::future<EarlyLook> early_look;  // its destructor waits for the thread on every return
  if (FileInfo db; bulk_allowed && env->Stat(config.state_dir + "/db/CURRENT", &db).code() ==
                                       Status::Code::kNotFound) {
    early_look = std::async(std::launch::async, [&] {
      EarlyLook look;
      look.watcher = Tailer::NewWatcher(tailer_options(), &look.watcher_problem);
      look.listing = FindTranscripts(project_dirs, env);
      return look;
    });
  }
  std::optional<DiscoveryResult> listing;  // early_look's, once taken

  PriceTable prices;
  std::string price_origin;
  if (Status s = PriceTable::LoadConfigured(env, config.pricing_file, &prices, &price_origin);
      !s.ok()) {
    log.Error("cannot load the price table", {{"error", s.message()}});
    return 1;
  }

  // The state: RocksDB under the state dir, and the outbox in it.
  // Small caches: the agent's reads are mostly misses of new keys (bloom filters answer them)
  // and its writes are small batches; measured in bench/agent_bench.py (BENCHMARKS.md, Agent).
  RocksStoreOptions ro;
  ro.block_cache_bytes = size_t(2) << 20;
  ro.write_buffer_bytes = size_t(2) << 20;
  ro.log = [&log](std::string_view m) { log.Warn("rocksdb", {{"message", m}}); };
  // After a failed write the store refuses writes until Recover() below has reopened it (RocksDB
  // 7.8's Resume() can wait forever after a full disk; rocks_store.h).
  ro.recover_by_reopening = true;
  std::unique_ptr<KvStore> store;
  if (Status s = OpenRocksStore(config.state_dir + "/db", ro, &store); !s.ok()) {
    log.Error("cannot open the agent's state", {{"error", s.message()}});
    return 1;
  }
  bool state_was_empty = false;
  if (Status s = agent::StoreIsEmpty(store.get(), &state_was_empty); !s.ok()) {
    log.Error("cannot read the agent's state", {{"error", s.message()}});
    return 1;
  }
  std::unique_ptr<Outbox> outbox;
  OutboxOptions oo;
  oo.max_bytes = config.outbox_max_bytes;
  oo.max_age = std::chrono::duration_cast<std::chrono::milliseconds>(config.outbox_max_age);
  if (Status s = Outbox::Open(store.get(), oo, int(config.shards), &outbox); !s.ok()) {
    log.Error("cannot open the outbox", {{"error", s.message()}});
    return 1;
  }
  const uint32_t shards = uint32_t(outbox->shard_count());
  if (int(shards) != int(config.shards)) {
    log.Warn(
        "the outbox keeps the shard count its queued samples were sharded by; --shards "
        "applies at a start with an empty outbox",
        {{"shards", std::to_string(shards)}, {"shards_wanted", std::to_string(config.shards)}});
  }

  agent::EngineOptions eo;
  eo.live.device = config.device;
  eo.live.labels = config.label_options;
  eo.live.prices = &prices;
  eo.live.static_labels = config.labels;
  eo.live.settle_after_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.settle_after).count();
  // The record cache: halving it from LiveOptions' 10,000 saves 1.5 MiB at the first start's
  // peak and did not change its CPU time (the store's bloom filters and block cache answer the
  // extra reads; BENCHMARKS.md "Agent"). 3,500 since request records are cached decoded (larger
  // than their encoding): the same peak as 5,000 encoded ones, or less.
  eo.live.cache_records = 3500;
  // The catch-up's store writes overlap the counting of the next step (BENCHMARKS.md "Agent").
  eo.write_thread = true;
  eo.shards = shards;
  eo.max_samples_per_send = config.max_samples_per_send;
  eo.max_sample_age_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.max_sample_age).count();
  eo.resend_interval_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.resend_interval).count();

  // Sending: one queue shard per outbox shard.
  EndpointHeaderOptions ho;
  ho.headers = config.headers;
  ho.bearer_token_file = config.bearer_token_file;
  ho.basic_auth_user = config.basic_auth_user;
  ho.basic_auth_password_file = config.basic_auth_password_file;
  QueueManagerOptions qo;
  qo.shards = shards;
  qo.max_samples_per_send = config.max_samples_per_send;
  qo.batch_send_deadline = config.batch_send_deadline;
  qo.sender.url = config.url;
  // The gateway records it as the device's agent (claude_device_agent_info).
  qo.sender.user_agent = std::string("ccmon-agent/") + AgentVersion();
  // A batch that still fails after 30 s is handed back (kept at the head of its shard and tried
  // again after a pause, never dropped): that makes the failure visible in the status and the
  // log, and counts towards the desktop notification.
  qo.sender.max_retry_time = std::chrono::seconds(30);
  // The outbox is the samples' only copy: a refused credential (401/403: expired, rotated,
  // revoked) keeps them until it is fixed, like an outage; the status and log say why.
  qo.sender.retry_auth_failures = true;
  if (Status s = BuildEndpointHeaders(env, ho, &qo.sender.headers); !s.ok()) {
    log.Error("bad target headers or credentials", {{"error", s.message()}});
    return 1;
  }
  if (!config.key.empty()) {  // a gateway device key is a bearer token
    qo.sender.headers.emplace_back("Authorization", "Bearer " + config.key);
  }
  qo.http.ca_file = config.ca_file;
  qo.http.client_cert_file = config.client_cert_file;
  qo.http.client_key_file = config.client_key_file;
  qo.http.insecure_skip_verify = config.insecure_skip_verify;

  agent::AgentSelfMetrics self;
  if (!self.SetPricingUpdated(prices.updated())) {
    log.Warn("the price table names no valid updated date; its age is unknown",
             {{"pricing", price_origin}, {"updated", prices.updated()}});
  }
  // Pull mode: the claude_* families as the ingest thread last published them, and the
  // self-metrics.
  std::mutex exposition_mu;
  std::string exposition_text, exposition_om;
  MetricsHandler handler([&](ExpositionFormat format, std::string* body) {
    std::string rendered;
    {
      std::lock_guard<std::mutex> lock(exposition_mu);
      rendered = format == ExpositionFormat::kOpenMetrics ? exposition_om : exposition_text;
    }
    ComposeRenderedMetricsBody(format, rendered, &self.registry(), body);
    return Status::Ok();
  });
  std::unique_ptr<HttpServer> server;
  if (!config.listen.empty()) {
    ServerOptions so;
    so.listen = config.listen;
    so.allowed_methods = {"GET"};
    so.io_threads = 1;
    server = std::make_unique<HttpServer>(so, &handler);
    if (Status s = server->Start(); !s.ok()) {
      log.Error("cannot listen", {{"listen", config.listen}, {"error", s.message()}});
      return 1;
    }
    log.Info("serving /metrics", {{"listen", config.listen}, {"port", int(server->port())}});
  }

  // Up: the state is open and the listener bound. What follows may wait for the gateway (a
  // resume) or only fails on a failing disk; a background `start` need not wait for it.
  hooks.ready();

  // The state mirror and the resume of a lost state: with a ccmon-gateway target only (a device
  // key, a URL ending in /api/v1/write, and the gateway's answer to the probe).
  const std::string state_url =
      config.resume && !config.key.empty() ? agent::AgentStateUrl(config.url) : "";
  HttpClientOptions state_http = qo.http;
  state_http.timeout = std::chrono::seconds(30);
  state_http.max_body_bytes = size_t(1) << 30;
  RealHttpTransport state_transport(state_http);
  state_http.timeout = std::chrono::seconds(2);
  RealHttpTransport stop_transport(state_http);
  if (!state_url.empty() && state_was_empty) {
    const int code = ResumeFromGateway(&state_transport, state_url, qo.sender.headers, store.get(),
                                       clock, stop, log, hooks);
    if (code != 0) {
      log.Info("agent stopped");
      return code < 0 ? 0 : code;
    }
  } else if (state_was_empty && config.resume) {
    log.Info(config.key.empty() ? "resume: no device key (--key), so no gateway state to resume"
                                : "resume: the URL is not a gateway's /api/v1/write");
  }
  std::unique_ptr<agent::StateMirrorUploader> uploader;
  std::string batch_stream;  // the batch identity (OutboxShardSource::SetBatchIdentity)
  if (!state_url.empty()) {
    uint64_t epoch = 0;
    if (Status s = agent::EnsureStreamEpoch(store.get(), &epoch); !s.ok()) {
      log.Error("cannot write the agent's state", {{"error", s.message()}});
      return 1;
    }
    batch_stream = state_mirror::FormatEpoch(epoch);
    agent::UploaderOptions uo;
    uo.store = store.get();
    uo.transport = &state_transport;
    uo.stop_transport = &stop_transport;
    uo.state_url = state_url;
    uo.headers = qo.sender.headers;
    uo.interval = config.state_mirror_interval;
    std::string v;
    uo.gateway = store->Get(agent::kGatewayKey, &v).ok() ? (v == "1" ? 1 : 0) : -1;
    uo.log = [&log](std::string_view level, std::string_view msg, std::string_view detail) {
      if (level == "warn")
        log.Warn(std::string(msg), {{"detail", detail}});
      else
        log.Info(std::string(msg), {{"detail", detail}});
    };
    if (uo.gateway != 0) {
      uploader = std::make_unique<agent::StateMirrorUploader>(std::move(uo));
    } else {
      batch_stream.clear();  // not a gateway: no identity headers
    }
  }
  std::vector<std::unique_ptr<OutboxShardSource>> sources;
  std::vector<ShardSource*> source_ptrs;
  const std::string batch_run = state_mirror::FormatEpoch(agent::NewStreamEpoch());
  for (uint32_t i = 0; i < shards; ++i) {
    sources.push_back(std::make_unique<OutboxShardSource>(
        outbox.get(), i, clock, [&self](double seconds) { self.ObserveLag(seconds); }));
    // One shard carries the families' metadata, every 5 minutes (Prometheus: every minute).
    if (i == 0)
      sources.back()->SendMetadata(agent::SerializedFamilyMetadata(), std::chrono::minutes(5));
    if (!batch_stream.empty()) sources.back()->SetBatchIdentity(batch_stream, batch_run);
    source_ptrs.push_back(sources.back().get());
  }
  QueueManager queue(qo, source_ptrs, clock);
  if (Status s = queue.Start(); !s.ok()) {
    log.Error("cannot start sending", {{"error", s.message()}});
    return 1;
  }

  for (const std::string& d : project_dirs) {
    FileInfo info;
    if (!env->Stat(d, &info).ok()) {
      log.Warn("no transcripts directory yet; watching for it to appear", {{"dir", d}});
    } else if (info.type != FileType::kDirectory) {
      log.Warn("not a directory; watching for a directory to replace it", {{"dir", d}});
    }
  }
  log.Info("counting", {{"device", config.device},
                        {"url", config.url},
                        {"shards", int(shards)},
                        {"pricing", price_origin},
                        {"project_dirs", int(project_dirs.size())}});

  bool resumed = false;  // the state was restored from the gateway's mirror (kResumedKey)
  {
    agent::BackfillOptions bo;
    bo.project_dirs = project_dirs;
    bo.device = config.device;
    bo.labels = config.label_options;
    bo.prices = &prices;
    bo.static_labels = config.labels;
    bo.max_samples_per_send = config.max_samples_per_send;
    bo.sender = qo.sender;
    bo.sender.user_agent = std::string("ccmon-agent/") + AgentVersion() + " (backfill)";
    bo.sender.max_retry_time = std::chrono::seconds(300);
    bo.http = qo.http;
    bo.env = env;
    bo.clock = clock;
    const int code = MaybeBackfill(config, bo, store.get(), clock, stop, log, &eo.samples_after_ms);
    // A resumed state: every sample from now on is stamped after the restore, so none is at or
    // before what the gateway already holds from the lost state (it would be dropped there as a
    // duplicate) (docs/agent-design.md "Resume").
    if (std::string v; code == 0 && store->Get(agent::kResumedKey, &v).ok()) {
      resumed = true;
      const int64_t resumed_ms = std::atoll(v.c_str());
      if (eo.samples_after_ms == agent::kNever || eo.samples_after_ms < resumed_ms)
        eo.samples_after_ms = resumed_ms;
    }
    if (code != 0) {
      if (server) server->Stop();
      queue.Stop();
      log.Info("agent stopped");
      return code < 0 ? 0 : code;
    }
  }

  eo.state_sequence = uploader != nullptr;
  if (uploader) uploader->Start();

  // The bulk first start (docs/agent-design.md "Bulk first start"): an empty state counts the
  // history present now with replay's parallel scan and writes the caught-up state as one
  // table; the tailer then goes on from the scanned cursors. Not on a state that holds records
  // (a restart, a resumed state: BulkStart refuses it), nor when it would not be exact or its
  // memory not bounded (BulkStart says why: the history is counted line by line instead).
  // CCMON_AGENT_BULK_START=off forces the line-by-line catch-up (tests compare the two).
  agent::BulkStartResult bulk;
  // The first tailer's watcher, set up before the bulk start's listing: the changes after that
  // listing are then queued in it, so the tailer's first step need not list them again
  // (Tailer::NoteCompleteLook). Not after a resume: its state holds records.
  std::unique_ptr<Watcher> early_watcher;
  if (early_look.valid()) {  // the watcher serves the first tailer, bulk start or not
    EarlyLook look = early_look.get();
    early_watcher = std::move(look.watcher);
    if (!look.watcher_problem.empty()) log.Warn(look.watcher_problem);
    listing = std::move(look.listing);
  }
  if (state_was_empty && bulk_allowed && !resumed) {
    if (early_watcher == nullptr) {
      std::string watcher_problem;
      early_watcher = Tailer::NewWatcher(tailer_options(), &watcher_problem);
      if (!watcher_problem.empty()) log.Warn(watcher_problem);
    }
    agent::BulkStartOptions bso;
    bso.project_dirs = project_dirs;
    bso.env = env;
    if (listing) bso.listed = &*listing;
    Status s = agent::BulkStart(bso, eo, store.get(), outbox.get(), clock->NowUnixMs(), &bulk);
    if (!s.ok()) {
      bulk = agent::BulkStartResult();
      if (s.code() == Status::Code::kInvalidArgument) {
        log.Info("bulk first start: not on this state; counting line by line",
                 {{"reason", s.message()}});
      } else {  // nothing was added; the line-by-line catch-up starts from the empty state
        log.Warn("bulk first start failed; counting line by line", {{"error", s.message()}});
        (void)store->Recover();
      }
    } else if (!bulk.done) {
      log.Info("bulk first start: counting line by line instead", {{"reason", bulk.why_not}});
    }
  }
  // The bulk start's reading, in the self-metrics users see (as if read line by line), until
  // the first rebuild (whose rebase keeps what was shown).
  bool add_bulk = bulk.done;
  auto with_bulk = [&](agent::IngestStats st) {
    if (!add_bulk) return st;
    st.lines += bulk.lines;
    st.bytes += bulk.consumed_bytes;
    for (size_t r = 0; r < st.skipped.size(); ++r)
      if (r != size_t(SkipReason::kIncomplete)) st.skipped[r] += bulk.skipped.by_reason[r];
    return st;
  };
  auto with_bulk_live = [&](agent::LiveStats st) {
    if (!add_bulk) return st;
    st.requests += bulk.live.requests;
    st.copies += bulk.live.copies;
    st.observed += bulk.live.observed;
    st.sessions_observed += bulk.live.sessions_observed;
    return st;
  };
  AgentStatus status;
  int64_t seen_success_ms = 0, seen_error_ms = 0, logged_error_ms = 0;
  uint64_t seen_failed_sends = 0;
  int64_t last_published_ms = 0;
  int64_t logged_store_error_ms = 0;
  int exit_code = 0;
  while (!stop.stop_requested()) {
    // (Re)build the engine and the tailer from the store: at start, and after a failed commit.
    std::unique_ptr<Engine> engine;
    Status s = Engine::Open(eo, store.get(), outbox.get(), &engine);
    std::vector<TrackedFile> restored;
    if (s.ok()) s = Ingestor::RestoredFiles(engine.get(), &restored);
    if (!s.ok()) {
      log.Error("cannot read the agent's state", {{"error", s.message()}});
      exit_code = 1;
      break;
    }
    // The first tailer only: later ones (a rebuild after a failed commit) set up their own.
    const bool watched_since_bulk = add_bulk && early_watcher != nullptr;
    Tailer tailer(tailer_options(), std::move(restored), std::move(early_watcher));
    // The bulk start just read every file: its first look needs to open only those changed since.
    if (add_bulk) {
      for (const ScannedFile& f : bulk.scanned)
        tailer.NoteLook(f.device, f.inode, f.path, f.size_seen, f.listed_mtime_ms);
      bulk.scanned = std::vector<ScannedFile>();
      // ...and need not list the files either: it listed every dir (or it would not be done).
      if (watched_since_bulk) tailer.NoteCompleteLook();
    }
    Ingestor ingest(io, engine.get(), &tailer, env, clock,
                    [&](const std::string& line, bool problem) {
                      // An unreadable transcript leaves the counts short: `logs --errors` shows it.
                      if (problem)
                        log.Warn(line);
                      else
                        log.Info(line);
                    });
    if (uploader) engine->set_stage_state_deltas(uploader->gateway() == 1);
    // After a bulk start, "caught up" is logged once its first step has looked at the files.
    bool was_caught_up = engine->caught_up() && !(add_bulk && ingest.stats().steps == 0);
    std::optional<uint64_t> rendered_version;  // of this engine's exposition; none yet
    while (!stop.stop_requested()) {
      // Wake at least every few seconds: settle the histogram, resend, publish the status.
      const auto deadline = clock->Now() + std::chrono::seconds(5);
      s = ingest.Step(deadline, stop);
      if (!s.ok()) break;
      // A write of another thread (a sender's removal, the uploader's) may have failed while the
      // engine had nothing to commit: the store takes writes again once reopened. A no-op when
      // no write failed; what such a write leaves on disk is theirs (outbox removals, mirror
      // deltas), never the engine's records, so the engine goes on without a rebuild.
      if (Status r = store->Recover(); !r.ok()) {
        const int64_t now_ms = clock->NowUnixMs();
        if (now_ms - logged_store_error_ms >= 60000) {
          logged_store_error_ms = now_ms;
          log.Warn("the state cannot take writes yet; retrying", {{"error", r.message()}});
        }
      }
      // Deltas are staged once the target is known to be a gateway (the probe may still be
      // under way: the gateway's copy then starts with a snapshot).
      if (uploader) engine->set_stage_state_deltas(uploader->gateway() == 1);
      if (!was_caught_up && engine->caught_up()) {
        was_caught_up = true;
        if (uploader) uploader->Kick();
        log.Info("caught up with the existing history",
                 {{"lines", with_bulk(ingest.stats()).lines},
                  {"bytes", with_bulk(ingest.stats()).bytes},
                  {"bulk", bulk.done ? 1 : 0},
                  {"steps", ingest.stats().steps},
                  {"read_ahead_used", ingest.stats().read_ahead_used},
                  {"read_ahead_dropped", ingest.stats().read_ahead_dropped}});
#ifdef __GLIBC__
        malloc_trim(0);  // the catch-up's freed memory back to the system: idle RSS
#endif
      }
      // Only pull mode reads it, and only a change re-renders it: rendering both formats every
      // few seconds was a third of an idle agent's CPU.
      if (server && (!rendered_version || *rendered_version != engine->exposition_version())) {
        rendered_version = engine->exposition_version();
        std::string text = engine->Exposition(false), om = engine->Exposition(true);
        std::lock_guard<std::mutex> lock(exposition_mu);
        exposition_text.swap(text);
        exposition_om.swap(om);
      }
      OutboxDropStats dropped;
      if (Status ls = outbox->EnforceLimits(clock->NowUnixMs(), &dropped);
          ls.ok() && !dropped.empty()) {
        log.Warn(
            "outbox over its limits: oldest entries dropped",
            {{"entries", dropped.entries}, {"samples", dropped.samples}, {"bytes", dropped.bytes}});
      }
      const OutboxStats os = outbox->Stats();
      const QueueStats qs = queue.stats();
      self.Update(with_bulk(ingest.stats()), engine->stats(), with_bulk_live(engine->live_stats()),
                  engine->caught_up(), os, qs, tailer.files_tracked(), tailer.bytes_behind());
      if (uploader) self.UpdateStateMirror(uploader->stats());
      status.files_tracked = int64_t(tailer.files_tracked());
      status.bytes_behind = int64_t(tailer.bytes_behind());
      status.lines_read = int64_t(with_bulk(ingest.stats()).lines);
      status.caught_up = engine->caught_up() ? 1 : 0;
      status.outbox_requests = int64_t(os.total.entries);
      status.outbox_bytes = int64_t(os.total.bytes);
      status.last_push_unix = std::max(qs.last_success_unix_ms, qs.last_error_unix_ms) / 1000;
      status.last_push_status = qs.last_success_unix_ms == 0 && qs.last_error_unix_ms == 0 ? ""
                                : qs.last_success_unix_ms >= qs.last_error_unix_ms         ? "ok"
                                                                                   : qs.last_error;
      // Failed pushes in a row: sends that ended without the target taking them (given up on
      // after 30 s of retries, rejected, or refused before sending), reset by a success. The
      // CLI notifies at 3, so a target restarting for a few seconds does not. A failed attempt
      // that is still being retried shows at once in last_push_status and the log.
      const uint64_t failed_sends = qs.gave_up + qs.batches_rejected + qs.errors;
      if (qs.last_success_unix_ms > seen_success_ms) {
        seen_success_ms = qs.last_success_unix_ms;
        status.consecutive_push_failures = 0;
      }
      if (failed_sends > seen_failed_sends) {
        status.consecutive_push_failures += int64_t(failed_sends - seen_failed_sends);
        seen_failed_sends = failed_sends;
      }
      // A long outage is logged once a minute, not once per attempt.
      if (qs.last_error_unix_ms > seen_error_ms) {
        seen_error_ms = qs.last_error_unix_ms;
        if (qs.last_error_unix_ms > qs.last_success_unix_ms &&
            qs.last_error_unix_ms - logged_error_ms >= 60000) {
          logged_error_ms = qs.last_error_unix_ms;
          const bool auth = qs.last_error.find("HTTP 401") != std::string::npos ||
                            qs.last_error.find("HTTP 403") != std::string::npos;
          log.Warn(auth ? "push refused: the target does not accept our credentials; the "
                          "samples stay in the outbox until it does (ccmon-agent test)"
                        : "push failed; the samples stay in the outbox",
                   {{"error", qs.last_error},
                    {"failures", status.consecutive_push_failures},
                    {"outbox_requests", int64_t(os.total.entries)}});
        }
      }
      // A step of the first catch-up takes milliseconds, and each publication rewrites
      // status.json atomically (4 % of the catch-up's CPU): then at most once a second.
      const int64_t published_ms = clock->NowUnixMs();
      if (engine->caught_up() || published_ms - last_published_ms >= 1000) {
        last_published_ms = published_ms;
        hooks.publish_status(status);
      }
    }
    if (stop.stop_requested()) break;
    // A failed commit (a full disk, an I/O error): nothing was lost; wait and start over from
    // the store.
    log.Error("cannot commit; reading stops until it can (nothing is lost)",
              {{"error", s.message()}});
    status.last_error = s.message();
    hooks.publish_status(status);
    // The store takes writes again once Recover() has reopened it (space back, no iterator of a
    // sender or the uploader open at that moment); the rebuild below then reads whatever the
    // failed write left on disk, so it is counted once.
    int64_t logged_recover_ms = 0;
    for (;;) {
      clock->WaitFor(std::chrono::seconds(5), stop);
      if (stop.stop_requested()) break;
      const Status r = store->Recover();
      if (r.ok()) break;
      const int64_t now_ms = clock->NowUnixMs();
      if (now_ms - logged_recover_ms >= 60000) {  // a long full disk: once a minute
        logged_recover_ms = now_ms;
        log.Warn("the state cannot take writes yet; retrying", {{"error", r.message()}});
      }
      status.last_error = r.message();
      hooks.publish_status(status);
    }
    if (stop.stop_requested()) break;
    self.Rebase();
    add_bulk = false;  // in the rebased counters now
  }
  if (server) server->Stop();
  if (uploader) uploader->Stop(/*final_upload=*/exit_code == 0);
  queue.Stop();
  log.Info("agent stopped");
  return exit_code;
}

}  // namespace ccmon
