// The agent's side of the state mirror and of the resume after a lost state (docs/agent-design.md
// "Resume"; the wire format and protocol in state_mirror/state_records.h).
//
// A ccmon-gateway keeps, per device, a copy of the agent's state (every key of its store except
// the outbox and the staged deltas). The engine stages each commit's changes as a state delta
// in the commit's own batch (EngineOptions::state_sequence); StateMirrorUploader sends them in
// order, and a full snapshot (one consistent iterator) when the gateway's copy is missing or
// behind (409). An agent that starts with an EMPTY state and a gateway target first asks the
// gateway for that copy (ProbeGateway) and writes it into its store (RestoreState) before it
// counts anything: it then reads the surviving transcripts from the restored offsets as a new
// catch-up (no samples until it ends), so its counters continue from the restored values and
// every series' next sample is at least what the gateway holds.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "http/transport.h"
#include "state_mirror/state_records.h"
#include "store/kv_store.h"

namespace ccmon::agent {

// The agent's `m` keys for the mirror (docs/store-format.md "Agent state"); the state sequence
// and the staged deltas are the engine's (Engine::kStateSeqKey, Engine::kStateDeltaPrefix).
inline constexpr std::string_view kStreamKey = "mstream";    // epoch, 16 hex digits
inline constexpr std::string_view kGatewayKey = "mgateway";  // "1" a ccmon-gateway, "0" not
inline constexpr std::string_view kResumedKey = "mresumed";  // restored at (unix ms, decimal)

// The gateway's state URL for a remote-write URL ending in /api/v1/write (the same origin,
// prefix and query kept); "" for any other URL (not a gateway's write path).
std::string AgentStateUrl(std::string_view write_url);

// True when the store holds no key at all (a new or deleted state directory), or only the
// outbox's shard count (Outbox::Open's, written before anything is counted: a first start killed
// before its first commit or its bulk table).
Status StoreIsEmpty(KvStore* store, bool* empty);

// A random, non-zero stream epoch.
uint64_t NewStreamEpoch();

// The state's stream epoch: read, or created (random, non-zero) and written (synced).
Status EnsureStreamEpoch(KvStore* store, uint64_t* epoch);

// A full snapshot of the state: every key but the outbox's (`o`) and the staged deltas (`u`),
// from one iterator (one consistent point: between two engine commits), as a state-records
// body. *state_seq: the state sequence at that point (0: none yet).
Status SnapshotState(KvStore* store, std::string* body, uint64_t* records, uint64_t* state_seq);

// The same snapshot read in parts (the uploader sends a big state as several bodies): one
// iterator, created by the constructor, so every part comes from the same point. `store` is
// borrowed and must outlive the reader. Single-threaded.
class StateSnapshotReader {
 public:
  explicit StateSnapshotReader(KvStore* store);
  // An error of the iterator or a bad state sequence record; nothing else is valid then.
  Status status() const { return status_; }
  // The state sequence at the snapshot's point (0: none yet).
  uint64_t state_seq() const { return state_seq_; }
  // Puts the next records into `w` until its uncompressed size reaches `max_raw_bytes` (at
  // least one record while any is left). *done: none is left after them.
  Status Next(size_t max_raw_bytes, state_mirror::StateRecordWriter* w, bool* done);

 private:
  void SkipNotMirrored();

