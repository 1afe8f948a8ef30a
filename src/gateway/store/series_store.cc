#include "gateway/store/series_store.h"

#include <snappy.h>

#include <algorithm>
#include <bit>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>

#include "base/record_codec.h"

namespace ccmon::gateway {
namespace {

constexpr char kRecordVersion = 1;
// An L record's version byte: 1, (key, state) entries as they are; 2, the same
// snappy-compressed (+38 % samples/s per core over 1); 3, entries by log id, the key only in a
// series' first entry since the last checkpoint, timestamps as deltas, uncompressed (written
// since format version 3; BENCHMARKS.md "Gateway").
constexpr char kLogVersionCompressed = 2;
constexpr char kLogVersionIds = 3;
// The log ids of one checkpoint interval stay below GatewayStore::kNoLogId: past this many, the
// next group checkpoints (and its record starts again from 0).
constexpr uint32_t kMaxLogIdBeforeCheckpoint = uint32_t(1) << 31;
// A log record never decompresses to more than this (a corrupt length is not an allocation).
constexpr size_t kMaxLogRecordBytes = size_t(1) << 30;

std::string PrefixedKey(char prefix, std::string_view rest) {
  std::string k(1, prefix);
  k.append(rest);
  return k;
}

}  // namespace

std::string GatewayStore::EncodeState(const SeriesState& state) {
  std::string v(1, kRecordVersion);
  PutFixed64LE(&v, uint64_t(state.timestamp_ms));
  PutFixed64LE(&v, std::bit_cast<uint64_t>(state.value));
  return v;
}

Status GatewayStore::DecodeState(std::string_view value, SeriesState* state) {
  if (value.size() != 17 || value[0] != kRecordVersion) {
    return Status::Corruption("gateway: malformed series record");
  }
  state->timestamp_ms = int64_t(DecodeFixed64LE(value.substr(1)));
  state->value = std::bit_cast<double>(DecodeFixed64LE(value.substr(9)));
  return Status::Ok();
}

std::string GatewayStore::EncodeMetadata(const rw::Metadata& m) {
  std::string v(1, kRecordVersion);
  v.push_back(char(m.kind));
  PutBytes(&v, m.help);
  PutBytes(&v, m.unit);
  return v;
}

Status GatewayStore::DecodeMetadata(std::string_view family, std::string_view value,
                                    rw::Metadata* m) {
  if (value.size() < 2 || value[0] != kRecordVersion ||
      uint8_t(value[1]) > uint8_t(rw::MetricKind::kInfo)) {
    return Status::Corruption("gateway: malformed metadata record");
  }
  rw::Metadata out;
  out.family = std::string(family);
  out.kind = rw::MetricKind(uint8_t(value[1]));
  Reader in(value.substr(2));
  if (!in.Bytes(&out.help) || !in.Bytes(&out.unit) || !in.done()) {
    return Status::Corruption("gateway: malformed metadata record");
  }
  *m = std::move(out);
  return Status::Ok();
}

std::string GatewayStore::LogKey(uint64_t sequence) {
  std::string k(1, kLogKeyPrefix);
  PutFixed64BE(&k, sequence);  // big-endian: keys in sequence order
  return k;
}

void GatewayStore::EncodeLog(const PlannedChanges& changes, const std::vector<LogId>& ids,
                             std::string* value) {
  value->resize(EncodeLogInto(changes, ids, value));
}

size_t GatewayStore::EncodeLogInto(const PlannedChanges& changes, const std::vector<LogId>& ids,
                                   std::string* value) {
  // Entry: varint (id << 1 | defines); the key (varint length, bytes) when it defines; the
  // timestamp as a zig-zag varint delta from the entry before (0 for the first), wrapping; the
  // value's 8 bytes, little-endian.
  // The same bytes as PutVarint & co.
  const auto varint = [](char* p, uint64_t v) {
    while (v >= 0x80) {
      *p++ = char(v | 0x80);
      v >>= 7;
    }
    *p++ = char(v);
    return p;
  };
  // Written in place: the value is sized for the worst case of the fixed parts (three varints
  // of at most 10 bytes, 8 value bytes) and grown only for a key (an append per entry, with its
  // capacity check and memcpy call, was most of this function's time).
  constexpr size_t kFixedMax = 10 + 10 + 10 + 8;
  const size_t most = 1 + changes.series.size() * kFixedMax;
  if (value->size() < most) value->resize(most);
  (*value)[0] = kLogVersionIds;
  size_t at = 1;
  uint64_t previous_ts = 0;
  for (size_t i = 0; i < changes.series.size(); ++i) {
    const SeriesState& state = changes.series[i].second;
    std::string_view key;
    if (ids[i].defines) {
      key = changes.key(i);
      // Room for the key and every later entry's fixed part.
      const size_t need = at + kFixedMax + key.size() + (changes.series.size() - i) * kFixedMax;
      if (need > value->size()) value->resize(std::max(need, value->size() * 2));
    }
    char* const begin = value->data() + at;
    char* p = varint(begin, uint64_t(ids[i].id) << 1 | (ids[i].defines ? 1 : 0));
    if (ids[i].defines) {
      p = varint(p, key.size());
      std::memcpy(p, key.data(), key.size());
      p += key.size();
    }
    const int64_t delta = int64_t(uint64_t(state.timestamp_ms) - previous_ts);
    p = varint(p, (uint64_t(delta) << 1) ^ uint64_t(delta >> 63));  // zig-zag
    previous_ts = uint64_t(state.timestamp_ms);
    const uint64_t bits = std::bit_cast<uint64_t>(state.value);
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(p, &bits, 8);
      p += 8;
    } else {
      for (int b = 0; b < 8; ++b) *p++ = char(uint8_t(bits >> (8 * b)));
    }
    at += size_t(p - begin);
  }
  return at;
}

