#include "agent/resume.h"

#include <algorithm>
#include <random>
#include <utility>

#include "agent/engine/engine.h"
#include "base/record_codec.h"
#include "state_mirror/state_records.h"
#include "store/outbox.h"

namespace ccmon::agent {
namespace {

namespace sm = state_mirror;

constexpr std::string_view kWriteSuffix = "/api/v1/write";
// A mirror the agent accepts from its gateway at most (uncompressed records).
constexpr size_t kMaxMirrorRawBytes = size_t(1) << 30;

// Keys the mirror never carries back: the outbox's, and those that describe this copy of the
// state rather than the counting (RestoreState writes them anew).
bool LocalOnly(std::string_view key) {
  return key.empty() || key[0] == kOutboxKeyPrefix || key[0] == Engine::kStateDeltaPrefix ||
         key == Engine::kCaughtUpKey || key == kStreamKey || key == Engine::kStateSeqKey ||
         key == kGatewayKey || key == kResumedKey;
}

// Whether a key is one of those a snapshot leaves out: the outbox's and the staged deltas'.
bool NotMirrored(std::string_view key) {
  return !key.empty() && (key[0] == kOutboxKeyPrefix || key[0] == Engine::kStateDeltaPrefix);
}

}  // namespace

uint64_t NewStreamEpoch() {
  std::random_device rd;
  uint64_t e = 0;
  while (e == 0) e = (uint64_t(rd()) << 32) ^ uint64_t(rd());
  return e;
}

std::string AgentStateUrl(std::string_view write_url) {
  const size_t q = write_url.find('?');
  const std::string_view path = write_url.substr(0, q);
  if (!path.ends_with(kWriteSuffix)) return "";
  std::string url(path.substr(0, path.size() - kWriteSuffix.size()));
  url += sm::kAgentStatePath;
  if (q != std::string_view::npos) url += write_url.substr(q);
  return url;
}

Status StoreIsEmpty(KvStore* store, bool* empty) {
  std::unique_ptr<KvIterator> it = store->NewIterator();
  it->SeekToFirst();
  // The outbox's shard count is written when the outbox opens, before anything is counted: a
  // start that ended there (killed during its bulk first start) left a state still empty.
  if (it->Valid() && it->key() == kOutboxShardCountKey) it->Next();
  *empty = !it->Valid();
  return it->status();
}

Status EnsureStreamEpoch(KvStore* store, uint64_t* epoch) {
  std::string v;
  Status s = store->Get(kStreamKey, &v);
  if (s.ok()) {
    if (!sm::ParseEpoch(v, epoch)) return Status::Corruption("agent state: bad mstream");
    return Status::Ok();
  }
  if (s.code() != Status::Code::kNotFound) return s;
  *epoch = NewStreamEpoch();
  WriteBatch b;
  b.Put(kStreamKey, sm::FormatEpoch(*epoch));
  return store->Write(b, true);
}

StateSnapshotReader::StateSnapshotReader(KvStore* store) : it_(store->NewIterator()) {
  // The sequence first, from the same iterator (the same point) as the records.
  it_->Seek(Engine::kStateSeqKey);
  if (it_->Valid() && it_->key() == Engine::kStateSeqKey &&
      !sm::ParseSequence(it_->value(), &state_seq_)) {
    status_ = Status::Corruption("agent state: bad " + std::string(Engine::kStateSeqKey));
    return;
  }
  it_->SeekToFirst();
  SkipNotMirrored();
  status_ = it_->status();
}

void StateSnapshotReader::SkipNotMirrored() {
  // A whole prefix's range at once.
  while (it_->Valid() && NotMirrored(it_->key()))
    it_->Seek(std::string(1, char(it_->key()[0] + 1)));
}

Status StateSnapshotReader::Next(size_t max_raw_bytes, sm::StateRecordWriter* w, bool* done) {
  if (!status_.ok()) return status_;
  const uint64_t before = w->count();
  while (it_->Valid() && (w->count() == before || w->raw_bytes() < max_raw_bytes)) {
    w->Put(it_->key(), it_->value());
    it_->Next();
    SkipNotMirrored();
  }
  status_ = it_->status();
  *done = !it_->Valid();
  return status_;
}

Status SnapshotState(KvStore* store, std::string* body, uint64_t* records, uint64_t* state_seq) {
  StateSnapshotReader reader(store);
  sm::StateRecordWriter w;
  bool done = false;
  if (Status s = reader.Next(SIZE_MAX, &w, &done); !s.ok()) return s;
  *state_seq = reader.state_seq();
  *records = w.count();
  *body = w.Finish();
  return Status::Ok();
}

Status RestoreState(KvStore* store, const WriteBatch& mirror, uint64_t epoch, uint64_t state_seq,
                    int64_t now_ms, RestoreStats* stats) {
  *stats = {};
  WriteBatch b;
  for (const WriteBatch::Op& op : mirror.ops()) {
    if (op.type != WriteBatch::OpType::kPut || LocalOnly(op.key)) continue;
    b.Put(op.key, op.value);
    ++stats->records;
    if (op.key[0] == Engine::kFilePrefix) ++stats->files;
    if (op.key[0] == 'c') ++stats->series;
  }
  b.Put(kStreamKey, sm::FormatEpoch(epoch));
  b.Put(Engine::kStateSeqKey, std::to_string(state_seq));
  b.Put(kResumedKey, std::to_string(now_ms));
  b.Put(kGatewayKey, "1");
  return store->Write(b, true);
}

void ProbeGateway(HttpTransport* transport, const std::string& state_url,
                  const std::vector<HttpHeader>& headers, Probe* probe) {
  probe->mirror.Clear();
  std::string after;     // the key the next page starts after ("" the first page)
  size_t raw_bytes = 0;  // the records' keys and values so far
  int restarts = 0;
  auto retry = [probe](std::string why) {
    probe->outcome = ProbeOutcome::kRetry;
    if (!why.empty()) probe->detail += ": " + why;
  };
  for (;;) {
    const bool first_page = after.empty();
    HttpRequest req;
    req.method = "GET";
    req.url = state_url;
    req.headers = headers;
    if (!first_page)
      req.headers.emplace_back(std::string(sm::kStateAfterHeader), sm::FormatKeyHex(after));
    HttpResponse resp;
    if (Status s = transport->Exchange(req, &resp); !s.ok()) {
      probe->outcome = ProbeOutcome::kRetry;
      probe->detail = s.message();
      return;
    }
    probe->detail = "HTTP " + std::to_string(resp.status);
    if (resp.status != 200) {
      if (!first_page) return retry("the mirror went away between its pages");
      probe->outcome = resp.status == 204 ? ProbeOutcome::kNoMirror
                       : resp.status == 400 || resp.status == 404 || resp.status == 405
                           ? ProbeOutcome::kNotGateway
                           : ProbeOutcome::kRetry;
      return;
    }
    uint64_t epoch = 0, seq = 0;
    if (!sm::ParseEpoch(resp.Header(sm::kStreamHeader), &epoch) ||
        !sm::ParseSequence(resp.Header(sm::kStateSeqHeader), &seq)) {
      return retry("no stream or state sequence in the answer");
    }
    if (first_page) {
      probe->epoch = epoch;
      probe->state_seq = seq;
    } else if (epoch != probe->epoch || seq != probe->state_seq) {
      // The mirror changed between two pages: read it again from the start.
      if (++restarts > 3) return retry("the mirror kept changing while it was read");
      probe->mirror.Clear();
      after.clear();
      raw_bytes = 0;
      continue;
    }
    const size_t ops_before = probe->mirror.ops().size();
    if (Status s = sm::DecodeStateBody(resp.body, kMaxMirrorRawBytes, &probe->mirror); !s.ok())
      return retry(s.message());
    for (size_t i = ops_before; i < probe->mirror.ops().size(); ++i)
      raw_bytes += probe->mirror.ops()[i].key.size() + probe->mirror.ops()[i].value.size();
    if (raw_bytes > kMaxMirrorRawBytes) return retry("the mirror is over 1 GiB");
    const std::string_view next = resp.Header(sm::kStateNextHeader);
    if (next.empty()) {
      probe->outcome = ProbeOutcome::kMirror;
      return;
    }
    std::string next_key;
    if (!sm::ParseKeyHex(next, &next_key) || next_key <= after)
      return retry("a bad next-page key");  // or one that does not move forward
    after = std::move(next_key);
  }
}

StateMirrorUploader::StateMirrorUploader(UploaderOptions options)
    : options_(std::move(options)),
      gateway_(options_.gateway),
      snapshot_part_bytes_(std::max(options_.max_upload_bytes, kMinSnapshotPartBytes)) {}

StateMirrorUploader::~StateMirrorUploader() { Stop(false); }

void StateMirrorUploader::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void StateMirrorUploader::Kick() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void StateMirrorUploader::Stop(bool final_upload) {
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }
  if (final_upload && gateway_.load() == 1) {
    Sync(options_.stop_transport != nullptr ? options_.stop_transport : options_.transport, {},
         std::chrono::steady_clock::now() + options_.final_upload_budget);
  }
}

