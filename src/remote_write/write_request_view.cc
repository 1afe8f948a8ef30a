#include "remote_write/write_request_view.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <snappy.h>

#include <bit>
#include <cstring>
#include <limits>
#include <optional>

#include "base/utf8.h"

namespace ccmon::rw {
namespace {

using google::protobuf::io::CodedInputStream;
using Wire = google::protobuf::internal::WireFormatLite;

constexpr uint32_t Tag(int field, Wire::WireType type) {
  return (uint32_t(field) << 3) | uint32_t(type);
}
constexpr uint32_t kLen(int field) { return Tag(field, Wire::WIRETYPE_LENGTH_DELIMITED); }

// The remote.proto field tags this decoder reads (any other tag is skipped).
constexpr uint32_t kRequestTimeseries = kLen(1);
constexpr uint32_t kRequestMetadata = kLen(3);
constexpr uint32_t kSeriesLabel = kLen(1);
constexpr uint32_t kSeriesSample = kLen(2);
constexpr uint32_t kLabelName = kLen(1);
constexpr uint32_t kLabelValue = kLen(2);
constexpr uint32_t kSampleValue = Tag(1, Wire::WIRETYPE_FIXED64);
constexpr uint32_t kSampleTimestamp = Tag(2, Wire::WIRETYPE_VARINT);
constexpr uint32_t kMetadataType = Tag(1, Wire::WIRETYPE_VARINT);
constexpr uint32_t kMetadataFamily = kLen(2);
constexpr uint32_t kMetadataHelp = kLen(4);
constexpr uint32_t kMetadataUnit = kLen(5);

MetricKind KindOf(uint32_t type) {
  switch (type) {  // remote.proto's MetricMetadata.MetricType
    case 1:
      return MetricKind::kCounter;
    case 2:
      return MetricKind::kGauge;
    case 3:
      return MetricKind::kHistogram;
    case 5:
      return MetricKind::kSummary;
    case 6:
      return MetricKind::kInfo;
    default:
      return MetricKind::kUnknown;
  }
}

// libprotobuf's nesting limit (ParseContext's default recursion budget): embedded messages
// and groups, the top-level message not counted.
constexpr int kRecursionLimit = 100;

// Where CodedInputStream is laxer than libprotobuf's parser, the parser's rules are applied
// here: a tag or a length takes at most 5 bytes (CodedInputStream reads up to 10), a field
// number is never 0, a group ends with its own field number, nesting is bounded.

// A length prefix: at most 5 bytes, below 2 GiB.
bool ReadSize(CodedInputStream* in, int* size) {
  const int start = in->CurrentPosition();
  return in->ReadVarintSizeAsInt(size) && in->CurrentPosition() - start <= 5;
}

// The next tag, 0 at the end of the message (or when malformed: then not ConsumedEntireMessage)
// and *too_long for a tag of more than 5 bytes.
uint32_t ReadTag(CodedInputStream* in, bool* too_long) {
  const int start = in->CurrentPosition();
  const uint32_t tag = in->ReadTag();
  *too_long = in->CurrentPosition() - start > 5;
  return tag;
}

// A field number other than 0 and a wire type other than end-group, 6 or 7.
bool FieldTag(uint32_t tag) {
  if (Wire::GetTagFieldNumber(tag) == 0) return false;
  switch (Wire::GetTagWireType(tag)) {
    case Wire::WIRETYPE_VARINT:
    case Wire::WIRETYPE_FIXED64:
    case Wire::WIRETYPE_LENGTH_DELIMITED:
    case Wire::WIRETYPE_START_GROUP:
    case Wire::WIRETYPE_FIXED32:
      return true;
    default:
      return false;
  }
}

// Skips the value of a field this decoder does not read (`tag` is a FieldTag).
bool SkipField(CodedInputStream* in, uint32_t tag, int* depth) {
  switch (Wire::GetTagWireType(tag)) {
    case Wire::WIRETYPE_VARINT: {
      uint64_t v = 0;
      return in->ReadVarint64(&v);
    }
    case Wire::WIRETYPE_FIXED64: {
      uint64_t v = 0;
      return in->ReadLittleEndian64(&v);
    }
    case Wire::WIRETYPE_FIXED32: {
      uint32_t v = 0;
      return in->ReadLittleEndian32(&v);
    }
    case Wire::WIRETYPE_LENGTH_DELIMITED: {
      int size = 0;
      return ReadSize(in, &size) && in->Skip(size);
    }
    case Wire::WIRETYPE_START_GROUP: {
      if (--*depth < 0) return false;
      while (true) {
        bool too_long = false;
        const uint32_t inner = ReadTag(in, &too_long);
        if (inner == 0 || too_long) return false;
        if (Wire::GetTagWireType(inner) == Wire::WIRETYPE_END_GROUP) {
          ++*depth;
          return Wire::GetTagFieldNumber(inner) == Wire::GetTagFieldNumber(tag);
        }
        if (!FieldTag(inner) || !SkipField(in, inner, depth)) return false;
      }
    }
    default:
      return false;
  }
}

// Walks the fields of the message the stream is limited to: `field(tag)` returns 1 when it read
// the field, 0 to have it skipped, -1 when it is malformed. True when the message ended exactly
// at its limit.
template <typename Field>
bool ParseFields(CodedInputStream* in, int* depth, Field&& field) {
  while (true) {
    bool too_long = false;
    const uint32_t tag = ReadTag(in, &too_long);
    // 0: the limit (a legitimate end), or a truncated tag or a tag of 0 (not one).
    if (tag == 0) return in->ConsumedEntireMessage();
    if (too_long || !FieldTag(tag)) return false;
    const int read = field(tag);
    if (read < 0) return false;
    if (read == 0 && !SkipField(in, tag, depth)) return false;
  }
}

// A length-delimited field's bytes, as a view into the stream's buffer `base`.
bool ReadBytes(CodedInputStream* in, const char* base, std::string_view* out) {
  int length = 0;
  if (!ReadSize(in, &length)) return false;
  const int position = in->CurrentPosition();
  if (!in->Skip(length)) return false;  // past the message's limit or the end
  *out = std::string_view(base + position, size_t(length));
  return true;
}

// An embedded message: its length (which must lie within the enclosing message), then
// ParseFields over exactly that many bytes, one level deeper.
template <typename Field>
bool ParseMessage(CodedInputStream* in, int* depth, Field&& field) {
  int length = 0;
  if (!ReadSize(in, &length) || length > in->BytesUntilLimit()) return false;
  if (--*depth < 0) return false;
  const CodedInputStream::Limit limit = in->PushLimit(length);
  const bool ok = ParseFields(in, depth, field);
  in->PopLimit(limit);
  ++*depth;
  return ok;
}

// Bytes kept readable past the decompressed body (never part of it), so that the fast path
// below may load 8 bytes at any position of the body.
constexpr size_t kReadPadding = 8;

// RawVarint's general case: byte by byte.
[[gnu::noinline]] bool RawVarintBytes(const uint8_t** p, const uint8_t* end, int max_bytes,
                                      uint64_t* value) {
  uint64_t v = 0;
  const uint8_t* q = *p;
  for (int i = 0; i < max_bytes; ++i) {
    if (q == end) return false;
    const uint8_t b = *q++;
    v |= uint64_t(b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *value = v;
      *p = q;
      return true;
    }
  }
  return false;
}

// A varint of at most `max_bytes` bytes at [*p, end): its value, *p past it; false (and *p
// unspecified) when it is longer or runs past `end`. Used by the fast path below only for
// what it then checks against CodedInputStream's own limits. `end` lies within the body, so
// kReadPadding bytes are readable from *p: a varint that ends within them (every tag's and
// length's, a millisecond timestamp's 6 bytes) is decoded from one 64-bit load, no loop.
[[gnu::always_inline]] inline bool RawVarint(const uint8_t** p, const uint8_t* end, int max_bytes,
                                             uint64_t* value) {
  const uint8_t* q = *p;
  if (q == end) return false;
  if (*q < 0x80) {
    *value = *q;
    *p = q + 1;
    return true;
  }
  if (q[1] < 0x80) {  // two bytes (a series' length): no 64-bit unpacking
    if (max_bytes < 2 || end - q < 2) return false;
    *value = uint64_t(q[0] & 0x7f) | uint64_t(q[1]) << 7;
    *p = q + 2;
    return true;
  }
  if constexpr (std::endian::native == std::endian::little && kReadPadding >= 8) {
    uint64_t word;
    std::memcpy(&word, q, 8);
    const uint64_t stops = ~word & 0x8080808080808080ull;  // bytes without a continuation bit
    if (stops != 0) {
      const int bytes = std::countr_zero(stops) / 8 + 1;
      if (bytes > max_bytes || bytes > end - q) return false;
      uint64_t v = bytes == 8 ? word : word & ((uint64_t(1) << (8 * bytes)) - 1);
      // The 7-bit groups of the little-endian bytes, packed: pairs, then quads, then all.
      v = ((v & 0x7f007f007f007f00ull) >> 1) | (v & 0x007f007f007f007full);
      v = ((v & 0x3fff00003fff0000ull) >> 2) | (v & 0x00003fff00003fffull);
      v = ((v & 0x0fffffff00000000ull) >> 4) | (v & 0x000000000fffffffull);
      *value = v;
      *p = q + bytes;
      return true;
    }
    if (max_bytes <= 8) return false;
  }
  return RawVarintBytes(p, end, max_bytes, value);
}

}  // namespace

void WriteRequestView::Clear() {
  label_fields_.clear();
  labels_.clear();
  samples_.clear();
  series_.clear();
  metadata_.clear();
}

void WriteRequestView::Shrink(size_t keep_bytes) {
  const size_t held =
      raw_.capacity() + labels_.capacity() * sizeof(LabelView) +
      samples_.capacity() * sizeof(Sample) + series_.capacity() * sizeof(SeriesRange) +
      metadata_.capacity() * sizeof(MetadataView) + label_fields_.capacity() * sizeof(LabelField);
  if (held <= keep_bytes) return;
  Clear();
  std::string().swap(raw_);
  std::vector<LabelView>().swap(labels_);
  std::vector<Sample>().swap(samples_);
  std::vector<SeriesRange>().swap(series_);
  std::vector<MetadataView>().swap(metadata_);
  std::vector<LabelField>().swap(label_fields_);
  std::vector<std::string_view>().swap(lookup_);
  std::vector<const void*>().swap(found_);
}

Status WriteRequestView::Decode(std::string_view body, size_t max_decoded_bytes,
                                KnownLabels* known) {
  Clear();
  size_t decoded_len = 0;
  if (Status s = CheckDecodedLength(body, max_decoded_bytes, &decoded_len); !s.ok()) return s;
  if (decoded_len > size_t(std::numeric_limits<int>::max())) {  // CodedInputStream's bound
    return Status::InvalidArgument("remote-write: body is not a protobuf WriteRequest");
  }
  // Grown, never shrunk here: resizing down and up again would zero the bytes each time. The
  // padding past the body is for RawVarint's 8-byte loads.
  if (raw_.size() < decoded_len + kReadPadding) raw_.resize(decoded_len + kReadPadding);
  if (!snappy::RawUncompress(body.data(), body.size(), raw_.data())) {
    return Status::InvalidArgument("remote-write: corrupt snappy data");
  }
  const char* base = raw_.data();
  CodedInputStream in(reinterpret_cast<const uint8_t*>(base), int(decoded_len));
  const CodedInputStream::Limit whole = in.PushLimit(int(decoded_len));
  int depth = kRecursionLimit;
  // UTF-8 is checked as the fields are read, but reported only for a body that parses (as
  // rw::Decode does: the protobuf first, then labels, then metadata).
  bool labels_utf8 = true, metadata_utf8 = true;

  // A TimeSeries' Label fields are first only skipped over (a tag, a length: no limit pushed
  // and popped per label), then parsed from their recorded places by a second reader over the
  // same bytes, unless `known` recognises the series' label bytes. The second reader only moves
  // forward: series are parsed in order.
  std::optional<CodedInputStream> label_in;
  const auto label_field = [&](uint32_t tag) -> int {
    LabelView& l = labels_.back();
    if (tag == kLabelName) return ReadBytes(&*label_in, base, &l.name) ? 1 : -1;
    if (tag == kLabelValue) return ReadBytes(&*label_in, base, &l.value) ? 1 : -1;
    return 0;
  };
  // The Label message whose bytes are [begin, begin + size), two levels deep (as in the body).
  const auto parse_label = [&](int begin, int size) -> bool {
    if (!label_in) label_in.emplace(reinterpret_cast<const uint8_t*>(base), int(decoded_len));
    if (!label_in->Skip(begin - label_in->CurrentPosition())) return false;
    int label_depth = kRecursionLimit - 2;
    const CodedInputStream::Limit limit = label_in->PushLimit(size);
    const bool ok = ParseFields(&*label_in, &label_depth, label_field);
    label_in->PopLimit(limit);
    return ok;
  };
  const auto sample = [&](uint32_t tag) -> int {
    Sample& s = samples_.back();
    if (tag == kSampleValue) {
      uint64_t bits = 0;
      if (!in.ReadLittleEndian64(&bits)) return -1;
      s.value = std::bit_cast<double>(bits);
      return 1;
    }
    if (tag == kSampleTimestamp) {
      uint64_t ts = 0;
      if (!in.ReadVarint64(&ts)) return -1;
      s.timestamp_ms = int64_t(ts);
      return 1;
    }
    return 0;
  };
  // A Sample message (its tag read), as ParseMessage(sample) decides it, but the layout every
  // sender writes (the value's field, then the timestamp's) is read with no limit pushed and
  // popped: whatever else the message holds is walked the general way after it. Reading one
  // of those two fields past the message's end is refused here as a limit refuses it there.
  const auto ParseSample = [&]() -> bool {
    int size = 0;
    if (!ReadSize(&in, &size) || size > in.BytesUntilLimit() || depth - 1 < 0) return false;
    const int end = in.CurrentPosition() + size;
    Sample& s = samples_.back();
    if (in.CurrentPosition() < end && in.ExpectTag(kSampleValue)) {
      uint64_t bits = 0;
      if (!in.ReadLittleEndian64(&bits)) return false;
      s.value = std::bit_cast<double>(bits);
    }
    if (in.CurrentPosition() < end && in.ExpectTag(kSampleTimestamp)) {
      uint64_t ts = 0;
      if (!in.ReadVarint64(&ts)) return false;
      s.timestamp_ms = int64_t(ts);
    }
    const int position = in.CurrentPosition();
    if (position > end) return false;
    if (position == end) return true;
    --depth;
    const CodedInputStream::Limit limit = in.PushLimit(end - position);
    const bool ok = ParseFields(&in, &depth, sample);
    in.PopLimit(limit);
    ++depth;
    return ok;
  };
  // The layout every sender writes, read straight from the bytes (no CodedInputStream call per
  // field: ~half of the decoder's time): a TimeSeries of Label fields (one-byte tag 0x0a) in one
  // run, then Sample fields (0x12) each holding at most the value (0x09, 8 bytes) then the
  // timestamp (0x10, a varint of at most 9 bytes), every length a varint of at most 5 bytes below
  // 2 GiB and within its message. What it reads is exactly what the general path below reads
  // from such a message (a label's bytes recorded, a sample's absent fields 0); anything else (a
  // Label after a Sample included), and it returns null having changed nothing, and the general
  // path decides. `p` is just past the series' tag, at the top level (whose limit is the body's
  // end); it returns the position past the series, recorded.
  const uint8_t* const body_begin = reinterpret_cast<const uint8_t*>(base);
  const uint8_t* const body_end = body_begin + decoded_len;
  const auto fast_series_at = [&](const uint8_t* p) -> const uint8_t* {
    uint64_t length = 0;
    if (!RawVarint(&p, body_end, 5, &length) || length > INT32_MAX ||
        int64_t(length) > body_end - p || depth - 2 < 0) {
      return nullptr;
    }
    const uint8_t* const end = p + length;
    // A field's length: one byte in the usual case (p + 1 is readable: p < end, and the body
    // has kReadPadding bytes after it). `p` is at the field's tag; past its length after.
    const auto field_size = [&](const uint8_t** q, uint64_t* size) -> bool {
      const uint8_t* f = *q;
      if (f[1] < 0x80) {
        *size = f[1];
        *q = f + 2;
      } else {
        ++f;
        if (!RawVarint(&f, end, 5, size) || *size > INT32_MAX) return false;
        *q = f;
      }
      return int64_t(*size) <= end - *q;
    };
    const uint8_t* const run_begin = p;
    const size_t run_room = size_t(end - p);
    size_t at = 0;  // in the run (an offset: it may pass the series' end, checked after the run)
    uint32_t label_count = 0;
    while (at < run_room && run_begin[at] == kSeriesLabel) {
      // Not recorded one by one: parse_labels walks the run again for a series it parses.
      uint64_t size = run_begin[at + 1];  // readable: at < run_room, and kReadPadding bytes
      if (size < 0x80) {
        at += 2 + size;  // a one-byte length: within the series is checked once, below
      } else {
        const uint8_t* q = run_begin + at;
        if (!field_size(&q, &size)) return nullptr;
        at = size_t(q - run_begin) + size;
      }
      ++label_count;
    }
    if (at > run_room) return nullptr;  // a label past the series' end
    p = run_begin + at;
    const uint8_t* const run_end = p;
    const size_t samples_before = samples_.size();
    uint32_t sample_count = 0;
    while (p < end) {
      uint64_t size = 0;
      if (*p != kSeriesSample || !field_size(&p, &size)) {
        samples_.resize(samples_before);
        return nullptr;
      }
      const uint8_t* const field_end = p + size;
      Sample sample;
      if (p < field_end && *p == kSampleValue) {
        if (field_end - p < 9) {
          samples_.resize(samples_before);
          return nullptr;
        }
        uint64_t bits = 0;
        if constexpr (std::endian::native == std::endian::little) {
          std::memcpy(&bits, p + 1, 8);
        } else {
          for (int b = 0; b < 8; ++b) bits |= uint64_t(p[1 + b]) << (8 * b);
        }
        sample.value = std::bit_cast<double>(bits);
        p += 9;
      }
      if (p < field_end && *p == kSampleTimestamp) {
        ++p;
        uint64_t ts = 0;
        if (!RawVarint(&p, field_end, 9, &ts)) {
          samples_.resize(samples_before);
          return nullptr;
        }
        sample.timestamp_ms = int64_t(ts);
      }
      if (p != field_end) {
        samples_.resize(samples_before);
        return nullptr;
      }
      samples_.push_back(sample);
      ++sample_count;
    }
    SeriesRange range;
    range.first_sample = uint32_t(samples_before);
    range.sample_count = sample_count;
    range.first_field = kLabelRun;
    range.field_count = label_count;
    if (label_count != 0) {
      range.label_bytes_begin = uint32_t(run_begin - body_begin);
      range.label_bytes_size = uint32_t(run_end - run_begin);
    }
    series_.push_back(range);  // (an lvalue: push_back's inline path, not emplace_back's call)
    return end;
  };
  const auto fast_series = [&]() -> bool {
    const uint8_t* const at = body_begin + in.CurrentPosition();
    const uint8_t* const next = fast_series_at(at);
    if (next == nullptr) return false;
    in.Skip(int(next - at));  // within the limit: checked above
    return true;
  };
  // A TimeSeries message (its tag read): as ParseMessage with the fields above, except that
  // Label fields are only skipped and recorded (label_fields_); parse_labels reads them.
  const auto parse_series = [&]() -> bool {
    if (fast_series()) return true;
    int length = 0;
    if (!ReadSize(&in, &length) || length > in.BytesUntilLimit()) return false;
    if (--depth < 0) return false;
    series_.push_back(SeriesRange{0, 0, uint32_t(samples_.size()), 0});
    series_.back().first_field = uint32_t(label_fields_.size());
    int run_begin = -1, run_end = -1;
    bool one_run = true;
    const CodedInputStream::Limit limit = in.PushLimit(length);
    bool ok = true;
    while (true) {
      const int start = in.CurrentPosition();
      bool too_long = false;
      const uint32_t tag = ReadTag(&in, &too_long);
      if (tag == 0) {
        ok = in.ConsumedEntireMessage();
        break;
      }
      if (too_long || !FieldTag(tag)) {
        ok = false;
        break;
      }
      if (tag == kSeriesLabel) {
        // What ParseMessage checks before it descends: a length within the message, a level
        // of nesting left.
        int size = 0;
        if (!ReadSize(&in, &size) || size > in.BytesUntilLimit() || depth - 1 < 0) {
          ok = false;
          break;
        }
        label_fields_.push_back(LabelField{in.CurrentPosition(), size});
        in.Skip(size);  // within the limit: checked above
        if (run_begin < 0) {
          run_begin = start;
        } else if (run_end != start) {
          one_run = false;  // another field came between two labels
        }
        run_end = in.CurrentPosition();
        continue;
      }
      if (tag == kSeriesSample) {
        samples_.emplace_back();
        if (!ParseSample()) {
          ok = false;
          break;
        }
        ++series_.back().sample_count;
        continue;
      }
      if (!SkipField(&in, tag, &depth)) {
        ok = false;
        break;
      }
    }
    in.PopLimit(limit);
    ++depth;
    if (!ok) return false;
    SeriesRange& range = series_.back();
    range.field_count = uint32_t(label_fields_.size()) - range.first_field;
    if (one_run && run_begin >= 0) {
      range.label_bytes_begin = uint32_t(run_begin);
      range.label_bytes_size = uint32_t(run_end - run_begin);
    }
    return true;
  };
  // After the whole body parsed: the labels of every series `known` does not recognise, in
  // order (so the second reader only moves forward).
  const auto parse_labels = [&]() -> bool {
    if (known != nullptr && !series_.empty()) {
      lookup_.resize(series_.size());
      found_.assign(series_.size(), nullptr);
      for (size_t i = 0; i < series_.size(); ++i) lookup_[i] = label_bytes(i);
      known->Find(lookup_, found_);
      for (size_t i = 0; i < series_.size(); ++i) {
        series_[i].known = lookup_[i].empty() ? nullptr : found_[i];
      }
    }
    for (SeriesRange& range : series_) {
      range.first_label = uint32_t(labels_.size());
      if (range.known != nullptr) continue;
      if (range.first_field == kLabelRun) {
        // fast_series checked this run: Label fields, each a one-byte tag and a length within it.
        const uint8_t* p = body_begin + range.label_bytes_begin;
        const uint8_t* const end = p + range.label_bytes_size;
        while (p < end) {
          ++p;  // the tag
          uint64_t size = 0;
          if (!RawVarint(&p, end, 5, &size)) return false;  // (not reached: checked before)
          labels_.emplace_back();
          if (!parse_label(int(p - body_begin), int(size))) return false;
          const LabelView& l = labels_.back();
          labels_utf8 = labels_utf8 && IsValidUtf8(l.name) && IsValidUtf8(l.value);
          ++range.label_count;
          p += size;
        }
        continue;
      }
      for (uint32_t f = range.first_field; f < range.first_field + range.field_count; ++f) {
        labels_.emplace_back();
        if (!parse_label(label_fields_[f].begin, label_fields_[f].size)) return false;
        const LabelView& l = labels_.back();
        labels_utf8 = labels_utf8 && IsValidUtf8(l.name) && IsValidUtf8(l.value);
        ++range.label_count;
      }
    }
    return true;
  };
  const auto metadata = [&](uint32_t tag) -> int {
    MetadataView& m = metadata_.back();
    if (tag == kMetadataType) {
      uint32_t type = 0;
      if (!in.ReadVarint32(&type)) return -1;
      m.kind = KindOf(type);
      return 1;
    }
    if (tag == kMetadataFamily) return ReadBytes(&in, base, &m.family) ? 1 : -1;
    if (tag == kMetadataHelp) return ReadBytes(&in, base, &m.help) ? 1 : -1;
    if (tag == kMetadataUnit) return ReadBytes(&in, base, &m.unit) ? 1 : -1;
    return 0;
  };
  const auto request = [&](uint32_t tag) -> int {
    if (tag == kRequestTimeseries) return parse_series() ? 1 : -1;
    if (tag == kRequestMetadata) {
      metadata_.emplace_back();
      if (!ParseMessage(&in, &depth, metadata)) return -1;
      const MetadataView& m = metadata_.back();
      metadata_utf8 =
          metadata_utf8 && IsValidUtf8(m.family) && IsValidUtf8(m.help) && IsValidUtf8(m.unit);
      return 1;
    }
    return 0;
  };
  // The top level read straight from the bytes while it is TimeSeries fields (one-byte tag
  // 0x0a) in fast_series_at's layout; the general path goes on from the first field that is not.
  const uint8_t* top = body_begin;
  while (top < body_end && *top == kRequestTimeseries) {
    const uint8_t* const next = fast_series_at(top + 1);
    if (next == nullptr) break;
    top = next;
  }
  in.Skip(int(top - body_begin));  // within the body
  const bool parsed = ParseFields(&in, &depth, request) && parse_labels();
  in.PopLimit(whole);
  Status status;
  if (!parsed) {
    status = Status::InvalidArgument("remote-write: body is not a protobuf WriteRequest");
  } else if (!labels_utf8) {
    status = Status::InvalidArgument("remote-write: a label name or value is not UTF-8");
  } else if (!metadata_utf8) {
    status = Status::InvalidArgument("remote-write: metadata is not UTF-8");
  }
  if (!status.ok()) Clear();
  return status;
}

}  // namespace ccmon::rw
