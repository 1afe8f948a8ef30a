// The series cache (gateway/ingest/series_cache.h) alone, and the write handler using it over
// the real GatewayStore: hits store exactly what the full path stores, per device; misses,
// eviction, revoked keys, stale table generations, invalid labels (never cached), requests
// mixing known and new series, labels that do not come as one run.
#include "gateway/ingest/series_cache.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gateway/devices/device_registry.h"
#include "gateway/ingest/write_handler.h"
#include "gateway/store/series_store.h"
#include "store/mem_store.h"
#include "testing/fake_clock.h"
#include "testing/wire_encoder.h"

namespace ccmon::gateway {
namespace {

using testing_util::FakeClock;

constexpr int64_t kNow = 1767225600000;

// --- Request bodies, encoded by hand (so that the label bytes are exactly known).
using testing_util::Bytes;
using testing_util::SampleMessage;
struct Series {
  std::vector<std::pair<std::string, std::string>> labels;
  int64_t ts;
  double value;
  bool sample_first = false;  // the sample between the first label and the others
};
std::string LabelMsg(const std::pair<std::string, std::string>& l) {
  std::string m;
  Bytes(1, l.first, &m);
  Bytes(2, l.second, &m);
  return m;
}
std::string Body(const std::vector<Series>& series) {
  std::string req;
  for (const Series& s : series) {
    std::string ts;
    for (size_t i = 0; i < s.labels.size(); ++i) {
      Bytes(1, LabelMsg(s.labels[i]), &ts);
      if (i == 0 && s.sample_first) Bytes(2, SampleMessage(s.ts, s.value), &ts);
    }
    if (!s.sample_first) Bytes(2, SampleMessage(s.ts, s.value), &ts);
    Bytes(1, ts, &req);
  }
  std::string out;
  snappy::Compress(req.data(), req.size(), &out);
  return out;
}

// --- SeriesCache alone.

const void* FindOne(SeriesCache::Reader* r, std::string_view label_bytes) {
  const void* found = nullptr;
  r->Find(std::span<const std::string_view>(&label_bytes, 1), std::span<const void*>(&found, 1));
  return found;
}

TEST(SeriesCacheTest, FindsOnlyTheSameBytesOfTheSameDeviceAndGeneration) {
  SeriesCache cache(64);
  const SeriesEntry a{"a", {}}, b{"b", {}};
  const std::vector<SeriesCache::Item> items = {{"labels-1", &a}, {"labels-2", &b}};
  cache.Insert("dev", 7, items);
  EXPECT_EQ(cache.size(), 2u);
  {
    SeriesCache::Reader r(&cache, "dev", 7);
    EXPECT_EQ(FindOne(&r, "labels-1"), &a);
    EXPECT_EQ(FindOne(&r, "labels-2"), &b);
    EXPECT_EQ(FindOne(&r, "labels-3"), nullptr);
    EXPECT_EQ(FindOne(&r, "labels-"), nullptr);
    EXPECT_EQ(FindOne(&r, ""), nullptr);
  }
  {
    SeriesCache::Reader other_device(&cache, "dev2", 7);
    EXPECT_EQ(FindOne(&other_device, "labels-1"), nullptr);
    SeriesCache::Reader anonymous(&cache, "", 7);
    EXPECT_EQ(FindOne(&anonymous, "labels-1"), nullptr);
    SeriesCache::Reader other_generation(&cache, "dev", 8);
    EXPECT_EQ(FindOne(&other_generation, "labels-1"), nullptr);
  }
  // The same bytes again replace the entry (no second copy).
  const std::vector<SeriesCache::Item> again = {{"labels-1", &b}};
  cache.Insert("dev", 8, again);
  EXPECT_EQ(cache.size(), 2u);
  {
    SeriesCache::Reader r(&cache, "dev", 8);
    EXPECT_EQ(FindOne(&r, "labels-1"), &b);
  }
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
  SeriesCache::Reader r(&cache, "dev", 8);
  EXPECT_EQ(FindOne(&r, "labels-1"), nullptr);
}

// A block names its device by the cache's one copy of the name, not by bytes next to its
// labels: devices whose names run on into the others' label bytes ("ab" + "c", "a" + "bc"),
// and the empty name, are each their own; a device with no entry finds nothing; after Clear a
// device's name is looked up afresh.
TEST(SeriesCacheTest, DevicesAreComparedByNameNotByBytesBesideTheLabels) {
  SeriesCache cache(64);
  const SeriesEntry x{"x", {}}, y{"y", {}}, z{"z", {}};
  cache.Insert("ab", 1, std::vector<SeriesCache::Item>{{"c", &x}});
  cache.Insert("a", 1, std::vector<SeriesCache::Item>{{"bc", &y}});
  cache.Insert("", 1, std::vector<SeriesCache::Item>{{"abc", &z}});
  {
    SeriesCache::Reader a(&cache, "a", 1);
    EXPECT_EQ(FindOne(&a, "bc"), &y);
    EXPECT_EQ(FindOne(&a, "c"), nullptr);
    EXPECT_EQ(FindOne(&a, "abc"), nullptr);
    SeriesCache::Reader ab(&cache, "ab", 1);
    EXPECT_EQ(FindOne(&ab, "c"), &x);
    EXPECT_EQ(FindOne(&ab, "bc"), nullptr);
    SeriesCache::Reader anonymous(&cache, "", 1);
    EXPECT_EQ(FindOne(&anonymous, "abc"), &z);
    EXPECT_EQ(FindOne(&anonymous, "bc"), nullptr);
    SeriesCache::Reader abc(&cache, "abc", 1);  // never inserted
    EXPECT_EQ(FindOne(&abc, ""), nullptr);
    EXPECT_EQ(FindOne(&abc, "c"), nullptr);
  }
  cache.Clear();
  {
    SeriesCache::Reader a(&cache, "a", 1);
    EXPECT_EQ(FindOne(&a, "bc"), nullptr);
  }
  cache.Insert("a", 1, std::vector<SeriesCache::Item>{{"bc", &z}});
  SeriesCache::Reader a(&cache, "a", 1);
  EXPECT_EQ(FindOne(&a, "bc"), &z);
  SeriesCache::Reader ab(&cache, "ab", 1);
  EXPECT_EQ(FindOne(&ab, "c"), nullptr);
}

TEST(SeriesCacheTest, StaysWithinItsBoundAndNeverAnswersWrong) {
  SeriesCache cache(16);
  EXPECT_EQ(cache.capacity(), 16u);
  std::vector<std::unique_ptr<SeriesEntry>> entries;
  std::vector<std::string> bytes;
  for (int i = 0; i < 1000; ++i) {
    bytes.push_back("series-" + std::to_string(i));
    entries.push_back(std::make_unique<SeriesEntry>(bytes.back(), SeriesState{}));
  }
  for (int i = 0; i < 1000; ++i) {
    const std::vector<SeriesCache::Item> one = {{bytes[i], entries[i].get()}};
    cache.Insert("d", 1, one);
    EXPECT_LE(cache.size(), cache.capacity());
  }
  EXPECT_EQ(cache.size(), cache.capacity());  // full: every later insert replaced a way
  SeriesCache::Reader r(&cache, "d", 1);
  int found = 0;
  for (int i = 0; i < 1000; ++i) {
    const void* e = FindOne(&r, bytes[i]);
    if (e == nullptr) continue;
    ++found;
    EXPECT_EQ(e, entries[i].get()) << i;
  }
  EXPECT_EQ(found, 16);
  EXPECT_EQ(FindOne(&r, bytes[999]), entries[999].get());  // the last inserted is always held
}

// Every byte of a label run counts in its hash, whatever the run's length (the hash reads 32,
// 16, 8 bytes a step and then a tail): runs differing in one byte only, at the start, the
// middle or the end, spread over the sets, so that none is evicted from a cache with room for
// all, and each is found as itself.
TEST(SeriesCacheTest, RunsDifferingInAnyOneByteSpreadOverTheSets) {
  SeriesCache cache(8192);
  std::set<std::string> runs;
  for (size_t length : {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 200, 255}) {
    for (size_t at : {size_t(0), length / 2, length - 1}) {
      for (int v = 0; v < 16; ++v) {
        std::string run(length, 'x');
        run[at] = char(v);
        runs.insert(run);
      }
    }
  }
  const std::vector<std::string> all(runs.begin(), runs.end());
  std::vector<std::unique_ptr<SeriesEntry>> entries;
  std::vector<SeriesCache::Item> items;
  for (const std::string& run : all) {
    entries.push_back(std::make_unique<SeriesEntry>(run, SeriesState{}));
    items.push_back({run, entries.back().get()});
  }
  cache.Insert("dev", 1, items);
  EXPECT_EQ(cache.size(), all.size());
  SeriesCache::Reader r(&cache, "dev", 1);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(FindOne(&r, all[i]), entries[i].get()) << i;
}

TEST(SeriesCacheTest, LongLabelRunsAreNotCached) {
  SeriesCache cache(64);
  const SeriesEntry a{"a", {}};
  const std::string long_bytes(SeriesCache::kMaxLabelBytes + 1, 'x');
  const std::vector<SeriesCache::Item> items = {{long_bytes, &a}};
  cache.Insert("d", 1, items);
  EXPECT_EQ(cache.size(), 0u);
  SeriesCache::Reader r(&cache, "d", 1);
  EXPECT_EQ(FindOne(&r, long_bytes), nullptr);
}

// --- The handler with the cache, over the real store.

// A GatewayStore seen through another generation from `skew` on: the entries it resolves are
// then stale for the store underneath (as after the table were replaced), which refuses them.
class SkewedStore final : public SeriesStore {
 public:
  explicit SkewedStore(GatewayStore* store) : store_(store) {}
  Status Apply(const std::vector<IncomingSeries>& series, const std::vector<rw::Metadata>& md,
               ApplyResult* result) override {
    ++applies;
    return store_->Apply(series, md, result);
  }
  void Read(const std::function<void(const SeriesTable&)>& fn) const override { store_->Read(fn); }
  SeriesStoreStats Stats() const override { return store_->Stats(); }
  bool Resolve(std::span<const std::string_view> keys, std::vector<const SeriesEntry*>* entries,
               uint64_t* generation) const override {
    const bool ok = store_->Resolve(keys, entries, generation);
    *generation += skew;
    return ok;
  }
  uint64_t generation() const override { return store_->generation() + skew; }

