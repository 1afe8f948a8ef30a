// LiveAccounting: replay's accounting rules (docs/accounting.md) applied one line at a time, as
// monotonic counters in a SeriesTable (docs/accounting.md A40, docs/agent-design.md "Counting").
//
// Every request, session, tool call, prompt and API error is deduplicated exactly as the ledger
// does (same keys, same MergeCopy), but its state lives in records of the agent's store, read
// through a bounded cache: memory does not grow with history. What a request has added to each
// series so far is kept in its record, so a later copy adds only the difference and a restart
// resumes exactly.
//
// The live rule (A40): a request is counted when its first copy is read, under that copy's
// labels (model, project); later copies raise its tokens, cost, savings, unpriced tokens and web
// searches by the difference (those only rise under A17). What would move a request to other
// labels or lower a series is not done: it is counted in conflicts() (exported as
// ccmon_agent_attribution_conflicts_total) so the difference from replay is visible. The
// cost-per-request histogram observes a request once it is settled: a later request of its
// session was read, or it has been quiet for `settle_after` (its newest copy's event time, and
// the time it was read).
//
// Sessions (A41): every request line and prompt line extends the span (first and last event
// time) of the session it names, and its newest request time. The open sessions (not yet
// observed in claude_session_duration_seconds) are records of the store too; in memory are only
// the recent ones. UpdateSessions(), at each commit, closes the sessions idle for 30 minutes
// (observing their duration once) and sets claude_active_sessions.
//
// Not thread-safe: the engine's thread owns it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "agent/engine/series_table.h"
#include "base/status.h"
#include "ledger/ledger.h"
#include "metrics/accounting.h"
#include "metrics/contributions.h"
#include "pricing/pricing.h"
#include "transcript/usage.h"

namespace ccmon::agent {

// Where the accounting's records live (the agent's store). Keys are the record keys of
// docs/store-format.md ("Agent state"), prefix byte included.
class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // kNotFound when absent.
  virtual Status Read(std::string_view key, std::string* value) = 0;
  // Calls `f` for every record whose key starts with `prefix`, in key order.
  virtual Status Scan(
      std::string_view prefix,
      const std::function<Status(std::string_view key, std::string_view value)>& f) = 0;
};

struct LiveOptions {
  std::string device;
  LabelOptions labels;
  const PriceTable* prices = nullptr;  // borrowed
  std::vector<std::pair<std::string, std::string>> static_labels;
  int64_t settle_after_ms = 60000;
  // Clean records kept in memory: ~250 B each, a request's (held decoded) ~500 B.
  size_t cache_records = 10000;
  // A41: a session is active while its newest request is this recent, and is closed (its
  // duration observed) once its newest line is this old.
  int64_t active_window_ms = 5 * 60000;
  int64_t session_idle_ms = 30 * 60000;
  // The bulk first start's record stream (LiveAccounting::StreamHistory): chunks of about this
  // many key and value bytes, at most history_chunks of them alive at once (~512 KiB: the peak
  // RSS at the bulk start's cap, 29.0-29.5 MiB without the stream, rises by 1.0 MiB with it).
  size_t history_chunk_bytes = size_t(128) << 10;
  size_t history_chunks = 4;
};

// Where the agent is in its life, for the session rules (A41).
enum class SessionPhase {
  // The first catch-up: no session is closed (a file not read yet may still extend it), and
  // sessions idle for session_idle_ms leave memory (their records stay in the store).
  kCatchingUp,
  // Its end (every file was read): every open session idle for session_idle_ms by its event
  // times is closed at once, those of the store included.
  kCatchUpEnd,
  // Afterwards: a session is closed once idle for session_idle_ms by its event times and no line
  // of it has been read for settle_after_ms (a backlog read over several commits may still hold
  // some of its lines).
  kLive,
};

