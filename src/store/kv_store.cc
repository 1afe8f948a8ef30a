#include "store/kv_store.h"

#include <string>
#include <utility>

namespace ccmon {

void WriteBatch::Put(std::string_view key, std::string_view value) {
  ops_.push_back(Op{OpType::kPut, std::string(key), std::string(value)});
  bytes_ += key.size() + value.size();
}

void WriteBatch::Delete(std::string_view key) {
  ops_.push_back(Op{OpType::kDelete, std::string(key), std::string()});
  bytes_ += key.size();
}

void WriteBatch::PutOwned(std::string key, std::string value) {
  bytes_ += key.size() + value.size();
  ops_.push_back(Op{OpType::kPut, std::move(key), std::move(value)});
}

void WriteBatch::DeleteOwned(std::string key) {
  bytes_ += key.size();
  ops_.push_back(Op{OpType::kDelete, std::move(key), std::string()});
}

void WriteBatch::Clear() {
  ops_.clear();
  bytes_ = 0;
}

Status WriteBatch::Validate() const {
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    if (op.key.size() > kMaxKvKeyBytes) {
      return Status::InvalidArgument("write batch operation " + std::to_string(i) + ": key of " +
                                     std::to_string(op.key.size()) + " bytes (at most " +
                                     std::to_string(kMaxKvKeyBytes) + ")");
    }
    if (op.value.size() > kMaxKvValueBytes) {
      return Status::InvalidArgument("write batch operation " + std::to_string(i) + ": value of " +
                                     std::to_string(op.value.size()) + " bytes (at most " +
                                     std::to_string(kMaxKvValueBytes) + ")");
    }
  }
  return Status::Ok();
}

Status CheckSortedPut(const std::string* last, bool first, std::string_view key,
                      std::string_view value) {
  if (key.size() > kMaxKvKeyBytes || value.size() > kMaxKvValueBytes) {
    return Status::InvalidArgument("sorted table: a key of " + std::to_string(key.size()) +
                                   " bytes or a value of " + std::to_string(value.size()) +
                                   " bytes (at most " + std::to_string(kMaxKvKeyBytes) + " and " +
                                   std::to_string(kMaxKvValueBytes) + ")");
  }
  if (!first && std::string_view(*last) >= key)
    return Status::InvalidArgument("sorted table: keys out of order");
  return Status::Ok();
}

namespace {

// The default IngestSorted: the records as one batch.
class BatchSink final : public SortedTableSink {
 public:
  Status Put(std::string_view key, std::string_view value) override {
    const std::string* last = batch.empty() ? nullptr : &batch.ops().back().key;
    if (Status s = CheckSortedPut(last, batch.empty(), key, value); !s.ok()) return s;
    batch.Put(key, value);
    return Status::Ok();
  }
  WriteBatch batch;
};

}  // namespace

Status KvStore::IngestSorted(const std::function<Status(SortedTableSink*)>& fill, bool sync) {
  BatchSink sink;
  if (Status s = fill(&sink); !s.ok()) return s;
  return Write(sink.batch, sync);
}

}  // namespace ccmon
