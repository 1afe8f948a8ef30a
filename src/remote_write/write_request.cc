#include "remote_write/write_request.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/wire_format_lite.h>
#include <snappy.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "base/utf8.h"
#include "prometheus/remote.pb.h"
#include "prometheus/write_v2.pb.h"

namespace ccmon::rw {
namespace {

// Per byte: bit 0, allowed first in a label name; 1, later in one; 2 and 3, the same in a
// metric name. A table: names are checked for every label of every received series.
constexpr std::array<uint8_t, 256> kNameChars = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    t[size_t(c)] = uint8_t((alpha ? 1 : 0) | (alpha || digit ? 2 : 0) |
                           (alpha || c == ':' ? 4 : 0) | (alpha || digit || c == ':' ? 8 : 0));
  }
  return t;
}();

bool ValidName(std::string_view s, bool colon) {
  if (s.empty()) return false;
  const uint8_t first = colon ? 4 : 1, rest = colon ? 8 : 2;
  if ((kNameChars[uint8_t(s[0])] & first) == 0) return false;
  for (size_t i = 1; i < s.size(); ++i) {
    if ((kNameChars[uint8_t(s[i])] & rest) == 0) return false;
  }
  return true;
}

std::string Describe(const Series& s) {
  std::string out = "{";
  for (const auto& [name, value] : s.labels) {
    if (out.size() > 1) out += ",";
    out += name + "=\"" + value + "\"";
    if (out.size() > 200) return out + "...}";
  }
  return out + "}";
}

prometheus::MetricMetadata::MetricType ToProto(MetricKind k) {
  switch (k) {
    case MetricKind::kCounter:
      return prometheus::MetricMetadata::COUNTER;
    case MetricKind::kGauge:
      return prometheus::MetricMetadata::GAUGE;
    case MetricKind::kHistogram:
      return prometheus::MetricMetadata::HISTOGRAM;
    case MetricKind::kSummary:
      return prometheus::MetricMetadata::SUMMARY;
    case MetricKind::kInfo:
      return prometheus::MetricMetadata::INFO;
    case MetricKind::kUnknown:
      break;
  }
  return prometheus::MetricMetadata::UNKNOWN;
}

MetricKind FromProto(prometheus::MetricMetadata::MetricType t) {
  switch (t) {
    case prometheus::MetricMetadata::COUNTER:
      return MetricKind::kCounter;
    case prometheus::MetricMetadata::GAUGE:
      return MetricKind::kGauge;
    case prometheus::MetricMetadata::HISTOGRAM:
      return MetricKind::kHistogram;
    case prometheus::MetricMetadata::SUMMARY:
      return MetricKind::kSummary;
    case prometheus::MetricMetadata::INFO:
      return MetricKind::kInfo;
    default:
      return MetricKind::kUnknown;
  }
}

}  // namespace

size_t WriteRequest::sample_count() const {
  size_t n = 0;
  for (const Series& s : series) n += s.samples.size();
  return n;
}

bool IsValidLabelName(std::string_view name) { return ValidName(name, false); }
bool IsValidMetricName(std::string_view name) { return ValidName(name, true); }

