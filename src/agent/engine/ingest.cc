#include "agent/engine/ingest.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "tail/file_identity.h"
#include "tail/tracked_file.h"

namespace ccmon::agent {
namespace {

// A line buffer that grew past this for a long line is freed once its file is read: an idle
// agent must not keep a long line's memory (up to --max-line-bytes) until its next read.
constexpr size_t kKeepBufferBytes = size_t(1) << 20;

std::string FileKey(std::string_view path) {
  std::string k(1, Engine::kFilePrefix);
  k += path;
  return k;
}

// Adds `from`'s counters to `to`.
void AddStats(const IngestStats& from, IngestStats* to) {
  to->lines += from.lines;
  to->read_errors += from.read_errors;
  for (size_t i = 0; i < from.skipped.size(); ++i) to->skipped[i] += from.skipped[i];
}

}  // namespace

// The parse thread (see ingest.h): reads a job's files in order and hands their parsed lines
// over in owned batches through a bounded queue, each file's end (its FileRead) after its lines.
//
// Read-ahead: when a job's reading ends because its budget ran out (a file's rest or files not
// reached are left for the next step), the thread goes on at once, while the counting thread
// commits, with what the next step will most likely be offered: the cut file from where it
// stopped, then the files not reached, with a fresh budget (a speculative job). The next Start
// compares its work with that prediction: when the prediction is a prefix of it (same paths,
// identities, start offsets and generations), the speculative job becomes the step's job,
// batches already queued included (the same files from the same offsets with the same budget:
// exactly what a fresh read would give, but for lines appended since, which a fresh read could
// see as well); otherwise everything speculative is dropped and the work is read afresh.
// Nothing is counted before its step takes it.
class Ingestor::ParseThread {
 public:
  // Parsed lines whose views point into `bytes`: reserved when the batch is made and never
  // grown past its capacity, so the views stay valid however the batch is moved.
  struct Batch {
    std::string bytes;
    std::vector<ParsedLine> lines;
    // What of each line's accounting depends on the line alone (LiveAccounting::Prepare),
    // computed here so that the counting thread does only the order-dependent part; its strings
    // in `bytes` too. prepared[i] is lines[i]'s.
    std::vector<PreparedLine> prepared;
    IngestStats stats;  // lines, skips and read errors of these lines
    bool file_end = false;
    FileRead file;     // with file_end: how reading the file ended (after its lines above)
    uint64_t job = 0;  // the job whose file these lines are of
  };

