// PrefixedStore: a view of a KvStore in which every key carries a fixed prefix, so that a
// component that owns a whole key space (an Outbox: its 'o' keys) can live several times in one
// store, each copy under its own prefix (the gateway's forward queues, one per destination).
//
// Get/Write/NewIterator of the view see only the keys under the prefix, without it; the base
// store holds them with it. Stage records for the base store's batch with AppendPrefixed().
// Thread-safety: that of the base store (the view holds no state but the prefix).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/kv_store.h"

namespace ccmon::gateway {

class PrefixedStore final : public KvStore {
 public:
  // `base` is borrowed and must outlive the view. `prefix` must not be empty.
  PrefixedStore(KvStore* base, std::string prefix) : base_(base), prefix_(std::move(prefix)) {}

  const std::string& prefix() const { return prefix_; }

  Status Get(std::string_view key, std::string* value) override;
  Status Write(const WriteBatch& batch, bool sync) override;
  std::unique_ptr<KvIterator> NewIterator() override;
  // The base store's size is not split by prefix: 0 (unknown).
  uint64_t ApproximateBytes() override { return 0; }

  // Appends `batch`'s operations to `out` with the prefix added to each key.
  void AppendPrefixed(const WriteBatch& batch, WriteBatch* out) const;

 private:
  KvStore* base_;
  std::string prefix_;
};

}  // namespace ccmon::gateway
