#include "store/rocks_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/env.h"

namespace ccmon {
namespace {

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// A RocksDB status as ours, its message prefixed with the directory (and `what` failed).
Status FromRocks(const rocksdb::Status& s, const std::string& dir, std::string_view what = {}) {
  if (s.ok()) return Status::Ok();
  std::string where = "state dir " + dir + ": ";
  if (!what.empty()) where += std::string(what) + ": ";
  if (s.IsNotFound()) return Status::NotFound(where + s.ToString());
  if (s.IsCorruption()) {
    return Status::Corruption("state dir " + dir + " is corrupted: " +
                              (what.empty() ? "" : std::string(what) + ": ") + s.ToString());
  }
  if (s.IsNoSpace()) return Status::IoError(where + "disk full: " + s.ToString());
  if (s.IsInvalidArgument()) return Status::InvalidArgument(where + s.ToString());
  return Status::IoError(where + s.ToString());
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Names RocksDB itself creates in a database directory, so that a directory holding only these
// (a database whose creation was interrupted before CURRENT) is still taken as ours.
bool IsRocksFileName(std::string_view name) {
  return name == "CURRENT" || name == "IDENTITY" || name == "LOCK" || name == "LOG" ||
         StartsWith(name, "LOG.old.") || StartsWith(name, "MANIFEST-") ||
         StartsWith(name, "OPTIONS-") || EndsWith(name, ".log") || EndsWith(name, ".sst") ||
         EndsWith(name, ".blob") || EndsWith(name, ".dbtmp");
}

// Refuses a directory that holds something else and no database (e.g. --state-dir ~).
Status CheckDirIsOurs(Env* env, const std::string& dir) {
  std::vector<DirEntry> entries;
  if (Status s = env->GetChildren(dir, &entries); !s.ok()) {
    return Status::IoError("state dir " + dir + " cannot be listed: " + s.message());
  }
  bool has_current = false;
  std::string foreign;
  for (const DirEntry& e : entries) {
    if (e.name == "CURRENT") has_current = true;
    if (!IsRocksFileName(e.name) && foreign.empty()) foreign = e.name;
  }
  if (!has_current && !foreign.empty()) {
    return Status::InvalidArgument("state dir " + dir +
                                   " is not a RocksDB database: it holds other files (\"" +
                                   foreign + "\") and no CURRENT file; choose an empty directory");
  }
  return Status::Ok();
}

class RocksIterator final : public KvIterator {
 public:
  // `live` counts the store's open iterators (Recover() reopens only when there are none).
  RocksIterator(std::unique_ptr<rocksdb::Iterator> it, const std::string* dir,
                std::atomic<int>* live)
      : it_(std::move(it)), dir_(dir), live_(live) {
    live_->fetch_add(1, std::memory_order_relaxed);
  }
  ~RocksIterator() override {
    it_.reset();
    live_->fetch_sub(1, std::memory_order_release);
  }

  void SeekToFirst() override {
    if (it_) it_->SeekToFirst();
  }
  void Seek(std::string_view target) override {
    if (it_) it_->Seek(ToSlice(target));
  }
  bool Valid() const override { return it_ && it_->Valid(); }
  void Next() override { it_->Next(); }
  std::string_view key() const override { return it_->key().ToStringView(); }
  std::string_view value() const override { return it_->value().ToStringView(); }
  Status status() const override {
    if (!it_) return Status::IoError("state dir " + *dir_ + ": iterator: the store is closed");
    return FromRocks(it_->status(), *dir_, "iterator");
  }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;  // null: the store was closed (a failed reopen)
  const std::string* dir_;                 // the store's; the iterator must not outlive it
  std::atomic<int>* live_;
};

// Where IngestSorted writes its table before linking it in.
std::string BulkTablePath(const std::string& dir) { return dir + "/ccmon-bulk-table.sst.tmp"; }

class RocksStore final : public KvStore {
 public:
  RocksStore(std::string dir, rocksdb::Options options, bool recover_by_reopening,
             std::unique_ptr<rocksdb::DB> db)
      : dir_(std::move(dir)),
        options_(std::move(options)),
        recover_by_reopening_(recover_by_reopening),
        db_(std::move(db)) {}
  ~RocksStore() override {
    // Errors here have no one to go to; the WAL holds every acknowledged write.
    if (db_) db_->Close().PermitUncheckedError();
  }

  Status Get(std::string_view key, std::string* value) override {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!db_) return Closed("read");
    std::string got;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ToSlice(key), &got);
    if (s.IsNotFound()) return Status::NotFound("key not found");
    if (!s.ok()) return FromRocks(s, dir_, "read");
    *value = std::move(got);
    return Status::Ok();
  }

