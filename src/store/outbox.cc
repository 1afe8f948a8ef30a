#include "store/outbox.h"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <limits>
#include <string>
#include <utility>

namespace ccmon {
namespace {

constexpr uint8_t kHeaderVersion = 1;

void PutFixedLE(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(char(uint8_t(v >> (8 * i))));
}
uint64_t GetFixedLE(std::string_view in, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(in[pos + i])) << (8 * i);
  return v;
}

bool IsOutboxKey(std::string_view key) { return !key.empty() && key[0] == kOutboxKeyPrefix; }

// Splits a well-formed outbox key; false for a malformed one.
bool ParseKey(std::string_view key, uint32_t* shard, uint64_t* seq) {
  if (key.size() != kOutboxKeyBytes || key[0] != kOutboxKeyPrefix) return false;
  *shard = uint8_t(key[1]);
  uint64_t v = 0;
  for (size_t i = 2; i < kOutboxKeyBytes; ++i) v = (v << 8) | uint8_t(key[i]);
  *seq = v;
  return true;
}

struct Header {
  int64_t created_ms = 0;
  uint32_t samples = 0;
  uint32_t bytes = 0;
};

// The header of a stored value, checked against the value's length. false: damaged.
bool ParseHeader(std::string_view value, Header* h) {
  if (value.size() < kOutboxHeaderBytes || uint8_t(value[0]) != kHeaderVersion) return false;
  h->created_ms = int64_t(GetFixedLE(value, 1, 8));
  h->samples = uint32_t(GetFixedLE(value, 9, 4));
  h->bytes = uint32_t(GetFixedLE(value, 13, 4));
  return value.size() - kOutboxHeaderBytes == h->bytes;
}

std::string DescribeEntry(uint32_t shard, uint64_t seq) {
  return "outbox shard " + std::to_string(shard) + " entry " + std::to_string(seq);
}

void Subtract(uint64_t* total, uint64_t amount) { *total = amount > *total ? 0 : *total - amount; }

}  // namespace

std::string OutboxKey(uint32_t shard, uint64_t seq) {
  std::string key(kOutboxKeyBytes, '\0');
  key[0] = kOutboxKeyPrefix;
  key[1] = char(uint8_t(shard));
  for (int i = 0; i < 8; ++i) key[2 + i] = char(uint8_t(seq >> (8 * (7 - i))));
  return key;
}

struct Outbox::ShardState {
  std::mutex head_mu;              // held by Remove and EnforceLimits while they move the head
  std::condition_variable_any cv;  // Committed -> WaitFor*; used with Outbox::mu_
  uint64_t next_seq = 0;           // writer thread only

  // Guarded by Outbox::mu_. Visible entries are the committed ones with head <= seq < end that
  // are not hidden.
  uint64_t head = 0;
  uint64_t end = 0;
  uint64_t entries = 0, samples = 0, bytes = 0;
  std::optional<int64_t> oldest_created_ms;
  std::set<uint64_t> hidden;  // sequences of abandoned entries (see "A failed write")
};

Outbox::Outbox(KvStore* store, const OutboxOptions& options, int shard_count)
    : store_(store), options_(options), shard_count_(shard_count) {}

Outbox::~Outbox() = default;

Status Outbox::Open(KvStore* store, const OutboxOptions& options, int shards,
                    std::unique_ptr<Outbox>* out) {
  if (store == nullptr) return Status::InvalidArgument("outbox: no store");
  if (shards < 1 || shards > kMaxOutboxShards) {
    return Status::InvalidArgument("outbox: " + std::to_string(shards) + " shards (must be 1.." +
                                   std::to_string(kMaxOutboxShards) + ")");
  }
  if (options.max_age.count() < 0) return Status::InvalidArgument("outbox: negative max_age");
  std::unique_ptr<Outbox> outbox(new Outbox(store, options, shards));
  if (Status s = outbox->Recover(shards); !s.ok()) return s;
  *out = std::move(outbox);
  return Status::Ok();
}

