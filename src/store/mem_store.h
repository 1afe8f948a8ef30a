// MemStore: an in-memory KvStore with the same contract as the RocksDB one (store/kv_store.h),
// for unit tests of the store's users. Nothing survives its destruction; `sync` changes nothing.
//
// Iterators share the map they were created over; the first Write after an iterator was created
// copies the map (copy on write), so snapshots cost nothing until written over. Fine for tests,
// not meant for large data.
#pragma once

#include <memory>

#include "store/kv_store.h"

namespace ccmon {

std::unique_ptr<KvStore> NewMemStore();

}  // namespace ccmon
