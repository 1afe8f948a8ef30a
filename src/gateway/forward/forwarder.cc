#include "gateway/forward/forwarder.h"

#include <algorithm>
#include <map>
#include <utility>

#include "base/record_codec.h"
#include "base/utf8.h"
#include "remote_write/write_request.h"

namespace ccmon::gateway {
namespace {

// An entry is cut once its series hold this many label bytes, well below the outbox's
// kMaxOutboxPayloadBytes, so that no request is too large to queue.
constexpr size_t kMaxEntryLabelBytes = size_t(4) << 20;
// Deletes per write when a removed destination's queue is dropped.
constexpr size_t kDropBatchKeys = 10'000;

std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

size_t LabelBytes(const Labels& labels) {
  size_t n = 0;
  for (const auto& [k, v] : labels) n += k.size() + v.size() + 4;
  return n;
}

// `labels` (sorted by name) with `extra` added, replacing labels of the same names.
Labels WithExtraLabels(const Labels& labels, const Labels& extra) {
  if (extra.empty()) return labels;
  Labels out;
  out.reserve(labels.size() + extra.size());
  for (const auto& label : labels) {
    const bool replaced = std::any_of(extra.begin(), extra.end(),
                                      [&](const auto& e) { return e.first == label.first; });
    if (!replaced) out.push_back(label);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

}  // namespace

Status CheckForwardLabels(const Labels& labels) {
  static constexpr std::string_view kReserved[] = {"device", "model",  "project", "type",
                                                   "tool",   "reason", "le",      "quantile"};
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto& [name, value] = labels[i];
    if (!rw::IsValidLabelName(name)) {
      return Status::InvalidArgument("forward label '" + name +
                                     "': not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
    }
    if (name.starts_with("__")) {
      // Reserved in Prometheus's data model; the remote-write encoder refuses them. Mimir's HA
      // tracker takes another replica label name (ha_replica_label), e.g. `replica`.
      return Status::InvalidArgument("forward label '" + name +
                                     "': names starting with __ are reserved (for Mimir's HA "
                                     "tracker use e.g. replica=… and ha_replica_label: replica)");
    }
    for (std::string_view r : kReserved) {
      if (name == r) {
        return Status::InvalidArgument("forward label '" + name +
                                       "': the series' own label, not replaceable");
      }
    }
    if (value.empty() || !IsValidUtf8(value)) {
      return Status::InvalidArgument("forward label '" + name + "' wants a non-empty UTF-8 value");
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].first == name) {
        return Status::InvalidArgument("forward label '" + name + "' given twice");
      }
    }
  }
  return Status::Ok();
}

std::string ForwardQueuePrefix(std::string_view url) {
  std::string p(1, kForwardKeyPrefix);
  PutBytes(&p, url);
  return p;
}

std::string RedactedUrl(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t host = scheme + 3;
  const size_t end = std::min(url.find('/', host), url.size());
  const size_t at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < host) return std::string(url);
  return std::string(url.substr(0, host)) + std::string(url.substr(at + 1));
}

struct Forwarder::Destination {
  ForwardDestination config;
  std::string name;  // RedactedUrl
  std::unique_ptr<PrefixedStore> store;
  std::unique_ptr<Outbox> outbox;
  std::vector<std::unique_ptr<OutboxShardSource>> sources;
  std::unique_ptr<QueueManager> queue;
  std::atomic<uint64_t> samples_queued{0}, samples_invalid{0}, samples_dropped{0};
  // What the last Prepare staged, counted at Committed.
  uint64_t staged_samples = 0, staged_invalid = 0;
  int64_t logged_error_unix_ms = 0;  // the limits thread's
};

Forwarder::Forwarder(ForwarderOptions options, Clock* clock)
    : options_(std::move(options)), clock_(clock) {}

Forwarder::~Forwarder() { Stop(); }

void Forwarder::Log(std::string_view line) const {
  if (options_.log) options_.log(line);
}