  std::unique_ptr<KvIterator> it_;
  Status status_;
  uint64_t state_seq_ = 0;
};

struct RestoreStats {
  uint64_t records = 0;  // written
  uint64_t files = 0;    // tracked-file cursors among them (`f`)
  uint64_t series = 0;   // series (`c`)
};

// Writes a gateway's mirror (of stream `epoch`, at state sequence `state_seq`) into an EMPTY
// store in one synced batch: every record except the outbox's, the deltas' and the mirror's own
// `m` keys, WITHOUT `mcaught_up` (the surviving transcripts are read again from the restored
// offsets as a catch-up that queues no samples until it ends), plus the mirror's epoch and
// state sequence (the next commits' deltas continue the gateway's copy), `mresumed` = now_ms
// (live samples are stamped after it) and `mgateway` = 1.
Status RestoreState(KvStore* store, const WriteBatch& mirror, uint64_t epoch, uint64_t state_seq,
                    int64_t now_ms, RestoreStats* stats);

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

// GET `state_url` with `headers` (the target's, Authorization included), page after page
// (state_mirror/state_records.h) until the mirror is whole; pages of different stream epochs or
// sequences (the mirror changed meanwhile) start it again, a few times, then kRetry.
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
  // Staged deltas are sent this often (and at Kick, and at a stop).
  std::chrono::milliseconds interval{15'000};
  // Whether the target is known to be a gateway: 1 yes, 0 no, -1 unknown (the uploader probes
  // once and records the answer in `mgateway`).
  int gateway = -1;
  // Uncompressed records per delta upload, and per part of a snapshot, at most (a backlog or a
  // big state goes in several). A part refused as over the gateway's body limit (a 413 that is
  // not the device's limit) makes the parts 4 times smaller (or half the refused part, when
  // that is less), down to kMinSnapshotPartBytes.
  size_t max_upload_bytes = size_t(8) << 20;
  // Staged deltas beyond this many bytes (a gateway unreachable for long) are deleted and the
  // next upload is a full snapshot instead.
  size_t max_backlog_bytes = size_t(64) << 20;
  // The last upload at a stop starts no request after this long (see Stop).
  std::chrono::milliseconds final_upload_budget{2'000};
  // A snapshot refused as too large (413) is tried again after this long.
  std::chrono::milliseconds refused_retry{3'600'000};
  // Log lines: (level "info"/"warn", message, detail).
  std::function<void(std::string_view level, std::string_view msg, std::string_view detail)> log;
};

inline constexpr size_t kMinSnapshotPartBytes = size_t(64) << 10;

struct UploaderStats {
  uint64_t delta_uploads = 0, snapshot_uploads = 0;
  uint64_t snapshot_parts = 0;  // parts of the snapshots acknowledged
  uint64_t deltas_sent = 0;     // staged deltas the gateway acknowledged
  uint64_t gaps = 0;            // 409s: a snapshot followed
  uint64_t failures = 0, refused = 0, backlog_dropped = 0;
  uint64_t last_snapshot_bytes = 0;
};

// The thread that mirrors the state to the gateway: it sends the engine's staged deltas
// (Engine::kStateDeltaPrefix) in order, `POST /api/v1/agent/state` with X-Ccmon-State-Seq
// "FIRST-LAST", and deletes them once acknowledged; on a 409 (the gateway's copy is not at
// FIRST-1: none yet, another epoch, a gap) it sends a full snapshot (X-Ccmon-State-Full: 1, at
// the snapshot's state sequence) and deletes the deltas it covers. Thread-safe: Kick from any
// thread, Stop from the owner.
class StateMirrorUploader {
 public:
  explicit StateMirrorUploader(UploaderOptions options);
  ~StateMirrorUploader();
  void Start();
  // Upload now instead of at the next interval (the end of the catch-up).
  void Kick();
  // 1: the target is a gateway (the engine should stage deltas); 0: not; -1: not known yet.
  int gateway() const { return gateway_.load(); }
  // Stops the thread (if started); with `final_upload`, one last upload of what is staged: no new
  // request (delta upload or snapshot part) starts after UploaderOptions::final_upload_budget,
  // and each is bounded by the stop transport's timeout; what is left goes at the next start.
  void Stop(bool final_upload);
  UploaderStats stats() const;

 private:
  void Run(std::stop_token stop);
  // Sends what is staged (or a snapshot when needed); true when the gateway holds all of it.
  // No request starts after `deadline`.
  using Deadline = std::chrono::steady_clock::time_point;
  bool Sync(HttpTransport* transport, std::stop_token stop, Deadline deadline = Deadline::max());
  bool UploadSnapshot(HttpTransport* transport, Deadline deadline);
  enum class SnapshotResult : uint8_t { kSent, kAgain, kFailed };
  SnapshotResult SendSnapshot(HttpTransport* transport, Deadline deadline);
  // POSTs a body with `extra` headers; the status (0: no answer, `detail` says why).
  // *device_limit: a 413 that names the device's limit (state_mirror::kStateLimitHeader).
  unsigned Post(HttpTransport* transport, std::string body, const std::string& seq, bool full,
                const std::vector<HttpHeader>& extra, std::string* detail,
                bool* device_limit = nullptr);
  Status DeleteDeltasThrough(uint64_t seq);

  UploaderOptions options_;
  std::atomic<int> gateway_;
  bool needs_snapshot_ = false;  // the thread's (and Stop's, after it), as the next two
  std::chrono::steady_clock::time_point snapshot_not_before_{};
  size_t snapshot_part_bytes_;  // the thread's: the part size, made smaller by body-limit 413s
  uint64_t epoch_ = 0;
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool kicked_ = false;
  UploaderStats stats_;
  mutable std::mutex stats_mu_;
  std::jthread thread_;
};

}  // namespace ccmon::agent
