// SeriesStore: where the gateway's received series live. The request handler
// (gateway/ingest/write_handler.h) sees only this interface; GatewayStore is the durable one, on
// a KvStore (RocksDB in production, docs/store-format.md "Gateway"), and handler tests use a fake.
//
// GatewayStore keeps a SeriesTable (series_table.h) in memory, loaded whole at Open. Apply
// returns OK only once the request's changes are in a synced WriteBatch, and only then are they
// visible; when it fails nothing of it is applied, in memory or (as far as the KvStore contract
// goes) on disk, so the sender's retry starts from the same state. A batch that failed but still
// reached the disk (a WAL record whose fsync failed) can only show after a restart, whole: its
// samples are then duplicates of the retry.
//
// Group commit: concurrent Applies queue; one of them (the leader) takes every queued request,
// plans them in arrival order against the table plus the requests planned before them
// (GroupPlan: the results are exactly those of applying them one after another), writes all
// their changes as ONE synced batch, commits it to the table, and hands each request its own
// result. A failed batch fails every request in it with the same error and changes nothing in
// memory (nor in the log bookkeeping below). So the sync is paid once per group rather than
// once per request; a request waits for the batch in flight and its own (and, when more than
// GatewayStoreOptions::max_group_series series are queued ahead of it, the groups between).
// The leader is the caller that queued into an empty store (no group being written): it writes
// groups, each request's completion called right after its group, until the queue is empty,
// then returns. Nobody else waits for anything: an ApplyAsync caller that is not the leader
// returns at once, and its completion runs on the leader's thread (see ApplyAsync). Apply is
// ApplyAsync waited for. With GatewayStoreOptions::committer_thread (the gateway's choice,
// measured: BENCHMARKS.md) the leader is always the store's own thread, and no caller ever writes a
// group: a caller that leads keeps writing while others queue, which holds whatever else it had to
// do.
//
// On disk (docs/store-format.md "Gateway"): a group's series changes are ONE L record, not a
// record per series, which is what makes a sample cheap; changed metadata is an M record. An L
// record (version 3) names a series by a compact log id: the first record since the last
// checkpoint that changes a series gives its id with its key, later ones the id alone (so a
// known series costs its id, a timestamp delta and a value: ~12 bytes, where a version 2 record
// carried the ~130-byte key every time and needed snappy). Ids start again at 0 after every
// checkpoint (the checkpointing group's own record defines its series afresh). When the L records
// since the last checkpoint pass GatewayStoreOptions' limits, the group's batch also checkpoints:
// the S record (state) of every series those records changed, as the table holds it before the
// group, and the deletion of those L records. So S records are never newer than a live L record,
// and Open loads the S records, then replays the L records in sequence order.
//
// Threading: thread-safe. Applies are serialized in effect (the order of a group is the order
// in which they queued); Read runs readers concurrently with each other, but not with a
// group's in-memory commit.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "gateway/store/series_table.h"
#include "remote_write/write_request.h"
#include "store/kv_store.h"