  uint64_t skew = 0;
  int applies = 0;

 private:
  GatewayStore* store_;
};

class SeriesCacheHandlerTest : public ::testing::Test {
 protected:
  SeriesCacheHandlerTest() : clock_(kNow), kv_(NewMemStore()), device_kv_(NewMemStore()) {
    EXPECT_TRUE(DeviceRegistry::Open(device_kv_.get(), &clock_, &devices_).ok());
    EXPECT_TRUE(GatewayStore::Open(kv_.get(), &store_).ok());
    EXPECT_TRUE(devices_->Add("A", &key_a_).ok());
    EXPECT_TRUE(devices_->Add("B", &key_b_).ok());
    Reset(store_.get());
  }
  void Reset(SeriesStore* store, size_t cache_entries = 1024) {
    WriteHandlerOptions o;
    o.devices = devices_.get();
    o.clock = &clock_;
    o.limits.series_cache_entries = cache_entries;
    handler_ = std::make_unique<WriteHandler>(store, o);
  }
  unsigned Post(const std::string& key, std::string body) {
    ServerRequest r;
    r.method = "POST";
    r.target = "/api/v1/write";
    r.headers.emplace_back("Content-Type", "application/x-protobuf");
    r.headers.emplace_back("Content-Encoding", "snappy");
    r.headers.emplace_back("Authorization", "Bearer " + key);
    r.body = std::move(body);
    return handler_->Handle(r).status;
  }
  // Every series the store holds: its labels (as a key's) -> state.
  std::map<Labels, SeriesState> Held() const {
    std::map<Labels, SeriesState> out;
    store_->Read([&](const SeriesTable& t) {
      for (const auto& [key, state] : t.series()) {
        Labels l;
        EXPECT_TRUE(LabelsOfKey(key, &l).ok());
        out[l] = state;
      }
    });
    return out;
  }

