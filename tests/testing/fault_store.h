// FaultStore: wraps a KvStore and makes chosen calls fail with kIoError, as a full or failing disk
// would, so that the store's users (the outbox, the agent) can be tested on their failure paths.
//
//   auto mem = NewMemStore();
//   FaultStore store(mem.get());
//   store.FailNthWrite(2);          // the second Write from now fails, nothing applied
//   store.FailWritesAfter(3);       // the 4th Write from now and every one after it fail
//   store.set_keep_failed_writes(true);   // failing writes are kept aside, and
//   store.LandFailedWrites();             // applied now: as after a crash, when the WAL record
//                                         // of a write that reported an error survived
//   store.FailGets(true);
//   store.FailIterators(true, 5);   // new iterators fail after yielding 5 entries
//
// Calls are counted (writes(), sync_writes(), failed_writes(), gets()) so that tests can check
// e.g. that a Remove is a sync write. Thread-safe; the base store is borrowed.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "store/kv_store.h"

namespace ccmon {
namespace testing_util {

class FaultStore final : public KvStore {
 public:
  explicit FaultStore(KvStore* base) : base_(base) {}

  // `n` counts Write calls from now: 1 is the next one.
  void FailNthWrite(int n);
  // The next `n` writes succeed, every one after them fails (n = 0: all of them).
  void FailWritesAfter(int n);
  // Failed writes leave the store as it was, as the KvStore contract says; kept, they can be
  // applied later by LandFailedWrites(), in the order they failed (a restart after which such a
  // write turned out durable). Without a keep, they are lost.
  void set_keep_failed_writes(bool keep);
  void LandFailedWrites();
  // Forgets the kept failed writes (they never reached the disk).
  void DropFailedWrites();
  void FailGets(bool fail);
  // Iterators created from now on yield at most `after_entries` entries, then end with an error.
  void FailIterators(bool fail, int after_entries = 0);
  void ClearFaults();

  int writes() const;
  int sync_writes() const;
  int failed_writes() const;
  int gets() const;

  // --- KvStore
  Status Get(std::string_view key, std::string* value) override;
  Status Write(const WriteBatch& batch, bool sync) override;
  std::unique_ptr<KvIterator> NewIterator() override;
  uint64_t ApproximateBytes() override { return base_->ApproximateBytes(); }
  Status Recover() override { return base_->Recover(); }

 private:
  KvStore* base_;
  mutable std::mutex mu_;
  int writes_ = 0, sync_writes_ = 0, failed_writes_ = 0, gets_ = 0;
  int fail_write_at_ = -1;     // the write with this index (1-based, all writes) fails
  int fail_writes_from_ = -1;  // writes from this index on fail
  bool keep_failed_writes_ = false;
  std::vector<WriteBatch> failed_batches_;
  bool fail_gets_ = false;
  bool fail_iterators_ = false;
  int iterator_entries_ = 0;
};

}  // namespace testing_util
}  // namespace ccmon
