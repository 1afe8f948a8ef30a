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

bool Ordinal(std::string_view label_name) { return label_name == "le" || label_name == "quantile"; }

double NumericOr(std::string_view s, double fallback) {
  if (s == "+Inf" || s == "Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() ? v : fallback;
}

// One series of a block. Its labels are a range of the block's label vector, and its sort key a
// range of the block's key arena (offsets, since both grow while the block is collected).
struct Entry {
  std::string_view name;
  uint32_t name_rank = 0;  // the name's place among the block's names (set before sorting)
  uint32_t first_label = 0;
  uint32_t label_count = 0;
  uint64_t key_offset = 0;
  uint32_t key_size = 0;
  // The value of its "le" or "quantile" label: as text (empty when it has none) and as a number
  // (NaN when it has none or it does not parse).
  std::string_view ordinal_text;
  double ordinal = NAN;
  double value = 0;
};

enum class Kind { kUntyped, kCounter, kGauge, kHistogram, kSummary };

struct Block {
  Kind kind = Kind::kUntyped;
  const rw::Metadata* metadata = nullptr;
  std::vector<Entry> entries;
  std::vector<LabelView> labels;
  // Per entry, its labels other than le/quantile as "name\0value\0" pairs: comparing two of
  // these bytewise orders the label lists lexicographically by (name, value), one memcmp per
  // comparison instead of one per label (the sort was half of a large scrape's time).
  std::string keys;
};

// The order promised in exposition.h: by name, then by the labels other than le/quantile (so a
// histogram's buckets of one series stay together), then by le/quantile numerically (as text
// when either is not a number).
struct EntryOrder {
  const std::string* keys;
  bool operator()(const Entry& a, const Entry& b) const {
    if (a.name_rank != b.name_rank) return a.name_rank < b.name_rank;
    const std::string_view ka(keys->data() + a.key_offset, a.key_size);
    const std::string_view kb(keys->data() + b.key_offset, b.key_size);
    if (const int c = ka.compare(kb); c != 0) return c < 0;
    if (!std::isnan(a.ordinal) && !std::isnan(b.ordinal) && a.ordinal != b.ordinal) {
      return a.ordinal < b.ordinal;
    }
    return a.ordinal_text < b.ordinal_text;
  }
};

void AppendEscaped(std::string_view v, bool quote, std::string* out) {
  // Runs without a character to escape (nearly every value) are appended whole.
  const std::string_view special = quote ? std::string_view("\\\n\"") : std::string_view("\\\n");
  while (!v.empty()) {
    const size_t i = v.find_first_of(special);
    if (i == std::string_view::npos) {
      out->append(v);
      return;
    }
    out->append(v.substr(0, i));
    const char c = v[i];
    out->append(c == '\\' ? "\\\\" : c == '\n' ? "\\n" : "\\\"");
    v.remove_prefix(i + 1);
  }
}

void AppendSample(const Entry& e, const Block& b, std::string* out) {
  out->append(e.name);
  if (e.label_count != 0) {
    out->push_back('{');
    for (uint32_t i = 0; i < e.label_count; ++i) {
      const auto& [n, v] = b.labels[e.first_label + i];
      if (i != 0) out->push_back(',');
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
  std::vector<LabelView> scratch;
  size_t body_bytes = 0;
  for (const auto& [key, state] : table.series()) {
    if (IsStaleMarker(state.value)) continue;
    // The key is walked without copying: the name, then (label name, value) pairs. A malformed
    // key (never written by the store) is skipped.
    Reader rest(key);
    Entry e;
    if (!rest.Bytes(&e.name)) continue;
    bool ok = true;
    scratch.clear();
    while (!rest.done() && ok) {
      LabelView l;
      ok = rest.Bytes(&l.first) && rest.Bytes(&l.second);
      scratch.push_back(l);
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
    Block& b = *last_block;
    e.first_label = static_cast<uint32_t>(b.labels.size());
    e.label_count = static_cast<uint32_t>(scratch.size());
    e.key_offset = b.keys.size();
    for (const LabelView& l : scratch) {
      b.labels.push_back(l);
      if (Ordinal(l.first)) {
        e.ordinal_text = l.second;
        e.ordinal = NumericOr(l.second, NAN);
        continue;
      }
      b.keys.append(l.first);
      b.keys.push_back('\0');
      b.keys.append(l.second);
      b.keys.push_back('\0');
    }
    e.key_size = static_cast<uint32_t>(b.keys.size() - e.key_offset);
    body_bytes += key.size() + 32;
    b.entries.push_back(e);
  }
  out->reserve(out->size() + body_bytes + blocks.size() * 256);
  for (auto& [name, b] : blocks) {
    // A block holds one name (or a histogram's or summary's few): rank them once, so that the
    // sort compares integers where it would compare names.
    std::vector<std::string_view> names;
    for (const Entry& e : b.entries) {
      if (names.empty() || names.back() != e.name) names.push_back(e.name);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::string_view ranked;
    uint32_t rank = 0;
    for (Entry& e : b.entries) {
      if (e.name != ranked) {
        ranked = e.name;
        rank = static_cast<uint32_t>(std::lower_bound(names.begin(), names.end(), e.name) -
                                     names.begin());
      }
      e.name_rank = rank;
    }
    std::sort(b.entries.begin(), b.entries.end(), EntryOrder{&b.keys});
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
    for (const Entry& e : b.entries) AppendSample(e, b, out);
  }
}

}  // namespace ccmon::gateway
