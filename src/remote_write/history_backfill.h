// Backfill over remote-write: the history of history.h (the same samples as `openmetrics`),
// sent in ascending time order in requests of at most `max_samples_per_send` samples, so that
// each series' samples arrive in order across requests, as the remote-write spec requires and
// as a Prometheus without an out-of-order window needs when its TSDB holds nothing newer.
// The first request also carries the families' metadata (TYPE/HELP/UNIT). Shared by
// `ccmon-replay remote-write` and `ccmon-agent --backfill`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "exposition/family.h"
#include "remote_write/remote_write_sender.h"
#include "remote_write/write_request.h"

namespace ccmon {

struct BackfillStats {
  uint64_t series = 0;
  uint64_t samples = 0;
  uint64_t requests = 0;  // requests sent (2xx)
  uint64_t samples_sent = 0;
  int64_t end_ms = 0;  // the history's common end time
  // The request that stopped the backfill (outcome kSent when none did): its answer, typed,
  // e.g. failed_send.last.reason for a receiver that refuses old samples.
  SendResult failed_send;
};

// A family's remote-write metadata (TYPE, HELP, UNIT); the family name as the exposition's
// (e.g. "claude_cost_usd" for the counter whose samples are claude_cost_usd_total). What the
// backfill's first request and the agent's live requests carry.
rw::Metadata FamilyMetadata(const FamilyDesc& d);

// Sends the history; stops at the first request that is rejected, given up on or stopped (the
// error names it and says how much was already stored; stats->failed_send has its result).
// `sender` is borrowed; `stop` is passed to every Send().
// `extra_labels` (e.g. the agent's --label k=v) are added to every series.
Status BackfillRemoteWrite(
    const std::vector<FamilyEvents>& families, int64_t step_ms, size_t max_samples_per_send,
    RemoteWriteSender* sender, BackfillStats* stats, std::stop_token stop = {},
    const std::vector<std::pair<std::string, std::string>>& extra_labels = {});

}  // namespace ccmon
