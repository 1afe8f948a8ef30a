#include "gateway/forward/prefixed_store.h"

namespace ccmon::gateway {
namespace {

class PrefixedIterator final : public KvIterator {
 public:
  PrefixedIterator(std::unique_ptr<KvIterator> base, std::string_view prefix)
      : base_(std::move(base)), prefix_(prefix) {}

  void SeekToFirst() override { base_->Seek(prefix_); }
  void Seek(std::string_view target) override {
    std::string k = prefix_;
    k.append(target);
    base_->Seek(k);
  }
  bool Valid() const override { return base_->Valid() && base_->key().starts_with(prefix_); }
  void Next() override { base_->Next(); }
  std::string_view key() const override { return base_->key().substr(prefix_.size()); }
  std::string_view value() const override { return base_->value(); }
  Status status() const override { return base_->status(); }

 private:
  std::unique_ptr<KvIterator> base_;
  std::string prefix_;
};

}  // namespace

Status PrefixedStore::Get(std::string_view key, std::string* value) {
  std::string k = prefix_;
  k.append(key);
  return base_->Get(k, value);
}

Status PrefixedStore::Write(const WriteBatch& batch, bool sync) {
  WriteBatch prefixed;
  AppendPrefixed(batch, &prefixed);
  return base_->Write(prefixed, sync);
}

std::unique_ptr<KvIterator> PrefixedStore::NewIterator() {
  return std::make_unique<PrefixedIterator>(base_->NewIterator(), prefix_);
}

void PrefixedStore::AppendPrefixed(const WriteBatch& batch, WriteBatch* out) const {
  std::string k;
  for (const WriteBatch::Op& op : batch.ops()) {
    k.assign(prefix_);
    k.append(op.key);
    if (op.type == WriteBatch::OpType::kPut) {
      out->Put(k, op.value);
    } else {
      out->Delete(k);
    }
  }
}

}  // namespace ccmon::gateway
