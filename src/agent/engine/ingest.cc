#include "agent/engine/ingest.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
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

// The parse thread (see ingest.h): reads one step's files in order and hands their parsed lines
// over in owned batches through a bounded queue, each file's end (its FileRead) after its lines.
class Ingestor::ParseThread {
 public:
  // Parsed lines whose views point into `bytes`: reserved when the batch is made and never
  // grown past its capacity, so the views stay valid however the batch is moved.
  struct Batch {
    std::string bytes;
    std::vector<ParsedLine> lines;
    IngestStats stats;  // lines, skips and read errors of these lines
    bool file_end = false;
    FileRead file;  // with file_end: how reading the file ended (after its lines above)
  };

  explicit ParseThread(Ingestor* owner) : owner_(owner) {
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

  // Starts reading `work` (borrowed until Next returned false) within `budget` bytes.
  void Start(const std::vector<TailWork>* work, size_t budget) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = work;
      budget_ = budget;
      cancel_ = false;
      job_done_ = false;
    }
    cv_.notify_all();
  }
  // No more files after the one being read (it is read to its end, so that none is counted in
  // part).
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_ = true;
  }
  // The next batch of the job, in order; false once the job is over and every batch was taken.
  bool Next(Batch* out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty() || job_done_; });
    if (queue_.empty()) {
      job_ = nullptr;
      return false;
    }
    *out = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();  // room for the reader
    return true;
  }

 private:
  static constexpr size_t kBatchBytes = size_t(16) << 10;
  static constexpr size_t kBatchLines = 128;
  static constexpr size_t kQueueBatches = 3;

  void Run(std::stop_token) {
    LineParser parser;
    LineBuffer buffer;
    for (;;) {
      const std::vector<TailWork>* work = nullptr;
      size_t budget = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return shutdown_ || (job_ && !job_done_); });
        if (shutdown_) return;
        work = job_;
        budget = budget_;
      }
      NewBatch(0);
      for (const TailWork& w : *work) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (cancel_ || shutdown_) break;
        }
        if (budget == 0) break;  // offered again at the next step
        FileRead read;
        // The sink never fails: errors are the counting thread's.
        (void)owner_->ReadFile(
            w, budget, &parser, &buffer, &batch_.stats,
            [&](const ParsedLine& l) {
              Add(l);
              return Status::Ok();
            },
            &read);
        buffer.ReleaseIfOver(kKeepBufferBytes);  // a long line's memory, not kept while idle
        const uint64_t used = read.offset - w.start_offset;
        budget = used >= budget ? 0 : budget - used;
        batch_.file_end = true;
        batch_.file = std::move(read);
        if (!Push()) return;
        NewBatch(0);
      }
      std::lock_guard<std::mutex> lock(mu_);
      job_done_ = true;
      cv_.notify_all();
    }
  }

  void NewBatch(size_t need) {
    batch_ = Batch();
    batch_.bytes.reserve(std::max(kBatchBytes, need));
  }
  // Waits for room and queues batch_; false on shutdown.
  bool Push() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return shutdown_ || queue_.size() < kQueueBatches; });
    if (shutdown_) return false;
    queue_.push_back(std::move(batch_));
    cv_.notify_all();
    return true;
  }
  // Copies `l` into the batch, its strings into the batch's bytes.
  void Add(const ParsedLine& l) {
    size_t need = l.message_id.size() + l.request_id.size() + l.model.size() + l.session_id.size() +
                  l.cwd.size() + l.uuid.size();
    for (const ToolUse& t : l.tool_uses) need += t.id.size() + t.name.size();
    if (batch_.lines.size() >= kBatchLines ||
        batch_.bytes.size() + need > batch_.bytes.capacity()) {
      if (!batch_.lines.empty() && !Push()) return;  // shutting down: dropped with the step
      NewBatch(need);
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
  }

  Ingestor* const owner_;
  Batch batch_;  // the reader's batch being filled

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  const std::vector<TailWork>* job_ = nullptr;
  size_t budget_ = 0;
  bool cancel_ = false, job_done_ = false, shutdown_ = false;
  std::jthread thread_;  // last: started after everything above exists
};

Ingestor::Ingestor(const IngestOptions& options, Engine* engine, Tailer* tailer, Env* env,
                   Clock* clock, std::function<void(const std::string&)> log)
    : options_(options),
      engine_(engine),
      tailer_(tailer),
      env_(env),
      clock_(clock),
      log_(std::move(log)) {
  if (options_.parse_thread) parse_thread_ = std::make_unique<ParseThread>(this);
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
    for (const ParsedLine& l : batch.lines) {
      if (Status s = engine_->AddLine(l); !s.ok()) {
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
  return failed;
}

Status Ingestor::Step(std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  std::vector<TailWork> work;
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
    if (log_) log_(e.message);
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
  // Consumed).
  bool all_read = done.size() == work.size();
  for (const Done& d : done) {
    const TailWork& w = *d.work;
    for (const std::string& m : d.read.log)
      if (log_) log_(m);
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