namespace ccmon::gateway {

struct SeriesStoreStats {
  uint64_t series = 0;
  uint64_t families = 0;  // with metadata
  uint64_t store_bytes = 0;
};

// Keeps state derived from the received samples (the gateway's computed series) durable with
// them: the thread that writes a group (see GatewayStore) calls PrepareGroup with the group's
// requests, in the order they take effect, and the table as it was before the group (calls
// never overlap), and the listener adds its own records to the group's WriteBatch. Exactly one
// of Committed (the batch is durable and the table changed) or Aborted (the write failed:
// nothing of it applies) follows each PrepareGroup. A group that changes no series and no
// metadata calls nothing. A listener must treat a later request's sample of a series as coming
// after an earlier request's (as a series repeated within one request).
class ApplyListener {
 public:
  virtual ~ApplyListener() = default;
  // By default: Prepare with the requests' series concatenated (one request: no copy).
  virtual void PrepareGroup(const std::vector<const std::vector<IncomingSeries>*>& requests,
                            const SeriesTable& before, WriteBatch* batch);
  virtual void Prepare(const std::vector<IncomingSeries>& series, const SeriesTable& before,
                       WriteBatch* batch) = 0;
  virtual void Committed() = 0;
  virtual void Aborted() = 0;
};

class SeriesStore {
 public:
  virtual ~SeriesStore() = default;
  // Applies one request's series and metadata (see SeriesTable for the rules). OK only once it
  // is durable; kIoError (or another error) when it could not be stored, kNotFound when a series'
  // entry is not of the table's generation (see Resolve), and then nothing of it is applied.
  // *result is set in both cases (what was or would have been done).
  virtual Status Apply(const std::vector<IncomingSeries>& series,
                       const std::vector<rw::Metadata>& metadata, ApplyResult* result) = 0;
  // Apply without waiting for it: `done` is called exactly once with what Apply would return
  // (and *result set as Apply sets it), once the request is durable or has failed — perhaps on
  // this thread before ApplyAsync returns, perhaps on another caller's thread (GatewayStore: the
  // thread writing the group). Completions are called in the order the requests take effect.
  // `series`, `metadata` and `result` are borrowed until `done` is called. `done` must not
  // throw, should be quick (it delays the next group), and must not call Apply (ApplyAsync is
  // fine: that request joins a later group). The default calls Apply, then `done`.
  using ApplyDone = std::function<void(Status status)>;
  virtual void ApplyAsync(const std::vector<IncomingSeries>& series,
                          const std::vector<rw::Metadata>& metadata, ApplyResult* result,
                          ApplyDone done) {
    Status s = Apply(series, metadata, result);
    done(std::move(s));
  }
  // Calls `fn` with the current table, under a read lock: `fn` must not call Apply.
  virtual void Read(const std::function<void(const SeriesTable& table)>& fn) const = 0;
  virtual SeriesStoreStats Stats() const = 0;

  // Series entries for callers that keep them (the write handler's series cache): sets
  // *generation to the table's generation and (*entries)[i] to the entry of keys[i] (null when
  // not held), read together. Such entries may be passed back in IncomingSeries::entry with that
  // generation; Apply refuses a request with an entry of another generation with kNotFound
  // (nothing of it applied: the caller retries with keys). False: the store hands out no
  // entries (the default; then callers never set IncomingSeries::entry).
  virtual bool Resolve(std::span<const std::string_view> keys,
                       std::vector<const SeriesEntry*>* entries, uint64_t* generation) const {
    (void)keys, (void)entries, (void)generation;
    return false;
  }
  // The generation Resolve would report now (0 when the store hands out no entries).
  virtual uint64_t generation() const { return 0; }
};

// Key prefixes in the gateway's store (docs/store-format.md "Gateway").
inline constexpr char kSeriesKeyPrefix = 'S';
inline constexpr char kMetadataKeyPrefix = 'M';
inline constexpr char kLogKeyPrefix = 'L';
inline constexpr std::string_view kFormatKey = "Vgateway";
// 2 added the L records, 3 their log ids (version 3 L records); a version 1 store (no L
// records) or 2 (version 1 and 2 L records, read as they are) is read, and marked 3 at Open.
inline constexpr std::string_view kFormatVersion = "3";
inline constexpr std::string_view kFormatVersion2 = "2";
inline constexpr std::string_view kFormatVersion1 = "1";

struct GatewayStoreOptions {
  // A group's batch also checkpoints once the L records since the last checkpoint hold this
  // many bytes (as stored), or are this many. A checkpoint writes the S record (~170 bytes,
  // a memtable insert of a long key, flushed and compacted later) of every series changed since
  // the last one, so the less often, the cheaper each sample; the bound is the replay at start
  // (32 MiB: ~2.7 million entries; a restart after SIGKILL under load took 0.3 s) and the
  // owner's memtable, which should hold twice this so that most L records are deleted before
  // their memtable is flushed (ccmon-gateway: 64 MiB; BENCHMARKS.md "Session 23": 8 MiB with
  // 16 MiB memtables cost 15-18 % more CPU per sample at the issue-8 load).
  size_t log_bytes = size_t(32) << 20;
  size_t log_records = 4096;
  // A leader takes queued requests, in order, while their series entries add up to at most
  // this (always at least one request): bounds a group's batch and L record (RocksDB refuses
  // values over 256 MiB) and the latency the first request of a long queue waits for.
  size_t max_group_series = 200'000;
  // Who writes the groups. false: the caller that queues into an idle store leads, writing
  // groups until the queue is empty (see GatewayStore). true: a thread of the store's own,
  // started at Open and joined by the destructor once the queue is empty, so that no caller
  // ever writes a group (callers only queue and, when it sleeps, wake it).
  bool committer_thread = false;
};

class GatewayStore final : public SeriesStore {
 public:
  // Loads every series and family from `kv` (borrowed; it must outlive the store). A store with
  // no keys is initialised (the format key, a synced write). Errors: kInvalidArgument for a
  // store that holds other keys but no gateway format key (an agent's state dir, say) or
  // another format version; kCorruption for a record that does not decode; the KvStore's
  // errors as they are.
  static Status Open(KvStore* kv, std::unique_ptr<GatewayStore>* out);
  static Status Open(KvStore* kv, GatewayStoreOptions options, std::unique_ptr<GatewayStore>* out);
  // With options.committer_thread: writes what is queued, then joins the thread.
  ~GatewayStore() override;

