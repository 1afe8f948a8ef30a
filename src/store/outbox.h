// Outbox: the agent's durable FIFO of encoded remote-write payloads, one queue per shard, kept in
// a KvStore next to the rest of the agent's state (docs/store-format.md, "Outbox keys").
//
// An entry is one payload: a serialized, uncompressed prometheus.WriteRequest, opaque here. Two
// such payloads concatenated are one valid WriteRequest holding both (protobuf concatenation
// merges repeated fields), which is how Peek() merges a backlog into full batches.
//
// Life of an entry:
//   writer thread:  Stage(shard, ...) into the caller's WriteBatch, next to the file offsets and
//                   counters the same input produced; KvStore::Write(batch); then Committed()
//                   when the write succeeded, or Abandon() when it failed. Only Committed()
//                   makes the entries visible to readers, so a reader never sees an entry that
//                   is not yet durable, nor one whose batch failed.
//   shard's sender: WaitForEntries(); Peek() a batch from the head; send it; Remove() through its
//                   last sequence after a 2xx or a final rejection (a sync write).
//   anyone:         EnforceLimits() drops the oldest entries beyond max_bytes or max_age, and
//                   says what it dropped so the caller can log and count it; Stats().
//
// Delivery is at least once. A crash (or a failed Remove) between a 2xx and the Remove sends that
// batch again after the restart. Payloads must therefore be idempotent for the receiver: sending
// one twice must store the same samples (same series, timestamps and values), which a receiver
// takes as duplicates, not conflicts. The agent guarantees this: a sample's timestamp and value
// are fixed when its entry is staged.
//
// A failed write: Abandon() forgets the staged entries, but their sequence numbers are never
// given out again in this process. If such a batch reached the disk after all (see kv_store.h),
// its entries stay invisible here and show up after the next Open, once each, in sequence order;
// nothing staged later overwrites them.
//
// Threading: one writer thread calls Stage/Committed/Abandon; one reader thread per shard calls
// Peek/Remove/WaitForEntries for that shard (different shards' readers run in parallel);
// EnforceLimits and Stats may be called from any thread (EnforceLimits excludes the shards'
// Remove while it runs). The store is borrowed and must outlive the outbox; the outbox must
// outlive every call into it (stop and join the waiting readers first).
//
// Memory is O(shards), not O(entries): the outbox keeps per-shard counts and sequence bounds,
// and reads entries from the store when it needs them (Peek, Remove, EnforceLimits).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/kv_store.h"

namespace ccmon {

// Key: 'o', shard (1 byte), sequence (8 bytes big-endian) -> value: header + payload.
inline constexpr char kOutboxKeyPrefix = 'o';
inline constexpr size_t kOutboxKeyBytes = 10;
// Value header: format version (1 byte, 1), created unix ms (int64), sample count (uint32),
// payload bytes (uint32), little-endian; the payload follows.
inline constexpr size_t kOutboxHeaderBytes = 17;
inline constexpr int kMaxOutboxShards = 256;
inline constexpr size_t kMaxOutboxPayloadBytes = size_t(64) << 20;
// The shard count the queued entries were sharded by: the key 'o' alone -> version (1 byte, 1),
// count (uint16 little-endian, 1..256). docs/store-format.md "Outbox keys".
inline constexpr std::string_view kOutboxShardCountKey = "o";

std::string OutboxKey(uint32_t shard, uint64_t seq);

struct OutboxOptions {
  // Payload bytes kept in all shards together; the oldest entries beyond it are dropped by
  // EnforceLimits. 0: no limit.
  uint64_t max_bytes = uint64_t(256) << 20;
  // Entries created longer ago than this are dropped by EnforceLimits. 0: no limit.
  std::chrono::milliseconds max_age = std::chrono::hours(24 * 7);
};

// Consecutive entries of one shard, from its head, merged.
struct OutboxBatch {
  std::string payload;  // the entries' payloads concatenated, oldest first
  uint64_t samples = 0;
  size_t entries = 0;
  int64_t oldest_created_ms = 0;  // smallest created time among the entries
  uint64_t first_seq = 0, last_seq = 0;

