#include "gateway/computed/spend_windows.h"

#include <bit>
#include <cmath>
#include <unordered_map>
#include <utility>

#include "base/record_codec.h"

namespace ccmon::gateway {
namespace {

constexpr uint8_t kRecordVersion = 1;

int64_t MinuteOf(int64_t ms) {
  return ms >= 0 ? ms / kMinuteMs : -((-ms + kMinuteMs - 1) / kMinuteMs);
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
  it.reset();
  if (Status s = kv->Write(expired, /*sync=*/false); !s.ok()) return s;
  *out = std::move(w);
  return Status::Ok();
}

void SpendWindows::Prepare(const std::vector<IncomingSeries>& series, const SeriesTable& before,
                           WriteBatch* batch) {
  pending_set_.clear();
  pending_erase_.clear();
  const int64_t now = clock_->NowUnixMs();
  // Increases by device and minute, before they are added to the buckets.
  std::map<std::string, std::map<int64_t, PicoSum>, std::less<>> increases;
  std::unordered_map<std::string, SeriesState> running;  // series key -> its last sample so far
  for (const IncomingSeries& in : series) {
    if (LabelOf(in.labels, "__name__") != kCostSeriesName) continue;
    const std::string_view device = LabelOf(in.labels, "device");
    if (device.empty()) continue;
    std::string key = SeriesKey(in.labels);
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
      const int64_t minute = MinuteOf(sample.timestamp_ms);
      if (increase > 0 && InWindow(minute, kDayMs, now)) {
        auto d = increases.find(device);
        if (d == increases.end()) d = increases.emplace(std::string(device), Buckets{}).first;
        d->second[minute] += increase;
      }
    }
    running[std::move(key)] = previous;
  }
  for (auto& [device, minutes] : increases) {
    const Buckets* current = nullptr;
    if (auto d = devices_.find(device); d != devices_.end()) current = &d->second;
    Buckets& set = pending_set_[device];
    for (const auto& [minute, increase] : minutes) {
      PicoSum total = increase;
      if (current != nullptr) {
        if (auto b = current->find(minute); b != current->end()) total += b->second;
      }
      set[minute] = total;
      batch->Put(BucketKey(device, minute), EncodeBucket(total));
    }
    // The device's buckets that left the day window go with this write.
    if (current != nullptr) {
      for (const auto& [minute, pico] : *current) {
        if (InWindow(minute, kDayMs, now)) break;
        pending_erase_[device].push_back(minute);
        batch->Delete(BucketKey(device, minute));
      }
    }
  }
}

void SpendWindows::Committed() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [device, minutes] : pending_erase_) {
    auto d = devices_.find(device);
    if (d == devices_.end()) continue;
    for (int64_t m : minutes) d->second.erase(m);
  }
  for (auto& [device, minutes] : pending_set_) {
    auto d = devices_.find(device);
    if (d == devices_.end()) d = devices_.emplace(device, Buckets{}).first;
    for (const auto& [minute, total] : minutes) d->second[minute] = total;
  }
  pending_set_.clear();
  pending_erase_.clear();
}

void SpendWindows::Aborted() {
  pending_set_.clear();
  pending_erase_.clear();
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

}  // namespace ccmon::gateway