  Status Write(const WriteBatch& batch, bool sync) override {
    if (Status s = batch.Validate(); !s.ok()) return s;
    if (batch.empty()) return Status::Ok();
    // An earlier write failed, so RocksDB is in its background-error (read-only) state.
    if (needs_recovery_.load(std::memory_order_acquire)) {
      if (recover_by_reopening_) {
        return Status::IoError("state dir " + dir_ +
                               ": write refused: recovering from an earlier write error (the "
                               "owner's Recover() reopens the store)");
      }
      // Reopen here, unless that brings back a write reported failed (rocks_store.h).
      if (Status r = Reopen(/*owner_reloads=*/false); !r.ok()) return r;
    }
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!db_) return Closed("write");
    rocksdb::WriteBatch wb(batch.ApproximateBytes() + 16 * batch.count() + 16);
    // In key order (stably: the operations on one key keep theirs, so the batch means the
    // same): the memtable's skiplist then finds each insert's place from the previous one's
    // instead of from its top (a third of the write's CPU in random order; BENCHMARKS.md
    // "Agent").
    std::vector<const WriteBatch::Op*> ordered;
    ordered.reserve(batch.count());
    for (const WriteBatch::Op& op : batch.ops()) ordered.push_back(&op);
    std::stable_sort(
        ordered.begin(), ordered.end(),
        [](const WriteBatch::Op* a, const WriteBatch::Op* b) { return a->key < b->key; });
    for (const WriteBatch::Op* opp : ordered) {
      const WriteBatch::Op& op = *opp;
      rocksdb::Status s = op.type == WriteBatch::OpType::kPut
                              ? wb.Put(ToSlice(op.key), ToSlice(op.value))
                              : wb.Delete(ToSlice(op.key));
      if (!s.ok()) return FromRocks(s, dir_, "write");
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    rocksdb::Status s = db_->Write(wo, &wb);
    if (!s.ok()) {
      needs_recovery_.store(true, std::memory_order_release);
      return FromRocks(s, dir_, "write");
    }
    return Status::Ok();
  }

  Status IngestSorted(const std::function<Status(SortedTableSink*)>& fill, bool sync) override {
    (void)sync;  // an ingested table is always durable: RocksDB syncs it and its MANIFEST entry
    if (needs_recovery_.load(std::memory_order_acquire)) {
      return Status::IoError("state dir " + dir_ +
                             ": write refused: recovering from an earlier write error");
    }
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!db_) return Closed("write");
    // Written beside the database under a name RocksDB ignores (a crash leaves it there: the
    // next ingest, or the next open, removes it), then linked in whole.
    const std::string path = BulkTablePath(dir_);
    options_.env->DeleteFile(path).PermitUncheckedError();
    class Sink final : public SortedTableSink {
     public:
      explicit Sink(rocksdb::SstFileWriter* w) : w_(w) {}
      Status Put(std::string_view key, std::string_view value) override {
        if (Status s = CheckSortedPut(&last_, count_ == 0, key, value); !s.ok()) return s;
        if (rocksdb::Status s = w_->Put(ToSlice(key), ToSlice(value)); !s.ok())
          return Status::IoError("sorted table: " + s.ToString());
        last_.assign(key);
        ++count_;
        return Status::Ok();
      }
      uint64_t count_ = 0;