  FakeClock clock_;
  std::unique_ptr<KvStore> kv_, device_kv_;
  std::unique_ptr<DeviceRegistry> devices_;
  std::unique_ptr<GatewayStore> store_;
  std::string key_a_, key_b_;
  std::unique_ptr<WriteHandler> handler_;
};

Series Cost(std::string model, int64_t ts, double v) {
  return Series{{{"__name__", "cost_total"}, {"model", std::move(model)}, {"job", "x"}}, ts, v};
}

TEST_F(SeriesCacheHandlerTest, AKnownSeriesHitsAndIsStoredAsByTheFullPath) {
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 3000, 1), Cost("m2", kNow - 3000, 2)})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 0u);
  EXPECT_EQ(handler_->stats().series_cache_misses, 2u);
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 2000, 3), Cost("m2", kNow - 2000, 4)})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 2u);
  // A hit's samples follow the same rules: a duplicate stays one.
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 2000, 9)})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 3u);
  EXPECT_EQ(handler_->stats().samples_duplicate, 1u);
  EXPECT_EQ(handler_->stats().samples_accepted, 4u);
  const std::map<Labels, SeriesState> want = {
      {{{"__name__", "cost_total"}, {"device", "A"}, {"job", "x"}, {"model", "m1"}},
       {kNow - 2000, 3}},
      {{{"__name__", "cost_total"}, {"device", "A"}, {"job", "x"}, {"model", "m2"}},
       {kNow - 2000, 4}},
  };
  EXPECT_EQ(Held(), want);
  // What a hit stored is durable like the rest: a reopened store holds the same.
  store_.reset();
  ASSERT_TRUE(GatewayStore::Open(kv_.get(), &store_).ok());
  EXPECT_EQ(Held(), want);
}