Status GatewayStore::DecodeLog(std::string_view value, const LogEntryFn& fn) {
  const Status corrupt = Status::Corruption("gateway: malformed log record");
  if (value.empty()) return corrupt;
  const char version = value[0];
  if (version == kLogVersionIds) {
    Reader in(value.substr(1));
    uint64_t previous_ts = 0;
    while (!in.done()) {
      uint64_t tag = 0;
      int64_t delta = 0;
      std::string_view key;
      if (!in.Varint(&tag) || (tag >> 1) >= kNoLogId) return corrupt;
      if ((tag & 1) != 0 && (!in.Bytes(&key) || key.empty())) return corrupt;
      if (!in.SignedVarint(&delta) || in.rest().size() < 8) return corrupt;
      previous_ts += uint64_t(delta);
      const std::string_view rest = in.rest();
      const SeriesState state{int64_t(previous_ts), std::bit_cast<double>(DecodeFixed64LE(rest))};
      if (Status s = fn(uint32_t(tag >> 1), key, state); !s.ok()) return s;
      in = Reader(rest.substr(8));
    }
    return Status::Ok();
  }
  if (version != kRecordVersion && version != kLogVersionCompressed) return corrupt;
  std::string raw;
  std::string_view entries = value.substr(1);
  if (version == kLogVersionCompressed) {
    size_t length = 0;
    if (!snappy::GetUncompressedLength(entries.data(), entries.size(), &length) ||
        length > kMaxLogRecordBytes) {
      return corrupt;
    }
    raw.resize(length);
    if (!snappy::RawUncompress(entries.data(), entries.size(), raw.data())) return corrupt;
    entries = raw;
  }
  Reader in(entries);
  while (!in.done()) {
    std::string_view key;
    if (!in.Bytes(&key) || in.rest().size() < 16) return corrupt;
    const std::string_view fixed = in.rest();
    const SeriesState state{int64_t(DecodeFixed64LE(fixed)),
                            std::bit_cast<double>(DecodeFixed64LE(fixed.substr(8)))};
    if (Status s = fn(kNoLogId, key, state); !s.ok()) return s;
    in = Reader(fixed.substr(16));
  }
  return Status::Ok();
}

Status GatewayStore::Open(KvStore* kv, std::unique_ptr<GatewayStore>* out) {
  return Open(kv, GatewayStoreOptions(), out);
}

