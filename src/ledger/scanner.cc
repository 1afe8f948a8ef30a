#include "ledger/scanner.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include "base/env.h"
#include "base/fnv1a.h"
#include "transcript/line_parser.h"
#include "transcript/line_reader.h"

namespace ccmon {

// The reader's padding is what lets the parser use lines in place (no copy per line).
static_assert(LineReader::kPadding >= LineParser::kPadding,
              "reader padding must cover the parser's");

namespace {

// The ledger all workers feed. Each worker collects a few thousand usage lines in a small local
// ledger and merges it in under the lock: parsing runs in parallel, the lock is rarely taken, and
// the dedup state exists once (memory is that of one ledger, not one per thread).
struct SharedLedger {
  std::mutex mu;
  Ledger ledger;
};
constexpr size_t kLocalBatch = 4096;

// What one piece saw of its file (ScanOptions::file_cursors_head_bytes).
struct PieceView {
  uint64_t device = 0, inode = 0, head_hash = 0;
  uint32_t head_bytes = 0;
  bool ok = false;      // read without error, not shrunk
  uint64_t offset = 0;  // the last piece: just past its last complete line
  uint64_t size_seen = 0;
};

struct Worker {
  SharedLedger* shared;
  LedgerOptions ledger_options;
  Ledger local;
  size_t local_lines = 0;
  void Flush() {
    if (local_lines == 0) return;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->ledger.Merge(local);
    }
    local = Ledger(ledger_options);
    local_lines = 0;
  }
  LineBuffer read_buffer;  // reused for every file: no allocation or fresh pages per file
  SkipCounts skipped;
  uint64_t files = 0, bytes = 0, lines = 0, usage_lines = 0;
  std::vector<std::string> errors;
  // Files found shorter than discovered: the file and the end of file seen.
  std::vector<std::pair<const TranscriptFile*, uint64_t>> shrunk;
};

// A piece of a file: the lines that start in [begin, end). Big files are cut into pieces so
// that both cores work on one big file; small files are one piece.
struct Piece {
  const TranscriptFile* file;
  uint64_t begin, end;
  PieceView* view = nullptr;  // file_cursors only
};

// Reads the head of the open `file` (`info`: its fstat) up to `bytes` from offset 0 into `view`,
// and puts the position back at `at`.
Status ReadHead(SequentialFile* file, const FileInfo& info, uint32_t bytes, uint64_t at,
                std::string* scratch, PieceView* view) {
  if (Status s = file->Seek(0); !s.ok()) return s;
  scratch->resize(bytes);
  size_t have = 0;
  while (have < bytes) {
    size_t got = 0;
    if (Status s = file->Read(scratch->data() + have, bytes - have, &got); !s.ok()) return s;
    if (got == 0) break;
    have += got;
  }
  view->device = info.device;
  view->inode = info.inode;
  view->head_bytes = uint32_t(have);
  view->head_hash = Fnv1a64(std::string_view(scratch->data(), have));
  return file->Seek(at);
}

void ScanPiece(const Piece& piece, const ScanOptions& opt, LineParser* parser, ParsedLine* line,
               Worker* w, ScanProgress* progress) {
  const TranscriptFile& f = *piece.file;
  const bool first = piece.begin == 0, last = piece.end >= f.size;
  // A later piece starts one byte early and drops the rest of the line in progress there
  // (the previous piece reads it through).
  const uint64_t open_at = first ? 0 : piece.begin - 1;
  std::unique_ptr<SequentialFile> file;
  Status s = opt.env->NewSequentialFile(f.path, open_at, &file);
  if (!s.ok()) {
    w->errors.push_back(s.message());
    return;
  }
  // What was opened must still be a regular file: a path listed as one and swapped since for a
  // FIFO or a device (/dev/zero) would be read as empty, or for ever.
  FileInfo info;
  const Status stat = file->Stat(&info);
  if (stat.ok() && info.type != FileType::kRegular) {
    w->errors.push_back(f.path + ": not a regular file any more (not read)");
    return;
  }
  if (piece.view) {
    std::string head;
    if (s = stat.ok() ? ReadHead(file.get(), info, opt.file_cursors_head_bytes, open_at, &head,
                                 piece.view)
                      : stat;
        !s.ok()) {
      w->errors.push_back(f.path + ": " + s.message());
      return;
    }
  }
  LineReader::Options ro;
  ro.max_line_bytes = opt.max_line_bytes;
  ro.end_offset = last ? UINT64_MAX : piece.end;
  LineReader reader(file.get(), open_at, ro, &w->read_buffer);
  // A file that ended before the size it had at discovery shrank while it was read (truncated,
  // or rewritten shorter): what is missing cannot be counted, and the line cut at the new end is
  // not an unfinished last line (A4).
  auto check_shrunk = [&] {
    const uint64_t eof = reader.consumed_offset() + reader.pending_bytes();
    if (!reader.at_eof() || eof >= f.size) return false;
    w->shrunk.emplace_back(&f, eof);
    return true;
  };
  std::string_view text;
  size_t readable = 0;
  if (!first && !reader.SkipPartialLine()) {
    // No line starts in this piece (an unfinished tail is the earlier piece's).
    if (!reader.status().ok()) w->errors.push_back(reader.status().message());
    const bool shrunk = check_shrunk();
    if (piece.view && reader.status().ok() && !shrunk) {
      piece.view->ok = true;  // no line of its own: the earlier pieces' ends are the file's
    }
    return;
  }
  const uint64_t start = reader.consumed_offset();
  uint64_t reported = start;
  bool file_start = first;  // the next line starts at offset 0 (a byte order mark is allowed)
  for (;;) {
    LineReader::Result r = reader.Next(&text, &readable);
    if (r == LineReader::Result::kEnd || r == LineReader::Result::kError) break;
    ++w->lines;
    const bool first_in_file = file_start;
    file_start = false;
    if (r == LineReader::Result::kTooLong) {
      ++w->skipped.by_reason[int(SkipReason::kTooLong)];
      continue;
    }
    parser->Parse(text, readable, line, first_in_file);
    if (line->kind == LineKind::kSkipped) {
      ++w->skipped.by_reason[int(line->skip_reason)];
    } else if (line->kind == LineKind::kUsage) {
      ++w->usage_lines;
      w->local.Add(*line);
      if (++w->local_lines >= kLocalBatch) w->Flush();
    } else if (line->kind == LineKind::kPrompt) {
      w->local.AddPrompt(*line);
      if (++w->local_lines >= kLocalBatch) w->Flush();
    }
    if (progress && reader.consumed_offset() - reported >= (1u << 20)) {
      progress->bytes_done += reader.consumed_offset() - reported;
      reported = reader.consumed_offset();
    }
  }
  if (!reader.status().ok()) w->errors.push_back(reader.status().message());
  uint64_t end = reader.consumed_offset();
  // The reader stopped at the end of the file, not at the piece's limit: an unfinished last line
  // (which starts in this piece) is this piece's.
  const bool at_eof = last || end < piece.end;
  const bool shrunk = check_shrunk();
  if (piece.view && reader.status().ok() && !shrunk) {
    piece.view->ok = true;
    piece.view->offset = end;  // past the last complete line starting in the piece
    piece.view->size_seen = end + (at_eof ? reader.pending_bytes() : 0);
  }
  if (at_eof && reader.pending_bytes() > 0) {
    if (!shrunk) ++w->skipped.by_reason[int(SkipReason::kIncomplete)];
    end += reader.pending_bytes();
  }
  if (first) {
    ++w->files;
    if (progress) ++progress->files_done;
  }
  w->bytes += end - start;
  if (progress) progress->bytes_done += end - reported;
}

}  // namespace

