// The agent's side of the state mirror and of the resume after a lost state (docs/agent-design.md
// "Resume"; the wire format and protocol in state_mirror/state_records.h).
//
// A ccmon-gateway keeps, per device, a copy of the agent's state (every key of its store except
// the outbox). StateMirrorUploader sends it: a full snapshot (one consistent iterator) whenever
// the engine committed since the last upload, at most once per interval, after the first
// catch-up and at a clean stop. An agent that starts with an EMPTY state and a gateway target
// first asks the gateway for that copy (ProbeGateway) and writes it into its store
// (RestoreState) before it counts anything: it then reads the surviving transcripts from the
// restored offsets as a new catch-up (no samples until it ends), so its counters continue from
// the restored values and every series' next sample is at least what the gateway holds.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "http/transport.h"
#include "store/kv_store.h"

namespace ccmon::agent {

// The agent's `m` keys for the mirror (docs/store-format.md "Agent state").
inline constexpr std::string_view kStreamKey = "mstream";       // epoch, 16 hex digits
inline constexpr std::string_view kStateSeqKey = "mstate_seq";  // last state sequence used
inline constexpr std::string_view kGatewayKey = "mgateway";     // "1" a ccmon-gateway, "0" not
inline constexpr std::string_view kResumedKey = "mresumed";     // restored at (unix ms, decimal)

// The gateway's state URL for a remote-write URL ending in /api/v1/write (the same origin,
// prefix and query kept); "" for any other URL (not a gateway's write path).
std::string AgentStateUrl(std::string_view write_url);

// True when the store holds no key at all (a new or deleted state directory).
Status StoreIsEmpty(KvStore* store, bool* empty);

// A random, non-zero stream epoch.
uint64_t NewStreamEpoch();

// The state's stream epoch: read, or created (random, non-zero) and written (synced).
Status EnsureStreamEpoch(KvStore* store, uint64_t* epoch);

// A full snapshot of the state: every key but the outbox's (`o`), from one iterator (one
// consistent point: between two engine commits), as a state-records body.
Status SnapshotState(KvStore* store, std::string* body, uint64_t* records);

struct RestoreStats {
  uint64_t records = 0;  // written
  uint64_t files = 0;    // tracked-file cursors among them (`f`)
  uint64_t series = 0;   // series (`c`)
};

// Writes a gateway's mirror into an EMPTY store in one synced batch: every record except the
// outbox's (`o`) and the mirror's own meta keys, WITHOUT `mcaught_up` (the surviving
// transcripts are read again from the restored offsets as a catch-up that queues no samples
// until it ends), plus a new stream epoch `new_epoch`, `mresumed` = now_ms (live samples are
// stamped after it) and `mgateway` = 1.
Status RestoreState(KvStore* store, const WriteBatch& mirror, uint64_t new_epoch, int64_t now_ms,
                    RestoreStats* stats);

enum class ProbeOutcome : uint8_t {
  kMirror,      // 200: the gateway holds a mirror (in Probe::mirror)
  kNoMirror,    // 204: a gateway, no mirror for this device
  kNotGateway,  // 400, 404, 405: the target is not a ccmon-gateway
  kRetry,       // unreachable, 5xx, 429, 401/403 (credentials refused), an undecodable answer
};

struct Probe {
  ProbeOutcome outcome = ProbeOutcome::kRetry;
  WriteBatch mirror;
  uint64_t epoch = 0, state_seq = 0;
  std::string detail;  // for the log: "HTTP 503", the network error, …
};

// GET `state_url` with `headers` (the target's, Authorization included).
void ProbeGateway(HttpTransport* transport, const std::string& state_url,
                  const std::vector<HttpHeader>& headers, Probe* probe);

struct UploaderOptions {
  KvStore* store = nullptr;            // borrowed
  HttpTransport* transport = nullptr;  // borrowed
  // For the last upload at a stop (a short timeout: the agent must stop within seconds);
  // nullptr: `transport`. Borrowed.
  HttpTransport* stop_transport = nullptr;
  std::string state_url;
  std::vector<HttpHeader> headers;
  std::chrono::milliseconds interval{5 * 60 * 1000};
  // Whether the target is known to be a gateway: 1 yes, 0 no, -1 unknown (the uploader probes
  // once and records the answer in `mgateway`).
  int gateway = -1;
  // Log lines: (level "info"/"warn", message, detail).
  std::function<void(std::string_view level, std::string_view msg, std::string_view detail)> log;
};

struct UploaderStats {
  uint64_t uploads = 0, failures = 0, refused = 0;
  uint64_t last_bytes = 0, last_records = 0;
  int64_t last_upload_unix_ms = 0;
};

// The thread that mirrors the state to the gateway (see the file comment). Thread-safe:
// NoteCommit and Kick from the ingest thread, Stop from the owner.
class StateMirrorUploader {
 public:
  explicit StateMirrorUploader(UploaderOptions options);
  ~StateMirrorUploader();
  void Start();
  // The engine committed: the state changed (`commits`: the engine's commit count).
  void NoteCommit(uint64_t commits);
  // Upload now (if changed) instead of at the next interval (the end of the catch-up).
  void Kick();
  // Stops the thread; with `final_upload`, one last upload of a changed state first (bounded
  // by the transport's timeout).
  void Stop(bool final_upload);
  UploaderStats stats() const;

 private:
  void Run(std::stop_token stop);
  // One upload of a changed state; true when the gateway took it.
  bool UploadIfChanged(HttpTransport* transport);

  UploaderOptions options_;
  std::atomic<uint64_t> commits_{0};
  uint64_t uploaded_commits_ = UINT64_MAX;  // the thread's (and Stop's, after it)
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool kicked_ = false;
  UploaderStats stats_;
  mutable std::mutex stats_mu_;
  std::jthread thread_;
};

}  // namespace ccmon::agent
