#include "agent/self_metrics.h"

#include <algorithm>

#include "base/timeutil.h"

namespace ccmon::agent {
namespace {

SelfCounter Counter(SelfMetrics* m, const std::string& name, const std::string& help,
                    std::vector<std::string> label_names = {},
                    std::vector<std::string> values = {}) {
  SelfCounter c;
  (void)m->AddCounter(SelfFamily{name, help, std::move(label_names)}, values, &c);
  return c;
}
SelfGauge Gauge(SelfMetrics* m, const std::string& name, const std::string& help,
                const std::string& unit = "") {
  SelfGauge g;
  (void)m->AddGauge(SelfFamily{name, help, {}, unit}, {}, &g);
  return g;
}

}  // namespace

AgentSelfMetrics::AgentSelfMetrics() {
  SelfMetrics* m = &metrics_;
  lines_ = Counter(m, "ccmon_agent_lines_read", "Complete transcript lines read.");
  const std::string uploads_help =
      "State mirror uploads a ccmon-gateway acknowledged (docs/agent-design.md \"Resume\"), by "
      "kind: delta (staged commits), snapshot (the whole state, after a 409).";
  mirror_deltas_ =
      Counter(m, "ccmon_agent_state_mirror_uploads", uploads_help, {"kind"}, {"delta"});
  mirror_snapshots_ =
      Counter(m, "ccmon_agent_state_mirror_uploads", uploads_help, {"kind"}, {"snapshot"});
  mirror_deltas_sent_ = Counter(m, "ccmon_agent_state_mirror_deltas_sent",
                                "Staged state deltas (commits) the gateway acknowledged.");
  mirror_gaps_ = Counter(m, "ccmon_agent_state_mirror_gaps",
                         "State delta uploads answered 409 (a snapshot followed).");
  const std::string failed_help =
      "State mirror uploads that failed, by reason: error (no answer, 5xx, 401...; retried), "
      "refused (413: over the gateway's per-device limit).";
  mirror_failed_ =
      Counter(m, "ccmon_agent_state_mirror_failures", failed_help, {"reason"}, {"error"});
  mirror_refused_ =
      Counter(m, "ccmon_agent_state_mirror_failures", failed_help, {"reason"}, {"refused"});
  bytes_ = Counter(m, "ccmon_agent_bytes_read", "Transcript bytes consumed.");
  commits_ = Counter(m, "ccmon_agent_commits", "State commits (one atomic store batch each).");
  samples_queued_ =
      Counter(m, "ccmon_agent_samples_queued", "Remote-write samples put in the outbox.");
  stamped_now_ = Counter(m, "ccmon_agent_samples_stamped_at_read_time",
                         "Changes older than --max-sample-age, stamped when read.");
  resent_ =
      Counter(m, "ccmon_agent_samples_resent", "Unchanged series re-sent after --resend-interval.");
  conflicts_ = Counter(m, "ccmon_agent_attribution_conflicts",
                       "Copies whose effect replay's rules would count differently (A40).");
  requests_ = Counter(m, "ccmon_agent_requests_counted", "Distinct requests counted.");
  copies_ = Counter(m, "ccmon_agent_request_copies", "Further copies of requests merged.");
  pushes_ok_ =
      Counter(m, "ccmon_agent_pushes", "Remote-write requests by result.", {"result"}, {"ok"});
  pushes_rejected_ = Counter(m, "ccmon_agent_pushes", "Remote-write requests by result.",
                             {"result"}, {"rejected"});
  pushes_retried_ =
      Counter(m, "ccmon_agent_pushes", "Remote-write requests by result.", {"result"}, {"retried"});
  samples_sent_ = Counter(m, "ccmon_agent_samples_sent", "Samples acknowledged by the target.");
  samples_rejected_ =
      Counter(m, "ccmon_agent_samples_rejected", "Samples the target refused for good.");
  outbox_dropped_ = Counter(m, "ccmon_agent_outbox_dropped_samples",
                            "Samples dropped because the outbox was over its size or age limit.");
  files_replaced_ = Counter(m, "ccmon_agent_files_replaced", "Files replaced under their name.");
  files_truncated_ =
      Counter(m, "ccmon_agent_files_truncated", "Files that shrank below their offset.");
  files_deleted_ = Counter(m, "ccmon_agent_files_deleted", "Tracked files deleted.");
  read_errors_ = Counter(m, "ccmon_agent_read_errors", "Transcript reads that failed.");
  for (int r = 0; r < kSkipReasonCount; ++r) {
    skipped_[r] = Counter(m, "ccmon_agent_skipped_lines", "Malformed lines skipped, by reason.",
                          {"reason"}, {std::string(SkipReasonName(SkipReason(r)))});
  }
  files_tracked_ = Gauge(m, "ccmon_agent_files_tracked", "Transcript files followed.");
  // No UNIT: an OpenMetrics unit must end the name, and this name (documented, on dashboards)
  // does not end in "_bytes"; with the unit the family was refused and never exported.
  bytes_behind_ = Gauge(m, "ccmon_agent_bytes_behind", "Bytes appended and not read yet.");
  outbox_requests_ = Gauge(m, "ccmon_agent_outbox_requests", "Outbox entries not acknowledged.");
  outbox_bytes_ = Gauge(m, "ccmon_agent_outbox_bytes", "Outbox payload bytes.", "bytes");
  outbox_samples_ = Gauge(m, "ccmon_agent_outbox_samples", "Samples in the outbox.");
  last_push_ = Gauge(m, "ccmon_agent_last_successful_push_timestamp_seconds",
                     "When the target last acknowledged a request.", "seconds");
  pending_requests_ = Gauge(m, "ccmon_agent_requests_unsettled",
                            "Requests not yet observed in claude_cost_per_request_usd.");
  caught_up_ = Gauge(m, "ccmon_agent_caught_up", "1 once the history present at start is read.");
  pricing_updated_ = Gauge(m, "ccmon_agent_pricing_updated_timestamp_seconds",
                           "The price table's updated date (00:00 UTC) as Unix seconds; 0 when "
                           "the table names no valid date.",
                           "seconds");
  (void)metrics_.AddHistogram(
      SelfFamily{
          "ccmon_agent_append_to_ack_seconds",
          "From reading transcript lines (the commit of their samples) to the target's 2xx for "
          "them; one observation per request sent, its oldest entry.",
          {},
          "seconds",
          {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}},
      {}, &lag_);
}

bool AgentSelfMetrics::SetPricingUpdated(std::string_view updated) {
  int64_t epoch_day = 0;
  if (!ParseDay(updated, &epoch_day)) {
    pricing_updated_.Set(0);
    return false;
  }
  pricing_updated_.Set(double(epoch_day) * 86400);
  return true;
}

void AgentSelfMetrics::Rebase() {
  for (auto& [counter, base] : bases_) base = counter->Value();
}

void AgentSelfMetrics::Mirror(SelfCounter& c, uint64_t since_rebuild) {
  auto it =
      std::find_if(bases_.begin(), bases_.end(), [&](const auto& b) { return b.first == &c; });
  if (it == bases_.end()) it = bases_.insert(bases_.end(), {&c, 0.0});
  c.AdvanceTo(it->second + double(since_rebuild));
}

void AgentSelfMetrics::Update(const IngestStats& ingest, const EngineStats& engine,
                              const LiveStats& live, bool caught_up, const OutboxStats& outbox,
                              const QueueStats& queue, size_t files_tracked,
                              uint64_t bytes_behind) {
  // The ingest components' stats start over when they are rebuilt (Rebase); the queue and the
  // outbox live as long as the agent.
  Mirror(lines_, ingest.lines);
  Mirror(bytes_, ingest.bytes);
  Mirror(commits_, engine.commits);
  Mirror(samples_queued_, engine.samples_queued);
  Mirror(stamped_now_, engine.samples_stamped_now);
  Mirror(resent_, engine.samples_resent);
  Mirror(conflicts_, live.conflicts);
  Mirror(requests_, live.requests);
  Mirror(copies_, live.copies);
  Mirror(files_replaced_, ingest.files_replaced);
  Mirror(files_truncated_, ingest.files_truncated);
  Mirror(files_deleted_, ingest.files_deleted);
  Mirror(read_errors_, ingest.read_errors);
  for (int r = 0; r < kSkipReasonCount; ++r) Mirror(skipped_[r], ingest.skipped[r]);
  pushes_ok_.AdvanceTo(double(queue.batches_sent));
  pushes_rejected_.AdvanceTo(double(queue.batches_rejected));
  pushes_retried_.AdvanceTo(double(queue.retries));
  samples_sent_.AdvanceTo(double(queue.samples_sent));
  samples_rejected_.AdvanceTo(double(queue.samples_rejected));
  outbox_dropped_.AdvanceTo(double(outbox.dropped_total.samples));
  files_tracked_.Set(double(files_tracked));
  bytes_behind_.Set(double(bytes_behind));
  outbox_requests_.Set(double(outbox.total.entries));
  outbox_bytes_.Set(double(outbox.total.bytes));
  outbox_samples_.Set(double(outbox.total.samples));
  if (queue.last_success_unix_ms > 0) last_push_.Set(double(queue.last_success_unix_ms) / 1000);
  pending_requests_.Set(double(live.pending));
  caught_up_.Set(caught_up ? 1 : 0);
}

void AgentSelfMetrics::UpdateStateMirror(const UploaderStats& mirror) {
  mirror_deltas_.AdvanceTo(double(mirror.delta_uploads));
  mirror_snapshots_.AdvanceTo(double(mirror.snapshot_uploads));
  mirror_deltas_sent_.AdvanceTo(double(mirror.deltas_sent));
  mirror_gaps_.AdvanceTo(double(mirror.gaps));
  mirror_failed_.AdvanceTo(double(mirror.failures));
  mirror_refused_.AdvanceTo(double(mirror.refused));
}

}  // namespace ccmon::agent