struct LiveStats {
  uint64_t requests = 0;      // distinct requests counted
  uint64_t copies = 0;        // further copies merged
  uint64_t conflicts = 0;     // disagreements with replay's rule (see the file comment)
  uint64_t observed = 0;      // requests observed in the histogram
  uint64_t pending = 0;       // requests waiting to be settled
  uint64_t record_reads = 0;  // cache misses that went to the store
  // A41
  uint64_t sessions_in_memory = 0;      // open sessions held in memory (the recent ones)
  uint64_t sessions_observed = 0;       // durations observed (by this process)
  uint64_t sessions_reopened = 0;       // closed sessions that had lines again (not re-observed)
  uint64_t active_sessions = 0;         // the gauge's value at the last UpdateSessions
  uint64_t max_sessions_in_memory = 0;  // the most open sessions in memory at a commit
};

// What of a request line's accounting depends on the line alone, computed off the counting
// thread (the Ingestor's parse thread, LiveAccounting::Prepare) and carried with the line, so
// that the counting thread does only the part that depends on the lines before it. Views into
// storage the caller keeps until AddLine returns.
struct PreparedLine {
  bool request = false;              // a request line (kUsage, not synthetic): the two below set
  std::string_view request_key;      // its record key: r<dedup key>
  std::string_view canonical_model;  // CanonicalModel(line.model)
};

class LiveAccounting {
 public:
  // Restores series, admitted labels and pending requests through `reader` (borrowed; must
  // outlive the result).
  static Status Open(const LiveOptions& options, RecordReader* reader,
                     std::unique_ptr<LiveAccounting>* out);
  ~LiveAccounting();

  // Applies one parsed line (kUsage or kPrompt; others are ignored). kIoError/kCorruption when a
  // record could not be read: the caller must drop this object and reopen from the store (its
  // in-memory state is then ahead of the store).
  Status AddLine(const ParsedLine& line);
  // The same with what Prepare computed for `line` (any thread may Prepare: it touches no
  // state); the effects are those of AddLine(line).
  Status AddLine(const ParsedLine& line, const PreparedLine& prepared);
  // Fills the line-only parts for `line` into `*prepared`, its strings in `*request_key` and
  // `*canonical_model` (the views point into them). Thread-safe (static, no state).
  static void Prepare(const ParsedLine& line, std::string* request_key,
                      std::string* canonical_model, PreparedLine* prepared);
  // Observes settled requests (see the file comment) in the histogram. `now_ms` is wall time.
  // A request is quiet when both its newest copy's timestamp and the first Settle after its
  // last change are `settle_after` old; `by_event_time_only` drops the second condition, for
  // the end of the catch-up (every file was read to its end, so no copy is still on its way).
  Status Settle(int64_t now_ms, bool by_event_time_only = false);
  // The same, observing at most `max_observed` of the quiet requests (the requests whose session
  // moved on are all observed); *more: some quiet ones were left for a later call. The end of
  // the first catch-up settles in chunks this way, each written before the next is settled, so
  // that its records do not all wait in memory for one batch (docs/agent-design.md).
  Status Settle(int64_t now_ms, bool by_event_time_only, size_t max_observed, bool* more);

  // A41 at wall time `now_ms` (see SessionPhase): writes the changed open-session records (event
  // times later than `now_ms` count as `now_ms`: a clock ahead of ours), closes the idle
  // sessions (observing each duration at most once, removing its open record: both in the next
  // TakeChanges), and sets claude_active_sessions. kCatchUpEnd scans the store's open sessions.
  // Errors as AddLine's.
  Status UpdateSessions(int64_t now_ms, SessionPhase phase);
  // Loads every open session of the store into memory (once the first catch-up is over there
  // are few: those of the last 30 minutes), and creates both session series. Call once after
  // Open when the catch-up is over.
  Status RestoreOpenSessions();