  bool empty() const { return entries == 0; }
  void Clear() { *this = OutboxBatch(); }
};

// What EnforceLimits (or Open, for damaged entries) removed.
struct OutboxDropStats {
  uint64_t entries = 0, samples = 0, bytes = 0;
  uint64_t by_age = 0, by_size = 0;  // entries dropped for each reason (by age first)
  bool empty() const { return entries == 0; }
};

struct OutboxShardStats {
  uint64_t entries = 0, samples = 0, bytes = 0;  // bytes: payload bytes
  std::optional<int64_t> oldest_created_ms;      // the head entry's; none when empty
};

struct OutboxStats {
  std::vector<OutboxShardStats> shards;
  OutboxShardStats total;         // sums; the oldest over all shards
  OutboxDropStats dropped_total;  // everything EnforceLimits dropped since Open
  uint64_t corrupt_dropped = 0;   // damaged entries Open removed
};

class Outbox {
 public:
  // Scans the store's outbox keys to recover each shard's queue (head, tail, entries, samples,
  // bytes, oldest time). `shards` is 1..256: the count wanted. A series keeps its order only if
  // all its samples go to one shard, and the caller shards by a hash modulo shard_count(), so
  // while entries are queued the count they were sharded by is kept: shard_count() is the
  // recorded count when the outbox holds entries (it then differs from `shards` until a start
  // finds the outbox empty), and `shards` otherwise (recorded then). A store written before the
  // count was recorded, holding entries: the larger of `shards` and its highest non-empty shard
  // plus one, as before. Damaged entries (a malformed key or header) are deleted and counted
  // in Stats().corrupt_dropped, so that the caller can log them. Errors: kInvalidArgument for bad
  // arguments, the store's errors.
  static Status Open(KvStore* store, const OutboxOptions& options, int shards,
                     std::unique_ptr<Outbox>* out);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  int shard_count() const { return shard_count_; }

  // --- Writer thread.
  // Adds an entry to `batch` (a Put of its key) and remembers it as staged. Nothing changes for
  // readers until Committed(). kInvalidArgument (nothing added) when shard >= shard_count() or the
  // payload is larger than kMaxOutboxPayloadBytes.
  Status Stage(uint32_t shard, int64_t now_ms, uint32_t samples, std::string_view payload,
               WriteBatch* batch);
  // The batch holding every entry staged since the last Committed/Abandon was written: make
  // them visible (and wake the shards' waiters).
  void Committed();
  // That batch failed: forget its entries (see "A failed write" above).
  void Abandon();

  // --- A shard's reader thread.
  // Fills *out with consecutive entries from the shard's head: as many as fit in max_samples
  // samples and max_bytes payload bytes, but always at least one (an entry larger than either
  // comes alone). out->empty() when the shard has no entries. Errors: the store's; kCorruption
  // naming the sequence of a damaged entry (Remove through it to get past it).
  Status Peek(uint32_t shard, size_t max_samples, size_t max_bytes, OutboxBatch* out);
  // Deletes the shard's entries up to and including `through_seq` (a sync write). Sequences
  // already gone are fine; a sequence beyond the committed tail is kInvalidArgument.
  Status Remove(uint32_t shard, uint64_t through_seq);
  // Blocks until the shard has at least `min_samples` samples (WaitForEntries: at least one
  // entry), the deadline passes or `stop` is requested, without polling. Returns whether the
  // condition holds.
  bool WaitForEntries(uint32_t shard, std::chrono::steady_clock::time_point deadline,
                      std::stop_token stop);
  bool WaitForSamples(uint32_t shard, uint64_t min_samples,
                      std::chrono::steady_clock::time_point deadline, std::stop_token stop);

  // --- Any thread.
  // Drops entries, oldest first (the smallest created time among the shards' heads), while the
  // oldest is older than now_ms - max_age or all shards hold more than max_bytes. Only heads are
  // dropped (an entry behind a younger one waits until it is the head). Adds what it dropped to
  // *dropped (may be null) and to Stats().dropped_total. One sync write; on error nothing is
  // dropped.
  Status EnforceLimits(int64_t now_ms, OutboxDropStats* dropped);
  OutboxStats Stats() const;

 private:
  struct ShardState;
  struct Staged {
    uint32_t shard;
    uint64_t seq;
    int64_t created_ms;
    uint32_t samples;
    uint32_t bytes;
  };
  struct EntryInfo {
    uint64_t seq = 0;
    int64_t created_ms = 0;
    uint32_t samples = 0;
    uint32_t bytes = 0;
    bool corrupt = false;
  };

  Outbox(KvStore* store, const OutboxOptions& options, int shard_count);
  Status Recover(int requested_shards);
  // The first visible entry at or after `from_seq` below the committed tail, or nullopt.
  Status FindHead(uint32_t shard, uint64_t from_seq, std::optional<EntryInfo>* head);
  bool IsHidden(const ShardState& s, uint64_t seq) const;  // requires mu_

  KvStore* const store_;
  const OutboxOptions options_;
  int shard_count_;
  std::vector<std::unique_ptr<ShardState>> shards_;
  std::vector<Staged> staged_;  // writer thread only

  mutable std::mutex mu_;  // guards every ShardState's counters and the totals below
  OutboxDropStats dropped_total_;
  uint64_t corrupt_dropped_ = 0;
};

}  // namespace ccmon
