#include "agent/backfill.h"

#include <random>

#include "exposition/history.h"
#include "ledger/scanner.h"
#include "metrics/metrics.h"
#include "remote_write/history_backfill.h"
#include "transcript/discovery.h"

namespace ccmon::agent {

Status BackfillHistory(const BackfillOptions& options, std::stop_token stop,
                       BackfillResult* result) {
  *result = BackfillResult();
  std::vector<TranscriptFile> files =
      ListTranscripts(options.project_dirs, &result->warnings, options.env);
  ScanOptions scan;
  scan.env = options.env;
  scan.threads = 0;  // every core: the first start is when the user waits for us
  ScanProgress progress;
  ScanResult scanned = ScanFiles(files, scan, &progress);
  for (std::string& e : scanned.errors) result->warnings.push_back(std::move(e));
  result->files = scanned.files;
  result->lines = scanned.lines;
  if (stop.stop_requested()) return Status::IoError("backfill: stopped before sending");

  const Accounting accounting =
      Accounting::Build(scanned.ledger, *options.prices, AccountingOptions{options.labels, {}},
                        [](const std::string&) {});  // the live counting warns about prices
  std::vector<FamilyEvents> families = CollectEvents(accounting, options.device);
  result->future_events = ClampEventTimes(&families, options.clock->NowUnixMs());

  RealHttpTransport transport(options.http);
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  RemoteWriteSender sender(options.sender, &transport, options.clock, [&] { return uniform(rng); });
  BackfillStats stats;
  Status s = BackfillRemoteWrite(families, options.step_ms, options.max_samples_per_send, &sender,
                                 &stats, stop, options.static_labels);
  result->series = stats.series;
  result->samples_sent = stats.samples_sent;
  result->requests = stats.requests;
  result->end_ms = stats.end_ms;
  result->failed_send = stats.failed_send;
  return s;
}

}  // namespace ccmon::agent
