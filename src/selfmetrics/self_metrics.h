// ccmon's own metrics (ccmon_agent_*, ccmon_gateway_*): a thin owner of a prometheus-cpp core
// registry, reached through small typed handles so that no user includes prometheus headers,
// and the writers that put them on /metrics next to the claude_* families.
//
// One /metrics body holds both: the claude_* families through ccmon's exact writers
// (exposition/text_format.h: pico-dollar values as exact decimals), then the self-metrics
// (prometheus-cpp's TextSerializer for text 0.0.4; for OpenMetrics, the registry's families
// converted here with the exposition escaping). ComposeMetricsBody joins them with a single
// "# EOF" at the very end.
//
// Naming: a family is named as OpenMetrics names it. A counter's samples get "_total" exactly
// once: "ccmon_agent_lines_read" and "ccmon_agent_lines_read_total" both register the family
// ccmon_agent_lines_read, whose sample is ccmon_agent_lines_read_total in both formats.
//
// Thread-safety: everything is thread-safe. Handles are cheap to copy, stay valid as long as the
// SelfMetrics that made them, and their updates are lock-free (prometheus-cpp's atomics).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "exposition/family.h"
#include "exposition/negotiate.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace ccmon {

struct SelfFamily {
  // [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's trailing "_total" is dropped (see above).
  std::string name;
  // One line: no newline and no backslash (prometheus-cpp's text writer does not escape HELP).
  std::string help;
  // [a-zA-Z_][a-zA-Z0-9_]*, distinct, not starting with "__", and not "le" for histograms.
  std::vector<std::string> label_names = {};
  // The OpenMetrics UNIT ("" for none); the name must then end with "_" + unit.
  std::string unit = "";
  // Histograms only: finite upper bounds, strictly ascending (+Inf is implicit).
  std::vector<double> buckets = {};
};

// A counter series. A default-constructed handle is unbound: its updates do nothing.
class SelfCounter {
 public:
  SelfCounter() = default;
  // Adds `delta`; a negative, NaN or infinite delta is ignored (a counter never goes down).
  void Increment(double delta = 1.0) const;
  // Raises the counter to `total` when it is higher (mirroring a counter kept elsewhere, such as
  // SenderStats, from an OnCollect hook). Meant for a single writer: two racing writers may
  // overshoot.
  void AdvanceTo(double total) const;
  double Value() const;

 private:
  friend class SelfMetrics;
  explicit SelfCounter(prometheus::Counter* c) : counter_(c) {}
  prometheus::Counter* counter_ = nullptr;
};

// A gauge series (unbound when default-constructed).
class SelfGauge {
 public:
  SelfGauge() = default;
  void Set(double value) const;
  void Add(double delta) const;  // negative to decrease
  double Value() const;

 private:
  friend class SelfMetrics;
  explicit SelfGauge(prometheus::Gauge* g) : gauge_(g) {}
  prometheus::Gauge* gauge_ = nullptr;
};

// A histogram series (unbound when default-constructed).
class SelfHistogram {
 public:
  SelfHistogram() = default;
  void Observe(double value) const;  // NaN is ignored

 private:
  friend class SelfMetrics;
  explicit SelfHistogram(prometheus::Histogram* h) : histogram_(h) {}
  prometheus::Histogram* histogram_ = nullptr;
};

class SelfMetrics {
 public:
  SelfMetrics();
  ~SelfMetrics();
  SelfMetrics(const SelfMetrics&) = delete;
  SelfMetrics& operator=(const SelfMetrics&) = delete;

  // The series of `family` with `label_values` (in label_names order), created at 0 on first
  // use. The family is registered on first use; later calls must describe it identically.
  // kInvalidArgument (and an unbound handle) for: a bad name, help, label name, unit or bucket
  // list; a family registered before with another type or description; a name whose samples
  // would collide with another family's (a gauge "x_total" next to a counter "x"); the wrong
  // number of label values, or a value that is not UTF-8.
  Status AddCounter(const SelfFamily& family, const std::vector<std::string>& label_values,
                    SelfCounter* out);
  Status AddGauge(const SelfFamily& family, const std::vector<std::string>& label_values,
                  SelfGauge* out);
  Status AddHistogram(const SelfFamily& family, const std::vector<std::string>& label_values,
                      SelfHistogram* out);

  // Runs before every write (e.g. to set gauges from state read only then: files tracked,
  // outbox size). Hooks run in registration order on the writing thread, without any lock of
  // this class held; they may update handles but must not register families.
  void OnCollect(std::function<void()> hook);

  // Appends every family, sorted by name (series sorted by label values), in `format`:
  // text 0.0.4 through prometheus-cpp's TextSerializer, or OpenMetrics 1.0 (TYPE, UNIT, HELP,
  // counters' "_total") WITHOUT the closing "# EOF" (see ComposeMetricsBody).
  void WriteSelfMetrics(ExpositionFormat format, std::string* out) const;

  // The sample names of every family registered (counters' "_total", histograms' "_bucket",
  // "_count", "_sum", and the family names themselves).
  std::vector<std::string> SampleNames() const;

 private:
  struct Family;
  Status Register(const SelfFamily& family, int kind, const std::vector<std::string>& values,
                  Family** out);

  std::unique_ptr<prometheus::Registry> registry_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;  // under mu_
  std::vector<std::function<void()>> hooks_;       // under mu_
};

// The body of a /metrics answer in `format`: `families` through ccmon's writers
// (SnapshotText / SnapshotOpenMetrics), then `self`'s families (none when null); OpenMetrics
// ends with exactly one "# EOF". kInvalidArgument when a self-metric family's samples would
// collide with one of `families` (a scraper would reject or merge them).
Status ComposeMetricsBody(ExpositionFormat format, const std::vector<FamilyEvents>& families,
                          const SelfMetrics* self, std::string* out);

// The same for families already written by another writer: `rendered` in `format` (an
// OpenMetrics text may or may not end with "# EOF"; it is moved to the end). The caller keeps
// the names apart.
void ComposeRenderedMetricsBody(ExpositionFormat format, std::string_view rendered,
                                const SelfMetrics* self, std::string* out);

// A double as both writers print it: integers without a fraction, otherwise up to 16
// significant digits ("0.1", "2.5", "1e+20"), "+Inf", "-Inf", "NaN"; never locale-dependent.
std::string FormatSelfValue(double v);

}  // namespace ccmon
