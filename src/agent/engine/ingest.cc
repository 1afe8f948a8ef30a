#include "agent/engine/ingest.h"

#include <utility>

#include "tail/file_identity.h"
#include "tail/tracked_file.h"

namespace ccmon::agent {
namespace {

std::string FileKey(std::string_view path) {
  std::string k(1, Engine::kFilePrefix);
  k += path;
  return k;
}

}  // namespace

Ingestor::Ingestor(const IngestOptions& options, Engine* engine, Tailer* tailer, Env* env,
                   Clock* clock, std::function<void(const std::string&)> log)
    : options_(options),
      engine_(engine),
      tailer_(tailer),
      env_(env),
      clock_(clock),
      log_(std::move(log)) {}

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

Status Ingestor::ReadOne(const TailWork& work, size_t budget, uint64_t* new_offset, bool* to_end,
                         bool* unreadable) {
  *new_offset = work.start_offset;
  *to_end = false;
  *unreadable = false;
  std::unique_ptr<SequentialFile> file;
  bool same = false;
  Status s = OpenIfSameFile(env_, work.path, work.identity, work.start_offset, &file, &same);
  if (!s.ok() || !same) {
    // Gone or replaced since the offer: the tailer looks at it again (Recheck).
    *unreadable = true;
    if (!s.ok() && s.code() != Status::Code::kNotFound) {
      ++stats_.read_errors;
      if (log_) log_("cannot read " + work.path + ": " + s.message());
    }
    return Status::Ok();
  }
  LineReader::Options ro;
  ro.max_line_bytes = options_.max_line_bytes;
  LineReader reader(file.get(), work.start_offset, ro, &buffer_);
  const uint64_t start = work.start_offset;
  bool first = start == 0;
  for (;;) {
    std::string_view l;
    size_t readable = 0;
    const LineReader::Result r = reader.Next(&l, &readable);
    if (r == LineReader::Result::kEnd) {
      *to_end = true;
      break;
    }
    if (r == LineReader::Result::kError) {
      *unreadable = true;
      ++stats_.read_errors;
      if (log_) log_("read error in " + work.path);
      break;
    }
    if (r == LineReader::Result::kTooLong) {
      ++stats_.skipped[size_t(SkipReason::kTooLong)];
    } else {
      parser_.Parse(l, readable, &line_, first);
      ++stats_.lines;
      if (line_.kind == LineKind::kSkipped) ++stats_.skipped[size_t(line_.skip_reason)];
      if (Status as = engine_->AddLine(line_); !as.ok()) return as;
    }
    first = false;
    if (reader.consumed_offset() - start >= budget) break;
  }
  *new_offset = reader.consumed_offset();
  return Status::Ok();
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

  struct Done {
    const TailWork* work;
    uint64_t offset;
    bool to_end;
    bool unreadable;
  };
  std::vector<Done> done;
  size_t budget = options_.step_bytes;
  bool all_read = true;
  for (const TailWork& w : work) {
    if (stop.stop_requested()) {
      all_read = false;
      break;
    }
    if (budget == 0) {
      all_read = false;  // offered again at the next step (not Consumed)
      break;
    }
    uint64_t offset = 0;
    bool to_end = false, unreadable = false;
    if (Status s = ReadOne(w, budget, &offset, &to_end, &unreadable); !s.ok()) return s;
    const uint64_t used = offset - w.start_offset;
    budget = used >= budget ? 0 : budget - used;
    if (!to_end) all_read = false;
    done.push_back({&w, offset, to_end, unreadable});
    if (offset != w.start_offset) {
      TrackedFile f{w.path, w.identity, offset, offset};
      records.emplace_back(FileKey(w.path), EncodeTrackedFile(f));
      stats_.bytes += used;
    }
  }
  const int64_t now_ms = clock_->NowUnixMs();
  Status s = engine_->Commit(records, now_ms);
  if (!s.ok()) return s;
  for (const Done& d : done) {
    // kNotFound: replaced since the offer; the tailer reports it next time.
    if (d.offset != d.work->start_offset || !d.unreadable) {
      (void)tailer_->Consumed(*d.work, d.offset, d.to_end);
    }
    // Not offered again until the tailer has looked at it: re-offering an item that cannot be
    // read would spin here and never let the tailer consult its watcher.
    if (d.unreadable) (void)tailer_->Recheck(*d.work);
  }
  ++stats_.steps;
  if (all_read && !stop.stop_requested() && !engine_->caught_up()) {
    if (Status ms = engine_->MarkCaughtUp(now_ms); !ms.ok()) return ms;
  }
  return Status::Ok();
}

}  // namespace ccmon::agent
