#include "gateway/devices/device_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "store/mem_store.h"
#include "store/rocks_store.h"
#include "testing/fake_clock.h"
#include "testing/fault_store.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using testing_util::FakeClock;
using testing_util::FaultStore;

constexpr int64_t kT0 = 1767225600000;

class DeviceRegistryTest : public ::testing::Test {
 protected:
  DeviceRegistryTest() : kv_(NewMemStore()), fault_(kv_.get()), clock_(kT0) { Reopen(); }
  void Reopen() {
    reg_.reset();
    ASSERT_TRUE(DeviceRegistry::Open(&fault_, &clock_, &reg_).ok());
  }
  bool Auth(const std::string& token, std::string* device = nullptr) {
    std::string d;
    const bool ok = reg_->Authenticate(token, &d);
    if (device) *device = d;
    return ok;
  }

  std::unique_ptr<KvStore> kv_;
  FaultStore fault_;
  FakeClock clock_;
  std::unique_ptr<DeviceRegistry> reg_;
};

TEST_F(DeviceRegistryTest, AddAuthenticateAndKeepOnlyTheHash) {
  std::string key;
  ASSERT_TRUE(reg_->Add("laptop-1", &key).ok());
  EXPECT_TRUE(IsWellFormedDeviceKey(key));
  std::string device;
  EXPECT_TRUE(Auth(key, &device));
  EXPECT_EQ(device, "laptop-1");
  EXPECT_FALSE(Auth(key + "x"));
  EXPECT_FALSE(Auth(""));
  EXPECT_FALSE(Auth(key.substr(3)));  // without the prefix
  // The store never holds the key, only its hash.
  auto it = kv_->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    EXPECT_EQ(std::string(it->value()).find(key.substr(3)), std::string::npos);
    EXPECT_EQ(std::string(it->key()).find(key.substr(3)), std::string::npos);
  }
  // Survives a reopen.
  Reopen();
  EXPECT_TRUE(Auth(key, &device));
  EXPECT_EQ(device, "laptop-1");
}

TEST_F(DeviceRegistryTest, NamesAreValidatedAndUnique) {
  std::string key;
  EXPECT_TRUE(reg_->Add(std::string(64, 'a'), &key).ok());
  EXPECT_TRUE(reg_->Add("A.b_c-9", &key).ok());
  for (std::string bad :
       {std::string(), std::string(65, 'a'), std::string("a b"), std::string("a/b"),
        std::string("é"), std::string("a\0b", 3), std::string("a\nb")}) {
    Status s = reg_->Add(bad, &key);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
  }
  Status s = reg_->Add("A.b_c-9", &key);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("already exists"), std::string::npos);
  // A revoked name stays taken.
  ASSERT_TRUE(reg_->Revoke("A.b_c-9").ok());
  EXPECT_EQ(reg_->Add("A.b_c-9", &key).code(), Status::Code::kInvalidArgument);
}

