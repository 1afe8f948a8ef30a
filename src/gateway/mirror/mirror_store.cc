#include "gateway/mirror/mirror_store.h"

#include <map>
#include <optional>
#include <utility>

#include "base/record_codec.h"

namespace ccmon::gateway {
namespace {

constexpr uint8_t kMetaVersion = 1;

constexpr uint8_t kStagingVersion = 1;

std::string PrefixOf(char kind, std::string_view device) {
  std::string k(1, kind);
  k.append(device);
  k.push_back('\0');
  return k;
}
std::string RecordPrefix(std::string_view device) { return PrefixOf(kMirrorRecordPrefix, device); }
std::string StagedPrefix(std::string_view device) { return PrefixOf(kMirrorStagedPrefix, device); }

// Adds a delete of every key under `prefix` to `batch`.
Status DeleteRange(KvStore* kv, const std::string& prefix, WriteBatch* batch) {
  std::unique_ptr<KvIterator> it = kv->NewIterator();
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    batch->Delete(it->key());
  return it->status();
}

}  // namespace

MirrorStore::MirrorStore(KvStore* kv, MirrorOptions options) : kv_(kv), options_(options) {}

std::string MirrorStore::RecordKey(std::string_view device, std::string_view agent_key) {
  std::string k = RecordPrefix(device);
  k.append(agent_key);
  return k;
}

std::string MirrorStore::MetaKey(std::string_view device) {
  std::string k(1, kMirrorMetaPrefix);
  k.append(device);
  return k;
}

std::string MirrorStore::StagedKey(std::string_view device, std::string_view agent_key) {
  std::string k = StagedPrefix(device);
  k.append(agent_key);
  return k;
}

std::string MirrorStore::StagingKey(std::string_view device) {
  std::string k(1, kMirrorStagingPrefix);
  k.append(device);
  return k;
}

std::string MirrorStore::EncodeStaging(const StagingMeta& meta) {
  std::string v(1, char(kStagingVersion));
  PutFixed64LE(&v, meta.epoch);
  PutVarint(&v, meta.state_seq);
  PutVarint(&v, meta.next_part);
  PutVarint(&v, meta.bytes);
  PutVarint(&v, meta.keys);
  PutSignedVarint(&v, meta.updated_ms);
  return v;
}

bool MirrorStore::DecodeStaging(std::string_view value, StagingMeta* meta) {
  if (value.size() < 9 || uint8_t(value[0]) != kStagingVersion) return false;
  meta->epoch = DecodeFixed64LE(value.substr(1, 8));
  Reader r(value.substr(9));
  return r.Varint(&meta->state_seq) && r.Varint(&meta->next_part) && r.Varint(&meta->bytes) &&
         r.Varint(&meta->keys) && r.SignedVarint(&meta->updated_ms) && r.done();
}

std::string MirrorStore::EncodeMeta(const MirrorMeta& meta) {
  std::string v(1, char(kMetaVersion));
  PutFixed64LE(&v, meta.epoch);
  PutVarint(&v, meta.state_seq);
  PutVarint(&v, meta.bytes);
  PutVarint(&v, meta.keys);
  PutSignedVarint(&v, meta.updated_ms);
  return v;
}

bool MirrorStore::DecodeMeta(std::string_view value, MirrorMeta* meta) {
  if (value.size() < 9 || uint8_t(value[0]) != kMetaVersion) return false;
  meta->epoch = DecodeFixed64LE(value.substr(1, 8));
  Reader r(value.substr(9));
  return r.Varint(&meta->state_seq) && r.Varint(&meta->bytes) && r.Varint(&meta->keys) &&
         r.SignedVarint(&meta->updated_ms) && r.done();
}

Status MirrorStore::ReadMetaLocked(std::string_view device, MirrorMeta* meta) {
  std::string v;
  Status s = kv_->Get(MetaKey(device), &v);
  if (!s.ok()) return s;
  if (!DecodeMeta(v, meta))
    return Status::Corruption("agent state mirror of device " + std::string(device) +
                              ": bad meta record");
  return Status::Ok();
}

Status MirrorStore::ReadMeta(std::string_view device, MirrorMeta* meta) {
  std::lock_guard<std::mutex> lock(mu_);
  return ReadMetaLocked(device, meta);
}

void MirrorStore::Count(MirrorOutcome outcome) {
  switch (outcome) {
    case MirrorOutcome::kApplied:
      ++stats_.applied;
      break;
    case MirrorOutcome::kDuplicate:
      ++stats_.duplicate;
      break;
    case MirrorOutcome::kGap:
      ++stats_.gap;
      break;
    case MirrorOutcome::kTooLarge:
      ++stats_.too_large;
      break;
  }
}

MirrorStats MirrorStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Status MirrorStore::Replace(std::string_view device, uint64_t epoch, uint64_t state_seq,
                            const WriteBatch& ops, int64_t now_ms, MirrorOutcome* outcome) {
  for (const WriteBatch::Op& op : ops.ops()) {
    if (op.type != WriteBatch::OpType::kPut)
      return Status::InvalidArgument("a full state snapshot holds puts only");
  }
  std::lock_guard<std::mutex> lock(mu_);
  MirrorMeta old;
  Status s = ReadMetaLocked(device, &old);
  const bool have = s.ok();
  if (!have && s.code() != Status::Code::kNotFound) return s;
  if (have && old.epoch == epoch && state_seq <= old.state_seq) {
    *outcome = MirrorOutcome::kDuplicate;
    Count(*outcome);
    return Status::Ok();
  }
  // The new records, last put of a key winning (a snapshot has each key once; be exact anyway).
  std::map<std::string_view, std::string_view> records;
  for (const WriteBatch::Op& op : ops.ops()) records[op.key] = op.value;
  MirrorMeta meta;
  meta.epoch = epoch;
  meta.state_seq = state_seq;
  meta.updated_ms = now_ms;
  for (const auto& [k, v] : records) meta.bytes += k.size() + v.size();
  meta.keys = records.size();
  if (options_.max_bytes_per_device != 0 && meta.bytes > options_.max_bytes_per_device) {
    *outcome = MirrorOutcome::kTooLarge;
    Count(*outcome);
    return Status::Ok();
  }
  WriteBatch batch;
  const std::string prefix = RecordPrefix(device);
  {
    std::unique_ptr<KvIterator> it = kv_->NewIterator();
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (!records.contains(it->key().substr(prefix.size()))) batch.Delete(it->key());
    }
    if (!it->status().ok()) return it->status();
  }
  for (const auto& [k, v] : records) batch.Put(prefix + std::string(k), v);
  batch.Put(MetaKey(device), EncodeMeta(meta));
  if (s = kv_->Write(batch, /*sync=*/true); !s.ok()) return s;
  *outcome = MirrorOutcome::kApplied;
  Count(*outcome);
  return Status::Ok();
}