  ParseThread(Ingestor* owner, bool read_ahead) : owner_(owner), read_ahead_(read_ahead) {
    thread_ = std::jthread([this](std::stop_token st) { Run(st); });
  }
  ~ParseThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Starts the step's job: `work` within `budget` bytes. `work` is borrowed until the next
  // Start (the read-ahead after this job reads from it): the caller keeps it that long.
  void Start(const std::vector<TailWork>* work, size_t budget) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_ = false;
      if (speculative_ && budget == step_budget_ && PredictionMatches(*work)) {
        // The files read ahead are this step's first ones, at the same indices.
        next_ -= first_;
        first_ = 0;
        first_offset_.reset();
        items_ = work;
        speculative_ = false;
        taking_ = job_;
        ++read_ahead_used_;
        if (!reading_ && budget_ > 0 && next_ < items_->size()) reading_ = true;  // work goes on
        job_done_ = false;
        if (!reading_) EndReading();
      } else {
        if (speculative_) ++read_ahead_dropped_;
        queue_.clear();  // only speculative batches can be left: the last job was drained
        ++job_;
        taking_ = job_;
        items_ = work;
        next_ = first_ = 0;
        first_offset_.reset();
        budget_ = step_budget_ = budget;
        speculative_ = false;
        reading_ = budget > 0 && !work->empty();
        job_done_ = !reading_;
      }
    }
    cv_.notify_all();
  }
  // No more files after the one being read (it is read to its end, so that none is counted in
  // part), and no read-ahead after this job.
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_ = true;
  }
  // The next batch of the step's job, in order; false once its reading is over and every
  // batch was taken.
  bool Next(Batch* out) {
    std::unique_lock<std::mutex> lock(mu_);
    auto ready = [&] { return !queue_.empty() && queue_.front().job == taking_; };
    cv_.wait(lock, [&] { return ready() || job_done_; });
    if (!ready()) return false;
    *out = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();  // room for the reader
    return true;
  }
  // Speculative jobs taken by a step, and dropped.
  void ReadAheadStats(uint64_t* used, uint64_t* dropped) {
    std::lock_guard<std::mutex> lock(mu_);
    *used = read_ahead_used_;
    *dropped = read_ahead_dropped_;
  }

 private:
  static constexpr size_t kBatchBytes = size_t(16) << 10;
  static constexpr size_t kBatchLines = 128;
  // Bounds how far the reader runs ahead of the counting (memory: up to this many batches of
  // kBatchBytes of strings and kBatchLines parsed lines). 6, not 8: the read-ahead is taken as
  // well with 6 (corpus-2000), and the two batches less keep the peak RSS off the 32 MiB goal.
  static constexpr size_t kQueueBatches = 6;

  // Whether the speculative job's files (items_ from first_ on, the first from first_offset_
  // when set) are the first ones of `work`, in order. mu_ held.
  bool PredictionMatches(const std::vector<TailWork>& work) const {
    const size_t n = items_->size() - first_;
    if (n == 0 || work.size() < n) return false;
    for (size_t i = 0; i < n; ++i) {
      const TailWork& p = (*items_)[first_ + i];
      const TailWork& w = work[i];
      const uint64_t start = i == 0 && first_offset_ ? *first_offset_ : p.start_offset;
      if (w.start_offset != start || w.generation != p.generation || !(w.identity == p.identity) ||
          w.path != p.path)
        return false;
    }
    return true;
  }

  // The job being read has nothing more to read (mu_ held). For the step's job: the counting
  // thread's Next ends, and the read-ahead starts when the budget cut the job.
  void EndReading() {
    reading_ = false;
    if (speculative_) return;  // one job ahead at most; Start takes it or drops it
    job_done_ = true;
    cv_.notify_all();
    if (!read_ahead_ || cancel_ || budget_ > 0) return;
    // The last file read is offered again from where it stopped unless it was read to its end
    // or could not be read (Recheck); then the files not reached.
    size_t first = next_;
    first_offset_.reset();
    if (next_ > 0 && !last_to_end_ && !last_unreadable_) {
      first = next_ - 1;
      first_offset_ = last_offset_;
    }
    if (first >= items_->size()) return;
    ++job_;
    first_ = next_ = first;
    budget_ = step_budget_;
    speculative_ = true;
    reading_ = true;
  }

  void Run(std::stop_token) {
#ifdef __linux__
    pthread_setname_np(pthread_self(), "ccmon-parse");  // for perf and /proc: which thread
#endif
    LineParser parser;
    LineBuffer buffer;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return shutdown_ || reading_; });
      if (shutdown_) return;
      // The file to read, copied: the job may be taken over or dropped while it is read.
      const uint64_t job = job_;
      TailWork w = (*items_)[next_];
      if (next_ == first_ && first_offset_) w.start_offset = *first_offset_;
      const size_t budget = budget_;
      lock.unlock();

      NewBatch(0, job);
      FileRead read;
      // The sink fails only when the job was dropped or the thread is shutting down.
      const Status s = owner_->ReadFile(
          w, budget, &parser, &buffer, &batch_.stats,
          [&](const ParsedLine& l) {
            return Add(l) ? Status::Ok() : Status::IoError("read-ahead dropped");
          },
          &read);
      buffer.ReleaseIfOver(kKeepBufferBytes);  // a long line's memory, not kept while idle
      const uint64_t used = read.offset - w.start_offset;
      const bool to_end = read.to_end, unreadable = read.unreadable;
      const uint64_t offset = read.offset;
      batch_.file_end = true;
      batch_.file = std::move(read);
      const bool pushed = s.ok() && Push();
      lock.lock();
      if (shutdown_) return;
      if (!pushed || job != job_) continue;  // dropped: Start set up the new job
      ++next_;
      budget_ = used >= budget ? 0 : budget - used;
      last_to_end_ = to_end;
      last_unreadable_ = unreadable;
      last_offset_ = offset;
      if (budget_ == 0 || next_ == items_->size() || (cancel_ && !speculative_)) EndReading();
    }
  }

  void NewBatch(size_t need, uint64_t job) {
    batch_ = Batch();
    batch_.job = job;
    batch_.bytes.reserve(std::max(kBatchBytes, need));
  }
  // Waits for room and queues batch_; false on shutdown or when its job was dropped.
  bool Push() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock,
             [&] { return shutdown_ || batch_.job != job_ || queue_.size() < kQueueBatches; });
    if (shutdown_ || batch_.job != job_) return false;
    queue_.push_back(std::move(batch_));
    cv_.notify_all();
    return true;
  }
  // Copies `l` into the batch, its strings into the batch's bytes; false when the batch could
  // not be queued (Push).
  bool Add(const ParsedLine& l) {
    PreparedLine prepared;
    LiveAccounting::Prepare(l, &prepared_key_, &prepared_model_, &prepared);
    size_t need = l.message_id.size() + l.request_id.size() + l.model.size() + l.session_id.size() +
                  l.cwd.size() + l.uuid.size();
    if (prepared.request) need += prepared.request_key.size() + prepared.canonical_model.size();
    for (const ToolUse& t : l.tool_uses) need += t.id.size() + t.name.size();
    if (batch_.lines.size() >= kBatchLines ||
        batch_.bytes.size() + need > batch_.bytes.capacity()) {
      const uint64_t job = batch_.job;
      if (!batch_.lines.empty() && !Push()) return false;
      NewBatch(need, job);
    }
    ParsedLine& c = batch_.lines.emplace_back(l);
    auto keep = [&](std::string_view v) {
      const size_t at = batch_.bytes.size();
      batch_.bytes.append(v);
      return std::string_view(batch_.bytes.data() + at, v.size());
    };
    c.message_id = keep(l.message_id);
    c.request_id = keep(l.request_id);
    c.model = keep(l.model);
    c.session_id = keep(l.session_id);
    c.cwd = keep(l.cwd);
    c.uuid = keep(l.uuid);
    for (ToolUse& t : c.tool_uses) {
      t.id = keep(t.id);
      t.name = keep(t.name);
    }
    if (prepared.request) {
      prepared.request_key = keep(prepared.request_key);
      prepared.canonical_model = keep(prepared.canonical_model);
    }
    batch_.prepared.push_back(prepared);
    return true;
  }

  Ingestor* const owner_;
  const bool read_ahead_;
  Batch batch_;                                // the reader's batch being filled
  std::string prepared_key_, prepared_model_;  // Add's, reused

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;  // the step's job's batches, then the speculative job's
  // The job being read: items_ from next_ on, within budget_ (the speculative job's first file,
  // first_, from first_offset_ when set). job_ numbers the jobs; taking_ is the step's.
  const std::vector<TailWork>* items_ = nullptr;
  size_t next_ = 0, first_ = 0;
  std::optional<uint64_t> first_offset_;
  size_t budget_ = 0, step_budget_ = 0;
  uint64_t job_ = 0, taking_ = 0;
  bool speculative_ = false;
  bool reading_ = false;   // the reader has more of job_ to read
  bool job_done_ = false;  // the step's job: nothing more will be queued
  bool cancel_ = false, shutdown_ = false;
  // How the last file read ended (for the read-ahead's first file).
  bool last_to_end_ = false, last_unreadable_ = false;
  uint64_t last_offset_ = 0;
  uint64_t read_ahead_used_ = 0, read_ahead_dropped_ = 0;
  std::jthread thread_;  // last: started after everything above exists
};

