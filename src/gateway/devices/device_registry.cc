#include "gateway/devices/device_registry.h"

#include <cstring>

#include "base/record_codec.h"

namespace ccmon::gateway {
namespace {

constexpr char kRecordVersion = 1;
constexpr size_t kRecordSize = 1 + 8 + 8 + 1 + 32;

std::string HashKey(const DeviceKeyHash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

std::string StoreKey(std::string_view name) {
  std::string k(1, kDeviceKeyPrefixByte);
  k.append(name);
  return k;
}

}  // namespace

bool IsValidDeviceName(std::string_view name) {
  if (name.empty() || name.size() > kMaxDeviceNameLength) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidNewDeviceName(std::string_view name) {
  return IsValidDeviceName(name) && name != "." && name != "..";
}

std::string DeviceRegistry::EncodeRecord(const Record& r) {
  std::string v(1, kRecordVersion);
  PutFixed64LE(&v, uint64_t(r.created_ms));
  PutFixed64LE(&v, uint64_t(r.last_seen_ms));
  v.push_back(r.revoked ? 1 : 0);
  v.append(reinterpret_cast<const char*>(r.hash.data()), r.hash.size());
  return v;
}

Status DeviceRegistry::DecodeRecord(std::string_view value, Record* r) {
  if (value.size() != kRecordSize || value[0] != kRecordVersion || uint8_t(value[17]) > 1) {
    return Status::Corruption("gateway: malformed device record");
  }
  Record out;
  out.created_ms = int64_t(DecodeFixed64LE(value.substr(1)));
  out.last_seen_ms = int64_t(DecodeFixed64LE(value.substr(9)));
  out.revoked = value[17] == 1;
  std::memcpy(out.hash.data(), value.data() + 18, out.hash.size());
  *r = out;
  return Status::Ok();
}

Status DeviceRegistry::Open(KvStore* kv, Clock* clock, std::unique_ptr<DeviceRegistry>* out) {
  std::unique_ptr<DeviceRegistry> reg(new DeviceRegistry(kv, clock ? clock : Clock::Real()));
  auto it = kv->NewIterator();
  for (it->Seek(std::string(1, kDeviceKeyPrefixByte));
       it->Valid() && it->key()[0] == kDeviceKeyPrefixByte; it->Next()) {
    const std::string name(it->key().substr(1));
    Device d;
    if (Status s = DecodeRecord(it->value(), &d.record); !s.ok()) return s;
    if (!IsValidDeviceName(name)) return Status::Corruption("gateway: malformed device name");
    d.persisted_last_seen_ms = d.record.last_seen_ms;
    if (!d.record.revoked) reg->by_hash_[HashKey(d.record.hash)] = name;
    reg->devices_.emplace(name, d);
  }
  if (!it->status().ok()) return it->status();
  *out = std::move(reg);
  return Status::Ok();
}

Status DeviceRegistry::WriteLocked(std::string_view name, const Record& r, bool sync) {
  WriteBatch batch;
  batch.Put(StoreKey(name), EncodeRecord(r));
  return kv_->Write(batch, sync);
}

Status DeviceRegistry::Add(std::string_view name, std::string* key) {
  if (!IsValidNewDeviceName(name)) return Status::InvalidArgument(kDeviceNameRule);
  std::string k;
  if (Status s = GenerateDeviceKey(&k); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (devices_.find(name) != devices_.end()) {
    return Status::InvalidArgument("device " + std::string(name) + " already exists");
  }
  Device d;
  d.record.created_ms = clock_->NowUnixMs();
  d.record.hash = HashDeviceKey(k);
  if (Status s = WriteLocked(name, d.record, /*sync=*/true); !s.ok()) return s;
  by_hash_[HashKey(d.record.hash)] = std::string(name);
  devices_.emplace(std::string(name), d);
  *key = std::move(k);
  return Status::Ok();
}

Status DeviceRegistry::Rotate(std::string_view name, std::string* key) {
  std::string k;
  if (Status s = GenerateDeviceKey(&k); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(name);
  if (it == devices_.end()) return Status::NotFound("no device " + std::string(name));
  Record r = it->second.record;
  r.revoked = false;
  r.hash = HashDeviceKey(k);
  if (Status s = WriteLocked(name, r, /*sync=*/true); !s.ok()) return s;
  if (!it->second.record.revoked) by_hash_.erase(HashKey(it->second.record.hash));
  by_hash_[HashKey(r.hash)] = it->first;
  it->second.record = r;
  it->second.persisted_last_seen_ms = r.last_seen_ms;
  *key = std::move(k);
  return Status::Ok();
}

Status DeviceRegistry::Revoke(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(name);
  if (it == devices_.end()) return Status::NotFound("no device " + std::string(name));
  if (it->second.record.revoked) return Status::Ok();
  Record r = it->second.record;
  r.revoked = true;
  r.hash = DeviceKeyHash{};
  if (Status s = WriteLocked(name, r, /*sync=*/true); !s.ok()) return s;
  by_hash_.erase(HashKey(it->second.record.hash));
  it->second.record = r;
  it->second.persisted_last_seen_ms = r.last_seen_ms;
  return Status::Ok();
}

std::vector<DeviceInfo> DeviceRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DeviceInfo> out;
  out.reserve(devices_.size());
  for (const auto& [name, d] : devices_) {
    out.push_back(DeviceInfo{name, d.record.created_ms, d.record.last_seen_ms, d.record.revoked});
  }
  return out;
}

bool DeviceRegistry::Authenticate(std::string_view token, std::string* device) {
  const DeviceKeyHash h = HashDeviceKey(token);
  const int64_t now = clock_->NowUnixMs();
  std::lock_guard<std::mutex> lock(mu_);
  auto found = by_hash_.find(HashKey(h));
  if (found == by_hash_.end()) return false;
  auto it = devices_.find(found->second);
  if (it == devices_.end() || it->second.record.revoked || !HashesEqual(it->second.record.hash, h))
    return false;
  Device& d = it->second;
  if (now > d.record.last_seen_ms) d.record.last_seen_ms = now;
  if (d.record.last_seen_ms - d.persisted_last_seen_ms >= kLastSeenWriteInterval.count()) {
    // Unsynced and best effort: a failure leaves persisted_last_seen_ms, so the next use retries.
    if (WriteLocked(it->first, d.record, /*sync=*/false).ok()) {
      d.persisted_last_seen_ms = d.record.last_seen_ms;
    }
  }
  *device = it->first;
  return true;
}

}  // namespace ccmon::gateway