Status AppendSeries(std::span<const LabelRef> labels, Sample sample, std::string* proto) {
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  auto describe = [&] {
    std::string out = "{";
    for (const auto& [name, value] : labels) {
      if (out.size() > 1) out += ",";
      out.append(name).append("=\"").append(value).append("\"");
      if (out.size() > 200) return out + "...}";
    }
    return out + "}";
  };
  // Serialize's checks, in its order of labels (sorted), with its messages.
  bool has_name = false;
  size_t labels_bytes = 0;  // the TimeSeries' label fields, tags and lengths included
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto& [name, value] = labels[i];
    if (i > 0 && labels[i - 1].first >= name) {
      if (labels[i - 1].first == name) {
        return Status::InvalidArgument("remote-write: duplicate label name \"" + std::string(name) +
                                       "\" in " + describe());
      }
      return Status::InvalidArgument("remote-write: labels not sorted by name in " + describe());
    }
    if (name == "__name__") {
      if (!IsValidMetricName(value))
        return Status::InvalidArgument("remote-write: invalid metric name in " + describe());
      has_name = true;
    } else if (!IsValidLabelName(name) || name.starts_with("__")) {
      return Status::InvalidArgument("remote-write: invalid label name \"" + std::string(name) +
                                     "\" in " + describe());
    } else if (value.empty()) {
      return Status::InvalidArgument("remote-write: empty value for label \"" + std::string(name) +
                                     "\" in " + describe());
    }
    if (!IsValidUtf8(value)) {
      return Status::InvalidArgument("remote-write: label \"" + std::string(name) +
                                     "\" has a value that is not UTF-8");
    }
    // Label: name = 1, value = 2 (neither empty here, so both present).
    const size_t label = 1 + CodedOutputStream::VarintSize32(uint32_t(name.size())) + name.size() +
                         1 + CodedOutputStream::VarintSize32(uint32_t(value.size())) + value.size();
    labels_bytes += 1 + CodedOutputStream::VarintSize32(uint32_t(label)) + label;
  }
  if (!has_name) return Status::InvalidArgument("remote-write: no __name__ in " + describe());
  // Sample: value = 1 (double), timestamp = 2 (int64); proto3 leaves out zeros (the double's
  // by its bits, as the generated code does: -0.0 is written).
  uint64_t value_bits;
  std::memcpy(&value_bits, &sample.value, sizeof value_bits);
  const size_t sample_bytes =
      (value_bits != 0 ? 1 + 8 : 0) +
      (sample.timestamp_ms != 0 ? 1 + CodedOutputStream::VarintSize64(uint64_t(sample.timestamp_ms))
                                : 0);
  const size_t series_bytes =
      labels_bytes + 1 + CodedOutputStream::VarintSize32(uint32_t(sample_bytes)) + sample_bytes;
  const size_t total = 1 + CodedOutputStream::VarintSize32(uint32_t(series_bytes)) + series_bytes;

  const size_t start = proto->size();
  proto->resize(start + total);
  auto* p = reinterpret_cast<uint8_t*>(proto->data() + start);
  constexpr auto kLen = WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
  p = WireFormatLite::WriteTagToArray(1, kLen, p);  // WriteRequest.timeseries
  p = CodedOutputStream::WriteVarint32ToArray(uint32_t(series_bytes), p);
  for (const auto& [name, value] : labels) {
    const size_t label = 1 + CodedOutputStream::VarintSize32(uint32_t(name.size())) + name.size() +
                         1 + CodedOutputStream::VarintSize32(uint32_t(value.size())) + value.size();
    p = WireFormatLite::WriteTagToArray(1, kLen, p);  // TimeSeries.labels
    p = CodedOutputStream::WriteVarint32ToArray(uint32_t(label), p);
    p = WireFormatLite::WriteTagToArray(1, kLen, p);  // Label.name
    p = CodedOutputStream::WriteVarint32ToArray(uint32_t(name.size()), p);
    p = CodedOutputStream::WriteRawToArray(name.data(), int(name.size()), p);
    p = WireFormatLite::WriteTagToArray(2, kLen, p);  // Label.value
    p = CodedOutputStream::WriteVarint32ToArray(uint32_t(value.size()), p);
    p = CodedOutputStream::WriteRawToArray(value.data(), int(value.size()), p);
  }
  p = WireFormatLite::WriteTagToArray(2, kLen, p);  // TimeSeries.samples
  p = CodedOutputStream::WriteVarint32ToArray(uint32_t(sample_bytes), p);
  if (value_bits != 0) p = WireFormatLite::WriteDoubleToArray(1, sample.value, p);
  if (sample.timestamp_ms != 0) p = WireFormatLite::WriteInt64ToArray(2, sample.timestamp_ms, p);
  (void)p;
  return Status::Ok();
}