Ingestor::Ingestor(const IngestOptions& options, Engine* engine, Tailer* tailer, Env* env,
                   Clock* clock, std::function<void(const std::string&, bool)> log)
    : options_(options),
      engine_(engine),
      tailer_(tailer),
      env_(env),
      clock_(clock),
      log_(std::move(log)) {
  if (options_.parse_thread)
    parse_thread_ = std::make_unique<ParseThread>(this, options_.read_ahead);
}

Ingestor::~Ingestor() = default;

Status Ingestor::RestoredFiles(Engine* engine, std::vector<TrackedFile>* out) {
  out->clear();
  return engine->ScanRecords(std::string(1, Engine::kFilePrefix),
                             [&](std::string_view, std::string_view v) {
                               TrackedFile f;
                               Status s = DecodeTrackedFile(v, &f);
                               if (!s.ok()) return s;
                               out->push_back(std::move(f));
                               return Status::Ok();
                             });
}

Status Ingestor::ReadFile(const TailWork& work, size_t budget, LineParser* parser,
                          LineBuffer* buffer, IngestStats* stats,
                          const std::function<Status(const ParsedLine&)>& sink, FileRead* out) {
  out->offset = work.start_offset;
  out->offered_size = work.size;
  out->to_end = false;
  out->unreadable = false;
  std::unique_ptr<SequentialFile> file;
  bool same = false;
  Status s = OpenIfSameFile(env_, work.path, work.identity, work.start_offset, &file, &same);
  if (!s.ok() || !same) {
    // Gone or replaced since the offer: the tailer looks at it again (Recheck).
    out->unreadable = true;
    if (!s.ok() && s.code() != Status::Code::kNotFound) {
      ++stats->read_errors;
      out->log.push_back("cannot read " + work.path + ": " + s.message());
    }
    return Status::Ok();
  }
  LineReader::Options ro;
  ro.max_line_bytes = options_.max_line_bytes;
  LineReader reader(file.get(), work.start_offset, ro, buffer);
  const uint64_t start = work.start_offset;
  bool first = start == 0;
  ParsedLine line;
  for (;;) {
    std::string_view l;
    size_t readable = 0;
    const LineReader::Result r = reader.Next(&l, &readable);
    if (r == LineReader::Result::kEnd) {
      out->to_end = true;
      break;
    }
    if (r == LineReader::Result::kError) {
      out->unreadable = true;
      ++stats->read_errors;
      out->log.push_back("read error in " + work.path);
      break;
    }
    if (r == LineReader::Result::kTooLong) {
      ++stats->skipped[size_t(SkipReason::kTooLong)];
    } else {
      parser->Parse(l, readable, &line, first);
      ++stats->lines;
      if (line.kind == LineKind::kSkipped) ++stats->skipped[size_t(line.skip_reason)];
      if (Status as = sink(line); !as.ok()) return as;
    }
    first = false;
    if (reader.consumed_offset() - start >= budget) break;
  }
  out->offset = reader.consumed_offset();
  return Status::Ok();
}

