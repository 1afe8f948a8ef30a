#include "gateway/computed/device_activity.h"

#include <algorithm>
#include <utility>

#include "base/record_codec.h"

namespace ccmon::gateway {
namespace {

constexpr uint8_t kRecordVersion = 1;

std::string RecordKey(std::string_view device) {
  std::string k(1, kDeviceActivityKeyPrefix);
  k.append(device);
  return k;
}

}  // namespace

std::string DeviceActivity::CleanAgent(std::string_view user_agent) {
  std::string out(user_agent.substr(0, kMaxAgentBytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return out;
}

std::string DeviceActivity::EncodeRecord(int64_t last_seen_ms, std::string_view agent) {
  std::string v(1, char(kRecordVersion));
  PutFixed64LE(&v, uint64_t(last_seen_ms));
  PutBytes(&v, agent);
  return v;
}

Status DeviceActivity::DecodeRecord(std::string_view value, int64_t* last_seen_ms,
                                    std::string* agent) {
  if (value.size() < 9 || uint8_t(value[0]) != kRecordVersion) {
    return Status::Corruption("gateway: malformed device activity record");
  }
  const uint64_t ms = DecodeFixed64LE(value.substr(1));
  Reader in(value.substr(9));
  std::string a;
  if (!in.Bytes(&a) || !in.done()) {
    return Status::Corruption("gateway: malformed device activity record");
  }
  *last_seen_ms = int64_t(ms);
  *agent = std::move(a);
  return Status::Ok();
}

Status DeviceActivity::Open(KvStore* kv, Clock* clock, std::unique_ptr<DeviceActivity>* out) {
  std::unique_ptr<DeviceActivity> a(new DeviceActivity(kv, clock ? clock : Clock::Real()));
  auto it = kv->NewIterator();
  for (it->Seek(std::string(1, kDeviceActivityKeyPrefix));
       it->Valid() && it->key()[0] == kDeviceActivityKeyPrefix; it->Next()) {
    Entry e;
    if (Status s = DecodeRecord(it->value(), &e.last_seen_ms, &e.agent); !s.ok()) return s;
    e.persisted_last_seen_ms = e.last_seen_ms;
    e.persisted_agent = e.agent;
    e.persisted = true;
    a->devices_.emplace(std::string(it->key().substr(1)), std::move(e));
  }
  if (!it->status().ok()) return it->status();
  *out = std::move(a);
  return Status::Ok();
}

Status DeviceActivity::WriteLocked(const std::string& device, Entry* e, bool sync) {
  WriteBatch b;
  b.Put(RecordKey(device), EncodeRecord(e->last_seen_ms, e->agent));
  if (Status s = kv_->Write(b, sync); !s.ok()) return s;
  e->persisted_last_seen_ms = e->last_seen_ms;
  e->persisted_agent = e->agent;
  e->persisted = true;
  return Status::Ok();
}

void DeviceActivity::RecordWrite(std::string_view device, std::string_view user_agent) {
  if (device.empty()) return;
  const int64_t now = clock_->NowUnixMs();
  std::string agent = CleanAgent(user_agent);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(device);
  if (it == devices_.end()) it = devices_.emplace(std::string(device), Entry{}).first;
  Entry& e = it->second;
  e.last_seen_ms = std::max(e.last_seen_ms, now);  // a wall clock stepping back keeps the latest
  e.agent = std::move(agent);
  if (!e.persisted || e.agent != e.persisted_agent ||
      e.last_seen_ms - e.persisted_last_seen_ms >= kActivityWriteInterval.count()) {
    (void)WriteLocked(it->first, &e, /*sync=*/false);  // retried at the next write
  }
}

Status DeviceActivity::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  WriteBatch b;
  for (const auto& [device, e] : devices_) {
    if (!e.persisted || e.last_seen_ms != e.persisted_last_seen_ms ||
        e.agent != e.persisted_agent) {
      b.Put(RecordKey(device), EncodeRecord(e.last_seen_ms, e.agent));
    }
  }
  if (b.empty()) return Status::Ok();
  if (Status s = kv_->Write(b, /*sync=*/true); !s.ok()) return s;
  for (auto& [device, e] : devices_) {
    e.persisted_last_seen_ms = e.last_seen_ms;
    e.persisted_agent = e.agent;
    e.persisted = true;
  }
  return Status::Ok();
}

std::vector<DeviceActivityInfo> DeviceActivity::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DeviceActivityInfo> out;
  out.reserve(devices_.size());
  for (const auto& [device, e] : devices_) out.push_back({device, e.last_seen_ms, e.agent});
  return out;
}

}  // namespace ccmon::gateway