Status Outbox::Recover(int requested_shards) {
  struct Found {
    bool any = false;
    uint64_t first = 0, last = 0, entries = 0, samples = 0, bytes = 0;
    int64_t oldest = 0;
  };
  std::array<Found, kMaxOutboxShards> found{};
  // Damaged keys to delete, then the shard-count record when it changes: one write, not synced
  // (a first start waited ~10 ms for its fsync). Every entry is queued by a synced write after
  // it in the same write-ahead log, which makes it durable too; a power loss before any loses
  // it with no entry depending on it, and the next open finds the damage or writes the count
  // again.
  WriteBatch fixes;
  int recorded_shards = 0;  // 0: none recorded
  std::unique_ptr<KvIterator> it = store_->NewIterator();
  for (it->Seek(std::string(1, kOutboxKeyPrefix)); it->Valid() && IsOutboxKey(it->key());
       it->Next()) {
    if (it->key() == kOutboxShardCountKey) {
      const std::string_view v = it->value();
      const int n = v.size() == 3 && v[0] == 1 ? int(uint8_t(v[1]) | (uint8_t(v[2]) << 8)) : 0;
      if (n >= 1 && n <= kMaxOutboxShards) {
        recorded_shards = n;
      } else {
        fixes.Delete(it->key());
      }
      continue;
    }
    uint32_t shard;
    uint64_t seq;
    Header h;
    if (!ParseKey(it->key(), &shard, &seq) || !ParseHeader(it->value(), &h)) {
      fixes.Delete(it->key());
      continue;
    }
    Found& f = found[shard];
    if (!f.any) {
      f.any = true;
      f.first = seq;
      f.oldest = h.created_ms;
    }
    f.last = seq;
    ++f.entries;
    f.samples += h.samples;
    f.bytes += h.bytes;
  }
  if (Status s = it->status(); !s.ok()) return s;
  it.reset();
  corrupt_dropped_ = fixes.count();  // only deletes so far

  int highest_used = 0;  // the highest non-empty shard plus one
  for (int i = 0; i < kMaxOutboxShards; ++i) {
    if (found[i].any) highest_used = i + 1;
  }
  int count = requested_shards;
  if (highest_used > 0) {
    count = recorded_shards > 0 ? recorded_shards : std::max(requested_shards, highest_used);
    count = std::max(count, highest_used);  // every queued entry stays reachable
  }
  if (count != recorded_shards) {
    const char v[3] = {1, char(count & 0xff), char(count >> 8)};
    fixes.Put(kOutboxShardCountKey, std::string_view(v, 3));
  }
  if (!fixes.empty()) {
    if (Status s = store_->Write(fixes, /*sync=*/false); !s.ok()) return s;
  }
  shard_count_ = count;
  for (int i = 0; i < count; ++i) {
    auto s = std::make_unique<ShardState>();
    const Found& f = found[i];
    if (f.any) {
      s->head = f.first;
      s->end = f.last + 1;
      s->next_seq = f.last + 1;
      s->entries = f.entries;
      s->samples = f.samples;
      s->bytes = f.bytes;
      s->oldest_created_ms = f.oldest;
    }
    shards_.push_back(std::move(s));
  }
  return Status::Ok();
}

Status Outbox::Stage(uint32_t shard, int64_t now_ms, uint32_t samples, std::string_view payload,
                     WriteBatch* batch) {
  if (shard >= uint32_t(shard_count_)) {
    return Status::InvalidArgument("outbox: shard " + std::to_string(shard) + " of " +
                                   std::to_string(shard_count_));
  }
  if (payload.size() > kMaxOutboxPayloadBytes) {
    return Status::InvalidArgument("outbox: payload of " + std::to_string(payload.size()) +
                                   " bytes (at most " + std::to_string(kMaxOutboxPayloadBytes) +
                                   ")");
  }
  ShardState& s = *shards_[shard];
  const uint64_t seq = s.next_seq++;
  std::string value;
  value.reserve(kOutboxHeaderBytes + payload.size());
  value.push_back(char(kHeaderVersion));
  PutFixedLE(&value, uint64_t(now_ms), 8);
  PutFixedLE(&value, samples, 4);
  PutFixedLE(&value, payload.size(), 4);
  value.append(payload);
  batch->Put(OutboxKey(shard, seq), value);
  staged_.push_back(Staged{shard, seq, now_ms, samples, uint32_t(payload.size())});
  return Status::Ok();
}

