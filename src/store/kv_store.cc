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

}  // namespace ccmon
