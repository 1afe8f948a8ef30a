#include "exposition/text_format.h"

#include <algorithm>

namespace ccmon {
namespace {

std::string SampleName(const FamilyDesc& d, bool /*openmetrics*/) {
  return d.type == MetricType::kCounter ? d.name + "_total" : d.name;
}

struct HistogramTotals {
  std::vector<uint64_t> buckets;  // cumulative, per bound
  uint64_t count = 0;
  __int128 sum = 0;
};

void WriteFamily(const FamilyEvents& f, bool openmetrics, std::string* out) {
  const FamilyDesc& d = f.desc;
  if (openmetrics) {
    *out += "# TYPE " + d.name + (d.type == MetricType::kCounter ? " counter\n" : " histogram\n");
    if (!d.unit.empty()) *out += "# UNIT " + d.name + " " + d.unit + "\n";
    *out += "# HELP " + d.name + " " + EscapeHelp(d.help) + "\n";
  } else {
    std::string n = SampleName(d, false);
    *out += "# HELP " + n + " " + EscapeHelp(d.help) + "\n";
    *out += "# TYPE " + n + (d.type == MetricType::kCounter ? " counter\n" : " histogram\n");
  }
  if (d.type == MetricType::kCounter) {
    std::vector<__int128> totals(f.series_labels.size(), 0);
    for (const MetricEvent& e : f.events) totals[e.series] += e.delta;
    std::vector<uint32_t> order(totals.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return f.series_labels[a] < f.series_labels[b]; });
    for (uint32_t s : order) {
      *out += SampleName(d, openmetrics) + LabelString(d.label_names, f.series_labels[s]) + " " +
              FormatValue(totals[s], d.usd) + "\n";
    }
    return;
  }
  const auto& bounds = d.buckets;
  std::vector<HistogramTotals> h(f.series_labels.size());
  for (auto& t : h) t.buckets.assign(bounds.size(), 0);
  for (const MetricEvent& e : f.events) {
    HistogramTotals& t = h[e.series];
    for (size_t b = 0; b < bounds.size(); ++b)
      if (e.delta <= bounds[b]) ++t.buckets[b];
    ++t.count;
    t.sum += e.delta;
  }
  std::vector<uint32_t> order(h.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return f.series_labels[a] < f.series_labels[b]; });
  for (uint32_t s : order) {
    const auto& labels = f.series_labels[s];
    for (size_t b = 0; b <= bounds.size(); ++b) {
      std::string le = b < bounds.size() ? FormatValue(bounds[b], true) : "+Inf";
      uint64_t v = b < bounds.size() ? h[s].buckets[b] : h[s].count;
      *out += d.name + "_bucket" + LabelString(d.label_names, labels, "le", &le) + " " +
              std::to_string(v) + "\n";
    }
    *out += d.name + "_count" + LabelString(d.label_names, labels) + " " +
            std::to_string(h[s].count) + "\n";
    *out += d.name + "_sum" + LabelString(d.label_names, labels) + " " +
            FormatValue(h[s].sum, true) + "\n";
  }
}

std::string Snapshot(const std::vector<FamilyEvents>& families, bool openmetrics) {
  std::string out;
  for (const auto& f : families) WriteFamily(f, openmetrics, &out);
  if (openmetrics) out += "# EOF\n";
  return out;
}

}  // namespace

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