Status Forwarder::Open(KvStore* kv, ForwarderOptions options, Clock* clock,
                       std::unique_ptr<Forwarder>* out) {
  if (options.destinations.empty()) {
    return Status::InvalidArgument("forwarding needs at least one destination");
  }
  if (options.shards < 1 || options.shards > kMaxShards) {
    return Status::InvalidArgument("forward shards must be 1.." + std::to_string(kMaxShards));
  }
  std::map<std::string, bool> configured;
  for (const ForwardDestination& d : options.destinations) {
    if (d.url.empty()) return Status::InvalidArgument("a forward destination without a URL");
    if (!configured.emplace(d.url, true).second) {
      return Status::InvalidArgument("forward destination given twice: " + RedactedUrl(d.url));
    }
    if (Status s = CheckForwardLabels(d.labels); !s.ok()) {
      return Status::InvalidArgument(RedactedUrl(d.url) + ": " + s.message());
    }
  }
  std::unique_ptr<Forwarder> f(new Forwarder(std::move(options), clock));

  // Queues of destinations no longer configured: dropped, said in the log.
  {
    auto it = kv->NewIterator();
    it->Seek(std::string(1, kForwardKeyPrefix));
    while (it->Valid() && it->key()[0] == kForwardKeyPrefix) {
      Reader in(it->key().substr(1));
      std::string url;
      if (!in.Bytes(&url)) {
        return Status::Corruption("gateway: malformed forward queue key");
      }
      const std::string prefix = ForwardQueuePrefix(url);
      if (configured.count(url) != 0) {
        it->Seek(prefix + "\xff");
        continue;
      }
      uint64_t dropped = 0;
      WriteBatch batch;
      for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
        batch.Delete(it->key());
        if (it->key().size() == prefix.size() + kOutboxKeyBytes) ++dropped;  // not the shard count
        if (batch.count() >= kDropBatchKeys) {
          if (Status s = kv->Write(batch, /*sync=*/true); !s.ok()) return s;
          batch.Clear();
        }
      }
      if (!it->status().ok()) return it->status();
      if (Status s = kv->Write(batch, /*sync=*/true); !s.ok()) return s;
      f->Log(
          "level=warn msg=\"forward queue dropped: the destination is no longer configured\" "
          "destination=" +
          Quoted(RedactedUrl(url)) + " entries=" + std::to_string(dropped));
    }
    if (!it->status().ok()) return it->status();
  }

  for (const ForwardDestination& d : f->options_.destinations) {
    auto dest = std::make_unique<Destination>();
    dest->config = d;
    dest->name = RedactedUrl(d.url);
    dest->store = std::make_unique<PrefixedStore>(kv, ForwardQueuePrefix(d.url));
    if (Status s = Outbox::Open(dest->store.get(), f->options_.queue, int(f->options_.shards),
                                &dest->outbox);
        !s.ok()) {
      return s;
    }
    const OutboxStats st = dest->outbox->Stats();
    if (st.corrupt_dropped != 0) {
      f->Log("level=warn msg=\"forward queue: damaged entries dropped\" destination=" +
             Quoted(dest->name) + " entries=" + std::to_string(st.corrupt_dropped));
    }
    f->Log("level=info msg=\"forwarding\" destination=" + Quoted(dest->name) +
           " queued_samples=" + std::to_string(st.total.samples) +
           " queued_entries=" + std::to_string(st.total.entries) +
           " shards=" + std::to_string(dest->outbox->shard_count()) +
           (dest->outbox->shard_count() != int(f->options_.shards)
                ? " shards_wanted=" + std::to_string(f->options_.shards) +
                      " note=\"the queued samples keep their shards; the new count applies at a "
                      "start with an empty queue\""
                : std::string()));
    // Shards beyond options.shards may hold entries from an earlier run with more shards: each
    // is drained by a queue shard of its own. Built here, so that nothing stats() reads changes
    // after Open.
    const size_t shards = size_t(dest->outbox->shard_count());
    std::vector<ShardSource*> sources;
    for (size_t i = 0; i < shards; ++i) {
      dest->sources.push_back(std::make_unique<OutboxShardSource>(dest->outbox.get(), uint32_t(i)));
      sources.push_back(dest->sources.back().get());
    }
    QueueManagerOptions qo;
    qo.shards = shards;
    qo.max_samples_per_send = f->options_.max_samples_per_send;
    qo.batch_send_deadline = f->options_.batch_send_deadline;
    qo.sender.url = d.url;
    qo.sender.headers = d.headers;
    qo.sender.user_agent = "ccmon-gateway/forward";
    qo.sender.max_retry_time = f->options_.max_retry_time;
    // The queue is the samples' only copy on their way upstream: a refused credential keeps
    // them until it is fixed, like an outage (the log and last_error say why).
    qo.sender.retry_auth_failures = true;
    qo.http = f->options_.http;
    qo.transport_factory = f->options_.transport_factory;
    dest->queue = std::make_unique<QueueManager>(qo, sources, clock);
    f->destinations_.push_back(std::move(dest));
  }
  *out = std::move(f);
  return Status::Ok();
}