Status Serialize(const WriteRequest& request, std::string* proto) {
  prometheus::WriteRequest msg;
  std::set<std::vector<std::pair<std::string, std::string>>> seen;
  for (const Series& s : request.series) {
    auto labels = s.labels;
    std::sort(labels.begin(), labels.end());
    bool has_name = false;
    for (size_t i = 0; i < labels.size(); ++i) {
      const auto& [name, value] = labels[i];
      if (i > 0 && labels[i - 1].first == name) {
        return Status::InvalidArgument("remote-write: duplicate label name \"" + name + "\" in " +
                                       Describe(s));
      }
      if (name == "__name__") {
        if (!IsValidMetricName(value)) {
          return Status::InvalidArgument("remote-write: invalid metric name in " + Describe(s));
        }
        has_name = true;
      } else if (!IsValidLabelName(name) || name.starts_with("__")) {
        return Status::InvalidArgument("remote-write: invalid label name \"" + name + "\" in " +
                                       Describe(s));
      } else if (value.empty()) {
        return Status::InvalidArgument("remote-write: empty value for label \"" + name + "\" in " +
                                       Describe(s));
      }
      if (!IsValidUtf8(value)) {
        return Status::InvalidArgument("remote-write: label \"" + name +
                                       "\" has a value that is not UTF-8");
      }
    }
    if (!has_name) return Status::InvalidArgument("remote-write: no __name__ in " + Describe(s));
    if (s.samples.empty())
      return Status::InvalidArgument("remote-write: no samples in " + Describe(s));
    for (size_t i = 1; i < s.samples.size(); ++i) {
      if (s.samples[i].timestamp_ms <= s.samples[i - 1].timestamp_ms) {
        return Status::InvalidArgument("remote-write: timestamps not strictly increasing in " +
                                       Describe(s));
      }
    }
    if (!seen.insert(labels).second) {
      return Status::InvalidArgument("remote-write: series sent twice in one request: " +
                                     Describe(s));
    }
    prometheus::TimeSeries* ts = msg.add_timeseries();
    for (const auto& [name, value] : labels) {
      prometheus::Label* l = ts->add_labels();
      l->set_name(name);
      l->set_value(value);
    }
    for (const Sample& sample : s.samples) {
      prometheus::Sample* out = ts->add_samples();
      out->set_value(sample.value);
      out->set_timestamp(sample.timestamp_ms);
    }
  }
  for (const Metadata& m : request.metadata) {
    if (!IsValidMetricName(m.family)) {
      return Status::InvalidArgument("remote-write: invalid metadata family \"" + m.family + "\"");
    }
    if (!IsValidUtf8(m.help) || !IsValidUtf8(m.unit)) {
      return Status::InvalidArgument("remote-write: metadata of " + m.family + " is not UTF-8");
    }
    prometheus::MetricMetadata* out = msg.add_metadata();
    out->set_type(ToProto(m.kind));
    out->set_metric_family_name(m.family);
    out->set_help(m.help);
    out->set_unit(m.unit);
  }
  std::string raw;
  if (!msg.SerializeToString(&raw))
    return Status::InvalidArgument("remote-write: serialize failed");
  *proto = std::move(raw);
  return Status::Ok();
}

void Compress(std::string_view proto, std::string* body) {
  std::string compressed;
  snappy::Compress(proto.data(), proto.size(), &compressed);
  *body = std::move(compressed);
}

Status Encode(const WriteRequest& request, std::string* body) {
  std::string raw;
  Status s = Serialize(request, &raw);
  if (!s.ok()) return s;
  Compress(raw, body);
  return Status::Ok();
}

