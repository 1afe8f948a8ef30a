// libFuzzer target for the remote-write decoder (src/remote_write/write_request.h), the first
// code that touches a receiver's untrusted bytes. For every input:
//  (a) rw::Decode of the input as a body (snappy framing) never crashes, hangs or trips
//      ASan/UBSan, and honours the decoded-size limit;
//  (b) the input as raw protobuf (snappy-compressed here) likewise;
//  (c) whatever decodes and is valid re-encodes and decodes to the same request (labels sorted);
//  (d) rw::WriteRequestView (the gateway's decoder, write_request_view.h) gives the same verdict,
//      message and content as rw::Decode on both;
//  (e) so does the view with rw::KnownLabels recognising the label bytes of series accepted by
//      earlier inputs (as the gateway's series cache does): a known series' remembered labels
//      equal rw::Decode's.
#include <snappy.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "remote_write/write_request.h"
#include "remote_write/write_request_view.h"

namespace {

constexpr size_t kLimit = 1 << 20;

void RoundTrip(const ccmon::rw::WriteRequest& req) {
  using namespace ccmon;
  std::string body;
  if (!rw::Encode(req, &body).ok()) return;  // invalid for a sender: nothing more to check
  rw::WriteRequest back;
  if (!rw::Decode(body, SIZE_MAX, &back).ok()) {
    std::fprintf(stderr, "an encoded request does not decode\n");
    std::abort();
  }
  rw::WriteRequest want = req;
  for (auto& s : want.series) std::sort(s.labels.begin(), s.labels.end());
  // Values compare by their bits: protobuf carries doubles exactly, NaN payloads included.
  bool same_series = back.series.size() == want.series.size();
  for (size_t i = 0; same_series && i < want.series.size(); ++i) {
    const rw::Series& a = back.series[i];
    const rw::Series& b = want.series[i];
    same_series = a.labels == b.labels && a.samples.size() == b.samples.size();
    for (size_t k = 0; same_series && k < a.samples.size(); ++k) {
      same_series = a.samples[k].timestamp_ms == b.samples[k].timestamp_ms &&
                    std::bit_cast<uint64_t>(a.samples[k].value) ==
                        std::bit_cast<uint64_t>(b.samples[k].value);
    }
  }
  if (!same_series || back.metadata != want.metadata) {
    std::fprintf(stderr, "re-encoded request differs after decoding\n");
    std::abort();
  }
}

// (d): the view decoder agrees with rw::Decode (libprotobuf) on `body`.
void SameAsView(std::string_view body, size_t limit) {
  using namespace ccmon;
  static rw::WriteRequestView view;  // reused, as the gateway's threads reuse theirs
  rw::WriteRequest want;
  const Status a = rw::Decode(body, limit, &want);
  const Status b = view.Decode(body, limit);
  bool same = a.ok() == b.ok() && a.message() == b.message();
  if (same && a.ok()) {
    same =
        view.series_count() == want.series.size() && view.metadata().size() == want.metadata.size();
    for (size_t i = 0; same && i < want.series.size(); ++i) {
      const auto labels = view.labels(i);
      const auto samples = view.samples(i);
      same = labels.size() == want.series[i].labels.size() &&
             samples.size() == want.series[i].samples.size();
      for (size_t k = 0; same && k < labels.size(); ++k) {
        same = labels[k].name == want.series[i].labels[k].first &&
               labels[k].value == want.series[i].labels[k].second;
      }
      for (size_t k = 0; same && k < samples.size(); ++k) {
        same = samples[k].timestamp_ms == want.series[i].samples[k].timestamp_ms &&
               std::bit_cast<uint64_t>(samples[k].value) ==
                   std::bit_cast<uint64_t>(want.series[i].samples[k].value);
      }
    }
    for (size_t i = 0; same && i < want.metadata.size(); ++i) {
      const rw::MetadataView& m = view.metadata()[i];
      same = m.kind == want.metadata[i].kind && m.family == want.metadata[i].family &&
             m.help == want.metadata[i].help && m.unit == want.metadata[i].unit;
    }
  }
  if (!same) {
    std::fprintf(stderr, "WriteRequestView and rw::Decode disagree: \"%s\" vs \"%s\"\n",
                 b.message().c_str(), a.message().c_str());
    std::abort();
  }
}

// (e): remembers the labels of accepted series by their label bytes (bounded: forgets all at
// 100,000).
class Remembering final : public ccmon::rw::KnownLabels {
 public:
  using LabelList = std::vector<std::pair<std::string, std::string>>;
  using Known = std::pair<const std::string, LabelList>;
  void Find(std::span<const std::string_view> label_bytes, std::span<const void*> found) override {
    for (size_t i = 0; i < label_bytes.size(); ++i) {
      auto it = known_.find(std::string(label_bytes[i]));
      found[i] = it == known_.end() ? nullptr : &*it;
    }
  }
  void Remember(const ccmon::rw::WriteRequestView& v) {
    if (known_.size() > 100'000) known_.clear();
    for (size_t i = 0; i < v.series_count(); ++i) {
      if (v.label_bytes(i).empty() || v.known(i) != nullptr) continue;
      LabelList labels;
      for (const auto& l : v.labels(i)) labels.emplace_back(l.name, l.value);
      known_.emplace(std::string(v.label_bytes(i)), std::move(labels));
    }
  }

 private:
  std::map<std::string, LabelList> known_;
};

void SameWithKnownLabels(std::string_view body, size_t limit) {
  using namespace ccmon;
  static rw::WriteRequestView view;
  static Remembering known;
  rw::WriteRequest want;
  const Status a = rw::Decode(body, limit, &want);
  const Status b = view.Decode(body, limit, &known);
  bool same = a.ok() == b.ok() && a.message() == b.message();
  if (same && a.ok()) {
    same = view.series_count() == want.series.size();
    for (size_t i = 0; same && i < want.series.size(); ++i) {
      Remembering::LabelList labels;
      if (view.known(i) != nullptr) {
        const auto& k = *static_cast<const Remembering::Known*>(view.known(i));
        same = k.first == view.label_bytes(i) && view.labels(i).empty();
        labels = k.second;
      } else {
        for (const auto& l : view.labels(i)) labels.emplace_back(l.name, l.value);
      }
      same = same && labels == want.series[i].labels &&
             view.samples(i).size() == want.series[i].samples.size();
    }
  }
  if (!same) {
    std::fprintf(stderr, "WriteRequestView with known labels and rw::Decode disagree\n");
    std::abort();
  }
  if (b.ok()) known.Remember(view);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ccmon;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  rw::WriteRequest req;
  if (rw::Decode(input, kLimit, &req).ok()) RoundTrip(req);
  std::string compressed;
  snappy::Compress(input.data(), input.size(), &compressed);
  rw::WriteRequest raw;
  if (rw::Decode(compressed, kLimit, &raw).ok()) RoundTrip(raw);
  SameAsView(input, kLimit);
  SameAsView(compressed, kLimit);
  SameWithKnownLabels(input, kLimit);
  SameWithKnownLabels(compressed, kLimit);
  if (size > 16 && rw::Decode(compressed, 16, &raw).ok()) {
    std::fprintf(stderr, "decoded-size limit not enforced\n");
    std::abort();
  }
  return 0;
}