Status MirrorStore::ApplyDelta(std::string_view device, uint64_t epoch, uint64_t first_seq,
                               uint64_t last_seq, const WriteBatch& ops, int64_t now_ms,
                               MirrorOutcome* outcome) {
  if (first_seq == 0 || first_seq > last_seq)
    return Status::InvalidArgument("a state delta needs 1 <= first <= last sequence");
  std::lock_guard<std::mutex> lock(mu_);
  MirrorMeta meta;
  Status s = ReadMetaLocked(device, &meta);
  if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
  const bool same_stream = s.ok() && meta.epoch == epoch;
  if (!same_stream || last_seq > meta.state_seq) {
    if (!same_stream || first_seq != meta.state_seq + 1) {
      *outcome = MirrorOutcome::kGap;  // another stream, a gap or an overlap: send a snapshot
      Count(*outcome);
      return Status::Ok();
    }
  } else {
    *outcome = MirrorOutcome::kDuplicate;
    Count(*outcome);
    return Status::Ok();
  }
  // Apply in order over the stored values, tracking sizes (a key put twice counts once).
  const std::string prefix = RecordPrefix(device);
  std::map<std::string, std::optional<std::string>> changed;  // agent key -> new value
  for (const WriteBatch::Op& op : ops.ops()) {
    if (op.type == WriteBatch::OpType::kPut)
      changed[op.key] = op.value;
    else
      changed[op.key] = std::nullopt;
  }
  WriteBatch batch;
  for (const auto& [k, v] : changed) {
    std::string old;
    Status gs = kv_->Get(prefix + k, &old);
    if (!gs.ok() && gs.code() != Status::Code::kNotFound) return gs;
    const bool existed = gs.ok();
    if (existed) {
      meta.bytes -= k.size() + old.size();
      --meta.keys;
    }
    if (v) {
      meta.bytes += k.size() + v->size();
      ++meta.keys;
      batch.Put(prefix + k, *v);
    } else if (existed) {
      batch.Delete(prefix + k);
    }
  }
  if (options_.max_bytes_per_device != 0 && meta.bytes > options_.max_bytes_per_device) {
    *outcome = MirrorOutcome::kTooLarge;
    Count(*outcome);
    return Status::Ok();
  }
  meta.state_seq = last_seq;
  meta.updated_ms = now_ms;
  batch.Put(MetaKey(device), EncodeMeta(meta));
  if (s = kv_->Write(batch, /*sync=*/true); !s.ok()) return s;
  *outcome = MirrorOutcome::kApplied;
  Count(*outcome);
  return Status::Ok();
}

