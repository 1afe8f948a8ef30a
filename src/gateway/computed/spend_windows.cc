#include "gateway/computed/spend_windows.h"

#include <bit>
#include <cmath>
#include <unordered_map>
#include <utility>

#include "base/record_codec.h"
#include "base/timeutil.h"

namespace ccmon::gateway {
namespace {

constexpr uint8_t kRecordVersion = 1;

int64_t MinuteOf(int64_t ms) {
  return ms >= 0 ? ms / kMinuteMs : -((-ms + kMinuteMs - 1) / kMinuteMs);
}

int64_t DayOf(int64_t ms) { return FloorDiv(ms, kDayMs); }

// A day bucket is kept while younger than kDayBucketRetentionDays.
bool DayKept(int64_t day, int64_t now_ms) {
  return (day + kDayBucketRetentionDays) * kDayMs > now_ms;
}

// The UTC day of the 1st of `day`'s month.
int64_t FirstDayOfMonth(int64_t day) {
  int y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(day, &y, &m, &d);
  return DaysFromCivil(y, m, 1);
}

// A bucket of `minute` still counts in a window of `window_ms` at `now_ms`.
bool InWindow(int64_t minute, int64_t window_ms, int64_t now_ms) {
  return minute * kMinuteMs + window_ms > now_ms;
}

std::string_view LabelOf(const Labels& labels, std::string_view name) {
  for (const auto& [n, v] : labels) {
    if (n == name) return v;
  }
  return {};
}

}  // namespace

bool UsdToPicoExact(double usd, PicoSum* out) {
  if (!std::isfinite(usd) || usd < 0 || usd > kMaxCounterUsd) return false;
  if (usd == 0) {
    *out = 0;
    return true;
  }
  const uint64_t bits = std::bit_cast<uint64_t>(usd);
  const int exponent_field = int((bits >> 52) & 0x7ff);
  uint64_t mantissa = bits & ((uint64_t(1) << 52) - 1);
  int exponent = -1074;  // usd = mantissa * 2^exponent
  if (exponent_field != 0) {
    mantissa |= uint64_t(1) << 52;
    exponent = exponent_field - 1075;
  }
  // usd <= 1e15 < 2^52, so exponent < 0; mantissa * 10^12 < 2^93.
  const unsigned __int128 scaled = static_cast<unsigned __int128>(mantissa) * 1'000'000'000'000ULL;
  const int shift = -exponent;
  if (shift > 100) {
    *out = 0;
    return true;
  }
  unsigned __int128 q = scaled >> shift;
  const unsigned __int128 rem = scaled - (q << shift);
  if (rem >= (static_cast<unsigned __int128>(1) << (shift - 1))) ++q;  // half away from zero
  *out = PicoSum(q);
  return true;
}

std::string SpendWindows::BucketKey(std::string_view device, int64_t minute) {
  std::string k(1, kSpendKeyPrefix);
  PutBytes(&k, device);
  PutFixed64BE(&k, uint64_t(minute));
  return k;
}

Status SpendWindows::DecodeBucketKey(std::string_view key, std::string* device, int64_t* minute) {
  if (key.empty() || key[0] != kSpendKeyPrefix) {
    return Status::Corruption("gateway: malformed spend bucket key");
  }
  Reader in(key.substr(1));
  uint64_t m = 0;
  if (!in.Bytes(device) || !in.Fixed64BE(&m) || !in.done()) {
    return Status::Corruption("gateway: malformed spend bucket key");
  }
  *minute = int64_t(m);
  return Status::Ok();
}

std::string SpendWindows::DayBucketKey(std::string_view device, int64_t day) {
  std::string k(1, kDaySpendKeyPrefix);
  PutBytes(&k, device);
  PutFixed64BE(&k, uint64_t(day));
  return k;
}

Status SpendWindows::DecodeDayBucketKey(std::string_view key, std::string* device, int64_t* day) {
  if (key.empty() || key[0] != kDaySpendKeyPrefix) {
    return Status::Corruption("gateway: malformed day spend bucket key");
  }
  Reader in(key.substr(1));
  uint64_t d = 0;
  if (!in.Bytes(device) || !in.Fixed64BE(&d) || !in.done()) {
    return Status::Corruption("gateway: malformed day spend bucket key");
  }
  *day = int64_t(d);
  return Status::Ok();
}

std::string SpendWindows::EncodeBucket(PicoSum pico) {
  std::string v(1, char(kRecordVersion));
  PutInt128(&v, pico);
  return v;
}

Status SpendWindows::DecodeBucket(std::string_view value, PicoSum* pico) {
  Reader in(value);
  uint8_t version = 0;
  if (!in.Byte(&version) || version != kRecordVersion || !in.Int128(pico) || !in.done()) {
    return Status::Corruption("gateway: malformed spend bucket");
  }
  return Status::Ok();
}

Status SpendWindows::Open(KvStore* kv, Clock* clock, std::unique_ptr<SpendWindows>* out) {
  std::unique_ptr<SpendWindows> w(new SpendWindows(kv, clock ? clock : Clock::Real()));
  const int64_t now = w->clock_->NowUnixMs();
  WriteBatch expired;
  auto it = kv->NewIterator();
  for (it->Seek(std::string(1, kSpendKeyPrefix)); it->Valid() && it->key()[0] == kSpendKeyPrefix;
       it->Next()) {
    std::string device;
    int64_t minute = 0;
    PicoSum pico = 0;
    if (Status s = DecodeBucketKey(it->key(), &device, &minute); !s.ok()) return s;
    if (Status s = DecodeBucket(it->value(), &pico); !s.ok()) return s;
    if (!InWindow(minute, kDayMs, now)) {
      expired.Delete(it->key());
      continue;
    }
    w->devices_[device][minute] = pico;
  }
  if (!it->status().ok()) return it->status();
  for (it->Seek(std::string(1, kDaySpendKeyPrefix));
       it->Valid() && it->key()[0] == kDaySpendKeyPrefix; it->Next()) {
    std::string device;
    int64_t day = 0;
    PicoSum pico = 0;
    if (Status s = DecodeDayBucketKey(it->key(), &device, &day); !s.ok()) return s;
    if (Status s = DecodeBucket(it->value(), &pico); !s.ok()) return s;
    if (!DayKept(day, now)) {
      expired.Delete(it->key());
      continue;
    }
    w->days_[device][day] = pico;
  }
  if (!it->status().ok()) return it->status();
  it.reset();
  if (Status s = kv->Write(expired, /*sync=*/false); !s.ok()) return s;
  *out = std::move(w);
  return Status::Ok();
}

template <typename KeyOf, typename Keep>
void SpendWindows::StageBuckets(
    const std::map<std::string, Buckets, std::less<>>& increases,
    const std::map<std::string, Buckets, std::less<>>& current, KeyOf key_of, Keep keep,
    WriteBatch* batch, std::map<std::string, Buckets, std::less<>>* pending_set,
    std::map<std::string, std::vector<int64_t>, std::less<>>* pending_erase) {
  for (const auto& [device, buckets] : increases) {
    const Buckets* now_held = nullptr;
    if (auto d = current.find(device); d != current.end()) now_held = &d->second;
    Buckets& set = (*pending_set)[device];
    for (const auto& [bucket, increase] : buckets) {
      PicoSum total = increase;
      if (now_held != nullptr) {
        if (auto b = now_held->find(bucket); b != now_held->end()) total += b->second;
      }
      set[bucket] = total;
      batch->Put(key_of(device, bucket), EncodeBucket(total));
    }
    // The device's buckets that left their window go with this write.
    if (now_held != nullptr) {
      for (const auto& [bucket, pico] : *now_held) {
        if (keep(bucket)) break;
        (*pending_erase)[device].push_back(bucket);
        batch->Delete(key_of(device, bucket));
      }
    }
  }
}

void SpendWindows::Prepare(const std::vector<IncomingSeries>& series, const SeriesTable& before,
                           WriteBatch* batch) {
  PrepareGroup({&series}, before, batch);
}

void SpendWindows::PrepareGroup(const std::vector<const std::vector<IncomingSeries>*>& requests,
                                const SeriesTable& before, WriteBatch* batch) {
  pending_set_.clear();
  pending_erase_.clear();
  pending_day_set_.clear();
  pending_day_erase_.clear();
  const int64_t now = clock_->NowUnixMs();
  // Increases by device and minute (and by device and UTC day), before they are added to the
  // buckets.
  std::map<std::string, Buckets, std::less<>> increases, day_increases;
  auto add = [](std::map<std::string, Buckets, std::less<>>* to, std::string_view device,
                int64_t bucket, PicoSum increase) {
    auto d = to->find(device);
    if (d == to->end()) d = to->emplace(std::string(device), Buckets{}).first;
    d->second[bucket] += increase;
  };
  std::unordered_map<std::string, SeriesState> running;  // series key -> its last sample so far
  for (const std::vector<IncomingSeries>* request : requests) {
    for (const IncomingSeries& in : *request) {
      // Only the cost series count: a look at the name, without building anything.
      const std::string_view given = GivenKeyOf(in);
      const bool keyed = !given.empty();
      if ((keyed ? NameViewOfKey(given) : LabelOf(in.labels, "__name__")) != kCostSeriesName) {
        continue;
      }
      const std::string_view device =
          keyed ? LabelOfKey(given, "device") : LabelOf(in.labels, "device");
      if (device.empty()) continue;
      std::string key = keyed ? std::string(given) : SeriesKey(in.labels);
      bool has_previous = true;
      SeriesState previous;
      if (auto r = running.find(key); r != running.end()) {
        previous = r->second;
      } else if (auto t = before.series().find(key); t != before.series().end()) {
        previous = t->second;
      } else {
        has_previous = false;
      }
      for (const rw::Sample& sample : in.samples) {
        if (has_previous && sample.timestamp_ms <= previous.timestamp_ms) continue;  // duplicate
        PicoSum value = 0, previous_value = 0, increase = 0;
        if (UsdToPicoExact(sample.value, &value)) {
          if (!has_previous) {
            increase = value;  // a counter starts at 0
          } else if (UsdToPicoExact(previous.value, &previous_value)) {
            increase = value >= previous_value ? value - previous_value : value;  // reset
          }  // else: after an invalid value, a new baseline
        }
        previous = SeriesState{sample.timestamp_ms, sample.value};
        has_previous = true;
        if (increase <= 0) continue;
        const int64_t minute = MinuteOf(sample.timestamp_ms);
        if (InWindow(minute, kDayMs, now)) add(&increases, device, minute, increase);
        const int64_t day = DayOf(sample.timestamp_ms);
        if (DayKept(day, now)) add(&day_increases, device, day, increase);
      }
      running[std::move(key)] = previous;
    }
  }
  StageBuckets(
      increases, devices_, &SpendWindows::BucketKey,
      [now](int64_t minute) { return InWindow(minute, kDayMs, now); }, batch, &pending_set_,
      &pending_erase_);
  StageBuckets(
      day_increases, days_, &SpendWindows::DayBucketKey,
      [now](int64_t day) { return DayKept(day, now); }, batch, &pending_day_set_,
      &pending_day_erase_);
}

namespace {

using BucketMap = std::map<std::string, std::map<int64_t, PicoSum>, std::less<>>;

void ApplyPending(BucketMap* held, BucketMap* set,
                  std::map<std::string, std::vector<int64_t>, std::less<>>* erase) {
  for (auto& [device, buckets] : *erase) {
    auto d = held->find(device);
    if (d == held->end()) continue;
    for (int64_t b : buckets) d->second.erase(b);
  }
  for (auto& [device, buckets] : *set) {
    auto d = held->find(device);
    if (d == held->end()) d = held->emplace(device, std::map<int64_t, PicoSum>{}).first;
    for (const auto& [bucket, total] : buckets) d->second[bucket] = total;
  }
  set->clear();
  erase->clear();
}

}  // namespace

void SpendWindows::Committed() {
  std::lock_guard<std::mutex> lock(mu_);
  ApplyPending(&devices_, &pending_set_, &pending_erase_);
  ApplyPending(&days_, &pending_day_set_, &pending_day_erase_);
}

void SpendWindows::Aborted() {
  pending_set_.clear();
  pending_erase_.clear();
  pending_day_set_.clear();
  pending_day_erase_.clear();
}

std::vector<DeviceSpend> SpendWindows::Spend(int64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DeviceSpend> out;
  out.reserve(devices_.size());
  for (const auto& [device, buckets] : devices_) {
    DeviceSpend s;
    s.device = device;
    // Buckets ascend: skip to the first of the day window, then sum.
    for (auto b = buckets.lower_bound(MinuteOf(now_ms - kDayMs)); b != buckets.end(); ++b) {
      if (!InWindow(b->first, kDayMs, now_ms)) continue;
      s.last_day += b->second;
      if (InWindow(b->first, kHourMs, now_ms)) s.last_hour += b->second;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<DeviceCalendarSpend> SpendWindows::CalendarSpendAt(int64_t now_ms) const {
  const int64_t today = DayOf(now_ms);
  const int64_t month_start = FirstDayOfMonth(today);
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DeviceCalendarSpend> out;
  out.reserve(days_.size());
  for (const auto& [device, buckets] : days_) {
    DeviceCalendarSpend s;
    s.device = device;
    for (auto b = buckets.lower_bound(month_start); b != buckets.end(); ++b) {
      s.utc_month += b->second;
      if (b->first == today) s.utc_today += b->second;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ccmon::gateway
