#include "testing/fault_store.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace ccmon {
namespace testing_util {
namespace {

Status Injected(const char* what) {
  return Status::IoError(std::string("injected ") + what + " failure (FaultStore)");
}

// Yields the base iterator's entries until `budget` Next/Seek steps have produced that many
// entries, then pretends the read failed.
class FaultIterator final : public KvIterator {
 public:
  FaultIterator(std::unique_ptr<KvIterator> base, int budget)
      : base_(std::move(base)), budget_(budget) {}

  void SeekToFirst() override {
    base_->SeekToFirst();
    Count();
  }
  void Seek(std::string_view target) override {
    base_->Seek(target);
    Count();
  }
  bool Valid() const override { return !failed_ && base_->Valid(); }
  void Next() override {
    base_->Next();
    Count();
  }
  std::string_view key() const override { return base_->key(); }
  std::string_view value() const override { return base_->value(); }
  Status status() const override { return failed_ ? Injected("iterator") : base_->status(); }

 private:
  void Count() {
    if (failed_ || !base_->Valid()) return;
    if (yielded_ >= budget_) {
      failed_ = true;
    } else {
      ++yielded_;
    }
  }

  std::unique_ptr<KvIterator> base_;
  int budget_;
  int yielded_ = 0;
  bool failed_ = false;
};

}  // namespace

void FaultStore::FailNthWrite(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_write_at_ = writes_ + n;
}
void FaultStore::FailWritesAfter(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_writes_from_ = writes_ + n + 1;
}
void FaultStore::set_keep_failed_writes(bool keep) {
  std::lock_guard<std::mutex> lock(mu_);
  keep_failed_writes_ = keep;
}
void FaultStore::LandFailedWrites() {
  std::vector<WriteBatch> batches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batches.swap(failed_batches_);
  }
  for (const WriteBatch& b : batches) {
    Status s = base_->Write(b, true);
    if (!s.ok()) ADD_FAILURE() << "landing a failed write: " << s.ToString();
  }
}
void FaultStore::DropFailedWrites() {
  std::lock_guard<std::mutex> lock(mu_);
  failed_batches_.clear();
}
void FaultStore::FailGets(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_gets_ = fail;
}
void FaultStore::FailIterators(bool fail, int after_entries) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_iterators_ = fail;
  iterator_entries_ = after_entries;
}
void FaultStore::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  fail_write_at_ = fail_writes_from_ = -1;
  keep_failed_writes_ = fail_gets_ = fail_iterators_ = false;
}

int FaultStore::writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writes_;
}
int FaultStore::sync_writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sync_writes_;
}
int FaultStore::failed_writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_writes_;
}
int FaultStore::gets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return gets_;
}

Status FaultStore::Get(std::string_view key, std::string* value) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++gets_;
    if (fail_gets_) return Injected("read");
  }
  return base_->Get(key, value);
}

Status FaultStore::Write(const WriteBatch& batch, bool sync) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int index = ++writes_;
    if (sync) ++sync_writes_;
    if (index == fail_write_at_ || (fail_writes_from_ > 0 && index >= fail_writes_from_)) {
      ++failed_writes_;
      if (keep_failed_writes_) failed_batches_.push_back(batch);
      return Injected("write");
    }
  }
  return base_->Write(batch, sync);
}

std::unique_ptr<KvIterator> FaultStore::NewIterator() {
  int budget = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_iterators_) budget = iterator_entries_;
  }
  std::unique_ptr<KvIterator> it = base_->NewIterator();
  if (budget < 0) return it;
  return std::make_unique<FaultIterator>(std::move(it), budget);
}

}  // namespace testing_util
}  // namespace ccmon