UploaderStats StateMirrorUploader::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void StateMirrorUploader::Run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    if (gateway_.load() < 0) {
      Probe p;
      ProbeGateway(options_.transport, options_.state_url, options_.headers, &p);
      if (p.outcome != ProbeOutcome::kRetry) {
        const int gateway = p.outcome == ProbeOutcome::kNotGateway ? 0 : 1;
        WriteBatch b;
        b.Put(kGatewayKey, gateway == 1 ? "1" : "0");
        if (Status s = options_.store->Write(b, true); !s.ok() && options_.log)
          options_.log("warn", "state mirror: cannot record the target's kind", s.message());
        if (options_.log) {
          options_.log("info",
                       gateway == 1 ? "the target is a ccmon-gateway: the state is mirrored to it"
                                    : "the target is not a ccmon-gateway: no state mirror",
                       p.detail);
        }
        // Nothing was staged while it was unknown: the gateway's copy starts with a snapshot.
        needs_snapshot_ = gateway == 1;
        gateway_.store(gateway);
      }
      if (gateway_.load() == 0) return;
    }
    if (gateway_.load() == 1) Sync(options_.transport, stop);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, stop, options_.interval, [this] { return kicked_; });
    kicked_ = false;
  }
}

Status StateMirrorUploader::DeleteDeltasThrough(uint64_t seq) {
  WriteBatch b;
  const std::string first(1, Engine::kStateDeltaPrefix);
  const std::string end = Engine::StateDeltaKey(seq);
  std::unique_ptr<KvIterator> it = options_.store->NewIterator();
  for (it->Seek(first); it->Valid() && it->key().starts_with(first) && it->key() <= end;
       it->Next()) {
    b.Delete(it->key());
  }
  if (!it->status().ok()) return it->status();
  if (b.empty()) return Status::Ok();
  // Unsynced: deltas the gateway holds that come back after a power loss are sent again and
  // acknowledged as duplicates.
  return options_.store->Write(b, false);
}