void Outbox::Committed() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Staged& st : staged_) {
    ShardState& s = *shards_[st.shard];
    if (s.entries == 0) s.oldest_created_ms = st.created_ms;
    ++s.entries;
    s.samples += st.samples;
    s.bytes += st.bytes;
    s.end = std::max(s.end, st.seq + 1);
  }
  for (const Staged& st : staged_) shards_[st.shard]->cv.notify_all();
  staged_.clear();
}

void Outbox::Abandon() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Staged& st : staged_) shards_[st.shard]->hidden.insert(st.seq);
  staged_.clear();
}

bool Outbox::IsHidden(const ShardState& s, uint64_t seq) const {
  return !s.hidden.empty() && s.hidden.count(seq) > 0;
}

Status Outbox::Peek(uint32_t shard, size_t max_samples, size_t max_bytes, OutboxBatch* out) {
  out->Clear();
  if (shard >= uint32_t(shard_count_)) {
    return Status::InvalidArgument("outbox: shard " + std::to_string(shard) + " of " +
                                   std::to_string(shard_count_));
  }
  ShardState& s = *shards_[shard];
  uint64_t head, end;
  std::set<uint64_t> hidden;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (s.entries == 0) return Status::Ok();
    head = s.head;
    end = s.end;
    hidden = s.hidden;
  }
  // Created after `end` was read, so it holds every entry below it.
  std::unique_ptr<KvIterator> it = store_->NewIterator();
  for (it->Seek(OutboxKey(shard, head)); it->Valid(); it->Next()) {
    uint32_t key_shard;
    uint64_t seq;
    if (!ParseKey(it->key(), &key_shard, &seq) || key_shard != shard || seq >= end) break;
    if (hidden.count(seq)) continue;
    Header h;
    if (!ParseHeader(it->value(), &h)) {
      if (!out->empty()) break;  // hand out what precedes it; the next Peek reports it
      return Status::Corruption(DescribeEntry(shard, seq) + ": malformed header");
    }
    if (!out->empty() &&
        (out->samples + h.samples > max_samples || out->payload.size() + h.bytes > max_bytes)) {
      break;
    }
    if (out->empty()) {
      out->first_seq = seq;
      out->oldest_created_ms = h.created_ms;
    }
    out->oldest_created_ms = std::min(out->oldest_created_ms, h.created_ms);
    out->payload.append(it->value().substr(kOutboxHeaderBytes));
    out->samples += h.samples;
    out->last_seq = seq;
    ++out->entries;
  }
  if (Status st = it->status(); !st.ok()) {
    out->Clear();
    return st;
  }
  return Status::Ok();
}

Status Outbox::FindHead(uint32_t shard, uint64_t from_seq, std::optional<EntryInfo>* head) {
  head->reset();
  ShardState& s = *shards_[shard];
  uint64_t end;
  std::set<uint64_t> hidden;
  {
    std::lock_guard<std::mutex> lock(mu_);
    end = s.end;
    hidden = s.hidden;
  }
  std::unique_ptr<KvIterator> it = store_->NewIterator();
  for (it->Seek(OutboxKey(shard, from_seq)); it->Valid(); it->Next()) {
    uint32_t key_shard;
    uint64_t seq;
    if (!ParseKey(it->key(), &key_shard, &seq) || key_shard != shard || seq >= end) break;
    if (hidden.count(seq)) continue;
    EntryInfo info;
    info.seq = seq;
    Header h;
    if (ParseHeader(it->value(), &h)) info.created_ms = h.created_ms;
    *head = info;
    break;
  }
  return it->status();
}

