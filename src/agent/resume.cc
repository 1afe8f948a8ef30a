#include "agent/resume.h"

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

Status SnapshotState(KvStore* store, std::string* body, uint64_t* records, uint64_t* state_seq) {
  sm::StateRecordWriter w;
  *state_seq = 0;
  std::unique_ptr<KvIterator> it = store->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (NotMirrored(it->key())) {
      // Skip the whole range of this prefix at once.
      it->Seek(std::string(1, char(it->key()[0] + 1)));
      if (!it->Valid()) break;
      if (NotMirrored(it->key())) {  // 'o' then 'p'… cannot be 'u'; be safe anyway
        continue;
      }
    }
    if (it->key() == Engine::kStateSeqKey && !sm::ParseSequence(it->value(), state_seq))
      return Status::Corruption("agent state: bad " + std::string(Engine::kStateSeqKey));
    w.Put(it->key(), it->value());
  }
  if (!it->status().ok()) return it->status();
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
  HttpRequest req;
  req.method = "GET";
  req.url = state_url;
  req.headers = headers;
  HttpResponse resp;
  if (Status s = transport->Exchange(req, &resp); !s.ok()) {
    probe->outcome = ProbeOutcome::kRetry;
    probe->detail = s.message();
    return;
  }
  probe->detail = "HTTP " + std::to_string(resp.status);
  switch (resp.status) {
    case 200: {
      probe->mirror.Clear();
      if (!sm::ParseEpoch(resp.Header(sm::kStreamHeader), &probe->epoch) ||
          !sm::ParseSequence(resp.Header(sm::kStateSeqHeader), &probe->state_seq)) {
        probe->outcome = ProbeOutcome::kRetry;
        probe->detail += ": no stream or state sequence in the answer";
        return;
      }
      if (Status s = sm::DecodeStateBody(resp.body, kMaxMirrorRawBytes, &probe->mirror); !s.ok()) {
        probe->outcome = ProbeOutcome::kRetry;
        probe->detail += ": " + s.message();
        return;
      }
      probe->outcome = ProbeOutcome::kMirror;
      return;
    }
    case 204:
      probe->outcome = ProbeOutcome::kNoMirror;
      return;
    case 400:
    case 404:
    case 405:
      probe->outcome = ProbeOutcome::kNotGateway;
      return;
    default:
      probe->outcome = ProbeOutcome::kRetry;
      return;
  }
}

StateMirrorUploader::StateMirrorUploader(UploaderOptions options)
    : options_(std::move(options)), gateway_(options_.gateway) {}

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
  if (!thread_.joinable()) return;
  thread_.request_stop();
  cv_.notify_all();
  thread_.join();
  if (final_upload && gateway_.load() == 1) {
    Sync(options_.stop_transport != nullptr ? options_.stop_transport : options_.transport, {});
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
                                   const std::string& seq, bool full, std::string* detail) {
  HttpRequest req;
  req.method = "POST";
  req.url = options_.state_url;
  req.headers = options_.headers;
  req.headers.emplace_back("Content-Type", std::string(sm::kStateContentType));
  req.headers.emplace_back(std::string(sm::kStreamHeader), sm::FormatEpoch(epoch_));
  req.headers.emplace_back(std::string(sm::kStateSeqHeader), seq);
  if (full) req.headers.emplace_back(std::string(sm::kStateFullHeader), "1");
  req.body = std::move(body);
  HttpResponse resp;
  if (Status s = transport->Exchange(req, &resp); !s.ok()) {
    *detail = s.message();
    return 0;
  }
  *detail = "HTTP " + std::to_string(resp.status);
  return resp.status;
}

bool StateMirrorUploader::UploadSnapshot(HttpTransport* transport) {
  // After a 413 the next snapshot waits (it would most likely be refused again, and it costs a
  // read of the whole state).
  if (std::chrono::steady_clock::now() < snapshot_not_before_) return false;
  std::string body, detail;
  uint64_t records = 0, seq = 0;
  if (Status s = SnapshotState(options_.store, &body, &records, &seq); !s.ok()) {
    if (options_.log) options_.log("warn", "state mirror: cannot read the state", s.message());
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.failures;
    return false;
  }
  const size_t bytes = body.size();
  const unsigned status = Post(transport, std::move(body), std::to_string(seq), true, &detail);
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (status / 100 == 2) {
    needs_snapshot_ = false;
    ++stats_.snapshot_uploads;
    stats_.last_snapshot_bytes = bytes;
    if (Status s = DeleteDeltasThrough(seq); !s.ok() && options_.log)
      options_.log("warn", "state mirror: cannot delete sent deltas", s.message());
    return true;
  }
  if (status == 413) {
    ++stats_.refused;
    snapshot_not_before_ = std::chrono::steady_clock::now() + options_.refused_retry;
    if (options_.log) {
      options_.log("warn",
                   "state mirror refused by the gateway (413): over its per-device limit "
                   "(--max-agent-state-bytes) or its body limit (--max-body-bytes); a lost state "
                   "cannot be resumed",
                   detail + ", " + std::to_string(bytes) + " bytes");
    }
  } else {
    ++stats_.failures;
    if (options_.log) options_.log("warn", "state mirror upload failed; retried later", detail);
  }
  return false;
}

bool StateMirrorUploader::Sync(HttpTransport* transport, std::stop_token stop) {
  if (epoch_ == 0) {
    if (Status s = EnsureStreamEpoch(options_.store, &epoch_); !s.ok()) {
      if (options_.log) options_.log("warn", "state mirror: cannot read the state", s.message());
      return false;
    }
  }
  for (;;) {
    if (stop.stop_requested()) return false;
    if (needs_snapshot_) {
      if (!UploadSnapshot(transport)) return false;
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
             std::to_string(first) + "-" + std::to_string(last), false, &detail);
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