Status Forwarder::Start() {
  if (started_) return Status::InvalidArgument("the forwarder was started already");
  started_ = true;
  for (auto& d : destinations_) {
    if (Status s = d->queue->Start(); !s.ok()) return s;
  }
  EnforceLimits();
  limits_thread_ = std::jthread([this](std::stop_token stop) {
    while (clock_->WaitFor(options_.limits_interval, stop)) {
      EnforceLimits();
      LogNewSendErrors();
    }
  });
  return Status::Ok();
}

void Forwarder::Stop() {
  if (limits_thread_.joinable()) {
    limits_thread_.request_stop();
    limits_thread_.join();
  }
  for (auto& d : destinations_) {
    d->queue->Stop();
  }
}

void Forwarder::EnforceLimits() {
  const int64_t now = clock_->NowUnixMs();
  for (auto& d : destinations_) {
    OutboxDropStats dropped;
    if (Status s = d->outbox->EnforceLimits(now, &dropped); !s.ok()) {
      Log("level=error msg=\"forward queue: cannot enforce its limits\" destination=" +
          Quoted(d->name) + " error=" + Quoted(s.message()));
      continue;
    }
    if (dropped.empty()) continue;
    d->samples_dropped += dropped.samples;
    Log("level=warn msg=\"forward queue over its limits: oldest entries dropped\" destination=" +
        Quoted(d->name) + " samples=" + std::to_string(dropped.samples) + " entries=" +
        std::to_string(dropped.entries) + " by_age=" + std::to_string(dropped.by_age) +
        " by_size=" + std::to_string(dropped.by_size));
  }
}

void Forwarder::LogNewSendErrors() {
  for (auto& d : destinations_) {
    const QueueStats q = d->queue->stats();
    if (q.last_error_unix_ms == 0 || q.last_error_unix_ms == d->logged_error_unix_ms) continue;
    d->logged_error_unix_ms = q.last_error_unix_ms;
    Log("level=warn msg=\"forwarding failed; the samples stay queued unless refused for good\" "
        "destination=" +
        Quoted(d->name) + " error=" + Quoted(q.last_error) + " samples_refused=" +
        std::to_string(q.samples_rejected) + " gave_up=" + std::to_string(q.gave_up));
  }
}

void Forwarder::BuildEntries(const std::vector<IncomingSeries>& stored, size_t shards,
                             std::vector<Entry>* entries, uint64_t* invalid_samples,
                             const Labels& extra_labels) {
  entries->clear();
  *invalid_samples = 0;
  // Per shard, the requests being built: request k holds the k-th sample (of this request) of
  // each of its series. A series may come several times (Prometheus sends one entry per sample):
  // `next` says which request its next sample goes to.
  struct Building {
    rw::WriteRequest request;
    size_t label_bytes = 0;
  };
  std::vector<std::vector<Building>> by_shard(shards);
  std::map<std::string_view, size_t> next;  // series key -> index of its next request
  std::vector<std::string> keys;
  keys.reserve(stored.size());
  for (const IncomingSeries& in : stored) {
    const std::string_view given = GivenKeyOf(in);
    keys.push_back(given.empty() ? SeriesKey(in.labels) : std::string(given));
  }
  for (size_t i = 0; i < stored.size(); ++i) {
    const IncomingSeries& in = stored[i];
    const Labels own = LabelsOf(in);  // the write handler leaves them in the key
    const size_t shard = ShardOf(SeriesHash(own), shards);
    std::vector<Building>& reqs = by_shard[shard];
    size_t& k = next[keys[i]];
    const Labels labels = WithExtraLabels(own, extra_labels);
    const size_t bytes = LabelBytes(labels);
    for (const rw::Sample& s : in.samples) {
      // Past a full request: the series' sample goes to the first request after it that has
      // room (the order of a series' samples is the order of the requests).
      while (k < reqs.size() && reqs[k].label_bytes + bytes > kMaxEntryLabelBytes &&
             !reqs[k].request.series.empty()) {
        ++k;
      }
      if (k == reqs.size()) reqs.emplace_back();
      rw::Series series;
      series.labels = labels;
      series.samples.push_back(s);
      reqs[k].request.series.push_back(std::move(series));
      reqs[k].label_bytes += bytes;
      ++k;
    }
  }
  for (size_t shard = 0; shard < shards; ++shard) {
    for (Building& b : by_shard[shard]) {
      Entry e;
      e.shard = uint32_t(shard);
      if (!rw::Serialize(b.request, &e.payload).ok()) {
        // Validate series by series; leave out those the encoder refuses.
        rw::WriteRequest valid;
        for (rw::Series& series : b.request.series) {
          rw::WriteRequest one;
          one.series.push_back(std::move(series));
          std::string ignored;
          if (rw::Serialize(one, &ignored).ok()) {
            valid.series.push_back(std::move(one.series[0]));
          } else {
            *invalid_samples += one.series[0].samples.size();
          }
        }
        if (valid.series.empty() || !rw::Serialize(valid, &e.payload).ok()) continue;
        b.request = std::move(valid);
      }
      e.samples = uint32_t(b.request.sample_count());
      entries->push_back(std::move(e));
    }
  }
}

