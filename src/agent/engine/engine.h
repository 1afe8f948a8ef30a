// Engine: the agent's counting and its durable state, one commit at a time
// (docs/agent-design.md "Commits").
//
// The caller reads complete lines from transcript files and hands each parsed line to AddLine();
// then Commit() writes, in ONE atomic store batch: the records the lines changed (requests,
// sessions, tool calls, prompts, errors, labels, series values), the caller's file cursors
// (offsets advance only together with what their lines produced), and the outbox entries
// carrying the new samples. A crash at any point leaves the store at the previous commit, and the
// lines after it are read again: nothing is lost or counted twice.
//
// First start over an existing history: until MarkCaughtUp(), commits queue no samples (the
// counters are persisted, so a crash during the catch-up resumes it); MarkCaughtUp() then queues
// every series at its historical total, so each series' first sample is its total and
// increase() shows no spike (issue 7 §4). The session series follow the same principle (A41):
// the sessions of the history are all open until MarkCaughtUp(), which observes every one idle
// for 30 minutes at once, in the batch that queues the first samples.
//
// Every commit also recomputes claude_active_sessions and closes the sessions that went idle, so
// the caller's commits at the resend interval (with or without new lines) make the gauge fall
// to 0 by itself; no timer of its own.
//
// After a failed Commit the in-memory state is ahead of the store: the Engine must be destroyed
// and reopened (Open reads everything back from the store), and the caller must re-read from
// its committed cursors. Not thread-safe: one thread (the agent's ingest loop) owns it.
//
// With EngineOptions::write_thread, the commits of the first catch-up are pipelined: Commit
// hands its batch to a thread of the engine's own and returns while it is written, so that the
// caller counts the next step meanwhile (docs/agent-design.md "The commit protocol"). Such a
// commit's error is returned by the next Commit, MarkCaughtUp or ScanRecords (which first wait
// for the batch in flight), with the same meaning as a failed Commit: destroy and reopen. Those
// commits queue no samples, so no outbox entry waits on them; records taken for a batch in
// flight stay cached until it is written (a record is never read back from the store before
// its newest value is there). The destructor waits for the batch in flight.
//
// Reads of records that cannot exist are answered from memory when the store held no record
// when the engine was opened (a first start): see agent/engine/written_keys.h.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/engine/live_accounting.h"
#include "agent/engine/series_table.h"
#include "base/status.h"
#include "store/kv_store.h"
#include "store/outbox.h"

namespace ccmon::agent {

struct EngineOptions {
  LiveOptions live;
  uint32_t shards = 1;                  // must equal the outbox's shard count
  size_t max_samples_per_send = 2000;   // samples per outbox entry at most (and 500 at most)
  int64_t max_sample_age_ms = 3600000;  // older changes are stamped at commit time
  int64_t resend_interval_ms = 15000;   // unchanged series are re-sent this often
  bool sync = true;  // fsync each commit after the first catch-up (a power loss loses nothing)
  int64_t samples_after_ms = kNever;  // SampleOptions::after_ms (a --backfill history's end)
  // Pipelines the first catch-up's commits (see the file comment); after it, every commit is
  // written by the caller's thread as before. The agent sets it.
  bool write_thread = false;
  // MarkCaughtUp settles the history's quiet requests in chunks of this many, each written
  // before the next is settled (bounds the memory of the catch-up's end; see MarkCaughtUp).
  size_t catch_up_settle_chunk = 256;
  // The state is mirrored to a ccmon-gateway (docs/agent-design.md "Resume"): every commit
  // also advances the state sequence (kStateSeqKey) in its batch, and, while
  // set_stage_state_deltas(true) and after the first catch-up, stages its batch minus the
  // outbox's ops as a state delta (kStateDeltaPrefix + sequence). Off: neither (no cost).
  bool state_sequence = false;
};

struct EngineStats {
  uint64_t commits = 0;
  uint64_t lines = 0;                // lines given to AddLine
  uint64_t samples_queued = 0;       // remote-write samples put in the outbox
  uint64_t samples_stamped_now = 0;  // older than max_sample_age: stamped at commit time
  uint64_t samples_resent = 0;
  uint64_t reads_skipped = 0;  // record reads answered from memory (WrittenKeys)
};

// A record the caller commits with the engine's (a file cursor): value nullopt deletes it.
using Record = std::pair<std::string, std::optional<std::string>>;

class Engine {
 public:
  // `store` and `outbox` are borrowed and must outlive the engine.
  static Status Open(const EngineOptions& options, KvStore* store, Outbox* outbox,
                     std::unique_ptr<Engine>* out);
  ~Engine();

  // The bulk first start (docs/agent-design.md "Bulk first start"): counts the whole history
  // `ledger` holds (ScanFiles with spans, LedgerOptions) and writes the state the first
  // catch-up over the same lines would leave once caught up at `now_ms` — every record,
  // `files` (the caller's file cursors: f<path> keys), the caught-up mark and the outbox's first
  // samples (every series at its total) — as ONE table (KvStore::IngestSorted): a crash before
  // it lands leaves the store empty, after it the state is complete. The caller then opens an
  // Engine as after any restart and goes on from the cursors. Requires: `store` holds no agent
  // record (a first start; the outbox is empty). *done false, nothing written, OK: the
  // history's labels do not fit their caps (LiveAccounting::CountHistory); count it line by
  // line instead. An error: nothing was added (the outbox's staged entries are abandoned).
  static Status BulkFirstStart(const EngineOptions& options, KvStore* store, Outbox* outbox,
                               const Ledger& ledger, std::vector<Record> files, int64_t now_ms,
                               bool* done, LiveStats* live_stats);

