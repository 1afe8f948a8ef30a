#include "agent/engine/bulk_start.h"

#include <utility>

#include "tail/file_identity.h"
#include "transcript/discovery.h"

namespace ccmon::agent {

Record ScannedFileRecord(const ScannedFile& file) {
  TrackedFile t;
  t.path = file.path;
  t.identity.device = file.device;
  t.identity.inode = file.inode;
  t.identity.fingerprint = file.head_hash;
  t.identity.fingerprint_bytes = file.head_bytes;
  t.offset = file.offset;
  t.size_seen = file.size_seen;
  return {std::string(1, Engine::kFilePrefix) + file.path, EncodeTrackedFile(t)};
}

Status BulkStart(const BulkStartOptions& options, const EngineOptions& engine_options,
                 KvStore* store, Outbox* outbox, int64_t now_ms, BulkStartResult* result) {
  *result = BulkStartResult();
  // Replay's discovery over the watched dirs (the tailer's first scan finds the same files; one
  // it finds that the scan did not has no cursor and is read from its start).
  DiscoveryResult own;
  if (options.listed == nullptr) own = FindTranscripts(options.project_dirs, options.env);
  const DiscoveryResult& listing = options.listed != nullptr ? *options.listed : own;
  if (!listing.problems.empty()) {
    result->why_not = "a transcript directory could not be listed: " + listing.problems.front();
    return Status::Ok();
  }
  const std::vector<TranscriptFile>& files = listing.files;
  uint64_t bytes = 0;
  for (const TranscriptFile& f : files) bytes += f.size;
  if (bytes > options.max_history_bytes) {
    result->why_not = "the history (" + std::to_string(bytes) + " bytes) is over " +
                      std::to_string(options.max_history_bytes) + " bytes";
    return Status::Ok();
  }
  ScanOptions so;
  so.threads = options.threads;
  so.max_line_bytes = options.max_line_bytes;
  so.env = options.env;
  so.file_cursors_head_bytes = kFingerprintBytes;
  so.spans = true;
  ScanResult scan = ScanFiles(files, so, nullptr);
  result->files = scan.files;
  result->bytes = scan.bytes;
  result->lines = scan.lines;
  result->skipped = scan.skipped;
  if (!scan.errors.empty() || !scan.unstable.empty() || scan.cursors.size() != files.size()) {
    result->why_not = "a transcript was not read whole: " +
                      (!scan.errors.empty()     ? scan.errors.front()
                       : !scan.unstable.empty() ? scan.unstable.front()
                                                : std::string("a file has no cursor"));
    return Status::Ok();
  }
  // Decided again on what was read: files that grew during the scan (its ledger holds it all).
  if (scan.bytes > options.max_history_bytes) {
    result->why_not = "the history read (" + std::to_string(scan.bytes) + " bytes) is over " +
                      std::to_string(options.max_history_bytes) + " bytes";
    return Status::Ok();
  }
  std::vector<Record> records;
  records.reserve(scan.cursors.size());
  for (const ScannedFile& f : scan.cursors) {
    records.push_back(ScannedFileRecord(f));
    result->consumed_bytes += f.offset;
  }
  bool done = false;
  if (Status s = Engine::BulkFirstStart(engine_options, store, outbox, scan.ledger,
                                        std::move(records), now_ms, &done, &result->live);
      !s.ok()) {
    return s;
  }
  result->done = done;
  if (done) result->scanned = std::move(scan.cursors);
  if (!done) result->why_not = "the history's labels are over a cap (A31)";
  return Status::Ok();
}

}  // namespace ccmon::agent
