#include "store/mem_store.h"

#include <atomic>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>

namespace ccmon {
namespace {

// std::string compares with char_traits<char>::compare, which is memcmp-like (unsigned bytes),
// so the map's order is the bytewise order the contract promises.
using Map = std::map<std::string, std::string, std::less<>>;

class MemIterator final : public KvIterator {
 public:
  explicit MemIterator(std::shared_ptr<const Map> map) : map_(std::move(map)), it_(map_->end()) {}

  void SeekToFirst() override { it_ = map_->begin(); }
  void Seek(std::string_view target) override { it_ = map_->lower_bound(target); }
  bool Valid() const override { return it_ != map_->end(); }
  void Next() override { ++it_; }
  std::string_view key() const override { return it_->first; }
  std::string_view value() const override { return it_->second; }
  Status status() const override { return Status::Ok(); }

 private:
  std::shared_ptr<const Map> map_;
  Map::const_iterator it_;
};

class MemStore final : public KvStore {
 public:
  Status Get(std::string_view key, std::string* value) override {
    std::shared_lock lock(mu_);
    auto it = map_->find(key);
    if (it == map_->end()) return Status::NotFound("key not found");
    *value = it->second;
    return Status::Ok();
  }

  Status Write(const WriteBatch& batch, bool /*sync*/) override {
    if (Status s = batch.Validate(); !s.ok()) return s;
    std::unique_lock lock(mu_);
    // An iterator may still read this map: leave it to the iterators and write a copy. (Not
    // map_.use_count(): a relaxed load, which does not order an iterator's last reads before
    // this write.)
    if (snapshot_taken_.exchange(false)) map_ = std::make_shared<Map>(*map_);
    for (const WriteBatch::Op& op : batch.ops()) {
      if (op.type == WriteBatch::OpType::kPut) {
        auto [it, inserted] = map_->try_emplace(op.key, op.value);
        if (!inserted) {
          bytes_ -= it->second.size();
          it->second = op.value;
        } else {
          bytes_ += op.key.size();
        }
        bytes_ += op.value.size();
      } else {
        auto it = map_->find(op.key);
        if (it != map_->end()) {
          bytes_ -= it->first.size() + it->second.size();
          map_->erase(it);
        }
      }
    }
    return Status::Ok();
  }

  std::unique_ptr<KvIterator> NewIterator() override {
    std::shared_lock lock(mu_);
    snapshot_taken_ = true;
    return std::make_unique<MemIterator>(map_);
  }

  uint64_t ApproximateBytes() override {
    std::shared_lock lock(mu_);
    return bytes_;
  }

 private:
  std::shared_mutex mu_;
  std::shared_ptr<Map> map_ = std::make_shared<Map>();
  std::atomic<bool> snapshot_taken_{false};  // set by NewIterator under the shared lock
  uint64_t bytes_ = 0;
};

}  // namespace

std::unique_ptr<KvStore> NewMemStore() { return std::make_unique<MemStore>(); }

}  // namespace ccmon
