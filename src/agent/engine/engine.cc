#include "agent/engine/engine.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "agent/engine/written_keys.h"
#include "base/record_codec.h"
#include "remote_write/write_request.h"
#include "state_mirror/state_records.h"

namespace ccmon::agent {
namespace {

// Samples per outbox entry at most (see Engine::Write).
constexpr size_t kMaxSamplesPerEntry = 500;

}  // namespace

// The records' reader. With written_ (the store held no record at the start), a key this
// process never wrote is absent without asking the store.
class Engine::StoreReader : public RecordReader {
 public:
  explicit StoreReader(KvStore* store) : store_(store) {}
  Status Read(std::string_view key, std::string* value) override {
    if (written_ && !written_->MayContain(key)) {
      ++skipped_;
      return Status::NotFound("key not found");
    }
    return store_->Get(key, value);
  }
  Status Scan(std::string_view prefix,
              const std::function<Status(std::string_view, std::string_view)>& f) override {
    std::unique_ptr<KvIterator> it = store_->NewIterator();
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (Status s = f(it->key(), it->value()); !s.ok()) return s;
    }
    return it->status();
  }

  // From now on every key of the store's records is Add()ed before it is written.
  void TrackWrittenKeys() { written_ = std::make_unique<WrittenKeys>(); }
  // Every key the batch puts (a deleted key is absent: nothing to remember).
  void Written(const WriteBatch& batch) {
    if (!written_) return;
    for (const WriteBatch::Op& op : batch.ops())
      if (op.type == WriteBatch::OpType::kPut) written_->Add(op.key);
    if (!written_->active()) written_.reset();  // gave up: read everything
  }
  uint64_t skipped() const { return skipped_; }

 private:
  KvStore* store_;
  std::unique_ptr<WrittenKeys> written_;
  uint64_t skipped_ = 0;
};

// The catch-up's writer thread (EngineOptions::write_thread): at most one batch in flight.
class Engine::Writer {
 public:
  explicit Writer(KvStore* store) : store_(store) {
    thread_ = std::thread([this] { Run(); });
  }
  // Writes the batch in flight, if any, then ends the thread.
  ~Writer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Requires: nothing in flight (Wait() returned since the last Submit).
  void Submit(WriteBatch batch, bool sync) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch_ = std::move(batch);
      sync_ = sync;
      pending_ = true;
    }
    cv_.notify_all();
  }
  // Waits until the submitted batch was written: the store's answer.
  Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !pending_; });
    return result_;
  }

 private:
  void Run() {
#ifdef __linux__
    pthread_setname_np(pthread_self(), "ccmon-writer");  // for perf and /proc: which thread
#endif
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return pending_ || shutdown_; });
      if (!pending_) return;
      WriteBatch batch = std::move(batch_);
      batch_ = WriteBatch();
      const bool sync = sync_;
      lock.unlock();
      Status s = store_->Write(batch, sync);
      batch = WriteBatch();  // freed here, not while the next one is built
      lock.lock();
      result_ = s;
      pending_ = false;
      cv_.notify_all();
    }
  }

  KvStore* const store_;
  std::mutex mu_;
  std::condition_variable cv_;
  WriteBatch batch_;
  bool sync_ = false, pending_ = false, shutdown_ = false;
  Status result_;
  std::thread thread_;  // last: started after everything above exists
};

namespace {

// Whether the store holds a record LiveAccounting may read (docs/store-format.md "Agent
// state"); the meta keys, the outbox and the state deltas are not read through it.
Status HoldsRecords(KvStore* store, bool* holds) {
  *holds = false;
  std::unique_ptr<KvIterator> it = store->NewIterator();
  for (char prefix :
       {LiveAccounting::kRequestPrefix, LiveAccounting::kPendingPrefix,
        LiveAccounting::kSessionPrefix, LiveAccounting::kToolPrefix, LiveAccounting::kPromptPrefix,
        LiveAccounting::kErrorPrefix, LiveAccounting::kLabelPrefix,
        LiveAccounting::kOpenSessionPrefix, SeriesTable::kRecordPrefix, Engine::kFilePrefix}) {
    const std::string p(1, prefix);
    it->Seek(p);
    if (it->Valid() && it->key().starts_with(p)) {
      *holds = true;
      return Status::Ok();
    }
    if (!it->status().ok()) return it->status();
  }
  return Status::Ok();
}

}  // namespace