TEST_F(SeriesCacheHandlerTest, TwoDevicesSendingTheSameBytesWriteTheirOwnSeries) {
  // The same bytes, naming device "B" in the labels: each key's own device wins, hit or miss.
  Series s{{{"__name__", "up"}, {"device", "B"}}, kNow - 5000, 1};
  for (int round = 0; round < 3; ++round) {
    s.ts = kNow - 5000 + round;
    s.value = 10 + round;
    ASSERT_EQ(Post(key_a_, Body({s})), 204u);
    s.value = 20 + round;
    ASSERT_EQ(Post(key_b_, Body({s})), 204u);
  }
  EXPECT_EQ(handler_->stats().series_cache_hits, 4u);  // rounds 2 and 3, each device
  const std::map<Labels, SeriesState> want = {
      {{{"__name__", "up"}, {"device", "A"}}, {kNow - 4998, 12}},
      {{{"__name__", "up"}, {"device", "B"}}, {kNow - 4998, 22}},
  };
  EXPECT_EQ(Held(), want);
}

TEST_F(SeriesCacheHandlerTest, ARevokedKeyIsRefusedBeforeTheCache) {
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 3000, 1)})), 204u);
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 2000, 2)})), 204u);
  ASSERT_EQ(handler_->stats().series_cache_hits, 1u);
  ASSERT_TRUE(devices_->Revoke("A").ok());
  EXPECT_EQ(Post(key_a_, Body({Cost("m1", kNow - 1000, 3)})), 401u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 1u);
  EXPECT_EQ(Held().begin()->second, (SeriesState{kNow - 2000, 2}));
  // A rotated key: the old one is refused likewise; the new one names the same device, whose
  // series (and cache entries) are the same.
  ASSERT_EQ(Post(key_b_, Body({Cost("m1", kNow - 3000, 1)})), 204u);
  std::string rotated;
  ASSERT_TRUE(devices_->Rotate("B", &rotated).ok());
  EXPECT_EQ(Post(key_b_, Body({Cost("m1", kNow - 1000, 3)})), 401u);
  ASSERT_EQ(Post(rotated, Body({Cost("m1", kNow - 1000, 4)})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 2u);
  const std::map<Labels, SeriesState> want = {
      {{{"__name__", "cost_total"}, {"device", "A"}, {"job", "x"}, {"model", "m1"}},
       {kNow - 2000, 2}},
      {{{"__name__", "cost_total"}, {"device", "B"}, {"job", "x"}, {"model", "m1"}},
       {kNow - 1000, 4}},
  };
  EXPECT_EQ(Held(), want);
}

