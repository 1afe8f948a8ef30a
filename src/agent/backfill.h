// The agent's --backfill (issue 7 §4): before its first live sample, send the whole history
// present at start with its original timestamps — the samples `ccmon-replay remote-write`
// sends (exposition/history.h, remote_write/history_backfill.h), under the agent's device,
// --label labels and label caps — to targets that accept old samples.
//
// The history is computed as replay computes it (discovery, a parallel scan into a ledger, the
// accounting): in memory, once, like a replay run over the same files. Events dated after the
// backfill's start (a clock ahead of ours) are stamped at the start (ClampEventTimes), as the live
// counting clamps them. Its samples end at the
// end of the step of the newest event (possibly up to one step after now); the agent's first
// live samples must come later, so the caller waits until end_ms has passed (see RunAgent).
//
// Idempotent on the receiver: a retry after a failure (or a crash) re-sends samples with the
// same timestamps and values, which receivers accept as duplicates of themselves.
// Thread: the caller's; blocks until done, failed, or `stop`.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/env.h"
#include "base/status.h"
#include "http/http_client.h"
#include "metrics/accounting.h"
#include "pricing/pricing.h"
#include "remote_write/remote_write_sender.h"

namespace ccmon::agent {

struct BackfillOptions {
  std::vector<std::string> project_dirs;  // the dirs the agent watches
  std::string device;
  LabelOptions labels;
  const PriceTable* prices = nullptr;  // borrowed
  std::vector<std::pair<std::string, std::string>> static_labels;
  int64_t step_ms = 60000;  // sample step of the history (replay's default)
  size_t max_samples_per_send = 2000;
  RemoteWriteSenderOptions sender;  // the agent's target: URL, headers, retry time
  HttpClientOptions http;           // TLS settings
  Env* env = nullptr;               // borrowed
  Clock* clock = nullptr;           // borrowed
};

struct BackfillResult {
  uint64_t files = 0, lines = 0;
  uint64_t series = 0, samples_sent = 0, requests = 0;
  int64_t end_ms = 0;                 // the history's last sample time (0: nothing sent)
  uint64_t future_events = 0;         // events dated after the start, stamped at it
  std::vector<std::string> warnings;  // unreadable dirs or files (the history lacks them)
  SendResult failed_send;             // the send that stopped it, when one did
};

// Sends the history. Errors: the send that failed (rejected, given up on after the sender's
// retry time, or stopped), with how many samples were stored before it.
Status BackfillHistory(const BackfillOptions& options, std::stop_token stop,
                       BackfillResult* result);

}  // namespace ccmon::agent
