#include "agent/resume.h"

#include <random>
#include <utility>

#include "agent/engine/engine.h"
#include "state_mirror/state_records.h"

namespace ccmon::agent {
namespace {

namespace sm = state_mirror;

constexpr char kOutboxPrefix = 'o';
constexpr std::string_view kWriteSuffix = "/api/v1/write";
// A mirror the agent accepts from its gateway at most (uncompressed records).
constexpr size_t kMaxMirrorRawBytes = size_t(1) << 30;

// Keys the mirror never carries back: the outbox's, and those that describe this copy of the
// state rather than the counting (RestoreState writes them anew).
bool LocalOnly(std::string_view key) {
  return key.empty() || key[0] == kOutboxPrefix || key == Engine::kCaughtUpKey ||
         key == kStreamKey || key == kStateSeqKey || key == kGatewayKey || key == kResumedKey;
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

Status SnapshotState(KvStore* store, std::string* body, uint64_t* records) {
  sm::StateRecordWriter w;
  std::unique_ptr<KvIterator> it = store->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!it->key().empty() && it->key()[0] == kOutboxPrefix) {
      // Skip the whole outbox range at once.
      it->Seek(std::string(1, char(kOutboxPrefix + 1)));
      if (!it->Valid()) break;
    }
    w.Put(it->key(), it->value());
  }
  if (!it->status().ok()) return it->status();
  *records = w.count();
  *body = w.Finish();
  return Status::Ok();
}

Status RestoreState(KvStore* store, const WriteBatch& mirror, uint64_t new_epoch, int64_t now_ms,
                    RestoreStats* stats) {
  *stats = {};
  WriteBatch b;
  for (const WriteBatch::Op& op : mirror.ops()) {
    if (op.type != WriteBatch::OpType::kPut || LocalOnly(op.key)) continue;
    b.Put(op.key, op.value);
    ++stats->records;
    if (op.key[0] == Engine::kFilePrefix) ++stats->files;
    if (op.key[0] == 'c') ++stats->series;
  }
  b.Put(kStreamKey, sm::FormatEpoch(new_epoch));
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

StateMirrorUploader::StateMirrorUploader(UploaderOptions options) : options_(std::move(options)) {}

StateMirrorUploader::~StateMirrorUploader() { Stop(false); }

void StateMirrorUploader::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void StateMirrorUploader::NoteCommit(uint64_t commits) { commits_.store(commits); }

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
  if (final_upload && options_.gateway == 1) {
    UploadIfChanged(options_.stop_transport != nullptr ? options_.stop_transport
                                                       : options_.transport);
  }
}

UploaderStats StateMirrorUploader::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void StateMirrorUploader::Run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    if (options_.gateway < 0) {
      Probe p;
      ProbeGateway(options_.transport, options_.state_url, options_.headers, &p);
      if (p.outcome == ProbeOutcome::kNotGateway || p.outcome == ProbeOutcome::kMirror ||
          p.outcome == ProbeOutcome::kNoMirror) {
        options_.gateway = p.outcome == ProbeOutcome::kNotGateway ? 0 : 1;
        WriteBatch b;
        b.Put(kGatewayKey, options_.gateway == 1 ? "1" : "0");
        if (Status s = options_.store->Write(b, true); !s.ok() && options_.log)
          options_.log("warn", "state mirror: cannot record the target's kind", s.message());
        if (options_.log) {
          options_.log("info",
                       options_.gateway == 1
                           ? "the target is a ccmon-gateway: the state is mirrored to it"
                           : "the target is not a ccmon-gateway: no state mirror",
                       p.detail);
        }
      }
      if (options_.gateway == 0) return;
    }
    if (options_.gateway == 1) UploadIfChanged(options_.transport);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, stop, options_.interval, [this] { return kicked_; });
    kicked_ = false;
  }
}

bool StateMirrorUploader::UploadIfChanged(HttpTransport* transport) {
  const uint64_t commits = commits_.load();
  if (commits == uploaded_commits_) return true;
  KvStore* store = options_.store;
  uint64_t epoch = 0;
  Status s = EnsureStreamEpoch(store, &epoch);
  // The upload's state sequence is written (synced) before it is sent: after a crash the next
  // one is above it, so the gateway never takes a newer state for a duplicate.
  uint64_t seq = 0;
  if (s.ok()) {
    std::string v;
    Status gs = store->Get(kStateSeqKey, &v);
    if (gs.ok() && !sm::ParseSequence(v, &seq)) gs = Status::Corruption("bad mstate_seq");
    if (!gs.ok() && gs.code() != Status::Code::kNotFound) s = gs;
  }
  std::string body;
  uint64_t records = 0;
  if (s.ok()) {
    ++seq;
    WriteBatch b;
    b.Put(kStateSeqKey, std::to_string(seq));
    s = store->Write(b, true);
  }
  if (s.ok()) s = SnapshotState(store, &body, &records);
  if (!s.ok()) {
    if (options_.log) options_.log("warn", "state mirror: cannot read the state", s.message());
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.failures;
    return false;
  }
  HttpRequest req;
  req.method = "POST";
  req.url = options_.state_url;
  req.headers = options_.headers;
  req.headers.emplace_back("Content-Type", std::string(sm::kStateContentType));
  req.headers.emplace_back(std::string(sm::kStreamHeader), sm::FormatEpoch(epoch));
  req.headers.emplace_back(std::string(sm::kStateSeqHeader), std::to_string(seq));
  req.headers.emplace_back(std::string(sm::kStateFullHeader), "1");
  req.body = std::move(body);
  const size_t bytes = req.body.size();
  HttpResponse resp;
  s = transport->Exchange(req, &resp);
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (s.ok() && resp.status / 100 == 2) {
    uploaded_commits_ = commits;
    ++stats_.uploads;
    stats_.last_bytes = bytes;
    stats_.last_records = records;
    return true;
  }
  const std::string detail = s.ok() ? "HTTP " + std::to_string(resp.status) : s.message();
  if (s.ok() && resp.status == 413) {
    ++stats_.refused;
    // Not retried until the state changes again: the same snapshot would be refused again.
    uploaded_commits_ = commits;
    if (options_.log) {
      options_.log("warn",
                   "state mirror refused by the gateway: over its per-device limit "
                   "(--max-agent-state-bytes); a lost state cannot be resumed",
                   detail + ", " + std::to_string(bytes) + " bytes");
    }
  } else {
    ++stats_.failures;
    if (options_.log) options_.log("warn", "state mirror upload failed; retried later", detail);
  }
  return false;
}

}  // namespace ccmon::agent
