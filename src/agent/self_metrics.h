// The agent's own metrics (ccmon_agent_*), in prometheus-cpp's core registry through
// selfmetrics/self_metrics.h, refreshed from the components' stats after each ingest step.
// Thread-safe (the registry is); Update() from the ingest thread, Write() from the server's.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/engine/engine.h"
#include "agent/engine/ingest.h"
#include "agent/resume.h"
#include "exposition/negotiate.h"
#include "remote_write/queue_manager.h"
#include "selfmetrics/self_metrics.h"
#include "store/outbox.h"

namespace ccmon::agent {

class AgentSelfMetrics {
 public:
  AgentSelfMetrics();
  // Mirrors the components' counters and gauges.
  void Update(const IngestStats& ingest, const EngineStats& engine, const LiveStats& live,
              bool caught_up, const OutboxStats& outbox, const QueueStats& queue,
              size_t files_tracked, uint64_t bytes_behind);
  // The ingest components were rebuilt (after a failed commit): their stats start from 0 again,
  // so the counters mirroring them continue from what they show now.
  void Rebase();
  // Mirrors the state mirror's uploads (a gateway target only; the families exist either way).
  void UpdateStateMirror(const UploaderStats& mirror);
  // ccmon_agent_pricing_updated_timestamp_seconds: the price table's `updated` date
  // (docs/pricing-format.md, "YYYY-MM-DD" or "YYYYMMDD", taken as 00:00 UTC) as Unix seconds, so
  // that an alert can tell a stale price table (`time() - metric > age`). A missing or
  // unparsable date sets 0: the table's age is unknown, which such an alert reports as old.
  // Returns whether the date parsed. Set once, after the table is loaded.
  bool SetPricingUpdated(std::string_view updated);
  // Observes one append -> acknowledged lag (seconds).
  void ObserveLag(double seconds) { lag_.Observe(seconds); }
  const SelfMetrics& registry() const { return metrics_; }

 private:
  SelfMetrics metrics_;
  SelfCounter lines_, bytes_, commits_, samples_queued_, stamped_now_, resent_, conflicts_,
      requests_, copies_, pushes_ok_, pushes_rejected_, pushes_retried_, samples_sent_,
      samples_rejected_, outbox_dropped_, files_replaced_, files_truncated_, files_deleted_,
      read_errors_;
  std::array<SelfCounter, kSkipReasonCount> skipped_;
  SelfGauge files_tracked_, bytes_behind_, outbox_requests_, outbox_bytes_, outbox_samples_,
      last_push_, pending_requests_, caught_up_, pricing_updated_;
  SelfHistogram lag_;
  SelfCounter mirror_deltas_, mirror_snapshots_, mirror_deltas_sent_, mirror_gaps_, mirror_failed_,
      mirror_refused_;
  // Per mirrored counter of the rebuilt components: its value when they were last rebuilt.
  std::vector<std::pair<SelfCounter*, double>> bases_;
  void Mirror(SelfCounter& c, uint64_t since_rebuild);
};

}  // namespace ccmon::agent