Engine::Engine(const EngineOptions& options, KvStore* store, Outbox* outbox)
    : options_(options), store_(store), outbox_(outbox), reader_(new StoreReader(store)) {}

Engine::~Engine() = default;

Status Engine::Open(const EngineOptions& options, KvStore* store, Outbox* outbox,
                    std::unique_ptr<Engine>* out) {
  if (options.shards == 0 || int(options.shards) > outbox->shard_count())
    return Status::InvalidArgument("agent: shard count does not match the outbox");
  std::unique_ptr<Engine> e(new Engine(options, store, outbox));
  bool holds_records = true;
  if (Status hs = HoldsRecords(store, &holds_records); !hs.ok()) return hs;
  // Only this engine writes records from now on (the agent opens one at a time).
  if (!holds_records) e->reader_->TrackWrittenKeys();
  Status s = LiveAccounting::Open(options.live, e->reader_.get(), &e->live_);
  if (!s.ok()) return s;
  std::string v;
  if (options.state_sequence) {
    s = store->Get(kStateSeqKey, &v);
    if (s.ok()) {
      if (!state_mirror::ParseSequence(v, &e->state_seq_))
        return Status::Corruption("agent state: bad " + std::string(kStateSeqKey));
    } else if (s.code() != Status::Code::kNotFound) {
      return s;
    }
  }
  s = store->Get(kCaughtUpKey, &v);
  if (s.ok()) {
    e->caught_up_ = true;
    // A41: after the catch-up the open sessions are the recent ones; all of them are tracked in
    // memory (during it they are read back as their lines come, and at its end).
    if (Status rs = e->live_->RestoreOpenSessions(); !rs.ok()) return rs;
  } else if (s.code() != Status::Code::kNotFound) {
    return s;
  }
  *out = std::move(e);
  return Status::Ok();
}

namespace {

// Takes `series`' samples as `so` says and stages each request into `batch` as an outbox entry as
// soon as it is complete (serialized and staged one at a time: streamed, not all held); adds the
// samples staged to *queued.
Status StageSamples(SeriesTable& series, const SampleOptions& so, Outbox* outbox, int64_t now_ms,
                    WriteBatch* batch, uint64_t* queued, SampleStats* stats) {
  return series.TakeSamples(
      so,
      [&](uint32_t shard, std::string&& proto, uint32_t n) {
        if (Status s = outbox->Stage(shard, now_ms, n, proto, batch); !s.ok()) return s;
        *queued += n;
        return Status::Ok();
      },
      stats);
}

}  // namespace

namespace {

// The records of an empty store: none.
class NoRecords final : public RecordReader {
 public:
  Status Read(std::string_view, std::string*) override { return Status::NotFound("key not found"); }
  Status Scan(std::string_view,
              const std::function<Status(std::string_view, std::string_view)>&) override {
    return Status::Ok();
  }
};

}  // namespace

