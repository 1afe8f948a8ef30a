#include "selfmetrics/self_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cmath>
#include <locale>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "base/utf8.h"
#include "exposition/text_format.h"

namespace ccmon {
namespace {

enum Kind { kCounter = 0, kGauge = 1, kHistogram = 2 };

bool IsMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsLabelName(std::string_view s) {
  if (s.empty() || s.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The sample names a family writes, its own name included (an OpenMetrics family name must not
// be shared either).
std::vector<std::string> SamplesOf(const std::string& name, int kind) {
  switch (kind) {
    case kCounter:
      return {name, name + "_total", name + "_created"};
    case kHistogram:
      return {name, name + "_bucket", name + "_count", name + "_sum", name + "_created"};
    default:
      return {name};
  }
}

Status Validate(const SelfFamily& f, int kind) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("self-metric family '" + f.name + "': " + why);
  };
  if (!IsMetricName(f.name)) return bad("not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  if (f.help.find_first_of("\\\n\r") != std::string::npos) {
    return bad("HELP must be one line without backslashes");
  }
  if (!IsValidUtf8(f.help)) return bad("HELP is not UTF-8");
  std::set<std::string> seen;
  for (const auto& l : f.label_names) {
    if (!IsLabelName(l)) return bad("label name '" + l + "' is not valid");
    if (kind == kHistogram && l == "le") return bad("a histogram cannot have a label 'le'");
    if (!seen.insert(l).second) return bad("label name '" + l + "' given twice");
  }
  if (!f.unit.empty() && (!IsLabelName(f.unit) || !EndsWith(f.name, "_" + f.unit))) {
    return bad("the name must end with its unit '_" + f.unit + "'");
  }
  if (kind != kHistogram && !f.buckets.empty()) return bad("only histograms have buckets");
  for (size_t i = 0; i < f.buckets.size(); ++i) {
    if (!std::isfinite(f.buckets[i])) return bad("bucket bounds must be finite");
    if (i > 0 && !(f.buckets[i] > f.buckets[i - 1])) {
      return bad("bucket bounds must be strictly ascending");
    }
  }
  return Status::Ok();
}

bool SameDescription(const SelfFamily& a, const SelfFamily& b) {
  return a.help == b.help && a.label_names == b.label_names && a.unit == b.unit &&
         a.buckets == b.buckets;
}

const char* KindName(int kind) {
  return kind == kCounter ? "counter" : kind == kGauge ? "gauge" : "histogram";
}

std::vector<std::string> LabelValues(const prometheus::ClientMetric& m,
                                     std::vector<std::string>* names) {
  std::vector<std::string> values;
  names->clear();
  for (const auto& l : m.label) {
    names->push_back(l.name);
    values.push_back(l.value);
  }
  return values;
}

void WriteOpenMetricsFamily(const prometheus::MetricFamily& fam, const std::string& name, int kind,
                            const std::string& unit, std::string* out) {
  *out += "# TYPE " + name + " " + KindName(kind) + "\n";
  if (!unit.empty()) *out += "# UNIT " + name + " " + unit + "\n";
  *out += "# HELP " + name + " " + EscapeHelp(fam.help) + "\n";
  std::vector<std::string> names;
  for (const auto& m : fam.metric) {
    std::vector<std::string> values = LabelValues(m, &names);
    std::string labels = LabelString(names, values);
    if (labels == "{}") labels.clear();
    switch (kind) {
      case kCounter:
        *out += name + "_total" + labels + " " + FormatSelfValue(m.counter.value) + "\n";
        break;
      case kGauge:
        *out += name + labels + " " + FormatSelfValue(m.gauge.value) + "\n";
        break;
      case kHistogram: {
        for (const auto& b : m.histogram.bucket) {
          std::string le = FormatSelfValue(b.upper_bound);
          *out += name + "_bucket" + LabelString(names, values, "le", &le) + " " +
                  std::to_string(b.cumulative_count) + "\n";
        }
        *out += name + "_count" + labels + " " + std::to_string(m.histogram.sample_count) + "\n";
        *out += name + "_sum" + labels + " " + FormatSelfValue(m.histogram.sample_sum) + "\n";
        break;
      }
    }
  }
}

void StripEof(std::string_view* s) {
  for (std::string_view eof : {"# EOF\n", "# EOF"}) {
    if (EndsWith(*s, eof) &&
        (s->size() == eof.size() || (*s)[s->size() - eof.size() - 1] == '\n')) {
      s->remove_suffix(eof.size());
      return;
    }
  }
}

}  // namespace

struct SelfMetrics::Family {
  SelfFamily spec;  // spec.name is the OpenMetrics family name
  int kind = kCounter;
  std::string prom_name;  // the name in prometheus-cpp's registry (counters: + "_total")
  prometheus::Family<prometheus::Counter>* counters = nullptr;
  prometheus::Family<prometheus::Gauge>* gauges = nullptr;
  prometheus::Family<prometheus::Histogram>* histograms = nullptr;
};

void SelfCounter::Increment(double delta) const {
  if (counter_ != nullptr && std::isfinite(delta) && delta > 0) counter_->Increment(delta);
}

void SelfCounter::AdvanceTo(double total) const {
  if (counter_ == nullptr || !std::isfinite(total)) return;
  double now = counter_->Value();
  if (total > now) counter_->Increment(total - now);
}

double SelfCounter::Value() const { return counter_ ? counter_->Value() : 0; }

void SelfGauge::Set(double value) const {
  if (gauge_ != nullptr) gauge_->Set(value);
}
void SelfGauge::Add(double delta) const {
  if (gauge_ != nullptr) gauge_->Increment(delta);
}
double SelfGauge::Value() const { return gauge_ ? gauge_->Value() : 0; }

void SelfHistogram::Observe(double value) const {
  if (histogram_ != nullptr && !std::isnan(value)) histogram_->Observe(value);
}

SelfMetrics::SelfMetrics() : registry_(std::make_unique<prometheus::Registry>()) {}
SelfMetrics::~SelfMetrics() = default;

Status SelfMetrics::Register(const SelfFamily& family_in, int kind,
                             const std::vector<std::string>& values, Family** out) {
  *out = nullptr;
  SelfFamily f = family_in;
  if (kind == kCounter && EndsWith(f.name, "_total")) f.name.resize(f.name.size() - 6);
  if (Status s = Validate(f, kind); !s.ok()) return s;
  if (values.size() != f.label_names.size()) {
    return Status::InvalidArgument("self-metric family '" + f.name +
                                   "': " + std::to_string(values.size()) + " label values for " +
                                   std::to_string(f.label_names.size()) + " label names");
  }
  for (const auto& v : values) {
    if (!IsValidUtf8(v)) {
      return Status::InvalidArgument("self-metric family '" + f.name +
                                     "': a label value is not UTF-8");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& existing : families_) {
    if (existing->spec.name == f.name) {
      if (existing->kind != kind || !SameDescription(existing->spec, f)) {
        return Status::InvalidArgument("self-metric family '" + f.name +
                                       "' was registered before with another type or description");
      }
      *out = existing.get();
      return Status::Ok();
    }
  }
  std::vector<std::string> mine = SamplesOf(f.name, kind);
  for (const auto& existing : families_) {
    for (const auto& theirs : SamplesOf(existing->spec.name, existing->kind)) {
      if (std::find(mine.begin(), mine.end(), theirs) != mine.end()) {
        return Status::InvalidArgument("self-metric family '" + f.name + "' (" + KindName(kind) +
                                       ") collides with '" + existing->spec.name + "' (" +
                                       KindName(existing->kind) + ") on the name " + theirs);
      }
    }
  }
  auto fam = std::make_unique<Family>();
  fam->spec = f;
  fam->kind = kind;
  fam->prom_name = kind == kCounter ? f.name + "_total" : f.name;
  try {
    switch (kind) {
      case kCounter:
        fam->counters =
            &prometheus::BuildCounter().Name(fam->prom_name).Help(f.help).Register(*registry_);
        break;
      case kGauge:
        fam->gauges =
            &prometheus::BuildGauge().Name(fam->prom_name).Help(f.help).Register(*registry_);
        break;
      default:
        fam->histograms =
            &prometheus::BuildHistogram().Name(fam->prom_name).Help(f.help).Register(*registry_);
        break;
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument("self-metric family '" + f.name + "': " + e.what());
  }
  families_.push_back(std::move(fam));
  *out = families_.back().get();
  return Status::Ok();
}

namespace {
prometheus::Labels ToLabels(const std::vector<std::string>& names,
                            const std::vector<std::string>& values) {
  prometheus::Labels labels;
  for (size_t i = 0; i < names.size(); ++i) labels.emplace(names[i], values[i]);
  return labels;
}
}  // namespace

Status SelfMetrics::AddCounter(const SelfFamily& family, const std::vector<std::string>& values,
                               SelfCounter* out) {
  *out = SelfCounter();
  Family* f;
  if (Status s = Register(family, kCounter, values, &f); !s.ok()) return s;
  try {
    *out = SelfCounter(&f->counters->Add(ToLabels(f->spec.label_names, values)));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("self-metric " + f->spec.name + ": " + e.what());
  }
  return Status::Ok();
}

Status SelfMetrics::AddGauge(const SelfFamily& family, const std::vector<std::string>& values,
                             SelfGauge* out) {
  *out = SelfGauge();
  Family* f;
  if (Status s = Register(family, kGauge, values, &f); !s.ok()) return s;
  try {
    *out = SelfGauge(&f->gauges->Add(ToLabels(f->spec.label_names, values)));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("self-metric " + f->spec.name + ": " + e.what());
  }
  return Status::Ok();
}

Status SelfMetrics::AddHistogram(const SelfFamily& family, const std::vector<std::string>& values,
                                 SelfHistogram* out) {
  *out = SelfHistogram();
  Family* f;
  if (Status s = Register(family, kHistogram, values, &f); !s.ok()) return s;
  try {
    *out = SelfHistogram(&f->histograms->Add(
        ToLabels(f->spec.label_names, values),
        prometheus::Histogram::BucketBoundaries(f->spec.buckets.begin(), f->spec.buckets.end())));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("self-metric " + f->spec.name + ": " + e.what());
  }
  return Status::Ok();
}

void SelfMetrics::OnCollect(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(hook));
}

std::vector<std::string> SelfMetrics::SampleNames() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& f : families_) {
    for (auto& n : SamplesOf(f->spec.name, f->kind)) out.push_back(std::move(n));
  }
  return out;
}

void SelfMetrics::WriteSelfMetrics(ExpositionFormat format, std::string* out) const {
  std::vector<std::function<void()>> hooks;
  std::map<std::string, const Family*> by_prom_name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hooks = hooks_;
    for (const auto& f : families_) by_prom_name.emplace(f->prom_name, f.get());
  }
  for (const auto& h : hooks) h();
  std::vector<prometheus::MetricFamily> fams = registry_->Collect();
  std::sort(fams.begin(), fams.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& fam : fams) {
    std::sort(fam.metric.begin(), fam.metric.end(), [](const auto& a, const auto& b) {
      return a.label < b.label;  // same names (the family's) in the same order: by values
    });
  }
  if (format == ExpositionFormat::kText) {
    std::ostringstream os;
    os.imbue(std::locale::classic());  // no digit grouping from a global locale
    prometheus::TextSerializer().Serialize(os, fams);
    *out += os.str();
    return;
  }
  for (const auto& fam : fams) {
    auto it = by_prom_name.find(fam.name);
    if (it == by_prom_name.end()) continue;  // registered concurrently, after the snapshot
    WriteOpenMetricsFamily(fam, it->second->spec.name, it->second->kind, it->second->spec.unit,
                           out);
  }
}