unsigned StateMirrorUploader::Post(HttpTransport* transport, std::string body,
                                   const std::string& seq, bool full,
                                   const std::vector<HttpHeader>& extra, std::string* detail,
                                   bool* device_limit) {
  HttpRequest req;
  req.method = "POST";
  req.url = options_.state_url;
  req.headers = options_.headers;
  req.headers.emplace_back("Content-Type", std::string(sm::kStateContentType));
  req.headers.emplace_back(std::string(sm::kStreamHeader), sm::FormatEpoch(epoch_));
  req.headers.emplace_back(std::string(sm::kStateSeqHeader), seq);
  if (full) req.headers.emplace_back(std::string(sm::kStateFullHeader), "1");
  for (const HttpHeader& h : extra) req.headers.push_back(h);
  req.body = std::move(body);
  HttpResponse resp;
  if (Status s = transport->Exchange(req, &resp); !s.ok()) {
    *detail = s.message();
    return 0;
  }
  *detail = "HTTP " + std::to_string(resp.status);
  if (device_limit != nullptr)
    *device_limit = resp.status == 413 && resp.Header(sm::kStateLimitHeader) == "device";
  return resp.status;
}

bool StateMirrorUploader::UploadSnapshot(HttpTransport* transport, Deadline deadline) {
  // After a 413 the next snapshot waits (it would most likely be refused again, and it costs a
  // read of the whole state).
  if (std::chrono::steady_clock::now() < snapshot_not_before_) return false;
  // Again at once after a 409 for a part (the gateway's staging was replaced) or with smaller
  // parts after a body-limit 413; a few times at most.
  for (int attempt = 0; attempt < 6; ++attempt) {
    switch (SendSnapshot(transport, deadline)) {
      case SnapshotResult::kSent:
        return true;
      case SnapshotResult::kAgain:
        continue;
      case SnapshotResult::kFailed:
        return false;
    }
  }
  return false;
}