Status Engine::BulkFirstStart(const EngineOptions& options, KvStore* store, Outbox* outbox,
                              const Ledger& ledger, std::vector<Record> files, int64_t now_ms,
                              bool* done, LiveStats* live_stats) {
  *done = false;
  if (options.shards == 0 || int(options.shards) > outbox->shard_count())
    return Status::InvalidArgument("agent: shard count does not match the outbox");
  bool holds_records = true;
  if (Status s = HoldsRecords(store, &holds_records); !s.ok()) return s;
  if (holds_records) return Status::InvalidArgument("bulk start: the state is not empty");
  NoRecords none;
  std::unique_ptr<LiveAccounting> live;
  if (Status s = LiveAccounting::Open(options.live, &none, &live); !s.ok()) return s;
  bool fits = false;
  if (Status s = live->CountHistory(ledger, now_ms, &fits); !s.ok() || !fits) return s;
  // The big families' records (prompts, requests, sessions, tool calls: the table's last
  // prefixes) are encoded on the other core from now on, while this thread takes the first
  // samples and puts the prefixes before them; it then puts theirs as they come.
  std::unique_ptr<LiveAccounting::HistoryStream> stream;
  if (Status s = live->StreamHistory({LiveAccounting::kPromptPrefix, LiveAccounting::kRequestPrefix,
                                      LiveAccounting::kSessionPrefix, LiveAccounting::kToolPrefix},
                                     &stream);
      !s.ok())
    return s;

  // The first samples, as MarkCaughtUp's Write takes them (every series, streamed into
  // entries of at most kMaxSamplesPerEntry), staged into a batch of their own.
  WriteBatch staged;
  SampleOptions so;
  so.now_ms = now_ms;
  so.max_sample_age_ms = options.max_sample_age_ms;
  so.shards = options.shards;
  so.max_samples_per_request = std::min(options.max_samples_per_send, kMaxSamplesPerEntry);
  so.all = true;
  so.after_ms = options.samples_after_ms;
  SampleStats sample_stats;
  uint64_t staged_samples = 0;
  Status s =
      StageSamples(live->series(), so, outbox, now_ms, &staged, &staged_samples, &sample_stats);
  if (!s.ok()) {
    outbox->Abandon();
    return s;
  }
  // The series' records after their first samples (so they carry them).
  std::vector<std::pair<std::string, std::string>> series;
  live->series().TakeRecords(&series);
  std::vector<std::pair<std::string, std::string>> meta = {{std::string(kCaughtUpKey), "1"}};
  // The state sequence (a gateway target): this is the state's first commit. No state delta:
  // the gateway's copy starts with a snapshot (docs/agent-design.md "Resume").
  if (options.state_sequence) meta.emplace_back(std::string(kStateSeqKey), "1");
  std::sort(meta.begin(), meta.end());
  std::sort(files.begin(), files.end(),
            [](const Record& a, const Record& b) { return a.first < b.first; });
  std::vector<const WriteBatch::Op*> outbox_ops;
  for (const WriteBatch::Op& op : staged.ops()) outbox_ops.push_back(&op);
  std::sort(outbox_ops.begin(), outbox_ops.end(),
            [](const WriteBatch::Op* a, const WriteBatch::Op* b) { return a->key < b->key; });

  s = store->IngestSorted(
      [&](SortedTableSink* sink) -> Status {
        auto emit = [&](std::string_view k, std::string_view v) { return sink->Put(k, v); };
        // Every prefix in key order (docs/store-format.md "Agent state").
        for (const auto& [k, v] : series)  // c
          if (Status e = sink->Put(k, v); !e.ok()) return e;
        for (char p : {LiveAccounting::kOpenSessionPrefix, LiveAccounting::kErrorPrefix})  // d e
          if (Status e = live->EmitHistory(p, emit); !e.ok()) return e;
        for (const auto& [k, v] : files) {  // f
          if (!v || k.empty() || k[0] != kFilePrefix)
            return Status::InvalidArgument("bulk start: a file record that is not f<path>");
          if (Status e = sink->Put(k, *v); !e.ok()) return e;
        }
        for (char p : {LiveAccounting::kPendingPrefix, LiveAccounting::kLabelPrefix})  // h l
          if (Status e = live->EmitHistory(p, emit); !e.ok()) return e;
        for (const auto& [k, v] : meta)  // m
          if (Status e = sink->Put(k, v); !e.ok()) return e;
        for (const WriteBatch::Op* op : outbox_ops)  // o
          if (Status e = sink->Put(op->key, op->value); !e.ok()) return e;
        return stream->Drain(emit);  // p r s t
      },
      /*sync=*/true);
  if (!s.ok()) {
    outbox->Abandon();
    return s;
  }
  outbox->Committed();
  if (live_stats) *live_stats = live->stats();
  *done = true;
  return Status::Ok();
}