Status Ingestor::ReadStep(const std::vector<TailWork>& work, size_t budget, std::stop_token stop,
                          std::vector<Done>* done) {
  auto add_line = [&](const ParsedLine& l) { return engine_->AddLine(l); };
  if (!parse_thread_) {
    for (const TailWork& w : work) {
      if (stop.stop_requested() || budget == 0) break;
      Done d{&w, {}};
      Status s = ReadFile(w, budget, &parser_, &buffer_, &stats_, add_line, &d.read);
      buffer_.ReleaseIfOver(kKeepBufferBytes);
      if (!s.ok()) return s;
      const uint64_t used = d.read.offset - w.start_offset;
      budget = used >= budget ? 0 : budget - used;
      done->push_back(std::move(d));
    }
    return Status::Ok();
  }
  parse_thread_->Start(&work, budget);
  if (stop.stop_requested()) parse_thread_->Cancel();
  Status failed;
  size_t next_file = 0;  // the reader reports the files in `work`'s order
  ParseThread::Batch batch;
  while (parse_thread_->Next(&batch)) {
    if (!failed.ok()) continue;  // drain: the reader must be done with `work` before returning
    AddStats(batch.stats, &stats_);
    for (size_t i = 0; i < batch.lines.size(); ++i) {
      if (Status s = engine_->AddLine(batch.lines[i], batch.prepared[i]); !s.ok()) {
        failed = s;
        parse_thread_->Cancel();
        break;
      }
    }
    if (!failed.ok() || !batch.file_end) continue;
    done->push_back({&work[next_file++], std::move(batch.file)});
    // Checked between files only: a file is never counted in part.
    if (stop.stop_requested()) parse_thread_->Cancel();
  }
  parse_thread_->ReadAheadStats(&stats_.read_ahead_used, &stats_.read_ahead_dropped);
  return failed;
}