Status SamplesBeforeRepeatedSeries(std::string_view proto, size_t* samples_before, bool* repeat) {
  using google::protobuf::io::CodedInputStream;
  using Wire = google::protobuf::internal::WireFormatLite;
  constexpr uint32_t kTimeseries = (1 << 3) | Wire::WIRETYPE_LENGTH_DELIMITED;
  constexpr uint32_t kMetadata = (3 << 3) | Wire::WIRETYPE_LENGTH_DELIMITED;
  const Status invalid = Status::InvalidArgument("remote-write: not a protobuf WriteRequest");
  *samples_before = 0;
  *repeat = false;
  if (proto.size() > size_t(std::numeric_limits<int>::max())) return invalid;
  // One TimeSeries at a time, not the whole message: a sender's merge of the agent's first
  // samples peeks thousands of series, and the parsed message held all of them at once (~1.5 MiB,
  // the first start's peak RSS, BENCHMARKS.md "agentrss18"). Everything is still checked to the
  // end, repeat found or not: each series and metadata by libprotobuf's parser, the fields
  // between them by its wire reader; a malformed request is InvalidArgument.
  CodedInputStream in(reinterpret_cast<const uint8_t*>(proto.data()), int(proto.size()));
  prometheus::TimeSeries ts;
  prometheus::MetricMetadata metadata;
  std::unordered_set<std::string> seen;
  std::string key;
  std::vector<std::pair<std::string_view, std::string_view>> labels;
  bool found = false;
  while (in.CurrentPosition() < int(proto.size())) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return invalid;  // a malformed tag, or field number 0
    if (tag != kTimeseries && tag != kMetadata) {
      if (!Wire::SkipField(&in, tag)) return invalid;
      continue;
    }
    int size = 0;
    if (!in.ReadVarintSizeAsInt(&size) || size > int(proto.size()) - in.CurrentPosition())
      return invalid;
    const char* data = proto.data() + in.CurrentPosition();
    in.Skip(size);
    if (tag == kMetadata) {
      if (!metadata.ParseFromArray(data, size)) return invalid;
      continue;
    }
    if (!ts.ParseFromArray(data, size)) return invalid;
    if (found || ts.samples_size() == 0) continue;
    labels.clear();
    for (const prometheus::Label& l : ts.labels()) labels.emplace_back(l.name(), l.value());
    std::sort(labels.begin(), labels.end());
    key.clear();
    for (const auto& [name, value] : labels) {  // 0xFF never occurs in UTF-8 text
      key.append(name).push_back('\xff');
      key.append(value).push_back('\xff');
    }
    if (!seen.insert(key).second) {
      found = true;
      continue;
    }
    *samples_before += 1;
    if (ts.samples_size() > 1) found = true;  // the second sample repeats the series
  }
  *repeat = found;
  return Status::Ok();
}

namespace {
// The uncompressed bytes of a snappy block body, refusing a declared length over the limit
// before anything is allocated.
Status Uncompress(std::string_view body, size_t max_decoded_bytes, std::string* raw) {
  size_t decoded_len = 0;
  if (Status s = CheckDecodedLength(body, max_decoded_bytes, &decoded_len); !s.ok()) return s;
  if (!snappy::Uncompress(body.data(), body.size(), raw)) {
    return Status::InvalidArgument("remote-write: corrupt snappy data");
  }
  return Status::Ok();
}

}  // namespace

Status Decode(std::string_view body, size_t max_decoded_bytes, WriteRequest* request) {
  std::string raw;
  if (Status s = Uncompress(body, max_decoded_bytes, &raw); !s.ok()) return s;
  prometheus::WriteRequest msg;
  if (!msg.ParseFromString(raw)) {
    return Status::InvalidArgument("remote-write: body is not a protobuf WriteRequest");
  }
  WriteRequest out;
  out.series.reserve(size_t(msg.timeseries_size()));
  for (const prometheus::TimeSeries& ts : msg.timeseries()) {
    Series s;
    s.labels.reserve(size_t(ts.labels_size()));
    for (const prometheus::Label& l : ts.labels()) {
      if (!IsValidUtf8(l.name()) || !IsValidUtf8(l.value())) {
        return Status::InvalidArgument("remote-write: a label name or value is not UTF-8");
      }
      s.labels.emplace_back(l.name(), l.value());
    }
    s.samples.reserve(size_t(ts.samples_size()));
    for (const prometheus::Sample& sample : ts.samples()) {
      s.samples.push_back(Sample{sample.timestamp(), sample.value()});
    }
    out.series.push_back(std::move(s));
  }
  for (const prometheus::MetricMetadata& m : msg.metadata()) {
    if (!IsValidUtf8(m.metric_family_name()) || !IsValidUtf8(m.help()) || !IsValidUtf8(m.unit())) {
      return Status::InvalidArgument("remote-write: metadata is not UTF-8");
    }
    out.metadata.push_back(
        Metadata{FromProto(m.type()), m.metric_family_name(), m.help(), m.unit()});
  }
  *request = std::move(out);
  return Status::Ok();
}