  // Every record changed since the last call, to be written in one batch with the file offsets
  // and the outbox entries: (key, value), value nullopt = delete. The records stay cached (clean)
  // until TrimCache.
  void TakeChanges(std::vector<std::pair<std::string, std::optional<std::string>>>* out);
  // Evicts clean records beyond cache_records, least recently used first. Call only once
  // everything taken by TakeChanges is in the store: an evicted record is read back from it.
  void TrimCache();

  // --- The bulk first start (docs/agent-design.md "Bulk first start")
  //
  // Counts a whole history at once: `ledger` holds every line of it, deduplicated by the
  // scanner (built with LedgerOptions::spans), and the result is what the first catch-up over
  // the same lines, ended at `now_ms` (Engine::MarkCaughtUp before its samples), leaves: the
  // series, the admitted labels, the histogram's observations of the settled requests, the
  // sessions closed (their durations observed) or open, claude_active_sessions. The records are
  // not kept in memory: EmitHistory writes them from the ledger. Where this differs from the
  // catch-up is in docs/accounting.md A42 (a request's labels are its preferred copy's, as in
  // replay; no conflicts). Requires: opened over an empty store, nothing added before; `ledger`
  // outlives the EmitHistory calls. *fits is false (and nothing is counted) when a label cap
  // would refuse a value (A31): which values a cap admits depends on the order lines are read,
  // which the ledger does not have; the caller then counts line by line.
  Status CountHistory(const Ledger& ledger, int64_t now_ms, bool* fits);
  // After CountHistory: the records of one key prefix (kOpenSessionPrefix, kErrorPrefix,
  // kPendingPrefix, kLabelPrefix, kPromptPrefix, kRequestPrefix, kSessionPrefix, kToolPrefix),
  // in ascending key order. The series' records are series().TakeRecords()'s (after the first
  // samples are taken, so that they carry them).
  Status EmitHistory(
      char prefix, const std::function<Status(std::string_view key, std::string_view value)>& sink);
  // After CountHistory: EmitHistory's records of each of `prefixes` in turn (give them
  // ascending for one key order), encoded on a thread of their own into chunks (about
  // history_chunk_bytes of keys and values each, at most history_chunks alive: the memory does
  // not grow with the history) that the caller's thread takes through (*stream)->Drain, so that
  // the encoding (a request's price and contributions computed again, its record encoded)
  // overlaps the caller's own work. Until the stream is drained or destroyed, the caller may use
  // series() and EmitHistory but nothing that changes the labels (the encoding thread looks
  // them up); the stream must not outlive this object.
  class HistoryStream;
  Status StreamHistory(std::string prefixes, std::unique_ptr<HistoryStream>* stream);

  SeriesTable& series() { return series_; }
  const SeriesTable& series() const { return series_; }
  const LiveStats& stats() const { return stats_; }

  // Record key prefixes (docs/store-format.md).
  static constexpr char kRequestPrefix = 'r', kPendingPrefix = 'h', kSessionPrefix = 's',
                        kToolPrefix = 't', kPromptPrefix = 'p', kErrorPrefix = 'e',
                        kLabelPrefix = 'l', kOpenSessionPrefix = 'd';

