// The Prometheus remote-write 1.0 wire format: a snappy-compressed (block format, not framed)
// protobuf WriteRequest (proto/prometheus/remote.proto). Pure functions, thread-safe, no I/O.
//
// Encoding validates what the spec asks of a sender, because receivers do not (Prometheus 2.42
// stores unsorted or nameless series, answers 500 to a duplicate label name, and rolls a whole
// request back for one out-of-order sample; ../shared/docs/prometheus-peers.md §5-6): every
// series has a __name__, label names are valid, unique and non-empty values only, text is UTF-8,
// samples of a series have strictly increasing timestamps, and no series appears twice in one
// request.
// Labels may be given in any order; they are sent sorted by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ccmon::rw {

// Headers every remote-write 1.0 request carries (besides User-Agent).
inline constexpr std::string_view kContentType = "application/x-protobuf";
inline constexpr std::string_view kContentEncoding = "snappy";
inline constexpr std::string_view kVersionHeader = "X-Prometheus-Remote-Write-Version";
inline constexpr std::string_view kVersion = "0.1.0";

struct Sample {
  int64_t timestamp_ms = 0;
  double value = 0;
  bool operator==(const Sample&) const = default;
};

struct Series {
  std::vector<std::pair<std::string, std::string>> labels;  // includes {"__name__", name}
  std::vector<Sample> samples;
  bool operator==(const Series&) const = default;
};

enum class MetricKind : uint8_t { kUnknown, kCounter, kGauge, kHistogram, kSummary, kInfo };

struct Metadata {
  MetricKind kind = MetricKind::kUnknown;
  std::string family;  // metric family name (without _total / _bucket suffixes)
  std::string help;
  std::string unit;
  bool operator==(const Metadata&) const = default;
};

struct WriteRequest {
  std::vector<Series> series;
  std::vector<Metadata> metadata;
  size_t sample_count() const;
};

// Validates `request` (see the file comment) and writes the snappy-compressed protobuf to *body.
// InvalidArgument names the first offending series; *body is untouched then.
Status Encode(const WriteRequest& request, std::string* body);

// The same validation, and the uncompressed protobuf to *proto. Serialized WriteRequests can be
// concatenated: the bytes of two form one WriteRequest holding the series and metadata of both
// (the agent's outbox keeps them so, and a sender merges a backlog into full batches).
Status Serialize(const WriteRequest& request, std::string* proto);
// One series of one sample, appended to *proto as Serialize writes it: the same bytes as
// Serialize of a request holding that series alone, so appends and Serialize outputs
// concatenate into one WriteRequest. For a sender that builds requests series by series from
// labels it already holds (the agent's samples: no Series built, no label copied).
// `labels` (name, value) must be sorted by name; Serialize's checks of a series apply, with its
// messages (a valid __name__, valid and unique names, non-empty UTF-8 values). Not checked: that
// no other series of the request has the same labels (the caller's series are distinct by
// construction). *proto is untouched on error.
using LabelRef = std::pair<std::string_view, std::string_view>;
Status AppendSeries(std::span<const LabelRef> labels, Sample sample, std::string* proto);
// Snappy block compression of a serialized WriteRequest (what Encode sends).
void Compress(std::string_view proto, std::string* body);

// Decodes a body: snappy block format whose declared uncompressed length must not exceed
// `max_decoded_bytes` (checked before decompressing), then the protobuf. Labels are returned as
// sent; beyond the wire format only UTF-8 is checked (a receiver decides what else it accepts).
// The gateway decodes with WriteRequestView (write_request_view.h) instead: the same verdicts
// and messages, without a std::string per label.
Status Decode(std::string_view body, size_t max_decoded_bytes, WriteRequest* request);

// For a sender that merges serialized requests (Serialize output, concatenated: the agent's
// outbox backlog) into one: how many samples of `proto` come before the first sample of a series
// that already has a sample earlier in it (same label set, in any order, whether in the same
// TimeSeries message or another). *repeat is false, and *samples_before the request's sample
// count, when every series has one sample. A request that may be sent twice must hold each
// series once: a receiver takes a re-sent sample as a duplicate of itself only while it is the
// series' newest, and Prometheus 2.42 answers an older one "out of order" with a 400 that rolls
// the whole request back. InvalidArgument when `proto` is not a WriteRequest.
Status SamplesBeforeRepeatedSeries(std::string_view proto, size_t* samples_before, bool* repeat);

// The uncompressed length a snappy block body declares (its header), without decompressing:
// what Decode and DecodeV2 compare with their limit first. False when the header is malformed.
bool DeclaredDecodedLength(std::string_view body, size_t* length);
// DeclaredDecodedLength checked against `max_decoded_bytes`, with Decode's messages
// (kInvalidArgument): what every decoder of a body does before it allocates.
Status CheckDecodedLength(std::string_view body, size_t max_decoded_bytes, size_t* length);

// --- Remote-write 2.0 (io.prometheus.write.v2.Request, proto/prometheus/write_v2.proto)

// The Content-Type of a 2.0 request (a 1.0 request may also say
// "application/x-protobuf;proto=prometheus.WriteRequest"), the version a 2.0 sender puts in
// kVersionHeader, and the response headers a 2.0 receiver must send with its answer.
inline constexpr std::string_view kProtoParamV1 = "prometheus.WriteRequest";
inline constexpr std::string_view kProtoParamV2 = "io.prometheus.write.v2.Request";
inline constexpr std::string_view kVersionV2 = "2.0.0";
inline constexpr std::string_view kSamplesWrittenHeader =
    "X-Prometheus-Remote-Write-Samples-Written";
inline constexpr std::string_view kHistogramsWrittenHeader =
    "X-Prometheus-Remote-Write-Histograms-Written";
inline constexpr std::string_view kExemplarsWrittenHeader =
    "X-Prometheus-Remote-Write-Exemplars-Written";

// What a 2.0 request carried beyond float samples and metadata (not decoded, only counted).
struct V2Extras {
  size_t histograms = 0;  // native histogram samples
  size_t exemplars = 0;
};

// Decodes a 2.0 body into the 1.0 model: the same snappy framing and declared-length check as
// Decode, then the protobuf; label and metadata references are resolved through the symbols
// table. A series' metadata becomes a Metadata whose family is the series' __name__ (2.0 has no
// family names), once per name (the first one wins); a series without a __name__ or with type,
// help and unit all unset gives none. kInvalidArgument for: bad snappy or protobuf, a reference
// out of the symbols table, an odd number of label references, a non-empty symbols[0], text
// that is not UTF-8. Labels are returned as sent, like Decode.
Status DecodeV2(std::string_view body, size_t max_decoded_bytes, WriteRequest* request,
                V2Extras* extras);

// Encodes `request` as a snappy-compressed 2.0 body, with the validation of Encode; each
// series gets the metadata of request.metadata whose family equals its __name__. For senders
// and tests.
Status EncodeV2(const WriteRequest& request, std::string* body);

// True for a valid Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*.
bool IsValidLabelName(std::string_view name);
// True for a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsValidMetricName(std::string_view name);

}  // namespace ccmon::rw