namespace {

namespace v2 = io::prometheus::write::v2;

MetricKind FromProtoV2(v2::Metadata::MetricType t) {
  switch (t) {
    case v2::Metadata::METRIC_TYPE_COUNTER:
      return MetricKind::kCounter;
    case v2::Metadata::METRIC_TYPE_GAUGE:
      return MetricKind::kGauge;
    case v2::Metadata::METRIC_TYPE_HISTOGRAM:
      return MetricKind::kHistogram;
    case v2::Metadata::METRIC_TYPE_SUMMARY:
      return MetricKind::kSummary;
    case v2::Metadata::METRIC_TYPE_INFO:
      return MetricKind::kInfo;
    default:
      return MetricKind::kUnknown;
  }
}

v2::Metadata::MetricType ToProtoV2(MetricKind k) {
  switch (k) {
    case MetricKind::kCounter:
      return v2::Metadata::METRIC_TYPE_COUNTER;
    case MetricKind::kGauge:
      return v2::Metadata::METRIC_TYPE_GAUGE;
    case MetricKind::kHistogram:
      return v2::Metadata::METRIC_TYPE_HISTOGRAM;
    case MetricKind::kSummary:
      return v2::Metadata::METRIC_TYPE_SUMMARY;
    case MetricKind::kInfo:
      return v2::Metadata::METRIC_TYPE_INFO;
    case MetricKind::kUnknown:
      break;
  }
  return v2::Metadata::METRIC_TYPE_UNSPECIFIED;
}

}  // namespace

bool DeclaredDecodedLength(std::string_view body, size_t* length) {
  return snappy::GetUncompressedLength(body.data(), body.size(), length);
}

Status CheckDecodedLength(std::string_view body, size_t max_decoded_bytes, size_t* length) {
  if (!DeclaredDecodedLength(body, length)) {
    return Status::InvalidArgument("remote-write: body is not snappy block data");
  }
  if (*length > max_decoded_bytes) {
    return Status::InvalidArgument("remote-write: decoded size " + std::to_string(*length) +
                                   " over the limit of " + std::to_string(max_decoded_bytes));
  }
  return Status::Ok();
}