Status MirrorStore::StagePart(std::string_view device, uint64_t epoch, uint64_t state_seq,
                              uint64_t part, bool last, const WriteBatch& ops, int64_t now_ms,
                              MirrorOutcome* outcome) {
  for (const WriteBatch::Op& op : ops.ops()) {
    if (op.type != WriteBatch::OpType::kPut)
      return Status::InvalidArgument("a full state snapshot holds puts only");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto finish = [&](MirrorOutcome o) {
    *outcome = o;
    Count(o);
    return Status::Ok();
  };
  MirrorMeta stored;
  Status s = ReadMetaLocked(device, &stored);
  if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
  if (s.ok() && stored.epoch == epoch && state_seq <= stored.state_seq)
    return finish(MirrorOutcome::kDuplicate);

  StagingMeta staging;
  bool staged = false;
  {
    std::string v;
    s = kv_->Get(StagingKey(device), &v);
    if (s.ok()) {
      if (!DecodeStaging(v, &staging))
        return Status::Corruption("agent state staging of device " + std::string(device) +
                                  ": bad meta record");
      staged = true;
    } else if (s.code() != Status::Code::kNotFound) {
      return s;
    }
  }
  const std::string staged_prefix = StagedPrefix(device);
  WriteBatch batch;
  if (part == 0) {
    if (staged) {
      if (s = DeleteRange(kv_, staged_prefix, &batch); !s.ok()) return s;
    }
    staging = StagingMeta{};
    staging.epoch = epoch;
    staging.state_seq = state_seq;
  } else {
    if (!staged || staging.epoch != epoch || staging.state_seq != state_seq ||
        part > staging.next_part) {
      return finish(MirrorOutcome::kGap);
    }
    if (part < staging.next_part) return finish(MirrorOutcome::kDuplicate);
  }
  // This part's records, the last put of a key winning.
  std::map<std::string_view, std::string_view> records;
  for (const WriteBatch::Op& op : ops.ops()) records[op.key] = op.value;
  for (const auto& [k, v] : records) staging.bytes += k.size() + v.size();
  staging.keys += records.size();
  const bool too_large =
      options_.max_bytes_per_device != 0 && staging.bytes > options_.max_bytes_per_device;
  if (too_large || !last) {
    if (too_large) {
      // Drop the staging: the snapshot cannot be stored whole.
      if (part != 0) {
        if (s = DeleteRange(kv_, staged_prefix, &batch); !s.ok()) return s;
      }
      if (staged) batch.Delete(StagingKey(device));
    } else {
      for (const auto& [k, v] : records) batch.Put(staged_prefix + std::string(k), v);
      staging.next_part = part + 1;
      staging.updated_ms = now_ms;
      batch.Put(StagingKey(device), EncodeStaging(staging));
    }
    if (!batch.empty()) {
      if (s = kv_->Write(batch, /*sync=*/true); !s.ok()) return s;
    }
    return finish(too_large ? MirrorOutcome::kTooLarge : MirrorOutcome::kApplied);
  }
  // The last part: the old records out, the staged ones and this part's in, the staging gone.
  const std::string prefix = RecordPrefix(device);
  if (s = DeleteRange(kv_, prefix, &batch); !s.ok()) return s;
  MirrorMeta meta;
  meta.epoch = epoch;
  meta.state_seq = state_seq;
  meta.updated_ms = now_ms;
  if (part != 0) {
    std::unique_ptr<KvIterator> it = kv_->NewIterator();
    for (it->Seek(staged_prefix); it->Valid() && it->key().starts_with(staged_prefix); it->Next()) {
      const std::string_view k = it->key().substr(staged_prefix.size());
      batch.Delete(it->key());
      if (records.contains(k)) continue;  // this part's value wins
      batch.Put(prefix + std::string(k), it->value());
      meta.bytes += k.size() + it->value().size();
      ++meta.keys;
    }
    if (!it->status().ok()) return it->status();
  }
  for (const auto& [k, v] : records) {
    batch.Put(prefix + std::string(k), v);
    meta.bytes += k.size() + v.size();
    ++meta.keys;
  }
  if (staged) batch.Delete(StagingKey(device));
  batch.Put(MetaKey(device), EncodeMeta(meta));
  if (s = kv_->Write(batch, /*sync=*/true); !s.ok()) return s;
  return finish(MirrorOutcome::kApplied);
}

Status MirrorStore::ReadPage(
    std::string_view device, std::string_view after, size_t max_bytes, MirrorMeta* meta,
    const std::function<void(std::string_view key, std::string_view value)>& f, std::string* next) {
  next->clear();
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = ReadMetaLocked(device, meta); !s.ok()) return s;
  const std::string prefix = RecordPrefix(device);
  std::unique_ptr<KvIterator> it = kv_->NewIterator();
  it->Seek(prefix + std::string(after));
  if (!after.empty() && it->Valid() && it->key().substr(prefix.size()) == after) it->Next();
  size_t bytes = 0;
  std::string last_key;
  for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string_view k = it->key().substr(prefix.size());
    if (bytes != 0 && bytes + k.size() + it->value().size() > max_bytes) {
      *next = last_key;
      break;
    }
    f(k, it->value());
    bytes += k.size() + it->value().size();
    last_key.assign(k);
  }
  if (!it->status().ok()) return it->status();
  if (next->empty()) ++stats_.served;
  return Status::Ok();
}

Status MirrorStore::Read(std::string_view device, MirrorMeta* meta,
                         const std::function<void(std::string_view, std::string_view)>& f) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = ReadMetaLocked(device, meta); !s.ok()) return s;
  const std::string prefix = RecordPrefix(device);
  std::unique_ptr<KvIterator> it = kv_->NewIterator();
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    f(it->key().substr(prefix.size()), it->value());
  if (!it->status().ok()) return it->status();
  ++stats_.served;
  return Status::Ok();
}

}  // namespace ccmon::gateway
