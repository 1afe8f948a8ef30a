#include "gateway/mirror/mirror_store.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "store/mem_store.h"
#include "store/rocks_store.h"
#include "testing/fault_store.h"
#include "testing/temp_dir.h"

namespace ccmon::gateway {
namespace {

using testing_util::FaultStore;
using testing_util::TempDir;

WriteBatch Puts(const std::map<std::string, std::string>& kv) {
  WriteBatch b;
  for (const auto& [k, v] : kv) b.Put(k, v);
  return b;
}

std::map<std::string, std::string> Records(MirrorStore& m, std::string_view device,
                                           MirrorMeta* meta = nullptr) {
  std::map<std::string, std::string> out;
  MirrorMeta ignored;
  const Status s = m.Read(device, meta ? meta : &ignored,
                          [&](std::string_view k, std::string_view v) { out[std::string(k)] = v; });
  EXPECT_TRUE(s.ok() || s.code() == Status::Code::kNotFound) << s.message();
  return out;
}

class MirrorStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<KvStore> mem_ = NewMemStore();
  FaultStore kv_{mem_.get()};
  MirrorStore mirror_{&kv_, MirrorOptions{}};
  MirrorOutcome outcome_ = MirrorOutcome::kApplied;
};

TEST_F(MirrorStoreTest, NoMirrorIsNotFound) {
  MirrorMeta meta;
  EXPECT_EQ(mirror_.Read("a", &meta, [](auto, auto) {}).code(), Status::Code::kNotFound);
}

TEST_F(MirrorStoreTest, SnapshotReplacesAndRetriesAreDuplicates) {
  ASSERT_TRUE(mirror_.Replace("dev", 7, 1, Puts({{"f/x", "1"}, {"cA", "2"}}), 100, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  MirrorMeta meta;
  EXPECT_EQ(Records(mirror_, "dev", &meta),
            (std::map<std::string, std::string>{{"cA", "2"}, {"f/x", "1"}}));
  EXPECT_EQ(meta.epoch, 7u);
  EXPECT_EQ(meta.state_seq, 1u);
  EXPECT_EQ(meta.keys, 2u);
  EXPECT_EQ(meta.bytes, 3u + 1 + 2 + 1);
  EXPECT_EQ(meta.updated_ms, 100);

  // The same upload again (its answer was lost), and an older one: not applied.
  const int writes = kv_.writes();
  ASSERT_TRUE(mirror_.Replace("dev", 7, 1, Puts({{"zz", "old"}}), 200, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kDuplicate);
  ASSERT_TRUE(mirror_.Replace("dev", 7, 0, Puts({{"zz", "old"}}), 200, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kDuplicate);
  EXPECT_EQ(kv_.writes(), writes) << "a duplicate writes nothing";

  // A newer snapshot replaces everything: a key it lacks is gone.
  ASSERT_TRUE(mirror_.Replace("dev", 7, 5, Puts({{"cA", "3"}}), 300, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  EXPECT_EQ(Records(mirror_, "dev", &meta), (std::map<std::string, std::string>{{"cA", "3"}}));
  EXPECT_EQ(meta.state_seq, 5u);
  EXPECT_EQ(meta.bytes, 3u);
  EXPECT_EQ(kv_.sync_writes(), 2) << "each change is one synced batch";

  // Another epoch (a new agent state after a loss) replaces whatever its sequence.
  ASSERT_TRUE(mirror_.Replace("dev", 8, 1, Puts({{"cB", "1"}}), 400, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  EXPECT_EQ(Records(mirror_, "dev", &meta), (std::map<std::string, std::string>{{"cB", "1"}}));
  EXPECT_EQ(meta.epoch, 8u);
}

TEST_F(MirrorStoreTest, DevicesAreSeparateEvenWhenOneNameIsAPrefixOfAnother) {
  ASSERT_TRUE(mirror_.Replace("dev", 1, 1, Puts({{"k", "a"}}), 1, &outcome_).ok());
  ASSERT_TRUE(mirror_.Replace("dev2", 1, 1, Puts({{"k", "b"}}), 1, &outcome_).ok());
  ASSERT_TRUE(mirror_.Replace("dev", 1, 2, Puts({{"j", "c"}}), 1, &outcome_).ok());
  EXPECT_EQ(Records(mirror_, "dev"), (std::map<std::string, std::string>{{"j", "c"}}));
  EXPECT_EQ(Records(mirror_, "dev2"), (std::map<std::string, std::string>{{"k", "b"}}));
}

TEST_F(MirrorStoreTest, DeltasApplyInOrderDuplicatesAndGaps) {
  ASSERT_TRUE(mirror_.Replace("d", 9, 3, Puts({{"a", "1"}, {"b", "22"}}), 1, &outcome_).ok());
  WriteBatch delta;
  delta.Put("c", "333");
  delta.Delete("a");
  delta.Put("b", "2");
  ASSERT_TRUE(mirror_.ApplyDelta("d", 9, 4, 5, delta, 2, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  MirrorMeta meta;
  EXPECT_EQ(Records(mirror_, "d", &meta),
            (std::map<std::string, std::string>{{"b", "2"}, {"c", "333"}}));
  EXPECT_EQ(meta.state_seq, 5u);
  EXPECT_EQ(meta.keys, 2u);
  EXPECT_EQ(meta.bytes, 2u + 4);

  // Retried: a duplicate, nothing applied again.
  WriteBatch again;
  again.Put("a", "back");
  ASSERT_TRUE(mirror_.ApplyDelta("d", 9, 4, 5, again, 3, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kDuplicate);
  // A gap, an overlap, another epoch, no mirror at all: the agent must send a snapshot.
  ASSERT_TRUE(mirror_.ApplyDelta("d", 9, 7, 7, again, 3, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kGap);
  ASSERT_TRUE(mirror_.ApplyDelta("d", 9, 5, 6, again, 3, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kGap);
  ASSERT_TRUE(mirror_.ApplyDelta("d", 10, 6, 6, again, 3, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kGap);
  ASSERT_TRUE(mirror_.ApplyDelta("nobody", 9, 1, 1, again, 3, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kGap);
  EXPECT_EQ(Records(mirror_, "d"), (std::map<std::string, std::string>{{"b", "2"}, {"c", "333"}}));
  EXPECT_EQ(mirror_.ApplyDelta("d", 9, 0, 0, again, 3, &outcome_).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(mirror_.ApplyDelta("d", 9, 7, 6, again, 3, &outcome_).code(),
            Status::Code::kInvalidArgument);
  const MirrorStats st = mirror_.stats();
  EXPECT_EQ(st.applied, 2u);
  EXPECT_EQ(st.duplicate, 1u);
  EXPECT_EQ(st.gap, 4u);
}

TEST_F(MirrorStoreTest, SnapshotsHoldPutsOnly) {
  WriteBatch b;
  b.Delete("x");
  EXPECT_EQ(mirror_.Replace("d", 1, 1, b, 1, &outcome_).code(), Status::Code::kInvalidArgument);
}

// Every key in the store under `prefix` (the staging must be gone once a snapshot is in).
size_t KeysUnder(KvStore* kv, char prefix) {
  size_t n = 0;
  std::unique_ptr<KvIterator> it = kv->NewIterator();
  for (it->Seek(std::string(1, prefix)); it->Valid() && it->key()[0] == prefix; it->Next()) ++n;
  return n;
}

TEST_F(MirrorStoreTest, ASnapshotInPartsReplacesTheMirrorOnlyWithItsLastPart) {
  ASSERT_TRUE(mirror_.Replace("d", 5, 2, Puts({{"old", "1"}, {"b", "x"}}), 1, &outcome_).ok());
  ASSERT_TRUE(
      mirror_.StagePart("d", 5, 9, 0, false, Puts({{"a", "1"}, {"b", "2"}}), 2, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 1, false, Puts({{"c", "3"}}), 3, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  MirrorMeta meta;
  EXPECT_EQ(Records(mirror_, "d", &meta),
            (std::map<std::string, std::string>{{"b", "x"}, {"old", "1"}}))
      << "the old mirror is served until the last part";
  EXPECT_EQ(meta.state_seq, 2u);
  // Part 1 again (its answer was lost): acknowledged, not staged twice.
  const int writes = kv_.writes();
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 1, false, Puts({{"c", "3"}}), 3, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kDuplicate);
  EXPECT_EQ(kv_.writes(), writes);
  // A part that skips one, or one of another snapshot: start again from part 0.
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 3, true, Puts({{"e", "5"}}), 4, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kGap);
  ASSERT_TRUE(mirror_.StagePart("d", 5, 10, 2, true, Puts({{"e", "5"}}), 4, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kGap);
  ASSERT_TRUE(mirror_.StagePart("d", 6, 9, 2, true, Puts({{"e", "5"}}), 4, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kGap);
  // The last part: one synced batch with every part's records (a later part's value wins).
  const int syncs = kv_.sync_writes();
  ASSERT_TRUE(
      mirror_.StagePart("d", 5, 9, 2, true, Puts({{"d", "4"}, {"a", "9"}}), 5, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  EXPECT_EQ(kv_.sync_writes(), syncs + 1);
  EXPECT_EQ(Records(mirror_, "d", &meta),
            (std::map<std::string, std::string>{{"a", "9"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}));
  EXPECT_EQ(meta.epoch, 5u);
  EXPECT_EQ(meta.state_seq, 9u);
  EXPECT_EQ(meta.keys, 4u);
  EXPECT_EQ(meta.bytes, 8u);
  EXPECT_EQ(meta.updated_ms, 5);
  EXPECT_EQ(KeysUnder(mem_.get(), kMirrorStagedPrefix), 0u);
  EXPECT_EQ(KeysUnder(mem_.get(), kMirrorStagingPrefix), 0u);
  // The last part again, or any part of it, after it was applied: duplicates.
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 2, true, Puts({{"d", "4"}}), 6, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kDuplicate);
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 0, false, Puts({{"zz", "1"}}), 6, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kDuplicate);
  EXPECT_EQ(KeysUnder(mem_.get(), kMirrorStagedPrefix), 0u);
  // One part that is also the last is a plain replace.
  ASSERT_TRUE(mirror_.StagePart("d", 5, 11, 0, true, Puts({{"z", "1"}}), 7, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  EXPECT_EQ(Records(mirror_, "d"), (std::map<std::string, std::string>{{"z", "1"}}));
}

TEST_F(MirrorStoreTest, PartZeroStartsAgainAndDropsTheOtherStaging) {
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 0, false, Puts({{"a", "1"}}), 1, &outcome_).ok());
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 1, false, Puts({{"b", "2"}}), 1, &outcome_).ok());
  // The agent restarted its snapshot (smaller parts, or a newer point).
  ASSERT_TRUE(mirror_.StagePart("d", 5, 12, 0, false, Puts({{"c", "3"}}), 2, &outcome_).ok());
  EXPECT_EQ(KeysUnder(mem_.get(), kMirrorStagedPrefix), 1u);
  ASSERT_TRUE(mirror_.StagePart("d", 5, 12, 1, true, Puts({{"d", "4"}}), 3, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  EXPECT_EQ(Records(mirror_, "d"), (std::map<std::string, std::string>{{"c", "3"}, {"d", "4"}}));
  EXPECT_EQ(KeysUnder(mem_.get(), kMirrorStagedPrefix), 0u);
}

TEST_F(MirrorStoreTest, StagingSurvivesAFailedWriteAndDeletesAreRefused) {
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 0, false, Puts({{"a", "1"}}), 1, &outcome_).ok());
  kv_.FailNthWrite(1);
  EXPECT_FALSE(mirror_.StagePart("d", 5, 9, 1, true, Puts({{"b", "2"}}), 2, &outcome_).ok());
  MirrorMeta meta;
  EXPECT_EQ(mirror_.Read("d", &meta, [](auto, auto) {}).code(), Status::Code::kNotFound);
  ASSERT_TRUE(mirror_.StagePart("d", 5, 9, 1, true, Puts({{"b", "2"}}), 2, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  EXPECT_EQ(Records(mirror_, "d"), (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}));
  WriteBatch b;
  b.Delete("x");
  EXPECT_EQ(mirror_.StagePart("d", 5, 10, 0, true, b, 1, &outcome_).code(),
            Status::Code::kInvalidArgument);
}

TEST_F(MirrorStoreTest, PagesGiveEveryRecordOnceInKeyOrder) {
  std::map<std::string, std::string> all;
  for (int i = 0; i < 50; ++i) all["k" + std::to_string(1000 + i)] = std::string(i % 7, 'v');
  all[std::string("\0\xff", 2)] = "binary key";
  ASSERT_TRUE(mirror_.Replace("d", 3, 4, Puts(all), 1, &outcome_).ok());
  ASSERT_TRUE(mirror_.Replace("d2", 3, 4, Puts({{"other", "device"}}), 1, &outcome_).ok());
  std::map<std::string, std::string> got;
  std::string after, next;
  int pages = 0;
  do {
    MirrorMeta meta;
    size_t page = 0;
    ASSERT_TRUE(mirror_
                    .ReadPage(
                        "d", after, 40, &meta,
                        [&](std::string_view k, std::string_view v) {
                          EXPECT_TRUE(got.emplace(k, v).second) << "given twice: " << k;
                          page += k.size() + v.size();
                        },
                        &next)
                    .ok());
    EXPECT_EQ(meta.state_seq, 4u);
    EXPECT_GE(page, 1u);
    EXPECT_LE(page, 40u);
    after = next;
    ASSERT_LT(++pages, 100);
  } while (!next.empty());
  EXPECT_EQ(got, all);
  EXPECT_GT(pages, 5);
  // A page limit below one record still gives one record per page.
  MirrorMeta meta;
  size_t n = 0;
  ASSERT_TRUE(mirror_
                  .ReadPage(
                      "d", "", 1, &meta, [&](auto, auto) { ++n; }, &next)
                  .ok());
  EXPECT_EQ(n, 1u);
  EXPECT_FALSE(next.empty());
  EXPECT_EQ(mirror_
                .ReadPage(
                    "none", "", 1, &meta, [](auto, auto) {}, &next)
                .code(),
            Status::Code::kNotFound);
}

TEST(MirrorStoreBoundsTest, OverTheLimitIsRefusedWhole) {
  std::unique_ptr<KvStore> kv = NewMemStore();
  MirrorOptions o;
  o.max_bytes_per_device = 10;
  MirrorStore m(kv.get(), o);
  MirrorOutcome out;
  ASSERT_TRUE(m.Replace("d", 1, 1, Puts({{"k", "123456789"}}), 1, &out).ok());  // exactly 10
  EXPECT_EQ(out, MirrorOutcome::kApplied);
  ASSERT_TRUE(m.Replace("d", 1, 2, Puts({{"k", "1234567890"}}), 1, &out).ok());
  EXPECT_EQ(out, MirrorOutcome::kTooLarge);
  WriteBatch delta;
  delta.Put("j", "1");
  ASSERT_TRUE(m.ApplyDelta("d", 1, 2, 2, delta, 1, &out).ok());
  EXPECT_EQ(out, MirrorOutcome::kTooLarge);
  MirrorMeta meta;
  EXPECT_EQ(Records(m, "d", &meta), (std::map<std::string, std::string>{{"k", "123456789"}}));
  EXPECT_EQ(meta.state_seq, 1u) << "nothing of a refused upload is stored";
  EXPECT_EQ(m.stats().too_large, 2u);

  // A snapshot in parts that outgrows the limit: refused, its staging dropped.
  ASSERT_TRUE(m.StagePart("d", 1, 5, 0, false, Puts({{"a", "12345"}}), 1, &out).ok());
  EXPECT_EQ(out, MirrorOutcome::kApplied);
  ASSERT_TRUE(m.StagePart("d", 1, 5, 1, true, Puts({{"b", "12345"}}), 1, &out).ok());
  EXPECT_EQ(out, MirrorOutcome::kTooLarge);
  EXPECT_EQ(KeysUnder(kv.get(), kMirrorStagedPrefix), 0u);
  EXPECT_EQ(KeysUnder(kv.get(), kMirrorStagingPrefix), 0u);
  EXPECT_EQ(Records(m, "d"), (std::map<std::string, std::string>{{"k", "123456789"}}));
  // A delta that shrinks the mirror is fine again.
  WriteBatch shrink;
  shrink.Put("k", "1");
  ASSERT_TRUE(m.ApplyDelta("d", 1, 2, 2, shrink, 1, &out).ok());
  EXPECT_EQ(out, MirrorOutcome::kApplied);
}

TEST_F(MirrorStoreTest, AFailedWriteChangesNothingAndTheRetryApplies) {
  ASSERT_TRUE(mirror_.Replace("d", 1, 1, Puts({{"a", "1"}}), 1, &outcome_).ok());
  kv_.FailNthWrite(1);
  EXPECT_FALSE(mirror_.Replace("d", 1, 2, Puts({{"b", "2"}}), 2, &outcome_).ok());
  MirrorMeta meta;
  EXPECT_EQ(Records(mirror_, "d", &meta), (std::map<std::string, std::string>{{"a", "1"}}));
  EXPECT_EQ(meta.state_seq, 1u);
  ASSERT_TRUE(mirror_.Replace("d", 1, 2, Puts({{"b", "2"}}), 2, &outcome_).ok());
  EXPECT_EQ(outcome_, MirrorOutcome::kApplied);
  EXPECT_EQ(Records(mirror_, "d"), (std::map<std::string, std::string>{{"b", "2"}}));
}

TEST(MirrorStoreRocksTest, SurvivesAReopenAndKeepsOtherKeys) {
  TempDir dir;
  {
    std::unique_ptr<KvStore> kv;
    ASSERT_TRUE(OpenRocksStore(dir.path(), {}, &kv).ok());
    WriteBatch other;
    other.Put("Sseries", "v");
    other.Put("Ddev", "device");
    ASSERT_TRUE(kv->Write(other, true).ok());
    MirrorStore m(kv.get(), {});
    MirrorOutcome out;
    ASSERT_TRUE(
        m.Replace("dev", 42, 3, Puts({{"f/p", "cursor"}, {"mcaught_up", "1"}}), 5, &out).ok());
    ASSERT_TRUE(m.Replace("dev", 42, 4, Puts({{"f/p", "cursor2"}}), 6, &out).ok());
  }
  std::unique_ptr<KvStore> kv;
  ASSERT_TRUE(OpenRocksStore(dir.path(), {}, &kv).ok());
  MirrorStore m(kv.get(), {});
  MirrorMeta meta;
  EXPECT_EQ(Records(m, "dev", &meta), (std::map<std::string, std::string>{{"f/p", "cursor2"}}));
  EXPECT_EQ(meta.epoch, 42u);
  EXPECT_EQ(meta.state_seq, 4u);
  std::string v;
  EXPECT_TRUE(kv->Get("Sseries", &v).ok());
  EXPECT_TRUE(kv->Get("Ddev", &v).ok());
  EXPECT_EQ(MirrorStore::RecordKey("dev", "f/p"), std::string("Rdev\0f/p", 8));
  EXPECT_EQ(MirrorStore::MetaKey("dev"), "Qdev");
}

TEST(MirrorStoreThreadsTest, ConcurrentUploadsOfOneDeviceKeepTheNewest) {
  std::unique_ptr<KvStore> kv = NewMemStore();
  MirrorStore m(kv.get(), {});
  std::vector<std::jthread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, t] {
      for (uint64_t seq = 1; seq <= 50; ++seq) {
        MirrorOutcome out;
        EXPECT_TRUE(m.Replace("d", 1, seq * 4 + uint64_t(t),
                              Puts({{"seq", std::to_string(seq * 4 + uint64_t(t))}}), 1, &out)
                        .ok());
      }
    });
  }
  threads.clear();
  MirrorMeta meta;
  EXPECT_EQ(Records(m, "d", &meta), (std::map<std::string, std::string>{{"seq", "203"}}));
  EXPECT_EQ(meta.state_seq, 203u);
}

TEST(MirrorStoreMetaTest, DecodeRefusesGarbage) {
  MirrorMeta meta;
  meta.epoch = 1;
  meta.state_seq = 2;
  meta.bytes = 3;
  meta.keys = 4;
  meta.updated_ms = -5;
  MirrorMeta back;
  ASSERT_TRUE(MirrorStore::DecodeMeta(MirrorStore::EncodeMeta(meta), &back));
  EXPECT_EQ(back.updated_ms, -5);
  EXPECT_EQ(back.keys, 4u);
  EXPECT_FALSE(MirrorStore::DecodeMeta("", &back));
  EXPECT_FALSE(MirrorStore::DecodeMeta(MirrorStore::EncodeMeta(meta) + "x", &back));
  std::string bad = MirrorStore::EncodeMeta(meta);
  bad[0] = 9;
  EXPECT_FALSE(MirrorStore::DecodeMeta(bad, &back));
}

}  // namespace
}  // namespace ccmon::gateway