Status GatewayStore::Open(KvStore* kv, GatewayStoreOptions options,
                          std::unique_ptr<GatewayStore>* out) {
  std::unique_ptr<GatewayStore> store(new GatewayStore(kv, options));
  std::string version;
  Status s = kv->Get(kFormatKey, &version);
  if (s.code() == Status::Code::kNotFound) {
    auto it = kv->NewIterator();
    it->SeekToFirst();
    if (!it->status().ok()) return it->status();
    if (it->Valid()) {
      return Status::InvalidArgument(
          "the data dir holds a store that is not a ccmon-gateway's (no format key)");
    }
    WriteBatch init;
    init.Put(kFormatKey, kFormatVersion);
    if (s = kv->Write(init, /*sync=*/true); !s.ok()) return s;
  } else if (!s.ok()) {
    return s;
  } else if (version == kFormatVersion1 || version == kFormatVersion2) {
    // From now on the store may hold L records (version 3 ones), which those would not read.
    WriteBatch mark;
    mark.Put(kFormatKey, kFormatVersion);
    if (s = kv->Write(mark, /*sync=*/true); !s.ok()) return s;
  } else if (version != kFormatVersion) {
    return Status::InvalidArgument("the data dir's gateway format is version " + version +
                                   ", this ccmon-gateway reads version " +
                                   std::string(kFormatVersion));
  }
  auto it = kv->NewIterator();
  for (it->Seek(std::string(1, kMetadataKeyPrefix));
       it->Valid() && it->key()[0] == kMetadataKeyPrefix; it->Next()) {
    rw::Metadata m;
    if (s = DecodeMetadata(it->key().substr(1), it->value(), &m); !s.ok()) return s;
    store->table_.PutMetadata(std::move(m));
  }
  if (!it->status().ok()) return it->status();
  for (it->Seek(std::string(1, kSeriesKeyPrefix)); it->Valid() && it->key()[0] == kSeriesKeyPrefix;
       it->Next()) {
    SeriesState state;
    std::string name;
    if (s = DecodeState(it->value(), &state); !s.ok()) return s;
    if (s = NameOfKey(it->key().substr(1), &name); !s.ok()) return s;
    store->table_.Put(std::string(it->key().substr(1)), state);
  }
  if (!it->status().ok()) return it->status();
  // The L records, oldest first, over the S records (which are all older).
  bool any_log = false;
  std::vector<const SeriesTable::Entry*> ids;  // by log id, since the last checkpoint
  for (it->Seek(std::string(1, kLogKeyPrefix)); it->Valid() && it->key()[0] == kLogKeyPrefix;
       it->Next()) {
    uint64_t seq = 0;
    if (Reader key(it->key().substr(1)); !key.Fixed64BE(&seq) || !key.done()) {
      return Status::Corruption("gateway: malformed log key");
    }
    if (!any_log) store->first_log_ = seq;
    any_log = true;
    store->next_log_ = seq + 1;
    store->log_bytes_ += it->value().size();
    s = DecodeLog(it->value(), [&](uint32_t id, std::string_view key, SeriesState state) {
      if (!key.empty()) {  // a key (and, in version 3, the id it gets until the next checkpoint)
        const SeriesTable::Entry* e = store->table_.Put(std::string(key), state);
        if (id == kNoLogId) {
          store->dirty_.SetIfAbsent(e, kNoLogId);
          return Status::Ok();
        }
        if (ids.size() <= id) ids.resize(size_t(id) + 1, nullptr);
        ids[id] = e;
        store->dirty_.Set(e, id);
        store->next_log_id_ = std::max(store->next_log_id_, id + 1);
        return Status::Ok();
      }
      if (id >= ids.size() || ids[id] == nullptr) {
        return Status::Corruption("gateway: a log record names a series id it never defined");
      }
      store->table_.SetState(ids[id], state);
      return Status::Ok();
    });
    if (!s.ok()) return s;
  }
  if (!it->status().ok()) return it->status();
  store->log_records_ = store->next_log_ - store->first_log_;
  store->generation_ = store->table_.generation();
  if (options.committer_thread) {
    GatewayStore* self = store.get();
    store->committer_ = std::thread([self] { self->CommitterLoop(); });
  }
  *out = std::move(store);
  return Status::Ok();
}

Status GatewayStore::Apply(const std::vector<IncomingSeries>& series,
                           const std::vector<rw::Metadata>& metadata, ApplyResult* result) {
  return Apply(series, metadata, AppendRecords(), result);
}