Status Outbox::Remove(uint32_t shard, uint64_t through_seq) {
  if (shard >= uint32_t(shard_count_)) {
    return Status::InvalidArgument("outbox: shard " + std::to_string(shard) + " of " +
                                   std::to_string(shard_count_));
  }
  ShardState& s = *shards_[shard];
  std::lock_guard<std::mutex> head_lock(s.head_mu);
  uint64_t head, end;
  std::set<uint64_t> hidden;
  {
    std::lock_guard<std::mutex> lock(mu_);
    head = s.head;
    end = s.end;
    hidden = s.hidden;
  }
  if (through_seq >= end) {
    return Status::InvalidArgument(DescribeEntry(shard, through_seq) +
                                   ": beyond the committed tail " + std::to_string(end));
  }
  if (through_seq < head) return Status::Ok();

  WriteBatch batch;
  uint64_t entries = 0, samples = 0, bytes = 0;
  std::unique_ptr<KvIterator> it = store_->NewIterator();
  for (it->Seek(OutboxKey(shard, head)); it->Valid(); it->Next()) {
    uint32_t key_shard;
    uint64_t seq;
    if (!ParseKey(it->key(), &key_shard, &seq) || key_shard != shard || seq > through_seq) break;
    if (hidden.count(seq)) continue;
    Header h;
    if (ParseHeader(it->value(), &h)) {
      samples += h.samples;
      bytes += h.bytes;
    }  // a damaged entry still counts as one entry; its sizes are unknown
    ++entries;
    batch.Delete(it->key());
  }
  if (Status st = it->status(); !st.ok()) return st;
  it.reset();
  if (Status st = store_->Write(batch, /*sync=*/true); !st.ok()) return st;

  bool find_head = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.head = through_seq + 1;
    Subtract(&s.entries, entries);
    Subtract(&s.samples, samples);
    Subtract(&s.bytes, bytes);
    s.hidden.erase(s.hidden.begin(), s.hidden.lower_bound(s.head));
    if (s.entries == 0) {
      s.oldest_created_ms.reset();
    } else {
      find_head = true;
    }
  }
  if (find_head) {
    // The new head was committed before the entries just removed were all gone, so it is in the
    // store; only this thread (holding head_mu) could move it.
    std::optional<EntryInfo> next;
    if (FindHead(shard, through_seq + 1, &next).ok() && next) {
      std::lock_guard<std::mutex> lock(mu_);
      s.oldest_created_ms = next->created_ms;
    }
  }
  return Status::Ok();
}

bool Outbox::WaitForEntries(uint32_t shard, std::chrono::steady_clock::time_point deadline,
                            std::stop_token stop) {
  return WaitForSamples(shard, 0, deadline, std::move(stop));
}

bool Outbox::WaitForSamples(uint32_t shard, uint64_t min_samples,
                            std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  if (shard >= uint32_t(shard_count_)) return false;
  ShardState& s = *shards_[shard];
  std::unique_lock<std::mutex> lock(mu_);
  return s.cv.wait_until(lock, stop, deadline,
                         [&] { return s.entries > 0 && s.samples >= min_samples; });
}