StateMirrorUploader::SnapshotResult StateMirrorUploader::SendSnapshot(HttpTransport* transport,
                                                                      Deadline deadline) {
  auto failed = [this](std::string_view msg, std::string_view detail) {
    if (options_.log) options_.log("warn", msg, detail);
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.failures;
    return SnapshotResult::kFailed;
  };
  StateSnapshotReader reader(options_.store);
  if (!reader.status().ok())
    return failed("state mirror: cannot read the state", reader.status().message());
  const uint64_t seq = reader.state_seq();
  sm::StateRecordWriter w;
  size_t total_bytes = 0;
  uint64_t part = 0;
  for (bool done = false; !done; ++part) {
    if (Status s = reader.Next(snapshot_part_bytes_, &w, &done); !s.ok())
      return failed("state mirror: cannot read the state", s.message());
    const size_t raw_bytes = w.raw_bytes();
    std::string body = w.Finish();
    const size_t bytes = body.size();
    total_bytes += bytes;
    if (std::chrono::steady_clock::now() > deadline) return SnapshotResult::kFailed;  // at a stop
    std::vector<HttpHeader> extra = {{std::string(sm::kStatePartHeader), std::to_string(part)}};
    if (done) extra.emplace_back(std::string(sm::kStateLastHeader), "1");
    std::string detail;
    bool device_limit = false;
    const unsigned status =
        Post(transport, std::move(body), std::to_string(seq), true, extra, &detail, &device_limit);
    if (status / 100 == 2) continue;
    if (status == 409) {
      if (options_.log)
        options_.log("info", "state mirror: the gateway lost a snapshot's parts; sending it again",
                     detail);
      return SnapshotResult::kAgain;
    }
    if (status == 413 && !device_limit && snapshot_part_bytes_ > kMinSnapshotPartBytes) {
      // A quarter, or half of what was refused when that is less (a small state's first part
      // is the whole state, whatever the part size).
      snapshot_part_bytes_ =
          std::max(std::min(snapshot_part_bytes_ / 4, raw_bytes / 2), kMinSnapshotPartBytes);
      if (options_.log) {
        options_.log("info",
                     "state mirror: a snapshot part was over the gateway's body limit; sending "
                     "smaller parts",
                     detail + ", " + std::to_string(bytes) + " bytes, now parts of " +
                         std::to_string(snapshot_part_bytes_) + " bytes uncompressed");
      }
      return SnapshotResult::kAgain;
    }
    if (status == 413) {
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++stats_.refused;
      }
      snapshot_not_before_ = std::chrono::steady_clock::now() + options_.refused_retry;
      if (options_.log) {
        options_.log(
            "warn",
            device_limit ? "state mirror refused by the gateway (413): over its "
                           "per-device limit (--max-agent-state-bytes); a lost state "
                           "cannot be resumed"
                         : "state mirror refused by the gateway (413): even the smallest "
                           "parts are over its body limit (--max-body-bytes); a lost "
                           "state cannot be resumed",
            detail + ", part " + std::to_string(part) + ", " + std::to_string(bytes) + " bytes");
      }
      return SnapshotResult::kFailed;
    }
    return failed("state mirror upload failed; retried later", detail);
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.snapshot_uploads;
    stats_.snapshot_parts += part;
    stats_.last_snapshot_bytes = total_bytes;
  }
  needs_snapshot_ = false;
  if (Status s = DeleteDeltasThrough(seq); !s.ok() && options_.log)
    options_.log("warn", "state mirror: cannot delete sent deltas", s.message());
  return SnapshotResult::kSent;
}