 private:
  explicit LiveAccounting(const LiveOptions& options, RecordReader* reader);
  struct RequestRecord;
  struct Cached;
  using CacheEntry = std::pair<const std::string, Cached>;
  // The cache entry of `key`, read from the store on a miss (a request record decoded then,
  // once: see Cached::request), most recently used now.
  Status Load(const std::string& key, CacheEntry** entry);
  Status Lookup(const std::string& key, const std::string** value);
  // A request's record (r<dedup key>), decoded; nullptr when absent. Changed in place, then
  // MarkDirty: it is encoded only when its batch is built (TakeChanges).
  Status LookupRequest(const std::string& key, CacheEntry** entry, RequestRecord** record);
  void MarkDirty(CacheEntry* entry);
  // The entry of `key`, made (unread, linked newest) when absent; `inserted` says which.
  CacheEntry* Entry(const std::string& key, bool* inserted);
  // `absent_from_store`: the caller knows the key has no stored record (a pending entry of a
  // request seen for the first time), so erasing it before it is written writes nothing.
  void Put(const std::string& key, std::string value, bool absent_from_store = false);
  void Erase(const std::string& key);
  const std::string& LabelOf(CappedLabeler& labeler, char kind, std::string_view key);
  // `prepared`: Prepare's output for `line`, or null (computed here).
  Status AddUsage(const ParsedLine& line, const PreparedLine* prepared);
  Status AddRequestLine(const ParsedLine& line, const PreparedLine* prepared);
  struct OpenSession;
  // A41: a request line (`is_request`) or prompt line of `session` at `event_ms`; `known`: the
  // session has its A32 record (it was counted), nullopt when the caller did not look.
  Status TouchSession(std::string_view session, int64_t event_ms, bool is_request,
                      std::optional<bool> known);
  void CloseSession(const std::string& session, const OpenSession& s, int64_t now_ms);
  bool IsActive(const OpenSession& s, int64_t now_ms) const;

  LiveOptions options_;
  RecordReader* reader_;
  SeriesTable series_;
  LiveStats stats_;
  ProjectLabeler projects_;
  CappedLabeler models_, tools_;

  // The record cache: key -> value (nullopt: known absent). Dirty keys are written at the next
  // TakeChanges; clean ones are evicted oldest first beyond cache_records.
  struct Cached {
    std::optional<std::string> value;
    // A request record (r keys only) is held decoded here instead of in `value`: a copy of the
    // request or its settling changes it in place, and only TakeChanges encodes it.
    std::unique_ptr<RequestRecord> request;
    bool dirty = false;
    // Whether the store holds the key (as of the last write or read): -1 unknown. A dirty
    // deletion of a key known absent is not written (no tombstone).
    int8_t stored = -1;
    // The LRU list, intrusive (no node of its own per record): the neighbours, newer towards
    // lru_newest_.
    CacheEntry* newer = nullptr;
    CacheEntry* older = nullptr;
  };
  // The cache's and the pending map's nodes come from a pool of their own (this thread only):
  // records come and go by the thousand per step (misses, trims, settles), and glibc's malloc
  // and free for each node were a tenth of the counting thread. The pool keeps freed nodes for
  // reuse, so its size follows the most nodes held at once (both maps are bounded).
  std::pmr::unsynchronized_pool_resource node_pool_;
  std::pmr::unordered_map<std::string, Cached> cache_;  // on node_pool_ (the constructor)
  // Both ends of the LRU list through the entries (unordered_map nodes keep their address).
  CacheEntry* lru_newest_ = nullptr;
  CacheEntry* lru_oldest_ = nullptr;
  void LinkNewest(CacheEntry* entry);
  void Unlink(CacheEntry* entry);
  // The dirty entries (unordered_map nodes keep their address across rehashing).
  std::vector<std::pair<const std::string, Cached>*> dirty_;