  Status Apply(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& metadata,
               ApplyResult* result) override;

  // Appends records of the caller's own (e.g. forward-queue entries) to the batch that carries
  // a request, given what the request does (`result` as Apply will report it). Called once per
  // Apply (whether or not the request changes anything), by whichever thread writes the batch:
  // the calls of all Applies are serialized and made in the order the requests take effect. The
  // records are durable exactly when the request is (a failed batch writes none of them). Must not
  // call the store, and must not write keys with the store's prefixes ('S', 'M', 'V').
  using AppendRecords = std::function<void(const ApplyResult& result, WriteBatch* batch)>;
  // Apply, with `append` (may be empty) adding records to the request's batch.
  Status Apply(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& metadata,
               const AppendRecords& append, ApplyResult* result);
  void ApplyAsync(const std::vector<IncomingSeries>& series,
                  const std::vector<rw::Metadata>& metadata, ApplyResult* result,
                  ApplyDone done) override;
  // ApplyAsync with `append` (copied; may be empty), as in Apply.
  void ApplyAsync(const std::vector<IncomingSeries>& series,
                  const std::vector<rw::Metadata>& metadata, AppendRecords append,
                  ApplyResult* result, ApplyDone done);
  void Read(const std::function<void(const SeriesTable& table)>& fn) const override;
  SeriesStoreStats Stats() const override;
  bool Resolve(std::span<const std::string_view> keys, std::vector<const SeriesEntry*>* entries,
               uint64_t* generation) const override;
  // The table is created at Open and never replaced: constant for the store's life.
  uint64_t generation() const override { return generation_; }
  // Sets the listener every later Apply calls (borrowed; nullptr: none), replacing any added
  // before. Call before the first Apply (not synchronized with it).
  void set_apply_listener(ApplyListener* listener) {
    listeners_.clear();
    if (listener != nullptr) listeners_.push_back(listener);
  }
  // Adds one more (borrowed): listeners are called in the order they were set or added, each
  // adding its records to the same batch (the computed series, the forward queues). Before the
  // first Apply.
  void add_apply_listener(ApplyListener* listener) { listeners_.push_back(listener); }

  // Applies queued behind the batch being written (for tests and self-metrics).
  size_t queued() const;
  // L records not yet checkpointed (for tests).
  uint64_t log_records() const;

