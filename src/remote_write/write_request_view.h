// WriteRequestView: a remote-write 1.0 body (snappy block + protobuf WriteRequest) decoded
// without materialising its text: label names and values, metadata families, help and unit
// texts are string_views into the decompressed bytes the view owns. For the gateway's receive
// path, where a std::string per label (rw::Decode) was most of the decoding cost; the agent,
// replay and tests keep rw::Decode (write_request.h), which accepts exactly the same bodies.
//
// The protobuf is walked once with libprotobuf's own wire reader (CodedInputStream,
// WireFormatLite), with libprotobuf's parse semantics: unknown fields and known fields of
// another wire type are skipped, a repeated scalar field's last value wins, groups are skipped
// whole; a truncated varint, a length past the end of its message, a field number 0, an
// unmatched end-group or an invalid wire type make the body invalid. Beyond the wire format
// only UTF-8 is checked (label names and values, metadata texts), as rw::Decode does; a
// receiver decides what else it accepts.
//
// Reuse: Decode clears the view but keeps its buffers' capacity, so one view per thread decodes
// request after request without allocating once the buffers are large enough (Shrink gives
// the memory back after an unusually large request).
//
// Thread-compatible: one view per thread (const methods may run concurrently).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "remote_write/write_request.h"

namespace ccmon::rw {

struct LabelView {
  std::string_view name;
  std::string_view value;
};

struct MetadataView {
  MetricKind kind = MetricKind::kUnknown;
  std::string_view family;
  std::string_view help;
  std::string_view unit;
};

// Recognises the labels of series decoded before (the gateway's series cache): see Decode.
class KnownLabels {
 public:
  // For each i, `label_bytes[i]`: all of one series' label fields exactly as sent (every Label
  // field of the TimeSeries, tags and lengths included, in one contiguous run), or "" (not to be
  // looked up). Sets found[i] non-null (an opaque value, handed back by WriteRequestView::known)
  // when exactly these bytes were decoded before into labels the caller accepted: the view then
  // does not parse or check them again; else null. Called once per Decode with every series (so
  // that the lookups can overlap their memory loads).
  virtual void Find(std::span<const std::string_view> label_bytes,
                    std::span<const void*> found) = 0;

 protected:
  ~KnownLabels() = default;
};

class WriteRequestView {
 public:
  WriteRequestView() = default;
  WriteRequestView(const WriteRequestView&) = delete;
  WriteRequestView& operator=(const WriteRequestView&) = delete;

  // Decodes `body` (not retained: the view copies what it needs while decompressing): snappy
  // block format whose declared uncompressed length must not exceed `max_decoded_bytes` (checked
  // before anything is allocated; at most 2 GiB - 1 in any case), then the WriteRequest. On
  // kInvalidArgument (with rw::Decode's messages) the view is empty. Every view it hands out
  // stays valid until the next Decode, Shrink or the view's destruction.
  //
  // With `known` (borrowed for the call): a series whose labels come as one run of Label fields
  // is looked up by those bytes (label_bytes) first; when `known` recognises them its labels are
  // not parsed nor checked for UTF-8 (labels(i) is empty, known(i) not null). Label bytes the
  // caller accepted once decode to the same labels every time, so the result is the same as
  // without `known` as long as `known` only recognises bytes that decoded without error. Every
  // other series is decoded as without `known`.
  Status Decode(std::string_view body, size_t max_decoded_bytes, KnownLabels* known = nullptr);

  size_t series_count() const { return series_.size(); }
  // The labels of series i as sent (any order, duplicates and empty values included).
  std::span<const LabelView> labels(size_t i) const {
    return {labels_.data() + series_[i].first_label, series_[i].label_count};
  }
  // What Decode's `known` returned for series i's label bytes (null: not known, or no `known`).
  const void* known(size_t i) const { return series_[i].known; }
  // Series i's label fields as sent, when they came as one run (what `known` was asked about);
  // "" when the series has no labels or other fields came between them.
  std::string_view label_bytes(size_t i) const {
    return {raw_.data() + series_[i].label_bytes_begin, series_[i].label_bytes_size};
  }
  // The samples of series i as sent.
  std::span<const Sample> samples(size_t i) const {
    return {samples_.data() + series_[i].first_sample, series_[i].sample_count};
  }
  const std::vector<MetadataView>& metadata() const { return metadata_; }
  size_t sample_count() const { return samples_.size(); }

  // Frees the buffers when they hold more than `keep_bytes` (after a large request).
  void Shrink(size_t keep_bytes);

 private:
  struct SeriesRange {
    uint32_t first_label = 0, label_count = 0;
    uint32_t first_sample = 0, sample_count = 0;
    uint32_t label_bytes_begin = 0, label_bytes_size = 0;
    // In label_fields_; or first_field kLabelRun: the series' field_count Label fields are the
    // run at label_bytes_begin (the fast path does not record them one by one).
    uint32_t first_field = 0, field_count = 0;
    const void* known = nullptr;
  };
  static constexpr uint32_t kLabelRun = ~uint32_t(0);
  void Clear();

  std::string raw_;  // the decompressed protobuf; every view points into it
  std::vector<LabelView> labels_;
  std::vector<Sample> samples_;
  std::vector<SeriesRange> series_;
  std::vector<MetadataView> metadata_;
  struct LabelField {
    int begin = 0, size = 0;  // an embedded Label message's bytes in raw_
  };
  std::vector<LabelField> label_fields_;  // Decode's scratch: every series' Label fields
  std::vector<std::string_view> lookup_;  // Decode's scratch: what `known` is asked
  std::vector<const void*> found_;        // and what it answers
};

}  // namespace ccmon::rw
