#include "gateway/store/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <utility>
#include <vector>

#include "base/record_codec.h"

namespace ccmon::gateway {
namespace {

using LabelView = std::pair<std::string_view, std::string_view>;

struct Entry {
  std::string_view name;
  std::vector<LabelView> labels;  // sorted by name, without __name__
  double value = 0;
};

enum class Kind { kUntyped, kCounter, kGauge, kHistogram, kSummary };

struct Block {
  Kind kind = Kind::kUntyped;
  const rw::Metadata* metadata = nullptr;
  std::vector<Entry> entries;
};

double NumericOr(std::string_view s, double fallback) {
  if (s == "+Inf" || s == "Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() ? v : fallback;
}

bool LabelLess(const LabelView& a, const LabelView& b) {
  if (a.first != b.first) return a.first < b.first;
  if (a.first == "le" || a.first == "quantile") {
    const double x = NumericOr(a.second, NAN), y = NumericOr(b.second, NAN);
    if (!std::isnan(x) && !std::isnan(y) && x != y) return x < y;
  }
  return a.second < b.second;
}

bool Ordinal(const LabelView& l) { return l.first == "le" || l.first == "quantile"; }

// Label sets compared without their le/quantile labels, so that a histogram's buckets of one
// series stay together (and then ascend, by LabelLess). No allocation: it runs n log n times.
bool RestLess(const std::vector<LabelView>& a, const std::vector<LabelView>& b, bool* equal) {
  size_t i = 0, k = 0;
  while (true) {
    while (i < a.size() && Ordinal(a[i])) ++i;
    while (k < b.size() && Ordinal(b[k])) ++k;
    if (i == a.size() || k == b.size()) {
      *equal = i == a.size() && k == b.size();
      return i == a.size() && k != b.size();
    }
    if (a[i] != b[k]) {
      *equal = false;
      return a[i] < b[k];
    }
    ++i;
    ++k;
  }
}

bool EntryLess(const Entry& a, const Entry& b) {
  if (a.name != b.name) return a.name < b.name;
  bool equal = false;
  const bool less = RestLess(a.labels, b.labels, &equal);
  if (!equal) return less;
  return std::lexicographical_compare(a.labels.begin(), a.labels.end(), b.labels.begin(),
                                      b.labels.end(), LabelLess);
}

void AppendEscaped(std::string_view v, bool quote, std::string* out) {
  for (char c : v) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (quote && c == '"') {
      *out += "\\\"";
    } else {
      out->push_back(c);
    }
  }
}

void AppendSample(const Entry& e, std::string* out) {
  out->append(e.name);
  if (!e.labels.empty()) {
    out->push_back('{');
    bool first = true;
    for (const auto& [n, v] : e.labels) {
      if (!first) out->push_back(',');
      first = false;
      out->append(n);
      out->append("=\"");
      AppendEscaped(v, true, out);
      out->push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
  out->append(FormatSampleValue(e.value));
  out->push_back('\n');
}

const char* TypeName(Kind k, bool openmetrics) {
  switch (k) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kHistogram:
      return "histogram";
    case Kind::kSummary:
      return "summary";
    case Kind::kUntyped:
      break;
  }
  return openmetrics ? "unknown" : nullptr;
}

}  // namespace

std::string FormatSampleValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, ec == std::errc() ? p : buf);
}

void AppendEscapedText(std::string_view v, bool quote, std::string* out) {
  AppendEscaped(v, quote, out);
}

void WriteSeriesExposition(const SeriesTable& table, ExpositionFormat format,
                           const std::function<bool(std::string_view name)>& hidden,
                           std::string* out) {
  const bool om = format == ExpositionFormat::kOpenMetrics;
  std::map<std::string, Block, std::less<>> blocks;
  std::string_view last_name;
  bool last_hidden = false;
  Block* last_block = nullptr;
  for (const auto& [key, state] : table.series()) {
    if (IsStaleMarker(state.value)) continue;
    // The key is walked without copying: the name, then (label name, value) pairs. A malformed
    // key (never written by the store) is skipped.
    Reader rest(key);
    Entry e;
    if (!rest.Bytes(&e.name)) continue;
    bool ok = true;
    while (!rest.done() && ok) {
      LabelView l;
      ok = rest.Bytes(&l.first) && rest.Bytes(&l.second);
      e.labels.push_back(l);
    }
    if (!ok) continue;
    e.value = state.value;
    if (last_block == nullptr || e.name != last_name) {
      // Keys of one name are adjacent (the name leads the key): classify each name once.
      last_name = e.name;
      last_hidden = hidden && hidden(e.name);
      if (last_hidden) continue;
      const FamilyOf f = table.Family(e.name);
      Kind kind = Kind::kUntyped;
      std::string block_name(e.name);
      switch (f.kind) {
        case rw::MetricKind::kCounter:
          kind = Kind::kCounter;
          if (om) {
            if (e.name.size() > 6 && e.name.ends_with("_total")) {
              block_name = std::string(e.name.substr(0, e.name.size() - 6));
            } else {
              kind = Kind::kUntyped;
            }
          }
          break;
        case rw::MetricKind::kGauge:
          kind = Kind::kGauge;
          break;
        case rw::MetricKind::kHistogram:
          kind = Kind::kHistogram;
          block_name = f.family;
          break;
        case rw::MetricKind::kSummary:
          kind = Kind::kSummary;
          block_name = f.family;
          break;
        default:
          break;
      }
      Block& b = blocks[block_name];
      b.kind = kind;
      if (f.metadata) b.metadata = f.metadata;
      last_block = &b;
    } else if (last_hidden) {
      continue;
    }
    last_block->entries.push_back(std::move(e));
  }
  for (auto& [name, b] : blocks) {
    std::sort(b.entries.begin(), b.entries.end(), EntryLess);
    if (b.metadata && !b.metadata->help.empty()) {
      *out += "# HELP " + name + " ";
      AppendEscaped(b.metadata->help, om, out);
      out->push_back('\n');
    }
    if (const char* t = TypeName(b.kind, om)) *out += "# TYPE " + name + " " + t + "\n";
    if (om && b.metadata && !b.metadata->unit.empty() && b.kind != Kind::kUntyped &&
        name.ends_with("_" + b.metadata->unit)) {
      *out += "# UNIT " + name + " " + b.metadata->unit + "\n";
    }
    for (const Entry& e : b.entries) AppendSample(e, out);
  }
}

}  // namespace ccmon::gateway