  // Record codecs (exposed for tests and tools).
  static std::string EncodeState(const SeriesState& state);
  static Status DecodeState(std::string_view value, SeriesState* state);
  static std::string EncodeMetadata(const rw::Metadata& m);
  static Status DecodeMetadata(std::string_view family, std::string_view value, rw::Metadata* m);
  // An L record: its key, and its value. Version 3 (what EncodeLog writes): per series of
  // `changes`, its log id `ids[i].id` and new state, and its key when `ids[i].defines`.
  static std::string LogKey(uint64_t sequence);
  struct LogId {
    uint32_t id = 0;
    bool defines = false;  // the record carries the key (the id's first use since a checkpoint)
  };
  static void EncodeLog(const PlannedChanges& changes, const std::vector<LogId>& ids,
                        std::string* value);
  // The same record written at the start of *buffer, whose size it only ever grows (so a
  // buffer reused from group to group is not zeroed again): returns the record's length.
  static size_t EncodeLogInto(const PlannedChanges& changes, const std::vector<LogId>& ids,
                              std::string* buffer);
  // Every entry of an L record of any version, in order: `fn(id, key, state)` with the key
  // when the entry carries one (always in versions 1 and 2, whose entries have no id:
  // kNoLogId), else an empty key. kCorruption for a malformed record, or what `fn` returns.
  static constexpr uint32_t kNoLogId = UINT32_MAX;
  using LogEntryFn = std::function<Status(uint32_t id, std::string_view key, SeriesState state)>;
  static Status DecodeLog(std::string_view value, const LogEntryFn& fn);

 private:
  // One Apply waiting for (or being written by) a leader; owned by the queue, then the leader.
  struct PendingApply {
    const std::vector<IncomingSeries>* series;
    const std::vector<rw::Metadata>* metadata;
    AppendRecords append;  // empty: none
    ApplyResult* result;
    ApplyDone done;
    Status status;
  };

  GatewayStore(KvStore* kv, GatewayStoreOptions options) : kv_(kv), options_(options) {}
  // The leader's work: plans `group` in order, writes it as one synced batch, commits it to the
  // table; sets each one's result and status. Only the leader calls it, so it alone changes
  // table_.
  void WriteGroup(const std::vector<PendingApply*>& group);
  // Writes groups of the queued requests, calling their completions, until the queue is empty.
  // Called with queue_mu_ held by `lock`, which it releases while writing.
  void WriteQueued(std::unique_lock<std::mutex>& lock);
  void CommitterLoop();

  KvStore* kv_;
  const GatewayStoreOptions options_;
  std::vector<ApplyListener*> listeners_;  // called by the leader only, in this order
  // The L records [first_log_, next_log_) are on disk, log_bytes_ their size; dirty_ the series
  // they changed, whose S records are older, each with its log id (kNoLogId: changed only by
  // version 1 or 2 records, so its next record defines it); next_log_id_ the next id to give.
  // Leader only (and Open).
  uint64_t first_log_ = 0, next_log_ = 0;
  size_t log_bytes_ = 0;
  EntryIdMap dirty_;
  uint32_t next_log_id_ = 0;
  // Reused by the leader from group to group.
  std::vector<LogId> log_ids_;
  std::string log_value_;
  std::atomic<uint64_t> log_records_{0};
  mutable std::mutex queue_mu_;
  std::vector<PendingApply*> queue_;  // guarded by queue_mu_; arrival order; owned
  bool leader_active_ = false;        // guarded by queue_mu_; queue_ not empty => true
  // options_.committer_thread: the thread, and its wake-up (guarded by queue_mu_).
  std::thread committer_;
  std::condition_variable committer_cv_;
  bool committer_waiting_ = false;
  bool stopping_ = false;
  mutable std::shared_mutex mu_;  // guards table_ (written only by the leader)
  SeriesTable table_;
  uint64_t generation_ = 0;  // table_'s, set at Open
  // The leader's plan of the group it writes, Reset for each (its buffers kept from group to
  // group); holds the last group's changes until the next.
  GroupPlan plan_{&table_};
};

}  // namespace ccmon::gateway