std::string Engine::StateDeltaKey(uint64_t seq) {
  std::string k(1, kStateDeltaPrefix);
  PutFixed64BE(&k, seq);
  return k;
}

Status Engine::AddLine(const ParsedLine& line) {
  ++stats_.lines;
  return live_->AddLine(line);
}

Status Engine::AddLine(const ParsedLine& line, const PreparedLine& prepared) {
  ++stats_.lines;
  return live_->AddLine(line, prepared);
}

Status Engine::ScanRecords(std::string_view prefix,
                           const std::function<Status(std::string_view, std::string_view)>& f) {
  if (Status s = FinishWrite(); !s.ok()) return s;
  return reader_->Scan(prefix, f);
}

Status Engine::FinishWrite() {
  if (!in_flight_) return Status::Ok();
  in_flight_ = false;
  if (Status s = writer_->Wait(); !s.ok()) return s;
  // Every record taken so far is in the store now: clean ones may leave the cache.
  live_->TrimCache();
  return Status::Ok();
}

Status Engine::Commit(const std::vector<Record>& extra, int64_t now_ms) {
  return Write(extra, now_ms, false);
}

Status Engine::MarkCaughtUp(int64_t now_ms) {
  if (caught_up_) return Status::Ok();
  // The requests of the history whose copies are all old are settled first, in chunks, each
  // written as a catch-up commit (no samples, not synced) before the next is settled: their
  // records, read back from the store and changed, would otherwise all wait in memory for the
  // one batch below, with that batch's copies of them (the first start's peak RSS).
  for (bool more = true; more;) {
    if (Status s = WriteSettledChunk(now_ms, &more); !s.ok()) return s;
  }
  // The catch-up's last batch must be written before this one (and its error is this call's).
  if (Status s = FinishWrite(); !s.ok()) return s;
  caught_up_ = true;
  Status s = Write({{std::string(kCaughtUpKey), std::string("1")}}, now_ms, true);
  if (!s.ok()) caught_up_ = false;
  writer_.reset();  // no more pipelined commits: the thread ends
  return s;
}

Status Engine::WriteSettledChunk(int64_t now_ms, bool* more) {
  // The previous chunk's batch first (its records are trimmed from the cache once it landed).
  if (Status s = FinishWrite(); !s.ok()) return s;
  if (Status s = live_->Settle(now_ms, /*by_event_time_only=*/true,
                               std::max<size_t>(options_.catch_up_settle_chunk, 1), more);
      !s.ok()) {
    return s;
  }
  // The last chunk (`more` false) is left in memory for MarkCaughtUp's batch: it is small.
  if (!*more) return Status::Ok();
  WriteBatch batch;
  AddChanges(&batch, 0);
  return Submit(std::move(batch), 0, SampleStats());
}

void Engine::AddChanges(WriteBatch* batch, size_t more_ops) {
  std::vector<Record> changes;
  live_->TakeChanges(&changes);
  batch->Reserve(batch->count() + changes.size() + more_ops + 2);
  // Moved into the batch: one copy of each record fewer (BENCHMARKS.md "Agent").
  for (auto& [k, v] : changes) {
    if (v)
      batch->PutOwned(std::move(k), std::move(*v));
    else
      batch->DeleteOwned(std::move(k));
  }
}

