// SpendWindows: each device's rolling spend (claude_hourly_spend_usd, claude_daily_spend_usd)
// from event-time cost, in durable per-device minute buckets (docs/store-format.md "Gateway":
// `T` records; the rule in docs/accounting.md "Gateway-computed series").
//
// The cost is the increases of `claude_cost_usd_total` series with a `device` label, each
// attributed to the minute of the sample that brought it (floor(timestamp / 60 s)):
//   - samples at or before their series' last timestamp are duplicates and bring nothing (the
//     SeriesTable rule, so a retried request counts once);
//   - a series' first sample brings its whole value (a counter starts at 0);
//   - a sample below the previous one is a counter reset and brings its whole value;
//   - values are converted to integer pico-dollars exactly (UsdToPicoExact) and summed as
//     integers, so a series' increases telescope to exactly its last value minus its first;
//   - a NaN (a staleness marker), infinite, negative or over-$1e15 value brings nothing, and the
//     next valid value after it is a new baseline (brings nothing).
// A bucket of minute m counts in the last hour while now < m·60 s + 1 h and in the last day
// while now < m·60 s + 24 h; older buckets are deleted (from memory and, at the device's next
// write or at Open, from the store), so memory is at most 1450 buckets per device.
//
// The same increases are also summed per device and UTC calendar day (floor(timestamp / 24 h)),
// for the status page's "today" and "this month" (CalendarSpendAt): day buckets (`U` records)
// are kept kDayBucketRetentionDays, so that the current UTC month is always whole, and deleted
// like the minute buckets (at the device's next write, at Open). At most 63 per device.
//
// Durability: it is GatewayStore's ApplyListener (series_store.h): the buckets a request changes
// are written in the request's own synced WriteBatch, so they are durable exactly when its
// samples are, and a restarted gateway serves the same spend.
//
// Threading: Prepare, Committed and Aborted are serialized by GatewayStore::Apply; Spend may run
// concurrently with them and with itself.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/money.h"
#include "base/status.h"
#include "gateway/store/series_store.h"
#include "store/kv_store.h"

namespace ccmon::gateway {

inline constexpr char kSpendKeyPrefix = 'T';
inline constexpr std::string_view kCostSeriesName = "claude_cost_usd_total";
inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kHourMs = 3'600'000;
inline constexpr int64_t kDayMs = 86'400'000;
// UTC calendar-day buckets (the status page, gateway/status/): their key prefix, and how long a
// day's bucket is kept (a month is at most 31 days; the rest covers the previous month).
inline constexpr char kDaySpendKeyPrefix = 'U';
inline constexpr int64_t kDayBucketRetentionDays = 62;
// Larger money values are not counted (kept below 2^52 so that the conversion stays exact).
inline constexpr double kMaxCounterUsd = 1e15;

// `usd` as pico-dollars, rounded half away from zero from the double's exact value (no
// intermediate rounding: the agent's values are PicoToUsd of exact sums, so they come back
// exactly below $4096 and within 1 pico above). False for NaN, infinities, negative values and
// values over kMaxCounterUsd.
bool UsdToPicoExact(double usd, PicoSum* out);

struct DeviceSpend {
  std::string device;
  PicoSum last_hour = 0;
  PicoSum last_day = 0;
};

// A device's spend by UTC calendar: the buckets of the current UTC day, and of every day from
// the 1st of the current UTC month on (a sample up to --max-future ahead may fall in tomorrow:
// it counts in the month, not today).
struct DeviceCalendarSpend {
  std::string device;
  PicoSum utc_today = 0;
  PicoSum utc_month = 0;
};

class SpendWindows final : public ApplyListener {
 public:
  // Loads the buckets from `kv` (borrowed; must outlive this), deleting minute buckets older
  // than a day and day buckets older than kDayBucketRetentionDays by `clock` (borrowed; nullptr:
  // Clock::Real()). kCorruption for a record that does not decode; the KvStore's errors as they
  // are.
  static Status Open(KvStore* kv, Clock* clock, std::unique_ptr<SpendWindows>* out);

  // A group's requests walked in place (the default would copy every series of a group of
  // several requests into one vector first); only claude_cost_usd_total series are looked at.
  void PrepareGroup(const std::vector<const std::vector<IncomingSeries>*>& requests,
                    const SeriesTable& before, WriteBatch* batch) override;
  void Prepare(const std::vector<IncomingSeries>& series, const SeriesTable& before,
               WriteBatch* batch) override;
  void Committed() override;
  void Aborted() override;

  // Every device with a bucket, by name, and its spend at `now_ms` (0 when no bucket is in a
  // window).
  std::vector<DeviceSpend> Spend(int64_t now_ms) const;
  // Every device with a day bucket, by name, and its UTC today / month-to-date at `now_ms`.
  std::vector<DeviceCalendarSpend> CalendarSpendAt(int64_t now_ms) const;

  // Codecs (exposed for tests). Key: 'T', the device (varint length and bytes), the minute
  // (floor(ms / 60000), int64 big-endian). Value: version byte 1, the pico sum (PutInt128).
  static std::string BucketKey(std::string_view device, int64_t minute);
  static Status DecodeBucketKey(std::string_view key, std::string* device, int64_t* minute);
  // Day buckets: 'U', the device (varint length and bytes), the UTC day (floor(ms / 86400000),
  // int64 big-endian); the value as a minute bucket's.
  static std::string DayBucketKey(std::string_view device, int64_t day);
  static Status DecodeDayBucketKey(std::string_view key, std::string* device, int64_t* day);
  static std::string EncodeBucket(PicoSum pico);
  static Status DecodeBucket(std::string_view value, PicoSum* pico);

 private:
  SpendWindows(KvStore* kv, Clock* clock) : clock_(clock) { (void)kv; }
  using Buckets = std::map<int64_t, PicoSum>;  // minute (or day) -> pico
  // Stages the increases of one kind of bucket (minutes or days) for `batch`: new totals into
  // *pending_set, buckets of the changed devices that left `keep` into *pending_erase.
  template <typename KeyOf, typename Keep>
  static void StageBuckets(const std::map<std::string, Buckets, std::less<>>& increases,
                           const std::map<std::string, Buckets, std::less<>>& current, KeyOf key_of,
                           Keep keep, WriteBatch* batch,
                           std::map<std::string, Buckets, std::less<>>* pending_set,
                           std::map<std::string, std::vector<int64_t>, std::less<>>* pending_erase);

  Clock* clock_;
  mutable std::mutex mu_;  // guards devices_ and days_ against Spend and CalendarSpendAt
                           // (Committed is their only writer)
  std::map<std::string, Buckets, std::less<>> devices_;
  // What the prepared request will do once committed.
  std::map<std::string, Buckets, std::less<>> pending_set_;
  std::map<std::string, std::vector<int64_t>, std::less<>> pending_erase_;
  // The same for the UTC day buckets.
  std::map<std::string, Buckets, std::less<>> days_;
  std::map<std::string, Buckets, std::less<>> pending_day_set_;
  std::map<std::string, std::vector<int64_t>, std::less<>> pending_day_erase_;
};

}  // namespace ccmon::gateway