  // See LiveAccounting::AddLine. An error means the engine must be reopened.
  Status AddLine(const ParsedLine& line);
  // The same with LiveAccounting::Prepare's output for `line` (computed on another thread).
  Status AddLine(const ParsedLine& line, const PreparedLine& prepared);
  // Settles what can be settled and writes one batch (see the file comment) at wall time
  // `now_ms`: `extra` (file cursors) + changed records + outbox entries of the new samples
  // (after MarkCaughtUp) + unchanged series due for a resend. Nothing to write: no write.
  Status Commit(const std::vector<Record>& extra, int64_t now_ms);
  // Ends the first catch-up: from now on commits queue samples, starting with every series.
  // Persisted. Idempotent. First settles the history's quiet requests in chunks
  // (EngineOptions::catch_up_settle_chunk), each written as one more catch-up commit; an error
  // there or in the final batch means the same as a failed Commit (reopen: the catch-up is
  // then ended again, the requests already settled stay settled once).
  Status MarkCaughtUp(int64_t now_ms);
  bool caught_up() const { return caught_up_; }
  // See EngineOptions::state_sequence: whether commits stage state deltas (the target is known
  // to be a ccmon-gateway). Commits before the end of the first catch-up never do.
  void set_stage_state_deltas(bool on) { stage_state_deltas_ = on; }
  // The sequence of the last commit (EngineOptions::state_sequence; 0 before any).
  uint64_t state_seq() const { return state_seq_; }

  const EngineStats& stats() const { return stats_; }
  const LiveStats& live_stats() const { return live_->stats(); }
  // The current series (tests, status).
  const SeriesTable& series() const { return live_->series(); }
  // The claude_* families as text (0.0.4, or OpenMetrics without "# EOF"), for pull mode: replay's
  // families, then (with `agent_families`) the agent's session series (A41).
  std::string Exposition(bool openmetrics, bool agent_families = true) const {
    return live_->series().Exposition(openmetrics, agent_families);
  }
  // Moves whenever Exposition's text would (SeriesTable::version); an engine's own count.
  uint64_t exposition_version() const { return live_->series().version(); }

  // Reads the caller's records (file cursors) by prefix (after the batch in flight is written:
  // its error, if it failed).
  Status ScanRecords(std::string_view prefix,
                     const std::function<Status(std::string_view, std::string_view)>& f);

  static constexpr char kMetaPrefix = 'm';
  // Present once the first catch-up ended (MarkCaughtUp): samples have been queued since.
  static constexpr std::string_view kCaughtUpKey = "mcaught_up";
  static constexpr char kFilePrefix = 'f';  // the caller's file cursors
  // The state sequence: the number of the last commit since the state was created (decimal).
  static constexpr std::string_view kStateSeqKey = "mstate_seq";
  // A staged state delta: 'u' + state sequence (8 bytes big-endian) -> the commit's batch
  // without the outbox's ops, as state records without their version byte
  // (state_mirror/state_records.h: AppendPutRecord / AppendDeleteRecord).
  static constexpr char kStateDeltaPrefix = 'u';
  static std::string StateDeltaKey(uint64_t seq);

 private:
  Engine(const EngineOptions& options, KvStore* store, Outbox* outbox);
  Status Write(const std::vector<Record>& extra, int64_t now_ms, bool all_series);
  // Before the end of the catch-up: settles up to options_.catch_up_settle_chunk quiet requests
  // (LiveAccounting::Settle by event time) and, when *more are left, writes their changes as a
  // catch-up commit (no samples, not synced, through the writer thread when there is one).
  Status WriteSettledChunk(int64_t now_ms, bool* more);
  // Moves LiveAccounting::TakeChanges into `batch`, with room for `more_ops` operations after.
  void AddChanges(WriteBatch* batch, size_t more_ops);
  // Writes `batch` (nothing when empty) as Write's last part: the state sequence, the written
  // keys, the write (pipelined during the catch-up), the stats.
  Status Submit(WriteBatch batch, uint64_t queued, const SampleStats& sample_stats);
  // Waits for the batch in flight (write_thread), then trims the record cache; its error.
  Status FinishWrite();

  class StoreReader;
  class Writer;
  EngineOptions options_;
  KvStore* store_;
  Outbox* outbox_;
  std::unique_ptr<StoreReader> reader_;
  std::unique_ptr<LiveAccounting> live_;
  bool caught_up_ = false;
  bool stage_state_deltas_ = false;
  uint64_t state_seq_ = 0;
  int64_t last_resend_check_ms_ = 0;
  EngineStats stats_;
  bool in_flight_ = false;          // a batch handed to writer_ whose result was not taken
  std::unique_ptr<Writer> writer_;  // last: joined first (it writes into store_)
};

}  // namespace ccmon::agent