void Forwarder::Prepare(const std::vector<IncomingSeries>& series, const SeriesTable& before,
                        WriteBatch* batch) {
  for (auto& d : destinations_) d->staged_samples = d->staged_invalid = 0;
  // What this request stores: the table's own rules (Plan) over the state before it.
  std::vector<IncomingSeries> stored;
  PlannedChanges changes;
  ApplyResult result;
  before.Plan(series, {}, &changes, &result, &stored);
  if (stored.empty()) return;
  // The entries of each distinct --forward-label set, built once (usually one set: none).
  struct Built {
    const Labels* labels;
    std::vector<Entry> entries;
    uint64_t invalid = 0;
  };
  std::vector<Built> built;
  const int64_t now = clock_->NowUnixMs();
  WriteBatch staged;
  for (auto& d : destinations_) {
    auto it = std::find_if(built.begin(), built.end(),
                           [&](const Built& b) { return *b.labels == d->config.labels; });
    if (it == built.end()) {
      built.push_back(Built{&d->config.labels, {}, 0});
      it = built.end() - 1;
      BuildEntries(stored, options_.shards, &it->entries, &it->invalid, d->config.labels);
    }
    const std::vector<Entry>& entries = it->entries;
    d->staged_invalid = it->invalid;
    for (const Entry& e : entries) d->staged_samples += e.samples;
    staged.Clear();
    for (const Entry& e : entries) {
      if (Status s = d->outbox->Stage(e.shard, now, e.samples, e.payload, &staged); !s.ok()) {
        d->samples_invalid += e.samples;
        Log("level=error msg=\"forward queue: an entry could not be queued\" destination=" +
            Quoted(d->name) + " samples=" + std::to_string(e.samples) +
            " error=" + Quoted(s.message()));
      }
    }
    d->store->AppendPrefixed(staged, batch);
  }
}

void Forwarder::Committed() {
  for (auto& d : destinations_) {
    d->outbox->Committed();
    d->samples_queued += d->staged_samples;
    d->samples_invalid += d->staged_invalid;
    d->staged_samples = d->staged_invalid = 0;
  }
}

void Forwarder::Aborted() {
  for (auto& d : destinations_) {
    d->outbox->Abandon();
    d->staged_samples = d->staged_invalid = 0;
  }
}

std::vector<ForwardDestinationStats> Forwarder::stats() const {
  std::vector<ForwardDestinationStats> out;
  const int64_t now = clock_->NowUnixMs();
  for (const auto& d : destinations_) {
    ForwardDestinationStats s;
    s.destination = d->name;
    const OutboxStats o = d->outbox->Stats();
    s.queued_samples = o.total.samples;
    s.queued_entries = o.total.entries;
    s.queued_bytes = o.total.bytes;
    if (o.total.oldest_created_ms) {
      s.lag_seconds = double(std::max<int64_t>(0, now - *o.total.oldest_created_ms)) / 1000.0;
    }
    s.samples_queued = d->samples_queued.load();
    s.samples_invalid = d->samples_invalid.load();
    s.samples_dropped = d->samples_dropped.load();
    const QueueStats q = d->queue->stats();
    s.samples_sent = q.samples_sent;
    s.samples_rejected = q.samples_rejected;
    s.retries = q.retries;
    s.gave_up = q.gave_up;
    s.last_error = q.last_error;
    s.last_error_unix_ms = q.last_error_unix_ms;
    s.last_success_unix_ms = q.last_success_unix_ms;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ccmon::gateway