bool StateMirrorUploader::Sync(HttpTransport* transport, std::stop_token stop, Deadline deadline) {
  if (epoch_ == 0) {
    if (Status s = EnsureStreamEpoch(options_.store, &epoch_); !s.ok()) {
      if (options_.log) options_.log("warn", "state mirror: cannot read the state", s.message());
      return false;
    }
  }
  for (;;) {
    if (stop.stop_requested() || std::chrono::steady_clock::now() > deadline) return false;
    if (needs_snapshot_) {
      if (!UploadSnapshot(transport, deadline)) return false;
      continue;  // deltas staged after the snapshot's point
    }
    // The oldest staged deltas, in order, up to max_upload_bytes; the backlog's size.
    std::string records;
    uint64_t first = 0, last = 0;
    size_t backlog = 0;
    {
      const std::string prefix(1, Engine::kStateDeltaPrefix);
      std::unique_ptr<KvIterator> it = options_.store->NewIterator();
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        backlog += it->value().size();
        if (records.empty() || records.size() + it->value().size() <= options_.max_upload_bytes) {
          if (it->key().size() != 9) continue;  // not a delta key: left alone
          uint64_t seq = 0;
          Reader(it->key().substr(1)).Fixed64BE(&seq);
          if (first != 0 && seq != last + 1) break;  // a hole: send up to it
          if (first == 0) first = seq;
          last = seq;
          records.append(it->value());
        }
      }
      if (!it->status().ok()) return false;
    }
    if (first == 0) return true;  // nothing staged
    if (backlog > options_.max_backlog_bytes) {
      // The gateway has been away long: a snapshot replaces the backlog.
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++stats_.backlog_dropped;
      }
      if (options_.log) {
        options_.log("warn", "state mirror: staged deltas over their limit; a snapshot follows",
                     std::to_string(backlog) + " bytes");
      }
      if (Status s = DeleteDeltasThrough(UINT64_MAX); !s.ok()) return false;
      needs_snapshot_ = true;
      continue;
    }
    std::string detail;
    const unsigned status =
        Post(transport, sm::CompressRecords(records),
             std::to_string(first) + "-" + std::to_string(last), false, {}, &detail);
    if (status / 100 == 2) {
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++stats_.delta_uploads;
        stats_.deltas_sent += last - first + 1;
      }
      if (Status s = DeleteDeltasThrough(last); !s.ok()) return false;
      continue;
    }
    std::lock_guard<std::mutex> lock(stats_mu_);
    if (status == 409) {
      ++stats_.gaps;
      needs_snapshot_ = true;
      continue;
    }
    if (status == 413) {
      // The deltas would take the gateway's copy over its bound: a snapshot will say so too.
      ++stats_.refused;
      needs_snapshot_ = true;
      if (options_.log) {
        options_.log("warn",
                     "state mirror refused by the gateway (413): over its per-device limit "
                     "(--max-agent-state-bytes) or its body limit (--max-body-bytes); a lost state "
                     "cannot be resumed",
                     detail);
      }
      if (Status s = DeleteDeltasThrough(last); !s.ok()) return false;
      return false;
    }
    ++stats_.failures;
    if (options_.log) options_.log("warn", "state mirror upload failed; retried later", detail);
    return false;
  }
}

}  // namespace ccmon::agent
