// Backfill over remote-write: the history of history.h (the same samples as `openmetrics`),
// sent in ascending time order in requests of at most `max_samples_per_send` samples, so that
// each series' samples arrive in order across requests, as the remote-write spec requires and
// as a Prometheus without an out-of-order window needs when its TSDB holds nothing newer.
// The first request also carries the families' metadata (TYPE/HELP/UNIT).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "metrics/metrics.h"
#include "base/status.h"
#include "remote_write/remote_write_sender.h"

namespace ccmon {

struct BackfillStats {
  uint64_t series = 0;
  uint64_t samples = 0;
  uint64_t requests = 0;  // requests sent (2xx)
  uint64_t samples_sent = 0;
  int64_t end_ms = 0;  // the history's common end time
};

// Sends the history; stops at the first request that is rejected or given up on (the error names
// it and says how much was already stored). `sender` is borrowed.
Status BackfillRemoteWrite(const std::vector<FamilyEvents>& families, int64_t step_ms,
                           size_t max_samples_per_send, RemoteWriteSender* sender,
                           BackfillStats* stats);

}  // namespace ccmon
