// KvStore: the small ordered key-value interface the agent (and later the gateway) keeps its state
// behind, so that RocksDB stays out of every other header and tests can run on an in-memory store
// (NewMemStore, store/mem_store.h) or a fault-injecting wrapper (tests/testing/fault_store.h).
// Implementations: OpenRocksStore (store/rocks_store.h) and NewMemStore.
//
// The contract every implementation keeps (tests/store/kv_store_test.cc runs it over both):
//   - Keys and values are byte strings: any bytes, NUL included, the empty string included. Keys
//     are ordered bytewise (unsigned memcmp, a shorter key before its extensions).
//   - Write() applies a WriteBatch atomically: afterwards every operation of the batch is visible,
//     or none is. Operations apply in the order they were added (a Put then a Delete of the same
//     key deletes it). A successful Write is visible to every Get and iterator created after it.
//   - Write(sync = true) returns once the batch is on stable storage (survives power loss);
//     sync = false survives a crash of the process but not of the machine.
//   - A failed Write returns an error and leaves the store as it was, as far as this process can
//     see. Whether it reached the disk anyway may only show after a reopen (e.g. the WAL record
//     was written but its fsync failed): then the whole batch is there, never a part of it.
//   - An iterator sees a consistent snapshot: the store as it was when NewIterator() was called,
//     whatever is written afterwards.
//   - Every method may be called from any thread at once. An iterator is used by one thread at a
//     time, and must be destroyed before its store.
// Errors: kNotFound (Get of an absent key), kInvalidArgument (a key or value beyond the limits
// below), kIoError (the disk: full, failing, read-only), kCorruption (stored data that fails its
// checksums). Messages name the store's directory where there is one. Nothing throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ccmon {

// Limits every implementation enforces in Write() (kInvalidArgument, nothing written). Keys are
// short in practice (the outbox's are 10 bytes, dedup keys 34); the value limit keeps a runaway
// caller from building one RocksDB record near its 4 GiB format limit.
inline constexpr size_t kMaxKvKeyBytes = size_t(64) << 10;     // 64 KiB
inline constexpr size_t kMaxKvValueBytes = size_t(256) << 20;  // 256 MiB

// A list of Puts and Deletes applied together by KvStore::Write. A plain value type: copyable,
// not thread-safe, independent of any store (it can be built before the store is chosen).
class WriteBatch {
 public:
  enum class OpType : uint8_t { kPut, kDelete };
  struct Op {
    OpType type;
    std::string key;
    std::string value;  // empty for kDelete
  };

  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  // The same, taking the caller's strings instead of copying them (a commit's records).
  void PutOwned(std::string key, std::string value);
  void DeleteOwned(std::string key);
  // Room for `ops` operations in all, so that adding them does not grow the list step by step.
  void Reserve(size_t ops) { ops_.reserve(ops); }
  void Clear();

  // Operations added, in order.
  const std::vector<Op>& ops() const { return ops_; }
  size_t count() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  // Key and value bytes of all operations (what the batch costs to write, roughly).
  size_t ApproximateBytes() const { return bytes_; }

  // OK, or kInvalidArgument naming the first key or value beyond kMaxKvKeyBytes/kMaxKvValueBytes.
  Status Validate() const;

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

// Walks a snapshot of the store in bytewise key order. Starts unpositioned (!Valid()): call
// SeekToFirst() or Seek() first. key() and value() require Valid(); what they return stays valid
// until the iterator moves or is destroyed. An I/O or checksum error ends the walk: Valid()
// becomes false and status() says why (status() is OK at the end of a clean walk).
class KvIterator {
 public:
  virtual ~KvIterator() = default;
  virtual void SeekToFirst() = 0;
  // Positions at the first key >= target.
  virtual void Seek(std::string_view target) = 0;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;  // requires Valid()
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  virtual Status status() const = 0;
};

// Takes the records of a sorted table (KvStore::IngestSorted), one at a time.
class SortedTableSink {
 public:
  virtual ~SortedTableSink() = default;
  // Keys strictly ascending (bytewise): anything else is kInvalidArgument, as is a key or value
  // beyond the limits above.
  virtual Status Put(std::string_view key, std::string_view value) = 0;
};

// For implementations of SortedTableSink: kInvalidArgument for a key or value over the limits,
// or a key not after `*last` (unless `first`).
Status CheckSortedPut(const std::string* last, bool first, std::string_view key,
                      std::string_view value);

class KvStore {
 public:
  virtual ~KvStore() = default;

  // Copies the value of `key` into *value. kNotFound when absent (*value is then unchanged).
  virtual Status Get(std::string_view key, std::string* value) = 0;
  // Applies `batch` atomically (see the contract above). An empty batch is OK and writes nothing.
  virtual Status Write(const WriteBatch& batch, bool sync) = 0;
  // Adds many records at once, as one table (the agent's bulk first start): `fill` puts them in
  // strictly ascending key order; once it returns OK they are added atomically, as one Write of
  // them would (all or none, also across a crash; durable on return when `sync`). A key already
  // in the store is replaced. An error from `fill` (returned as it is) or from the store adds
  // nothing. Meant for a store that holds none of the keys: RocksDB writes the table as a file
  // and links it in (IngestExternalFile), without its memtable; the default implementation
  // collects a WriteBatch and Writes it.
  virtual Status IngestSorted(const std::function<Status(SortedTableSink*)>& fill, bool sync);
  // An iterator over a snapshot taken now. Never null; errors show in its status().
  virtual std::unique_ptr<KvIterator> NewIterator() = 0;
  // Bytes the store occupies on disk (an estimate; 0 when not known). For MemStore: the key and
  // value bytes held.
  virtual uint64_t ApproximateBytes() = 0;
  // After a failed Write, for a store that refuses writes until its owner recovers it (a
  // RocksDB store opened with RocksStoreOptions::recover_by_reopening): makes it accept writes
  // again. OK: writes are accepted, and whatever a failed write left on disk is now visible
  // (the "land anyway" above, in this process), so the caller must reload what it keeps in memory
  // from the store before it writes again. An error: not yet (the disk is still full, an
  // iterator of this store is still open, the reopen failed); the store refuses writes (and, after
  // a failed reopen, reads) until a later Recover() succeeds. Call it from one thread at a time.
  // Default (MemStore, wrappers, a store that resumes by itself): nothing to do, OK.
  virtual Status Recover() { return Status::Ok(); }
};

}  // namespace ccmon