     private:
      rocksdb::SstFileWriter* w_;
      std::string last_;
    };
    // Uncompressed: the table is written on the first start's critical path, where snappy over
    // its ~10 MB (corpus-2000) cost ~9 ms of one core, for ~5 MB of disk (BENCHMARKS.md
    // "Session 21"). Each block records its own compression, so reads and later compactions
    // (which compress as the options say) are unaffected.
    rocksdb::Options table_options = options_;
    table_options.compression = rocksdb::kNoCompression;
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(table_options), table_options);
    rocksdb::Status rs = writer.Open(path);
    if (!rs.ok()) return FromRocks(rs, dir_, "bulk table");
    Sink sink(&writer);
    Status s = fill(&sink);
    if (s.ok() && sink.count_ == 0) {  // nothing to add (a table cannot be empty)
      writer.Finish().PermitUncheckedError();
      options_.env->DeleteFile(path).PermitUncheckedError();
      return Status::Ok();
    }
    if (s.ok()) {
      rs = writer.Finish();
      if (!rs.ok()) s = FromRocks(rs, dir_, "bulk table");
    }
    if (s.ok()) {
      rocksdb::IngestExternalFileOptions io;
      io.move_files = true;  // linked, not copied
      rs = db_->IngestExternalFile({path}, io);
      if (!rs.ok()) s = FromRocks(rs, dir_, "bulk table ingest");
    }
    options_.env->DeleteFile(path).PermitUncheckedError();  // gone already once moved in
    return s;
  }

  std::unique_ptr<KvIterator> NewIterator() override {
    std::shared_lock<std::shared_mutex> lock(mu_);
    std::unique_ptr<rocksdb::Iterator> it;
    if (db_) it.reset(db_->NewIterator(rocksdb::ReadOptions()));
    return std::make_unique<RocksIterator>(std::move(it), &dir_, &live_iterators_);
  }

  uint64_t ApproximateBytes() override {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!db_) return 0;
    uint64_t sst = 0;
    db_->GetIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &sst);
    uint64_t wal = 0;
    rocksdb::VectorLogPtr logs;
    if (db_->GetSortedWalFiles(logs).ok()) {
      for (const auto& log : logs) wal += log->SizeFileBytes();
    }
    return sst + wal;
  }

  Status Recover() override {
    if (!recover_by_reopening_ || !needs_recovery_.load(std::memory_order_acquire)) {
      return Status::Ok();
    }
    return Reopen(/*owner_reloads=*/true);
  }

 private:
  // Closes and reopens the database instead of DB::Resume(), which RocksDB 7.8 can leave waiting
  // forever for a flush it will never run (docs/store-format.md "Store"): a flush scheduled
  // before the error but started after it returns at once and stays in the flush queue, which
  // then no longer schedules that column family. Closing drops the queue; the reopen replays the
  // WAL, flushes it, and starts a new log. Without `owner_reloads`, a reopen whose WAL replay
  // brought back a write reported failed (the last sequence number grew: RocksDB publishes a
  // write's sequence only when it succeeded) leaves the store refusing writes for good.
  Status Reopen(bool owner_reloads) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (!needs_recovery_.load(std::memory_order_acquire)) return Status::Ok();
    if (failed_write_came_back_) return CameBack();
    if (int n = live_iterators_.load(std::memory_order_acquire); n > 0) {
      return Status::IoError("state dir " + dir_ + ": cannot recover yet: " + std::to_string(n) +
                             " iterator(s) of the store still open");
    }
    // The reopen writes a table of what the WAL holds, a MANIFEST and a new log: on a disk that
    // is still full it would fail and leave the store closed, where it can still be read now.
    // (A reopen may still fail for want of space above this: the store is then closed until the
    // next attempt.)
    const uint64_t needed = uint64_t(1) << 20;
    uint64_t free_bytes = 0;
    if (options_.env->GetFreeSpace(dir_, &free_bytes).ok() && free_bytes < needed) {
      return Status::IoError("state dir " + dir_ + ": disk full: " + std::to_string(free_bytes) +
                             " bytes free, recovery waits for " + std::to_string(needed));
    }
    if (db_) {
      last_sequence_ = db_->GetLatestSequenceNumber();
      db_->Close().PermitUncheckedError();  // the error that brought us here, mostly
      db_.reset();
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options_, dir_, &raw);
    if (!s.ok()) {
      delete raw;
      return FromRocks(s, dir_, "reopen (recovering from an earlier write error)");
    }
    db_.reset(raw);
    if (!owner_reloads && db_->GetLatestSequenceNumber() != last_sequence_) {
      failed_write_came_back_ = true;
      return CameBack();
    }
    needs_recovery_.store(false, std::memory_order_release);
    return Status::Ok();
  }
  Status CameBack() const {
    return Status::IoError("state dir " + dir_ +
                           ": write refused: a write reported failed came back when the store "
                           "was reopened after a write error; restart to reload the state");
  }

  Status Closed(std::string_view what) const {
    return Status::IoError("state dir " + dir_ + ": " + std::string(what) +
                           ": the store is closed (its reopen after a write error failed; the "
                           "next Recover() tries again)");
  }

  const std::string dir_;
  const rocksdb::Options options_;  // to reopen with
  const bool recover_by_reopening_;
  // Shared by every call; exclusive while Recover() closes and reopens db_.
  mutable std::shared_mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;  // null: closed after a failed reopen
  std::atomic<bool> needs_recovery_{false};
  uint64_t last_sequence_ = 0;           // db_'s, when it was closed (under mu_)
  bool failed_write_came_back_ = false;  // (under mu_) writes refused until a restart
  std::atomic<int> live_iterators_{0};
};