Status GatewayStore::Apply(const std::vector<IncomingSeries>& series,
                           const std::vector<rw::Metadata>& metadata, const AppendRecords& append,
                           ApplyResult* result) {
  // Led by this thread (done before ApplyAsync returns), or by the thread writing groups now.
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
  } wait;
  ApplyAsync(series, metadata, append, result, [&wait](Status s) {
    std::lock_guard<std::mutex> lock(wait.mu);  // notified under the lock: `wait` outlives it
    wait.status = std::move(s);
    wait.done = true;
    wait.cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(wait.mu);
  wait.cv.wait(lock, [&] { return wait.done; });
  return wait.status;
}

void GatewayStore::ApplyAsync(const std::vector<IncomingSeries>& series,
                              const std::vector<rw::Metadata>& metadata, ApplyResult* result,
                              ApplyDone done) {
  ApplyAsync(series, metadata, AppendRecords(), result, std::move(done));
}

void GatewayStore::ApplyAsync(const std::vector<IncomingSeries>& series,
                              const std::vector<rw::Metadata>& metadata, AppendRecords append,
                              ApplyResult* result, ApplyDone done) {
  auto* me = new PendingApply{&series, &metadata,       std::move(append),
                              result,  std::move(done), Status::Ok()};
  std::unique_lock<std::mutex> lock(queue_mu_);
  queue_.push_back(me);
  if (committer_.joinable()) {
    const bool wake = committer_waiting_;
    committer_waiting_ = false;
    lock.unlock();
    if (wake) committer_cv_.notify_one();
    return;
  }
  if (leader_active_) return;  // the leader takes it into a later group
  leader_active_ = true;
  WriteQueued(lock);
  leader_active_ = false;
}

void GatewayStore::CommitterLoop() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  for (;;) {
    while (queue_.empty() && !stopping_) {
      committer_waiting_ = true;
      committer_cv_.wait(lock);
    }
    committer_waiting_ = false;
    if (queue_.empty()) return;  // stopping, nothing left
    leader_active_ = true;
    WriteQueued(lock);
    leader_active_ = false;
  }
}

GatewayStore::~GatewayStore() {
  if (!committer_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  committer_cv_.notify_one();
  committer_.join();
}

void GatewayStore::WriteQueued(std::unique_lock<std::mutex>& lock) {
  // Groups of the queued requests, in arrival order, up to max_group_series each, until none is
  // left (requests queued meanwhile included). Completions run after their group, outside the
  // lock: one may queue a request again (it joins a later group of this loop).
  std::vector<PendingApply*> group;
  while (!queue_.empty()) {
    size_t taken = 0, series_in_group = 0;
    while (taken < queue_.size()) {
      const size_t n = queue_[taken]->series->size();
      if (taken > 0 && series_in_group + n > options_.max_group_series) break;
      series_in_group += n;
      ++taken;
    }
    group.assign(queue_.begin(), queue_.begin() + ptrdiff_t(taken));
    queue_.erase(queue_.begin(), queue_.begin() + ptrdiff_t(taken));
    lock.unlock();
    WriteGroup(group);
    for (PendingApply* p : group) {
      std::unique_ptr<PendingApply> owned(p);
      owned->done(std::move(owned->status));
    }
    lock.lock();
  }
}

void GatewayStore::WriteGroup(const std::vector<PendingApply*>& all) {
  // A request naming a series by an entry of another table generation is refused whole (see
  // SeriesStore::Resolve): its entry may no longer exist. The table is never replaced after
  // Open, so this only guards the contract.
  std::vector<PendingApply*> group;
  group.reserve(all.size());
  for (PendingApply* p : all) {
    const bool stale = std::any_of(p->series->begin(), p->series->end(), [&](const auto& in) {
      return in.entry != nullptr && in.generation != generation_;
    });
    if (!stale) {
      group.push_back(p);
      continue;
    }
    *p->result = ApplyResult{};
    p->status = Status::NotFound("a series entry of another table generation: resolve it again");
  }
  if (group.empty()) return;
  // Only the leader changes table_ (and the log bookkeeping), so planning needs no read lock.
  GroupPlan& plan = plan_;
  plan.Reset();
  WriteBatch batch;
  for (PendingApply* p : group) {
    plan.Add(*p->series, *p->metadata, p->result);
    if (p->append) p->append(*p->result, &batch);
  }
  const PlannedChanges& changes = plan.changes();
  const bool has_changes = !changes.series.empty() || !changes.metadata.empty();
  if (!has_changes && batch.empty()) return;
  if (!listeners_.empty() && has_changes) {
    // Once per group, with the table before it: each listener sees the group's requests in
    // order, as it would see one request holding all their series.
    std::vector<const std::vector<IncomingSeries>*> requests;
    requests.reserve(group.size());
    for (const PendingApply* p : group) requests.push_back(p->series);
    for (ApplyListener* l : listeners_) l->PrepareGroup(requests, table_, &batch);
  }
  for (const rw::Metadata& m : changes.metadata) {
    batch.Put(PrefixedKey(kMetadataKeyPrefix, m.family), EncodeMetadata(m));
  }
  // Checkpoint: the S records of every series the L records changed, with the states the table
  // holds now (before this group), and the L records deleted, in the same batch as this group's
  // own L record (which stays: it is newer than every S record, and starts the new log: its
  // series get their ids afresh). Decided before this group's record is encoded: once the
  // records on disk reach the limits.
  const uint64_t records = next_log_ - first_log_;
  // (Also before the log ids could run out: a group adds at most max_group_series.)
  const bool checkpoint =
      records > 0 && (log_bytes_ >= options_.log_bytes || records + 1 > options_.log_records ||
                      next_log_id_ > kMaxLogIdBeforeCheckpoint);
  if (checkpoint) {
    dirty_.ForEach([&](const SeriesTable::Entry* e, uint32_t) {
      batch.Put(PrefixedKey(kSeriesKeyPrefix, e->first), EncodeState(e->second));
    });
    for (uint64_t seq = first_log_; seq < next_log_; ++seq) batch.Delete(LogKey(seq));
  }
  // The log ids: a series logged since the checkpoint keeps its id; any other gets the next one
  // (kept in dirty_ only once the batch is durable).
  std::string& log = log_value_;  // its first log_size bytes: this group's record
  size_t log_size = 0;
  uint32_t next_id = checkpoint ? 0 : next_log_id_;
  if (!changes.series.empty()) {
    log_ids_.resize(changes.series.size());
    // The lookups below are cache misses: each slot is loaded kAhead series ahead (all of them
    // at once would overflow the miss buffers and the L1 before the first was read).
    constexpr size_t kAhead = 16;
    const size_t n = changes.series.size();
    for (size_t k = 0; !checkpoint && k < std::min(n, kAhead); ++k) {
      if (changes.entries[k] != nullptr) dirty_.Prefetch(changes.entries[k]);
    }
    for (size_t i = 0; i < n; ++i) {
      if (const size_t next = i + kAhead; !checkpoint && next < n && changes.entries[next]) {
        dirty_.Prefetch(changes.entries[next]);
      }
      const SeriesTable::Entry* e = changes.entries[i];  // planned against table_: exact
      LogId& id = log_ids_[i];
      if (uint32_t known = kNoLogId;
          !checkpoint && e != nullptr && dirty_.Find(e, &known) && known != kNoLogId) {
        id = LogId{known, false};
      } else {
        id = LogId{next_id++, true};
      }
    }
    log_size = EncodeLogInto(changes, log_ids_, &log);
    batch.Put(LogKey(next_log_), std::string_view(log.data(), log_size));
  }
  if (Status s = kv_->Write(batch, /*sync=*/true); !s.ok()) {
    for (PendingApply* p : group) p->status = s;
    if (has_changes) {
      for (ApplyListener* l : listeners_) l->Aborted();
    }
    return;
  }
  if (checkpoint) {
    dirty_.Clear();
    first_log_ = next_log_;
    log_bytes_ = 0;
  }
  next_log_id_ = next_id;
  if (log_size > 0) {
    ++next_log_;
    log_bytes_ += log_size;
  }
  log_records_.store(next_log_ - first_log_, std::memory_order_relaxed);
  std::vector<const SeriesTable::Entry*> touched;
  touched.reserve(changes.series.size());
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    table_.Commit(changes, &touched);
  }
  for (size_t i = 0; i < touched.size(); ++i) {
    if (log_ids_[i].defines) dirty_.Set(touched[i], log_ids_[i].id);
  }
  if (has_changes) {
    for (ApplyListener* l : listeners_) l->Committed();
  }
}