// "." and ".." are normalised away by URL clients (/api/v1/devices/.. is /api/v1/devices/): no
// new device takes them. One added before (an older gateway allowed them) is still loaded, and
// rotated and revoked by name.
TEST_F(DeviceRegistryTest, DotNamesAreRefusedForNewDevicesOnly) {
  std::string key;
  for (const char* bad : {".", ".."}) {
    Status s = reg_->Add(bad, &key);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("not '.' or '..'"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(reg_->Add("...", &key).ok());
  EXPECT_TRUE(reg_->Add(".a", &key).ok());
  EXPECT_FALSE(IsValidNewDeviceName(".."));
  EXPECT_TRUE(IsValidDeviceName(".."));
  WriteBatch b;
  DeviceRegistry::Record old;
  old.created_ms = kT0;
  b.Put(std::string(1, kDeviceKeyPrefixByte) + "..", DeviceRegistry::EncodeRecord(old));
  ASSERT_TRUE(kv_->Write(b, true).ok());
  Reopen();
  ASSERT_TRUE(reg_->Rotate("..", &key).ok());
  std::string device;
  EXPECT_TRUE(Auth(key, &device));
  EXPECT_EQ(device, "..");
  ASSERT_TRUE(reg_->Revoke("..").ok());
  EXPECT_FALSE(Auth(key));
}

TEST_F(DeviceRegistryTest, RevokeAndRotate) {
  std::string k1, k2, k3;
  ASSERT_TRUE(reg_->Add("a", &k1).ok());
  ASSERT_TRUE(reg_->Rotate("a", &k2).ok());
  EXPECT_NE(k1, k2);
  EXPECT_FALSE(Auth(k1));  // the old key stops working
  EXPECT_TRUE(Auth(k2));
  ASSERT_TRUE(reg_->Revoke("a").ok());
  EXPECT_FALSE(Auth(k2));
  EXPECT_TRUE(reg_->Revoke("a").ok());  // idempotent
  Reopen();
  EXPECT_FALSE(Auth(k1));
  EXPECT_FALSE(Auth(k2));
  ASSERT_EQ(reg_->List().size(), 1u);
  EXPECT_TRUE(reg_->List()[0].revoked);
  // Rotating a revoked device brings it back with a new key only.
  ASSERT_TRUE(reg_->Rotate("a", &k3).ok());
  EXPECT_TRUE(Auth(k3));
  EXPECT_FALSE(Auth(k2));
  EXPECT_FALSE(reg_->List()[0].revoked);
  EXPECT_EQ(reg_->Revoke("nope").code(), Status::Code::kNotFound);
  EXPECT_EQ(reg_->Rotate("nope", &k3).code(), Status::Code::kNotFound);
}

TEST_F(DeviceRegistryTest, StoreFailuresChangeNothing) {
  std::string k1, k2;
  ASSERT_TRUE(reg_->Add("a", &k1).ok());
  fault_.FailNthWrite(1);
  EXPECT_EQ(reg_->Add("b", &k2).code(), Status::Code::kIoError);
  EXPECT_EQ(reg_->List().size(), 1u);
  fault_.FailNthWrite(1);
  EXPECT_EQ(reg_->Rotate("a", &k2).code(), Status::Code::kIoError);
  EXPECT_TRUE(Auth(k1));  // the old key still works
  EXPECT_FALSE(Auth(k2));
  fault_.FailNthWrite(1);
  EXPECT_EQ(reg_->Revoke("a").code(), Status::Code::kIoError);
  EXPECT_TRUE(Auth(k1));
  Reopen();
  EXPECT_TRUE(Auth(k1));
  EXPECT_EQ(reg_->List().size(), 1u);
}

TEST_F(DeviceRegistryTest, LastSeenIsWrittenAtMostOncePerMinute) {
  std::string key;
  ASSERT_TRUE(reg_->Add("a", &key).ok());
  EXPECT_EQ(reg_->List()[0].last_seen_ms, 0);
  const int writes0 = fault_.writes();
  ASSERT_TRUE(Auth(key));
  EXPECT_EQ(fault_.writes(), writes0 + 1);  // the first use
  EXPECT_EQ(reg_->List()[0].last_seen_ms, kT0);
  for (int i = 0; i < 59; ++i) {
    clock_.AdvanceBy(std::chrono::seconds(1));
    ASSERT_TRUE(Auth(key));
  }
  EXPECT_EQ(fault_.writes(), writes0 + 1);
  EXPECT_EQ(reg_->List()[0].last_seen_ms, kT0 + 59'000);  // in memory: exact
  clock_.AdvanceBy(std::chrono::seconds(1));
  ASSERT_TRUE(Auth(key));
  EXPECT_EQ(fault_.writes(), writes0 + 2);
  // A failed last-use write never fails the authentication, and is retried at the next use.
  clock_.AdvanceBy(std::chrono::minutes(2));
  fault_.FailNthWrite(1);
  EXPECT_TRUE(Auth(key));
  EXPECT_TRUE(Auth(key));
  EXPECT_EQ(fault_.writes(), writes0 + 4);
  Reopen();
  EXPECT_EQ(reg_->List()[0].last_seen_ms, kT0 + 180'000);
  // Failed authentications record nothing.
  const int writes1 = fault_.writes();
  clock_.AdvanceBy(std::chrono::minutes(5));
  EXPECT_FALSE(Auth("dk_wrong"));
  EXPECT_EQ(fault_.writes(), writes1);
}

TEST_F(DeviceRegistryTest, CorruptRecordsAreRefusedAtOpen) {
  WriteBatch b;
  b.Put("Dbad", "\x01short");
  ASSERT_TRUE(kv_->Write(b, true).ok());
  std::unique_ptr<DeviceRegistry> r;
  EXPECT_EQ(DeviceRegistry::Open(kv_.get(), &clock_, &r).code(), Status::Code::kCorruption);
  WriteBatch b2;
  b2.Delete("Dbad");
  DeviceRegistry::Record rec;
  b2.Put("Dbad name", DeviceRegistry::EncodeRecord(rec));
  ASSERT_TRUE(kv_->Write(b2, true).ok());
  EXPECT_EQ(DeviceRegistry::Open(kv_.get(), &clock_, &r).code(), Status::Code::kCorruption);
}

TEST_F(DeviceRegistryTest, RecordRoundTrip) {
  DeviceRegistry::Record r;
  r.created_ms = -5;
  r.last_seen_ms = INT64_MAX;
  r.revoked = true;
  r.hash[0] = 7;
  r.hash[31] = 9;
  DeviceRegistry::Record back;
  ASSERT_TRUE(DeviceRegistry::DecodeRecord(DeviceRegistry::EncodeRecord(r), &back).ok());
  EXPECT_EQ(back.created_ms, -5);
  EXPECT_EQ(back.last_seen_ms, INT64_MAX);
  EXPECT_TRUE(back.revoked);
  EXPECT_EQ(back.hash, r.hash);
  std::string enc = DeviceRegistry::EncodeRecord(r);
  enc[17] = 2;
  EXPECT_FALSE(DeviceRegistry::DecodeRecord(enc, &back).ok());
  enc[17] = 1;
  enc[0] = 2;
  EXPECT_FALSE(DeviceRegistry::DecodeRecord(enc, &back).ok());
}

TEST_F(DeviceRegistryTest, ConcurrentAuthenticationWhileRotating) {
  std::string key, other;
  ASSERT_TRUE(reg_->Add("a", &key).ok());
  ASSERT_TRUE(reg_->Add("b", &other).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        std::string d;
        // b's key is never rotated: it must always authenticate as b, never as a.
        if (!reg_->Authenticate(other, &d) || d != "b") wrong.fetch_add(1);
        (void)reg_->Authenticate(key, &d);
        (void)reg_->List();
      }
    });
  }
  std::string k = key;
  for (int i = 0; i < 200; ++i) {
    std::string next;
    ASSERT_TRUE(reg_->Rotate("a", &next).ok());
    k = next;
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  std::string d;
  EXPECT_TRUE(reg_->Authenticate(k, &d));
  EXPECT_FALSE(reg_->Authenticate(key, &d));
}

TEST(DeviceRegistryRocksTest, DurableOnRealRocksDb) {
  testing_util::TempDir dir;
  std::string key;
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir.path(), {}, &kv).ok());
    std::unique_ptr<DeviceRegistry> reg;
    ASSERT_TRUE(DeviceRegistry::Open(kv.get(), nullptr, &reg).ok());
    ASSERT_TRUE(reg->Add("a", &key).ok());
    std::string d;
    ASSERT_TRUE(reg->Authenticate(key, &d));
  }
  std::unique_ptr<KvStore> kv;
  ASSERT_TRUE(OpenRocksStore(dir.path(), {}, &kv).ok());
  std::unique_ptr<DeviceRegistry> reg;
  ASSERT_TRUE(DeviceRegistry::Open(kv.get(), nullptr, &reg).ok());
  std::string d;
  EXPECT_TRUE(reg->Authenticate(key, &d));
  EXPECT_EQ(d, "a");
  EXPECT_GT(reg->List()[0].last_seen_ms, 0);
}

}  // namespace
}  // namespace ccmon::gateway