Status Engine::Write(const std::vector<Record>& extra, int64_t now_ms, bool all_series) {
  // The previous batch first: settling and the sessions below read records, and a failed
  // write must stop the caller before anything else happens.
  if (Status s = FinishWrite(); !s.ok()) return s;
  // At the end of the catch-up every file has been read to its end: requests whose copies are
  // all old are settled now, so the histogram's first samples hold them too.
  if (Status s = live_->Settle(now_ms, /*by_event_time_only=*/all_series); !s.ok()) return s;
  // A41, in the same batch: sessions idle for 30 minutes are observed and leave the open set;
  // the active-sessions gauge is recomputed (so it falls by itself at the resend ticks).
  const SessionPhase phase = all_series   ? SessionPhase::kCatchUpEnd
                             : caught_up_ ? SessionPhase::kLive
                                          : SessionPhase::kCatchingUp;
  if (Status s = live_->UpdateSessions(now_ms, phase); !s.ok()) return s;
  WriteBatch batch;
  uint64_t queued = 0;
  SampleStats sample_stats;
  if (caught_up_) {
    SampleOptions so;
    so.now_ms = now_ms;
    so.max_sample_age_ms = options_.max_sample_age_ms;
    so.shards = options_.shards;
    so.max_samples_per_request = options_.max_samples_per_send;
    so.all = all_series;
    so.after_ms = options_.samples_after_ms;
    // Resends: at most once per interval, for the series not queued within it, and only while
    // the outbox is empty (a backlog is being sent anyway, and must not grow with resends).
    if (now_ms - last_resend_check_ms_ >= options_.resend_interval_ms &&
        outbox_->Stats().total.entries == 0) {
      so.resend_before_ms = now_ms - options_.resend_interval_ms;
      last_resend_check_ms_ = now_ms;
    }
    // Outbox entries of at most kMaxSamplesPerEntry: the first samples after a catch-up hold
    // every series, and serializing a request holds several copies of it. The shard senders
    // merge consecutive entries into requests of max_samples_per_send.
    so.max_samples_per_request = std::min(so.max_samples_per_request, kMaxSamplesPerEntry);
    Status s = StageSamples(live_->series(), so, outbox_, now_ms, &batch, &queued, &sample_stats);
    if (!s.ok()) {
      outbox_->Abandon();
      return s;
    }
  }
  AddChanges(&batch, extra.size());
  for (const auto& [k, v] : extra) {
    if (v)
      batch.Put(k, *v);
    else
      batch.Delete(k);
  }
  return Submit(std::move(batch), queued, sample_stats);
}

Status Engine::Submit(WriteBatch batch, uint64_t queued, const SampleStats& sample_stats) {
  if (batch.empty()) return Status::Ok();
  if (options_.state_sequence) {
    // The state mirror (docs/agent-design.md "Resume"): this commit's number, and its delta
    // (everything but the outbox) in the same atomic batch as what it describes.
    const uint64_t seq = state_seq_ + 1;
    batch.Put(kStateSeqKey, std::to_string(seq));  // in the delta too: the copy is the state
    if (stage_state_deltas_ && caught_up_) {
      std::string records;
      for (const WriteBatch::Op& op : batch.ops()) {
        if (op.key.empty() || op.key[0] == kOutboxKeyPrefix) continue;
        if (op.type == WriteBatch::OpType::kPut)
          state_mirror::AppendPutRecord(&records, op.key, op.value);
        else
          state_mirror::AppendDeleteRecord(&records, op.key);
      }
      batch.Put(StateDeltaKey(seq), records);
    }
  }
  reader_->Written(batch);
  // Commits of the first catch-up are not synced: they queue no samples, so nothing outside
  // depends on them, and a power loss that takes their tail (RocksDB recovers a consistent
  // prefix) only makes the catch-up read those lines again. MarkCaughtUp's write is synced and
  // makes every earlier one durable with it (one WAL, written in order).
  if (options_.write_thread && !caught_up_) {
    // Pipelined (see engine.h): nothing was staged in the outbox (no samples before the end
    // of the catch-up); the result is taken by the next FinishWrite.
    if (!writer_) writer_ = std::make_unique<Writer>(store_);
    writer_->Submit(std::move(batch), false);
    in_flight_ = true;
  } else {
    Status s = store_->Write(batch, options_.sync && caught_up_);
    if (!s.ok()) {
      outbox_->Abandon();
      return s;
    }
    outbox_->Committed();
    live_->TrimCache();
  }
  if (options_.state_sequence) ++state_seq_;
  ++stats_.commits;
  stats_.samples_queued += queued;
  stats_.samples_stamped_now += sample_stats.stamped_now;
  stats_.samples_resent += sample_stats.resent;
  stats_.reads_skipped = reader_->skipped();
  return Status::Ok();
}

}  // namespace ccmon::agent