void ApplyListener::PrepareGroup(const std::vector<const std::vector<IncomingSeries>*>& requests,
                                 const SeriesTable& before, WriteBatch* batch) {
  if (requests.size() == 1) {
    Prepare(*requests[0], before, batch);
    return;
  }
  std::vector<IncomingSeries> all;  // a copy: override PrepareGroup to avoid it
  for (const std::vector<IncomingSeries>* r : requests) all.insert(all.end(), r->begin(), r->end());
  Prepare(all, before, batch);
}

uint64_t GatewayStore::log_records() const { return log_records_.load(std::memory_order_relaxed); }

size_t GatewayStore::queued() const {
  std::lock_guard<std::mutex> lock(queue_mu_);
  return queue_.size();
}

void GatewayStore::Read(const std::function<void(const SeriesTable& table)>& fn) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  fn(table_);
}

bool GatewayStore::Resolve(std::span<const std::string_view> keys,
                           std::vector<const SeriesEntry*>* entries, uint64_t* generation) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  entries->resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) (*entries)[i] = table_.FindEntry(keys[i]);
  *generation = table_.generation();
  return true;
}

SeriesStoreStats GatewayStore::Stats() const {
  SeriesStoreStats st;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    st.series = table_.size();
    st.families = table_.metadata().size();
  }
  st.store_bytes = kv_->ApproximateBytes();
  return st;
}

}  // namespace ccmon::gateway