TEST_F(SeriesCacheHandlerTest, ARequestMixingKnownAndNewSeries) {
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 3000, 1)})), 204u);
  ASSERT_EQ(Post(key_a_, Body({Cost("m2", kNow - 2000, 2), Cost("m1", kNow - 2000, 3),
                               Cost("m3", kNow - 2000, 4)})),
            204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 1u);
  EXPECT_EQ(handler_->stats().series_cache_misses, 3u);
  ASSERT_EQ(Post(key_a_, Body({Cost("m3", kNow - 1000, 5), Cost("m2", kNow - 1000, 6),
                               Cost("m1", kNow - 1000, 7)})),
            204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 4u);
  const auto held = Held();
  ASSERT_EQ(held.size(), 3u);
  for (const auto& [labels, state] : held) EXPECT_EQ(state.timestamp_ms, kNow - 1000);
}

TEST_F(SeriesCacheHandlerTest, InvalidLabelsAreNeverCached) {
  const Series bad_utf8{{{"__name__", "up"}, {"x", "\xc3"}}, kNow - 1000, 1};
  const Series duplicate_name{{{"__name__", "up"}, {"x", "1"}, {"x", "2"}}, kNow - 1000, 1};
  const Series no_name{{{"x", "1"}}, kNow - 1000, 1};
  const Series good{{{"__name__", "up"}}, kNow - 1000, 1};
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(Post(key_a_, Body({good, bad_utf8})), 400u);
    EXPECT_EQ(Post(key_a_, Body({good, duplicate_name})), 400u);
    EXPECT_EQ(Post(key_a_, Body({no_name})), 400u);
  }
  EXPECT_EQ(handler_->stats().series_cache_hits, 0u);
  EXPECT_TRUE(Held().empty());
  // The valid series of those requests was never stored, so it is not cached either.
  ASSERT_EQ(Post(key_a_, Body({good})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 0u);
}

TEST_F(SeriesCacheHandlerTest, LabelsNotInOneRunAreNotCachedButStored) {
  Series split{{{"__name__", "up"}, {"job", "x"}}, kNow - 3000, 1, /*sample_first=*/true};
  ASSERT_EQ(Post(key_a_, Body({split})), 204u);
  split.ts = kNow - 2000;
  ASSERT_EQ(Post(key_a_, Body({split})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 0u);
  const std::map<Labels, SeriesState> want = {
      {{{"__name__", "up"}, {"device", "A"}, {"job", "x"}}, {kNow - 2000, 1}}};
  EXPECT_EQ(Held(), want);
}

TEST_F(SeriesCacheHandlerTest, WithoutTheCacheNothingIsCounted) {
  Reset(store_.get(), 0);
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 3000, 1)})), 204u);
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 2000, 1)})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 0u);
  EXPECT_EQ(handler_->stats().series_cache_misses, 0u);
  EXPECT_EQ(Held().size(), 1u);
}