std::string FormatSelfValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os.precision(16);  // as prometheus-cpp's TextSerializer (max_digits10 - 1)
  os << v;
  return os.str();
}

void ComposeRenderedMetricsBody(ExpositionFormat format, std::string_view rendered,
                                const SelfMetrics* self, std::string* out) {
  if (format == ExpositionFormat::kOpenMetrics) StripEof(&rendered);
  out->append(rendered);
  if (self != nullptr) self->WriteSelfMetrics(format, out);
  if (format == ExpositionFormat::kOpenMetrics) *out += "# EOF\n";
}

Status ComposeMetricsBody(ExpositionFormat format, const std::vector<FamilyEvents>& families,
                          const SelfMetrics* self, std::string* out) {
  if (self != nullptr) {
    std::set<std::string> theirs;
    for (const auto& f : families) {
      for (auto& n :
           SamplesOf(f.desc.name, f.desc.type == MetricType::kCounter ? kCounter : kHistogram)) {
        theirs.insert(std::move(n));
      }
    }
    for (const auto& n : self->SampleNames()) {
      if (theirs.count(n)) {
        return Status::InvalidArgument("self-metrics collide with the family of '" + n + "'");
      }
    }
  }
  std::string rendered = format == ExpositionFormat::kOpenMetrics ? SnapshotOpenMetrics(families)
                                                                  : SnapshotText(families);
  ComposeRenderedMetricsBody(format, rendered, self, out);
  return Status::Ok();
}

}  // namespace ccmon