Status Outbox::EnforceLimits(int64_t now_ms, OutboxDropStats* dropped) {
  const int n = shard_count_;
  std::vector<std::unique_lock<std::mutex>> head_locks;
  head_locks.reserve(n);
  for (int i = 0; i < n; ++i) head_locks.emplace_back(shards_[i]->head_mu);  // in shard order

  struct Cursor {
    std::unique_ptr<KvIterator> it;
    uint64_t end = 0;
    std::set<uint64_t> hidden;
    std::optional<EntryInfo> current;
    // What is dropped from this shard.
    uint64_t last_seq = 0, entries = 0, samples = 0, bytes = 0;
  };
  std::vector<Cursor> cursors(n);
  uint64_t total_bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < n; ++i) {
      ShardState& s = *shards_[i];
      total_bytes += s.bytes;
      if (s.entries == 0) continue;
      cursors[i].end = s.end;
      cursors[i].hidden = s.hidden;
    }
  }
  // Moves a cursor to its shard's next visible entry (current is empty at the end).
  auto advance = [&](uint32_t shard, Cursor& c) -> Status {
    c.current.reset();
    for (; c.it->Valid(); c.it->Next()) {
      uint32_t key_shard;
      uint64_t seq;
      if (!ParseKey(c.it->key(), &key_shard, &seq) || key_shard != shard || seq >= c.end) break;
      if (c.hidden.count(seq)) continue;
      EntryInfo info;
      info.seq = seq;
      Header h;
      if (ParseHeader(c.it->value(), &h)) {
        info.created_ms = h.created_ms;
        info.samples = h.samples;
        info.bytes = h.bytes;
      } else {
        // Damaged: sizes unknown. Oldest possible, so a limit drops it first.
        info.corrupt = true;
        info.created_ms = std::numeric_limits<int64_t>::min();
      }
      c.current = info;
      return Status::Ok();
    }
    return c.it->status();
  };
  for (int i = 0; i < n; ++i) {
    Cursor& c = cursors[i];
    if (c.end == 0) continue;
    uint64_t head;
    {
      std::lock_guard<std::mutex> lock(mu_);
      head = shards_[i]->head;
    }
    c.it = store_->NewIterator();
    c.it->Seek(OutboxKey(i, head));
    if (Status st = advance(i, c); !st.ok()) return st;
  }

  // now_ms - max_age, saturated (a hostile clock must not overflow it).
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t max_age = options_.max_age.count();
  const int64_t cutoff = max_age <= 0 || now_ms < kMin + max_age ? kMin : now_ms - max_age;
  OutboxDropStats drop;
  WriteBatch batch;
  uint64_t remaining = total_bytes;
  for (;;) {
    int oldest = -1;
    for (int i = 0; i < n; ++i) {
      if (!cursors[i].current) continue;
      if (oldest < 0 || cursors[i].current->created_ms < cursors[oldest].current->created_ms) {
        oldest = i;
      }
    }
    if (oldest < 0) break;
    Cursor& c = cursors[oldest];
    const EntryInfo e = *c.current;
    const bool too_old = e.corrupt || e.created_ms < cutoff;
    const bool too_big = options_.max_bytes > 0 && remaining > options_.max_bytes;
    if (!too_old && !too_big) break;
    batch.Delete(OutboxKey(oldest, e.seq));
    (too_old ? drop.by_age : drop.by_size) += 1;
    ++drop.entries;
    drop.samples += e.samples;
    drop.bytes += e.bytes;
    Subtract(&remaining, e.bytes);
    c.last_seq = e.seq;
    ++c.entries;
    c.samples += e.samples;
    c.bytes += e.bytes;
    c.it->Next();
    if (Status st = advance(oldest, c); !st.ok()) return st;
  }
  for (Cursor& c : cursors) c.it.reset();
  if (batch.empty()) return Status::Ok();
  if (Status st = store_->Write(batch, /*sync=*/true); !st.ok()) return st;

  std::vector<int> find_head;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < n; ++i) {
      const Cursor& c = cursors[i];
      if (c.entries == 0) continue;
      ShardState& s = *shards_[i];
      s.head = c.last_seq + 1;
      Subtract(&s.entries, c.entries);
      Subtract(&s.samples, c.samples);
      Subtract(&s.bytes, c.bytes);
      s.hidden.erase(s.hidden.begin(), s.hidden.lower_bound(s.head));
      if (s.entries == 0) {
        s.oldest_created_ms.reset();
      } else {
        find_head.push_back(i);
      }
    }
    dropped_total_.entries += drop.entries;
    dropped_total_.samples += drop.samples;
    dropped_total_.bytes += drop.bytes;
    dropped_total_.by_age += drop.by_age;
    dropped_total_.by_size += drop.by_size;
  }
  for (int i : find_head) {
    std::optional<EntryInfo> next;
    if (FindHead(i, cursors[i].last_seq + 1, &next).ok() && next) {
      std::lock_guard<std::mutex> lock(mu_);
      shards_[i]->oldest_created_ms = next->created_ms;
    }
  }
  if (dropped != nullptr) {
    dropped->entries += drop.entries;
    dropped->samples += drop.samples;
    dropped->bytes += drop.bytes;
    dropped->by_age += drop.by_age;
    dropped->by_size += drop.by_size;
  }
  return Status::Ok();
}

OutboxStats Outbox::Stats() const {
  OutboxStats stats;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& sp : shards_) {
    const ShardState& s = *sp;
    OutboxShardStats st;
    st.entries = s.entries;
    st.samples = s.samples;
    st.bytes = s.bytes;
    st.oldest_created_ms = s.oldest_created_ms;
    stats.total.entries += s.entries;
    stats.total.samples += s.samples;
    stats.total.bytes += s.bytes;
    if (s.oldest_created_ms &&
        (!stats.total.oldest_created_ms || *s.oldest_created_ms < *stats.total.oldest_created_ms)) {
      stats.total.oldest_created_ms = s.oldest_created_ms;
    }
    stats.shards.push_back(st);
  }
  stats.dropped_total = dropped_total_;
  stats.corrupt_dropped = corrupt_dropped_;
  return stats;
}

}  // namespace ccmon