Status Ingestor::Step(std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  // The other vector may still be read from by the parse thread's read-ahead (ParseThread).
  std::vector<TailWork>& work = work_[++work_turn_ % 2];
  std::vector<TailEvent> events;
  if (Status s = tailer_->Next(deadline, stop, &work, &events); !s.ok()) return s;
  std::vector<Record> records;
  for (const TailEvent& e : events) {
    switch (e.kind) {
      case TailEvent::Kind::kRenamed:
        ++stats_.files_renamed;
        records.emplace_back(FileKey(e.old_path), std::nullopt);
        break;
      case TailEvent::Kind::kReplaced:
      case TailEvent::Kind::kTruncated:
      case TailEvent::Kind::kDeleted:
        if (e.kind == TailEvent::Kind::kReplaced) ++stats_.files_replaced;
        if (e.kind == TailEvent::Kind::kTruncated) ++stats_.files_truncated;
        if (e.kind == TailEvent::Kind::kDeleted) ++stats_.files_deleted;
        records.emplace_back(FileKey(e.previous.path), std::nullopt);
        break;
      case TailEvent::Kind::kProblem:
        break;
    }
    if (log_) log_(e.message, e.kind == TailEvent::Kind::kProblem);
  }
  // The renamed files' new records: their states as the tailer holds them.
  if (!events.empty()) {
    for (const TrackedFile& f : tailer_->Snapshot()) {
      for (const TailEvent& e : events) {
        if (e.kind == TailEvent::Kind::kRenamed && e.path == f.path) {
          TrackedFile moved = f;
          moved.size_seen = moved.offset;
          records.emplace_back(FileKey(f.path), EncodeTrackedFile(moved));
        }
      }
    }
  }

  std::vector<Done> done;
  if (Status s = ReadStep(work, options_.step_bytes, stop, &done); !s.ok()) return s;
  // Files not reached (the step's budget, a stop) are offered again at the next step (not
  // Consumed), as are the files the tailer held back.
  bool all_read = done.size() == work.size() && !tailer_->held_back();
  for (Done& d : done) {
    const TailWork& w = *d.work;
    for (const std::string& m : d.read.log)
      if (log_) log_(m, true);  // a file that could not be read
    // Read (ahead) before the file was offered at a larger size: the bytes between may hold
    // complete lines, so it is offered again rather than taken as read to its end.
    if (d.read.to_end && w.size > d.read.offered_size) d.read.to_end = false;
    if (!d.read.to_end) all_read = false;
    if (d.read.offset != w.start_offset) {
      TrackedFile f{w.path, w.identity, d.read.offset, d.read.offset};
      records.emplace_back(FileKey(w.path), EncodeTrackedFile(f));
      stats_.bytes += d.read.offset - w.start_offset;
    }
  }
  const int64_t now_ms = clock_->NowUnixMs();
  Status s = engine_->Commit(records, now_ms);
  if (!s.ok()) return s;
  for (const Done& d : done) {
    // kNotFound: replaced since the offer; the tailer reports it next time.
    if (d.read.offset != d.work->start_offset || !d.read.unreadable) {
      (void)tailer_->Consumed(*d.work, d.read.offset, d.read.to_end);
    }
    // Not offered again until the tailer has looked at it: re-offering an item that cannot be
    // read would spin here and never let the tailer consult its watcher.
    if (d.read.unreadable) (void)tailer_->Recheck(*d.work);
  }
  ++stats_.steps;
  if (all_read && !stop.stop_requested() && !engine_->caught_up()) {
    if (Status ms = engine_->MarkCaughtUp(now_ms); !ms.ok()) return ms;
  }
  return Status::Ok();
}

}  // namespace ccmon::agent
