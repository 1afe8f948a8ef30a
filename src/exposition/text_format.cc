#include "exposition/text_format.h"

#include <algorithm>

namespace ccmon {
namespace {

std::string SampleName(const FamilyDesc& d, bool /*openmetrics*/) {
  return d.type == MetricType::kCounter ? d.name + "_total" : d.name;
}

const char* TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return " counter\n";
    case MetricType::kGauge:
      return " gauge\n";
    case MetricType::kHistogram:
      break;
  }
  return " histogram\n";
}

// Sums a family's events per series.
FamilyTotals Totals(const FamilyEvents& f) {
  const FamilyDesc& d = f.desc;
  FamilyTotals t;
  t.desc = d;
  t.series.resize(f.series_labels.size());
  for (size_t i = 0; i < t.series.size(); ++i) {
    t.series[i].labels = f.series_labels[i];
    if (d.type == MetricType::kHistogram) t.series[i].buckets.assign(d.buckets.size(), 0);
  }
  for (const MetricEvent& e : f.events) {
    SeriesTotal& st = t.series[e.series];
    if (d.type != MetricType::kHistogram) {  // a gauge's events add up to its value too
      st.value += e.delta;
      continue;
    }
    for (size_t b = 0; b < d.buckets.size(); ++b)
      if (e.delta <= d.buckets[b]) ++st.buckets[b];
    ++st.count;
    st.value += e.delta;
  }
  return t;
}

void WriteFamily(const FamilyTotals& f, bool openmetrics, std::string* out) {
  const FamilyDesc& d = f.desc;
  if (openmetrics) {
    *out += "# TYPE " + d.name + TypeName(d.type);
    if (!d.unit.empty()) *out += "# UNIT " + d.name + " " + d.unit + "\n";
    *out += "# HELP " + d.name + " " + EscapeHelp(d.help) + "\n";
  } else {
    std::string n = SampleName(d, false);
    *out += "# HELP " + n + " " + EscapeHelp(d.help) + "\n";
    *out += "# TYPE " + n + TypeName(d.type);
  }
  std::vector<const SeriesTotal*> order;
  order.reserve(f.series.size());
  for (const SeriesTotal& st : f.series) order.push_back(&st);
  std::sort(order.begin(), order.end(),
            [](const SeriesTotal* a, const SeriesTotal* b) { return a->labels < b->labels; });
  if (d.type != MetricType::kHistogram) {
    for (const SeriesTotal* st : order) {
      *out += SampleName(d, openmetrics) + LabelString(d.label_names, st->labels) + " " +
              FormatValue(st->value, d.usd) + "\n";
    }
    return;
  }
  const auto& bounds = d.buckets;
  for (const SeriesTotal* st : order) {
    const auto& labels = st->labels;
    for (size_t b = 0; b <= bounds.size(); ++b) {
      std::string le = b < bounds.size() ? FormatValue(bounds[b], d.usd) : "+Inf";
      uint64_t v = b < bounds.size() ? st->buckets[b] : st->count;
      *out += d.name + "_bucket" + LabelString(d.label_names, labels, "le", &le) + " " +
              std::to_string(v) + "\n";
    }
    *out += d.name + "_count" + LabelString(d.label_names, labels) + " " +
            std::to_string(st->count) + "\n";
    *out += d.name + "_sum" + LabelString(d.label_names, labels) + " " +
            FormatValue(st->value, d.usd) + "\n";
  }
}

std::string Snapshot(const std::vector<FamilyEvents>& families, bool openmetrics) {
  std::string out;
  for (const auto& f : families) WriteFamily(Totals(f), openmetrics, &out);
  if (openmetrics) out += "# EOF\n";
  return out;
}

}  // namespace

std::string TotalsText(const std::vector<FamilyTotals>& families, bool openmetrics) {
  std::string out;
  for (const auto& f : families) WriteFamily(f, openmetrics, &out);
  return out;
}

std::string FormatValue(__int128 v, bool usd) { return usd ? FormatUsd(v) : FormatInt(v); }

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

std::string LabelString(const std::vector<std::string>& names,
                        const std::vector<std::string>& values, const char* extra_name,
                        const std::string* extra_value) {
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out.push_back(',');
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (extra_name != nullptr) {
    if (!names.empty()) out.push_back(',');
    out += std::string(extra_name) + "=\"" + EscapeLabelValue(*extra_value) + "\"";
  }
  out += "}";
  return out;
}

std::string SnapshotText(const std::vector<FamilyEvents>& families) {
  return Snapshot(families, false);
}

std::string SnapshotOpenMetrics(const std::vector<FamilyEvents>& families) {
  return Snapshot(families, true);
}

}  // namespace ccmon