// RocksDB's diagnostics to the caller's function instead of a LOG file (see rocks_store.h).
class CallbackLogger final : public rocksdb::Logger {
 public:
  explicit CallbackLogger(std::function<void(std::string_view)> fn)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), fn_(std::move(fn)) {}

  // Messages without a level are INFO (RocksDB's convention), below what is passed on. The base
  // class's version asserts, and Debian's RocksDB keeps assertions on.
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (!fn_ || level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof(buf), format, ap);
    if (n < 0) return;
    std::string_view msg(buf, std::min(size_t(n), sizeof(buf) - 1));
    while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    // Every open of a table added by IngestSorted (SstFileWriter writes no unique ID) warns that
    // it could not be verified against the MANIFEST: routine here, not the owner's concern.
    if (msg.find("SST file opened without unique ID to verify") != std::string_view::npos) return;
    fn_(msg);
  }

 private:
  const std::function<void(std::string_view)> fn_;
};

// Turns off RocksDB's own recovery from a full disk (its SstFileManager polls the free space
// from a thread of its own, and meanwhile refuses DB::Resume() as Busy): RocksStore::Write resumes
// instead, on the caller's next write, so that recovery happens when and where the caller expects.
class NoAutoRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

rocksdb::Options MakeOptions(const RocksStoreOptions& options) {
  rocksdb::Options o;
  if (options.test_env != nullptr) o.env = options.test_env;
  o.create_if_missing = true;
  o.paranoid_checks = true;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.write_buffer_size = options.write_buffer_bytes;
  o.max_write_buffer_number = 2;
  o.max_open_files = options.max_open_files;
  o.max_background_jobs = 2;
  o.level_compaction_dynamic_level_bytes = true;
  o.max_manifest_file_size = size_t(16) << 20;
  if (!options.compress_flushes) {
    o.compression = rocksdb::kNoCompression;
    o.bottommost_compression = rocksdb::kSnappyCompression;
  }
  // A bloom filter over the memtable's whole keys: most of the agent's reads are of keys that
  // do not exist yet (a new request's dedup key), and without it each such Get walks the
  // memtable's skiplist (measured: a third of the first start's store reads).
  o.memtable_prefix_bloom_size_ratio = 0.05;
  o.memtable_whole_key_filtering = true;
  // RocksDB buffers up to 1 MiB per file it writes (WAL, flush, compaction output); the
  // agent's writes are small batches, and 3.7 MiB of its first start's peak heap was these
  // buffers (heaptrack, BENCHMARKS.md "Agent").
  o.writable_file_max_buffer_size = size_t(128) << 10;
  o.max_bgerror_resume_count = 0;  // no automatic resume of other I/O errors either
  o.listeners.push_back(std::make_shared<NoAutoRecovery>());
  o.info_log = std::make_shared<CallbackLogger>(options.log);
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  t.cache_index_and_filter_blocks = true;  // index and filters count against the cache
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // Get of absent dedup keys
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

}  // namespace

Status OpenRocksStore(const std::string& dir, const RocksStoreOptions& options,
                      std::unique_ptr<KvStore>* out) {
  Env* env = Env::Default();
  if (dir.empty()) return Status::InvalidArgument("state dir: empty path");
  if (Status s = env->CreateDirs(dir); !s.ok()) {
    return Status::IoError("state dir " + dir + " cannot be created: " + s.message());
  }
  if (Status s = CheckDirIsOurs(env, dir); !s.ok()) return s;

  rocksdb::Options rocks_options = MakeOptions(options);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocks_options, dir, &raw);
  if (!s.ok()) {
    delete raw;
    std::string msg = s.ToString();
    if (s.IsIOError() && msg.find("/LOCK") != std::string::npos) {
      if (msg.find("lock hold by current process") != std::string::npos) {
        return Status::IoError("state dir " + dir +
                               " is in use by another store in this process (RocksDB LOCK)");
      }
      return Status::IoError("state dir " + dir +
                             " is in use by another process (RocksDB LOCK): " + msg);
    }
    if (s.IsCorruption()) {
      return Status::Corruption("state dir " + dir + " is corrupted: " + msg +
                                " (move it aside to start afresh)");
    }
    return FromRocks(s, dir, "open");
  }
  // A bulk table a crash left half written (IngestSorted): never part of the database.
  rocks_options.env->DeleteFile(BulkTablePath(dir)).PermitUncheckedError();
  *out = std::make_unique<RocksStore>(dir, std::move(rocks_options), options.recover_by_reopening,
                                      std::unique_ptr<rocksdb::DB>(raw));
  return Status::Ok();
}

}  // namespace ccmon