Status DecodeV2(std::string_view body, size_t max_decoded_bytes, WriteRequest* request,
                V2Extras* extras) {
  std::string raw;
  if (Status s = Uncompress(body, max_decoded_bytes, &raw); !s.ok()) return s;
  v2::Request msg;
  if (!msg.ParseFromString(raw)) {
    return Status::InvalidArgument("remote-write 2.0: body is not a protobuf Request");
  }
  // Fields 1-3 are 1.0's: a 1.0 body labelled 2.0 would otherwise read as an empty request.
  const auto& unknown = msg.GetReflection()->GetUnknownFields(msg);
  for (int i = 0; i < unknown.field_count(); ++i) {
    if (unknown.field(i).number() <= 3) {
      return Status::InvalidArgument(
          "remote-write 2.0: the body has remote-write 1.0 fields (a 1.0 request sent as 2.0?)");
    }
  }
  const auto& symbols = msg.symbols();
  if (!symbols.empty() && !symbols[0].empty()) {
    return Status::InvalidArgument("remote-write 2.0: symbols[0] is not the empty string");
  }
  for (const std::string& sym : symbols) {
    if (!IsValidUtf8(sym))
      return Status::InvalidArgument("remote-write 2.0: a symbol is not UTF-8");
  }
  const auto symbol = [&](uint32_t ref, std::string* out) {
    if (ref >= uint32_t(symbols.size())) {
      return Status::InvalidArgument("remote-write 2.0: symbol reference " + std::to_string(ref) +
                                     " out of the table of " + std::to_string(symbols.size()));
    }
    *out = symbols[int(ref)];
    return Status::Ok();
  };
  WriteRequest out;
  V2Extras counts;
  std::set<std::string> families_seen;
  out.series.reserve(size_t(msg.timeseries_size()));
  for (const v2::TimeSeries& ts : msg.timeseries()) {
    if (ts.labels_refs_size() % 2 != 0) {
      return Status::InvalidArgument("remote-write 2.0: odd number of label references");
    }
    Series s;
    s.labels.resize(size_t(ts.labels_refs_size() / 2));
    std::string name;
    for (int i = 0; i + 1 < ts.labels_refs_size(); i += 2) {
      auto& [n, v] = s.labels[size_t(i / 2)];
      if (Status st = symbol(ts.labels_refs(i), &n); !st.ok()) return st;
      if (Status st = symbol(ts.labels_refs(i + 1), &v); !st.ok()) return st;
      if (n == "__name__") name = v;
    }
    s.samples.reserve(size_t(ts.samples_size()));
    for (const v2::Sample& sample : ts.samples()) {
      s.samples.push_back(Sample{sample.timestamp(), sample.value()});
    }
    counts.histograms += size_t(ts.histograms_size());
    counts.exemplars += size_t(ts.exemplars_size());
    if (ts.has_metadata()) {
      const v2::Metadata& m = ts.metadata();
      Metadata md;
      md.kind = FromProtoV2(m.type());
      if (Status st = symbol(m.help_ref(), &md.help); !st.ok()) return st;
      if (Status st = symbol(m.unit_ref(), &md.unit); !st.ok()) return st;
      const bool any = md.kind != MetricKind::kUnknown || !md.help.empty() || !md.unit.empty();
      if (any && !name.empty() && families_seen.insert(name).second) {
        md.family = name;
        out.metadata.push_back(std::move(md));
      }
    }
    out.series.push_back(std::move(s));
  }
  *request = std::move(out);
  if (extras) *extras = counts;
  return Status::Ok();
}

Status EncodeV2(const WriteRequest& request, std::string* body) {
  std::string ignored;
  if (Status s = Serialize(request, &ignored); !s.ok()) return s;
  v2::Request msg;
  std::unordered_map<std::string, uint32_t> refs;
  const auto ref = [&](const std::string& text) {
    auto [it, inserted] = refs.emplace(text, uint32_t(msg.symbols_size()));
    if (inserted) msg.add_symbols(text);
    return it->second;
  };
  ref("");
  std::map<std::string, const Metadata*> by_family;
  for (const Metadata& m : request.metadata) by_family.emplace(m.family, &m);
  for (const Series& s : request.series) {
    auto labels = s.labels;
    std::sort(labels.begin(), labels.end());
    v2::TimeSeries* ts = msg.add_timeseries();
    std::string name;
    for (const auto& [n, v] : labels) {
      ts->add_labels_refs(ref(n));
      ts->add_labels_refs(ref(v));
      if (n == "__name__") name = v;
    }
    for (const Sample& sample : s.samples) {
      v2::Sample* out = ts->add_samples();
      out->set_value(sample.value);
      out->set_timestamp(sample.timestamp_ms);
    }
    if (auto it = by_family.find(name); it != by_family.end()) {
      v2::Metadata* md = ts->mutable_metadata();
      md->set_type(ToProtoV2(it->second->kind));
      md->set_help_ref(ref(it->second->help));
      md->set_unit_ref(ref(it->second->unit));
    }
  }
  std::string raw;
  if (!msg.SerializeToString(&raw)) {
    return Status::InvalidArgument("remote-write 2.0: serialize failed");
  }
  Compress(raw, body);
  return Status::Ok();
}

}  // namespace ccmon::rw