ScanResult ScanFiles(const std::vector<TranscriptFile>& files, const ScanOptions& opt,
                     ScanProgress* progress) {
  ScanResult result;
  std::vector<const TranscriptFile*> todo;
  for (const auto& f : files) {
    if (f.mtime_ms < opt.skip_modified_before_ms) {
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
  std::vector<Piece> pieces;
  // file_cursors: one view per piece; a file's pieces are consecutive.
  const bool cursors = opt.file_cursors_head_bytes > 0;
  for (const TranscriptFile* f : todo) {
    const uint64_t piece = std::max<uint64_t>(1, opt.piece_bytes);
    if (f->size <= 2 * piece) {
      pieces.push_back({f, 0, UINT64_MAX});
      continue;
    }
    for (uint64_t b = 0; b < f->size; b += piece) {
      uint64_t e = b + piece >= f->size ? UINT64_MAX : b + piece;
      pieces.push_back({f, b, e});
    }
  }
  std::vector<PieceView> views(cursors ? pieces.size() : 0);
  for (size_t i = 0; i < views.size(); ++i) pieces[i].view = &views[i];
  unsigned n = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  n = std::max(1u, std::min<unsigned>(n, unsigned(std::max<size_t>(1, pieces.size()))));
  SharedLedger shared;
  const LedgerOptions ledger_options{.spans = opt.spans};
  shared.ledger = Ledger(ledger_options);
  std::vector<Worker> workers(n);
  for (Worker& w : workers) {
    w.shared = &shared;
    w.ledger_options = ledger_options;
    w.local = Ledger(ledger_options);
  }
  std::atomic<size_t> next{0};
  auto run = [&](Worker* w) {
    LineParser parser;
    ParsedLine line;
    for (size_t i; (i = next.fetch_add(1)) < pieces.size();) {
      ScanPiece(pieces[i], opt, &parser, &line, w, progress);
    }
    w->Flush();
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n; ++t) threads.emplace_back(run, &workers[t]);
  run(&workers[0]);
  for (auto& t : threads) t.join();

  result.ledger = std::move(shared.ledger);
  // Each piece of a shrunk file that reached its end saw it: one warning per file, at the
  // earliest end seen (the piece in which the file now ends sees it exactly).
  std::map<const TranscriptFile*, uint64_t> shrunk;
  for (const Worker& w : workers) {
    for (const auto& [file, eof] : w.shrunk) {
      auto [it, inserted] = shrunk.emplace(file, eof);
      if (!inserted) it->second = std::min(it->second, eof);
    }
  }
  for (auto [file, eof] : shrunk) {
    // A piece that had read past the new end before the cut saw no end there: the size now
    // says where the file ends.
    FileInfo now;
    if (opt.env->Stat(file->path, &now).ok()) eof = std::min(eof, now.size);
    result.errors.push_back(file->path + ": shrank from " + std::to_string(file->size) + " to " +
                            std::to_string(eof) + " bytes while being read");
  }
  result.files_shrunk = shrunk.size();
  // A file's cursor: its first piece's identity (the head read before its lines) and the
  // furthest end of a line read (a piece reads its last line through, past its limit), when
  // every piece read it whole and all saw the same file.
  for (size_t i = 0; i < views.size();) {
    size_t j = i + 1;
    while (j < views.size() && pieces[j].file == pieces[i].file) ++j;
    const PieceView& head = views[i];
    bool ok = true, same = true;
    for (size_t k = i; k < j; ++k) {
      ok = ok && views[k].ok;
      same = same && views[k].device == head.device && views[k].inode == head.inode &&
             views[k].head_hash == head.head_hash && views[k].head_bytes == head.head_bytes;
    }
    if (ok && !same) {
      result.unstable.push_back(pieces[i].file->path +
                                ": replaced while being read (its pieces read different files)");
    } else if (ok) {
      ScannedFile c;
      c.path = pieces[i].file->path;
      c.device = head.device;
      c.inode = head.inode;
      c.head_hash = head.head_hash;
      c.head_bytes = head.head_bytes;
      for (size_t k = i; k < j; ++k) {
        c.offset = std::max(c.offset, views[k].offset);
        c.size_seen = std::max(c.size_seen, views[k].size_seen);
      }
      if (c.size_seen == pieces[i].file->size) c.listed_mtime_ms = pieces[i].file->mtime_ms;
      result.cursors.push_back(std::move(c));
    }
    i = j;
  }
  std::sort(result.cursors.begin(), result.cursors.end(),
            [](const ScannedFile& a, const ScannedFile& b) { return a.path < b.path; });
  std::sort(result.unstable.begin(), result.unstable.end());
  for (unsigned t = 0; t < n; ++t) {
    Worker& w = workers[t];
    for (int r = 0; r < kSkipReasonCount; ++r)
      result.skipped.by_reason[r] += w.skipped.by_reason[r];
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
