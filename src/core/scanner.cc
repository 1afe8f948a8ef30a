#include "core/scanner.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "core/file_source.h"
#include "core/line_parser.h"
#include "core/line_reader.h"

namespace ccmon {
namespace {

struct Worker {
  Ledger ledger;
  SkipCounts skipped;
  uint64_t files = 0, bytes = 0, lines = 0, usage_lines = 0;
  std::vector<std::string> errors;
};

void ScanOne(const TranscriptFile& f, const ScanOptions& opt, LineParser* parser, ParsedLine* line,
             Worker* w, ScanProgress* progress) {
  std::unique_ptr<SequentialFile> file;
  Status s = OpenSequentialFile(f.path, 0, &file);
  if (!s.ok()) {
    w->errors.push_back(s.message());
    return;
  }
  LineReader::Options ro;
  ro.max_line_bytes = opt.max_line_bytes;
  LineReader reader(file.get(), 0, ro);
  std::string_view text;
  size_t readable = 0;
  uint64_t reported = 0;
  for (;;) {
    LineReader::Result r = reader.Next(&text, &readable);
    if (r == LineReader::Result::kEnd || r == LineReader::Result::kError) break;
    ++w->lines;
    if (r == LineReader::Result::kTooLong) {
      ++w->skipped.by_reason[int(SkipReason::kTooLong)];
      continue;
    }
    parser->Parse(text, readable, line);
    if (line->kind == LineKind::kSkipped) {
      ++w->skipped.by_reason[int(line->skip_reason)];
    } else if (line->kind == LineKind::kUsage) {
      ++w->usage_lines;
      if (line->timestamp_ms >= opt.since_ms && line->timestamp_ms < opt.until_ms) {
        w->ledger.Add(*line);
      }
    }
    if (progress && reader.consumed_offset() - reported >= (1u << 20)) {
      progress->bytes_done += reader.consumed_offset() - reported;
      reported = reader.consumed_offset();
    }
  }
  if (!reader.status().ok()) w->errors.push_back(reader.status().message());
  if (reader.pending_bytes() > 0) ++w->skipped.by_reason[int(SkipReason::kIncomplete)];
  uint64_t total = reader.consumed_offset() + reader.pending_bytes();
  w->bytes += total;
  ++w->files;
  if (progress) {
    progress->bytes_done += total - reported;
    ++progress->files_done;
  }
}

}  // namespace

ScanResult ScanFiles(const std::vector<TranscriptFile>& files, const ScanOptions& opt,
                     ScanProgress* progress) {
  ScanResult result;
  std::vector<const TranscriptFile*> todo;
  for (const auto& f : files) {
    if (f.mtime_ms < opt.since_ms) {
      ++result.files_skipped;
      if (progress) {
        progress->bytes_done += f.size;
        ++progress->files_done;
      }
      continue;
    }
    todo.push_back(&f);
  }
  // Largest first, so that one big file does not finish last on its own.
  std::stable_sort(todo.begin(), todo.end(), [](const TranscriptFile* a, const TranscriptFile* b) {
    return a->size > b->size;
  });
  unsigned n = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  n = std::max(1u, std::min<unsigned>(n, unsigned(std::max<size_t>(1, todo.size()))));
  std::vector<Worker> workers(n);
  std::atomic<size_t> next{0};
  auto run = [&](Worker* w) {
    LineParser parser;
    ParsedLine line;
    for (size_t i; (i = next.fetch_add(1)) < todo.size();) {
      ScanOne(*todo[i], opt, &parser, &line, w, progress);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n; ++t) threads.emplace_back(run, &workers[t]);
  run(&workers[0]);
  for (auto& t : threads) t.join();

  result.ledger = std::move(workers[0].ledger);
  for (unsigned t = 0; t < n; ++t) {
    Worker& w = workers[t];
    if (t > 0) result.ledger.Merge(w.ledger);
    for (int r = 0; r < kSkipReasonCount; ++r) result.skipped.by_reason[r] += w.skipped.by_reason[r];
    result.files += w.files;
    result.bytes += w.bytes;
    result.lines += w.lines;
    result.usage_lines += w.usage_lines;
    for (auto& e : w.errors) result.errors.push_back(std::move(e));
  }
  std::sort(result.errors.begin(), result.errors.end());
  return result;
}

}  // namespace ccmon
