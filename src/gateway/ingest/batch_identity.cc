#include "gateway/ingest/batch_identity.h"

#include <charconv>

namespace ccmon::gateway {
namespace {

bool IsHex16(std::string_view s) {
  if (s.size() != 16) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A canonical decimal uint64: digits only, no leading zero (but "0"), no overflow.
bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

bool ParseBatchIdentity(std::string_view stream_header, std::string_view batch_header,
                        BatchIdentity* out) {
  if (!IsHex16(stream_header)) return false;
  const size_t slash1 = batch_header.find('/');
  if (slash1 == std::string_view::npos) return false;
  const size_t slash2 = batch_header.find('/', slash1 + 1);
  if (slash2 == std::string_view::npos) return false;
  const std::string_view run = batch_header.substr(0, slash1);
  const std::string_view shard = batch_header.substr(slash1 + 1, slash2 - slash1 - 1);
  const std::string_view range = batch_header.substr(slash2 + 1);
  const size_t dash = range.find('-');
  if (!IsHex16(run) || dash == std::string_view::npos) return false;
  uint64_t shard_value = 0, first = 0, last = 0;
  if (!ParseU64(shard, &shard_value) || shard_value > 255 ||
      !ParseU64(range.substr(0, dash), &first) || !ParseU64(range.substr(dash + 1), &last) ||
      first > last) {
    return false;
  }
  out->stream = std::string(stream_header);
  out->run = std::string(run);
  out->shard = uint32_t(shard_value);
  out->first = first;
  out->last = last;
  return true;
}

bool BatchHighWater::AlreadyApplied(const std::string& device, const BatchIdentity& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = by_device_.find(device);
  if (it == by_device_.end() || it->second.stream != id.stream || it->second.run != id.run) {
    return false;
  }
  const auto shard = it->second.last_by_shard.find(id.shard);
  return shard != it->second.last_by_shard.end() && id.last <= shard->second;
}

void BatchHighWater::Applied(const std::string& device, const BatchIdentity& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Marks& m = by_device_[device];
  if (m.stream != id.stream || m.run != id.run) {
    m.stream = id.stream;
    m.run = id.run;
    m.last_by_shard.clear();
  }
  uint64_t& last = m.last_by_shard[id.shard];
  if (id.last > last) last = id.last;
}

size_t BatchHighWater::devices() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_device_.size();
}

}  // namespace ccmon::gateway