// A cached entry whose table generation is gone (the series' entry may not exist any more):
// the store refuses the request, nothing of it applied, and the handler builds it again the
// full way: the same 204 and the same state as without the cache.
TEST_F(SeriesCacheHandlerTest, AStaleEntryIsRefusedAndTheRequestTakesTheFullPath) {
  SkewedStore skewed(store_.get());
  Reset(&skewed);
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 3000, 1)})), 204u);
  skewed.skew = 0;
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 2000, 2)})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 1u);
  EXPECT_EQ(skewed.applies, 2);
  // From now on the cache's entries (resolved at the old generation) are stale for the store.
  // The handler's generation follows the skewed one, so its lookups still hit; the real store
  // sees entries of another generation and refuses them.
  skewed.skew = 1000;
  // The entries were cached at generation g; the handler now asks with g + 1000: a miss.
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 1000, 3)})), 204u);
  EXPECT_EQ(handler_->stats().series_cache_hits, 1u);
  EXPECT_EQ(skewed.applies, 3);
  // Cached now at g + 1000, which the real store does not have: refused, built again, stored.
  ASSERT_EQ(Post(key_a_, Body({Cost("m1", kNow - 500, 4), Cost("m2", kNow - 500, 5)})), 204u);
  EXPECT_EQ(skewed.applies, 5);  // the refused apply and the retry
  EXPECT_EQ(handler_->stats().samples_accepted, 5u);
  EXPECT_EQ(handler_->stats().requests_by_code[0], 4u);  // four 204s
  const std::map<Labels, SeriesState> want = {
      {{{"__name__", "cost_total"}, {"device", "A"}, {"job", "x"}, {"model", "m1"}},
       {kNow - 500, 4}},
      {{{"__name__", "cost_total"}, {"device", "A"}, {"job", "x"}, {"model", "m2"}},
       {kNow - 500, 5}},
  };
  EXPECT_EQ(Held(), want);
}

// The store itself refuses an entry of another generation, and applies nothing of the request.
TEST(GatewayStoreEntryTest, AnEntryOfAnotherGenerationIsRefusedWhole) {
  auto kv = NewMemStore();
  std::unique_ptr<GatewayStore> store;
  ASSERT_TRUE(GatewayStore::Open(kv.get(), &store).ok());
  ApplyResult result;
  const Labels up = {{"__name__", "up"}};
  ASSERT_TRUE(store->Apply({IncomingSeries(up, {{kNow - 2000, 1}})}, {}, &result).ok());
  const std::string key = SeriesKey(up);
  const std::vector<std::string_view> keys = {key};
  std::vector<const SeriesEntry*> entries;
  uint64_t generation = 0;
  ASSERT_TRUE(store->Resolve(keys, &entries, &generation));
  ASSERT_NE(entries[0], nullptr);
  EXPECT_EQ(generation, store->generation());

  IncomingSeries by_entry({}, {{kNow - 1000, 2}});
  by_entry.entry = entries[0];
  by_entry.generation = generation + 1;
  const Labels other = {{"__name__", "other"}};
  Status s = store->Apply({IncomingSeries(other, {{kNow - 1000, 1}}), by_entry}, {}, &result);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(store->Stats().series, 1u);
  EXPECT_EQ(entries[0]->second, (SeriesState{kNow - 2000, 1}));

  by_entry.generation = generation;
  ASSERT_TRUE(store->Apply({by_entry}, {}, &result).ok());
  EXPECT_EQ(result.accepted, 1u);
  EXPECT_EQ(entries[0]->second, (SeriesState{kNow - 1000, 2}));
}

}  // namespace
}  // namespace ccmon::gateway