  // Requests not yet observed in the histogram: key -> (session, newest copy's event time).
  struct Pending {
    std::string session;
    int64_t newest_event_ms = 0;
    int64_t seen_ms = 0;  // the first Settle's time after its last change; 0: not yet
    // Its record (h<dedup key>) is written by TakeChanges, not through the cache: changed
    // since, and held by the store.
    bool dirty = false;
    bool stored = false;
  };
  // By dedup key. The order of observation does not matter: a histogram counts sums, and its
  // sample time is the newest event time.
  using PendingMap = std::pmr::unordered_map<std::string, Pending>;
  PendingMap pending_;  // on node_pool_
  // Observes a pending request in the histogram and drops its pending entry.
  Status Observe(PendingMap::iterator pending);
  // Settled requests whose pending record the store holds: deleted at the next TakeChanges.
  std::vector<std::string> deleted_pending_;
  // The pending keys of each session (may still list keys settled by the quiet rule since;
  // rebuilt when those outnumber the pending ones).
  std::unordered_map<std::string, std::vector<std::string>> pending_by_session_;
  size_t pending_listed_ = 0;
  std::vector<std::string> settle_now_;  // keys whose session moved on
  std::string scratch_;
  // The labels of request records read back from the store (see RequestRecord): bounded by the
  // label caps. unordered_set nodes keep their address.
  struct LabelHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_set<std::string, LabelHash, std::equal_to<>> label_pool_;
  const std::string* InternLabel(std::string_view label);
  // The series a request's increments go to, by the labels it was counted with (labels are
  // pointers to strings that stay put: a labeler's or label_pool_'s), one per slot of
  // RequestContributions' increments (the histogram's last): Apply without building and hashing
  // each series key per increment. Bounded by the label caps (a label read back from the store
  // may add a second pointer to the same strings: at most twice as many entries).
  struct LabelPairHash {
    size_t operator()(const std::pair<const std::string*, const std::string*>& p) const {
      return std::hash<const void*>()(p.first) * 31 + std::hash<const void*>()(p.second);
    }
  };
  using RequestSeries = std::array<SeriesState*, 11>;
  std::unordered_map<std::pair<const std::string*, const std::string*>, RequestSeries,
                     LabelPairHash>
      request_series_;
  // Applies `inc` (of a request counted under `model` and `project`) through request_series_.
  void ApplyRequestIncrement(const std::string* model, const std::string* project, size_t slot,
                             const SeriesIncrement& inc, int64_t event_ms);
  // Record keys built per line, reused (no allocation per line): AddRequestLine's, Observe's,
  // and AddUsage's other keys.
  std::string request_key_, observe_key_, record_key_;

  // A41: the open sessions held in memory, by sessionId (the store holds all of them: d<id>).
  struct OpenSession {
    int64_t first_ms = 0;
    int64_t last_ms = 0;
    int64_t last_request_ms = kNever;  // kNever: no request line yet (prompts only)
    bool has_request = false;
    bool observed = false;  // its duration was observed: lines after that reopen, never re-observe
    bool changed = false;   // since its record was last written
    int64_t seen_ms = kNever;  // the first UpdateSessions' time after its last change
    std::string Encode() const;
    bool Decode(std::string_view in);
  };
  std::unordered_map<std::string, OpenSession> open_sessions_;
  bool session_series_ensured_ = false;

  // CountHistory's history, for EmitHistory.
  struct History;
  std::unique_ptr<History> history_;
  // A request's record as the catch-up leaves it: its merged copies, counted under `model_label`
  // and `project_label`, observed or not (the shared part of AddRequestLine's and the bulk
  // start's rule).
  // `model_label` and `project_label` are the labels of its model and cwd (CountHistory's).
  // `increments` (may be null): the request's contributions, as computed for r->emitted.
  void HistoryRequest(const Ledger& ledger, uint32_t index, bool observed,
                      const std::string& model_label, const std::string& project_label,
                      RequestRecord* r, CostBreakdown* cost,
                      IncrementList<kMaxRequestIncrements>* increments = nullptr);
};

// Records encoded on a thread of its own (LiveAccounting::StreamHistory) and handed over, in
// order, to the thread that drains them. Threads: Drain on one thread (the caller's); the
// destructor stops the encoding thread and joins it (records not yet handed over are dropped).
class LiveAccounting::HistoryStream {
 public:
  ~HistoryStream();
  // Puts every record through `sink`, in order: OK after the last; the sink's error as soon as
  // it fails (the encoding stops); the encoding's error if it failed. Call once.
  Status Drain(const std::function<Status(std::string_view key, std::string_view value)>& sink);

 private:
  friend class LiveAccounting;
  struct Shared;
  explicit HistoryStream(std::unique_ptr<Shared> shared);
  std::unique_ptr<Shared> shared_;
};

}  // namespace ccmon::agent
