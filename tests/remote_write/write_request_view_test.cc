#include "remote_write/write_request_view.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "remote_write/write_request.h"

namespace ccmon::rw {
namespace {

// Protobuf wire helpers, written from the encoding spec, independent of libprotobuf.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
  return out;
}
std::string Tag(int number, int wire_type) { return Varint(uint64_t(number) << 3 | wire_type); }
std::string Field(int number, const std::string& bytes) {  // wire type 2
  return Tag(number, 2) + Varint(bytes.size()) + bytes;
}
std::string Double(int number, double v) {  // wire type 1
  char b[8];
  std::memcpy(b, &v, 8);
  return Tag(number, 1) + std::string(b, 8);
}
std::string Int(int number, uint64_t v) { return Tag(number, 0) + Varint(v); }
std::string Label(const std::string& n, const std::string& v) {
  return Field(1, Field(1, n) + Field(2, v));
}
std::string SampleOf(double v, int64_t ts) { return Field(2, Double(1, v) + Int(2, uint64_t(ts))); }
std::string Series(const std::string& inner) { return Field(1, inner); }
std::string Body(const std::string& proto) {
  std::string body;
  Compress(proto, &body);
  return body;
}

// The view as an rw::WriteRequest, to compare with rw::Decode.
WriteRequest Materialise(const WriteRequestView& v) {
  WriteRequest out;
  for (size_t i = 0; i < v.series_count(); ++i) {
    rw::Series s;
    for (const LabelView& l : v.labels(i)) s.labels.emplace_back(l.name, l.value);
    s.samples.assign(v.samples(i).begin(), v.samples(i).end());
    out.series.push_back(std::move(s));
  }
  for (const MetadataView& m : v.metadata()) {
    out.metadata.push_back(
        Metadata{m.kind, std::string(m.family), std::string(m.help), std::string(m.unit)});
  }
  return out;
}

// A KnownLabels that remembers the labels of every series a decode accepted, by its label
// bytes (as the gateway's series cache does for what it stored).
class Remembering final : public KnownLabels {
 public:
  using LabelList = std::vector<std::pair<std::string, std::string>>;
  void Find(std::span<const std::string_view> label_bytes, std::span<const void*> found) override {
    ++calls;
    for (size_t i = 0; i < label_bytes.size(); ++i) {
      auto it = known_.find(std::string(label_bytes[i]));
      found[i] = it == known_.end() ? nullptr : &*it;
    }
  }
  // After an accepted decode: every series' labels by their bytes (one run only).
  void Remember(const WriteRequestView& v) {
    for (size_t i = 0; i < v.series_count(); ++i) {
      if (v.label_bytes(i).empty() || v.known(i) != nullptr) continue;
      LabelList labels;
      for (const LabelView& l : v.labels(i)) labels.emplace_back(l.name, l.value);
      known_.emplace(std::string(v.label_bytes(i)), std::move(labels));
    }
  }
  static const std::pair<const std::string, LabelList>& Of(const void* found) {
    return *static_cast<const std::pair<const std::string, LabelList>*>(found);
  }
  int calls = 0;
  int hits = 0;

 private:
  std::map<std::string, LabelList> known_;
};

// The view with `known` on `body`: the verdict and message of rw::Decode, the labels of a known
// series those remembered for its exact bytes, of any other the view's.
void DecodeKnown(const std::string& body, Remembering* known, WriteRequestView* view,
                 size_t limit) {
  WriteRequest expected;
  const Status want = Decode(body, limit, &expected);
  const Status got = view->Decode(body, limit, known);
  EXPECT_EQ(got.ok(), want.ok()) << "libprotobuf: " << want.message() << " view: " << got.message();
  EXPECT_EQ(got.message(), want.message());
  if (!want.ok() || !got.ok()) return;
  ASSERT_EQ(view->series_count(), expected.series.size());
  for (size_t i = 0; i < view->series_count(); ++i) {
    Remembering::LabelList labels;
    if (view->known(i) != nullptr) {
      ++known->hits;
      const auto& remembered = Remembering::Of(view->known(i));
      EXPECT_EQ(remembered.first, view->label_bytes(i));
      EXPECT_TRUE(view->labels(i).empty());
      labels = remembered.second;
    } else {
      for (const LabelView& l : view->labels(i)) labels.emplace_back(l.name, l.value);
    }
    EXPECT_EQ(labels, expected.series[i].labels) << "series " << i;
    EXPECT_EQ(view->samples(i).size(), expected.series[i].samples.size());
  }
  known->Remember(*view);
}

// Both decoders on one body: the same verdict, message and content. Returns the view's status.
Status DecodeBoth(const std::string& body, WriteRequestView* view, size_t limit = 1 << 20) {
  WriteRequest expected;
  const Status want = Decode(body, limit, &expected);
  const Status got = view->Decode(body, limit);
  EXPECT_EQ(got.ok(), want.ok()) << "libprotobuf: " << want.message() << " view: " << got.message();
  EXPECT_EQ(got.message(), want.message());
  if (want.ok() && got.ok()) {
    const WriteRequest back = Materialise(*view);
    EXPECT_EQ(back.series.size(), expected.series.size());
    for (size_t i = 0; i < std::min(back.series.size(), expected.series.size()); ++i) {
      EXPECT_EQ(back.series[i].labels, expected.series[i].labels) << "series " << i;
      if (back.series[i].samples.size() != expected.series[i].samples.size()) {
        ADD_FAILURE() << "samples of series " << i;
        continue;
      }
      for (size_t k = 0; k < back.series[i].samples.size(); ++k) {
        const Sample& a = back.series[i].samples[k];
        const Sample& b = expected.series[i].samples[k];
        EXPECT_EQ(a.timestamp_ms, b.timestamp_ms);
        EXPECT_EQ(std::memcmp(&a.value, &b.value, 8), 0);  // NaN payloads bit for bit
      }
    }
    EXPECT_EQ(back.metadata, expected.metadata);
    // None left behind by a way out of the fast path (the gateway counts accepted samples so).
    EXPECT_EQ(view->sample_count(), expected.sample_count());
  }
  if (!got.ok()) {
    EXPECT_EQ(view->series_count(), 0u);
  }
  return got;
}

TEST(WriteRequestView, DecodesWhatEncodeWrites) {
  WriteRequest req;
  req.series.push_back({{{"__name__", "claude_cost_usd_total"}, {"device", "m1"}, {"model", "é"}},
                        {{1767225600000, 3}, {1767225660000, 4.5}}});
  req.series.push_back({{{"__name__", "up"}}, {{-5, -0.0}}});
  req.metadata.push_back(Metadata{MetricKind::kCounter, "claude_cost_usd", "Cost.", "usd"});
  req.metadata.push_back(Metadata{MetricKind::kSummary, "s", "", ""});
  std::string body;
  ASSERT_TRUE(Encode(req, &body).ok());
  WriteRequestView view;
  ASSERT_TRUE(DecodeBoth(body, &view).ok());
  ASSERT_EQ(view.series_count(), 2u);
  EXPECT_EQ(view.labels(0)[2].value, "é");
  EXPECT_EQ(view.samples(0)[1].timestamp_ms, 1767225660000);
  EXPECT_EQ(view.sample_count(), 3u);
  EXPECT_EQ(Materialise(view).series, req.series);
  EXPECT_EQ(Materialise(view).metadata, req.metadata);
}

TEST(WriteRequestView, ReusedForRequestAfterRequest) {
  WriteRequestView view;
  for (int n : {50, 3, 200, 1}) {
    WriteRequest req;
    for (int i = 0; i < n; ++i) {
      req.series.push_back({{{"__name__", "m"}, {"i", std::to_string(i)}}, {{i + 1, double(i)}}});
    }
    std::string body;
    ASSERT_TRUE(Encode(req, &body).ok());
    ASSERT_TRUE(view.Decode(body, 1 << 20).ok());
    EXPECT_EQ(Materialise(view).series, req.series) << n;
    view.Shrink(0);  // frees; the next Decode grows again
  }
  // A failed decode leaves the view empty, not holding the previous request.
  EXPECT_FALSE(view.Decode("garbage", 1 << 20).ok());
  EXPECT_EQ(view.series_count(), 0u);
  EXPECT_EQ(view.sample_count(), 0u);
}

TEST(WriteRequestView, ParsesAsLibprotobufDoes) {
  WriteRequestView view;
  const std::string good = Label("__name__", "a") + SampleOf(1, 10);
  // Unknown fields of every wire type, at every level, are skipped; so is a group.
  EXPECT_TRUE(
      DecodeBoth(
          Body(Series(good + Int(9, 7) + Double(8, 1) + Field(7, "x") + Tag(6, 5) + "abcd")) + "",
          &view)
          .ok());
  EXPECT_TRUE(
      DecodeBoth(Body(Int(15, 1) + Series(good) + Tag(12, 3) + Int(1, 5) + Tag(12, 4)), &view)
          .ok());
  EXPECT_EQ(view.series_count(), 1u);
  // A known field number with another wire type is an unknown field (skipped), not an error.
  EXPECT_TRUE(DecodeBoth(Body(Int(1, 5) + Series(good)), &view).ok());
  EXPECT_TRUE(DecodeBoth(Body(Series(Int(1, 3) + good + Int(2, 4))), &view).ok());
  EXPECT_TRUE(DecodeBoth(Body(Series(Field(1, Int(1, 3) + Field(1, "__name__") + Field(2, "b")) +
                                     Field(2, Field(1, "12345678") + Int(2, 10)))),
                         &view)
                  .ok());
  // Repeated scalar fields: the last one wins.
  ASSERT_TRUE(
      DecodeBoth(Body(Series(Field(1, Field(1, "x") + Field(1, "__name__") + Field(2, "a") +
                                          Field(2, "b")) +
                             Field(2, Double(1, 1) + Int(2, 5) + Double(1, 2) + Int(2, 6)))),
                 &view)
          .ok());
  EXPECT_EQ(view.labels(0)[0].name, "__name__");
  EXPECT_EQ(view.labels(0)[0].value, "b");
  EXPECT_EQ(view.samples(0)[0].timestamp_ms, 6);
  EXPECT_EQ(view.samples(0)[0].value, 2);
  // Negative timestamps are 10-byte varints.
  ASSERT_TRUE(DecodeBoth(Body(Series(Label("__name__", "a") + SampleOf(1, -1))), &view).ok());
  EXPECT_EQ(view.samples(0)[0].timestamp_ms, -1);
  // Empty things: an empty body, a series with nothing, a label with nothing.
  EXPECT_TRUE(DecodeBoth(Body(""), &view).ok());
  EXPECT_TRUE(DecodeBoth(Body(Series("") + Series(Field(1, ""))), &view).ok());
  EXPECT_EQ(view.series_count(), 2u);
  // Metadata: every type, an unknown type number, a negative one.
  for (uint64_t type : {0ull, 1ull, 2ull, 3ull, 4ull, 5ull, 6ull, 7ull, 99ull, ~0ull}) {
    EXPECT_TRUE(DecodeBoth(Body(Field(3, Int(1, type) + Field(2, "f") + Field(4, "h") +
                                             Field(5, "u") + Field(3, "?"))),
                           &view)
                    .ok())
        << type;
  }
}

TEST(WriteRequestView, MalformedBodiesAreRefusedWithDecodesMessages) {
  WriteRequestView view;
  const std::string good = Series(Label("__name__", "a") + SampleOf(1, 10));
  const auto bad = [&](const std::string& proto) {
    Status s = DecodeBoth(Body(proto), &view);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    return s.message();
  };
  const std::string not_proto = "remote-write: body is not a protobuf WriteRequest";
  EXPECT_EQ(bad(good + "\x80"), not_proto);                          // truncated tag varint
  EXPECT_EQ(bad(good + Tag(1, 2) + "\xff\xff"), not_proto);          // truncated length varint
  EXPECT_EQ(bad(good + Tag(1, 2) + Varint(100) + "ab"), not_proto);  // length past the end
  EXPECT_EQ(bad(Tag(1, 2) + Varint(uint64_t(1) << 40) + "ab"), not_proto);  // over 2^31
  EXPECT_EQ(bad(good + std::string(1, '\0')), not_proto);                   // field number 0
  EXPECT_EQ(bad(good + Tag(5, 4)), not_proto);                              // unmatched end-group
  EXPECT_EQ(bad(good + Tag(5, 6)), not_proto);                              // wire type 6
  EXPECT_EQ(bad(good + Tag(5, 7)), not_proto);                              // wire type 7
  EXPECT_EQ(bad(good + Tag(5, 3) + Int(1, 1)), not_proto);                  // unterminated group
  EXPECT_EQ(bad(good + Tag(5, 1) + "abc"), not_proto);                      // truncated fixed64
  EXPECT_EQ(bad(good + Tag(5, 5) + "ab"), not_proto);                       // truncated fixed32
  // Inside a series, a label and a sample: the inner length past the outer message's end.
  EXPECT_EQ(bad(Field(1, Tag(1, 2) + Varint(50) + Field(1, "__name__"))), not_proto);
  EXPECT_EQ(bad(Field(1, Field(1, Tag(1, 2) + Varint(9) + "a"))), not_proto);
  EXPECT_EQ(bad(Field(1, Field(2, Tag(1, 1) + "1234"))), not_proto);
  EXPECT_EQ(bad(Field(1, Field(2, Tag(2, 0) + "\xff"))), not_proto);
  EXPECT_EQ(bad(Field(1, Field(2, std::string(1, '\0')))), not_proto);
  EXPECT_EQ(bad(Field(3, Tag(1, 0) + "\x80")), not_proto);
  // A series message whose length cuts a label in two.
  const std::string label = Label("__name__", "abc");
  EXPECT_EQ(bad(Tag(1, 2) + Varint(label.size() - 2) + label), not_proto);
  // UTF-8: labels first, then metadata, reported only for bodies that parse.
  EXPECT_EQ(bad(Series(Label("__name__", "a\xff"))),
            "remote-write: a label name or value is not UTF-8");
  EXPECT_EQ(bad(Series(Label("a\xc3", "b"))), "remote-write: a label name or value is not UTF-8");
  EXPECT_EQ(bad(Field(3, Field(2, "f") + Field(4, "\xed\xa0\x80"))),
            "remote-write: metadata is not UTF-8");
  EXPECT_EQ(bad(Field(3, Field(4, "\xff")) + Series(Label("\xff", "b"))),
            "remote-write: a label name or value is not UTF-8");
  EXPECT_EQ(bad(Series(Label("\xff", "b")) + "\x80"), not_proto);
}

// Where CodedInputStream alone is laxer than libprotobuf's parser (found by the fuzz target):
// over-long tags and lengths, field number 0, a group closed by another field, nesting depth.
TEST(WriteRequestView, FollowsTheParsersStricterRules) {
  WriteRequestView view;
  const std::string good = Series(Label("__name__", "a") + SampleOf(1, 10));
  // The fuzzer's find: a 9-byte tag, accepted by CodedInputStream, refused by libprotobuf.
  EXPECT_FALSE(
      DecodeBoth(Body(std::string("\x88\xff\x88\x88\xff\x88\xff\xff\x41\x34")), &view).ok());
  // Tags of 5 bytes: whatever libprotobuf says (DecodeBoth compares); of 6, refused.
  DecodeBoth(Body(good + "\x88\x80\x80\x80\x00" + Varint(1)), &view);
  DecodeBoth(Body(good + "\x88\x80\x80\x80\x70" + Varint(1)), &view);
  DecodeBoth(Body(good + "\xc8\x80\x80\x80\x01" + Varint(1)), &view);
  EXPECT_FALSE(DecodeBoth(Body(good + "\x88\x80\x80\x80\x80\x00" + Varint(1)), &view).ok());
  // Lengths: 5 bytes at most, below 2 GiB; in a known field and in an unknown one.
  DecodeBoth(Body(Tag(1, 2) + "\x80\x80\x80\x80\x00" + good), &view);
  DecodeBoth(Body(Tag(9, 2) + "\x81\x80\x80\x80\x00a" + good), &view);
  EXPECT_FALSE(DecodeBoth(Body(Tag(1, 2) + "\x80\x80\x80\x80\x80\x00" + good), &view).ok());
  EXPECT_FALSE(DecodeBoth(Body(Tag(9, 2) + "\x82\x80\x80\x80\x80\x00ab"), &view).ok());
  EXPECT_FALSE(DecodeBoth(Body(Tag(9, 2) + "\x80\x80\x80\x80\x08"), &view).ok());
  EXPECT_FALSE(
      DecodeBoth(Body(Series(Field(1, Tag(1, 2) + "\x81\x80\x80\x80\x80\x00a"))), &view).ok());
  // Field number 0 with any wire type.
  for (int type : {0, 1, 2, 5}) {
    EXPECT_FALSE(DecodeBoth(Body(good + Tag(0, type) + std::string(9, '\x01')), &view).ok())
        << type;
  }
  // Groups: closed by their own field number only; nested up to libprotobuf's limit.
  EXPECT_TRUE(DecodeBoth(Body(good + Tag(7, 3) + Tag(8, 3) + Tag(8, 4) + Tag(7, 4)), &view).ok());
  EXPECT_FALSE(DecodeBoth(Body(good + Tag(7, 3) + Tag(8, 4)), &view).ok());
  EXPECT_FALSE(DecodeBoth(Body(good + Tag(7, 3) + Tag(0, 4)), &view).ok());
  for (int levels : {98, 99, 100, 101}) {
    std::string open, close;
    for (int i = 0; i < levels; ++i) {
      open += Tag(7, 3);
      close += Tag(7, 4);
    }
    DecodeBoth(Body(good + open + close), &view);  // top level
    DecodeBoth(Body(Series(Label("__name__", "a") + open + close)), &view);
    DecodeBoth(Body(Series(Field(1, Field(1, "__name__") + open + close))), &view);
  }
}

TEST(WriteRequestView, SnappyAndLimits) {
  WriteRequestView view;
  EXPECT_EQ(DecodeBoth("", &view).message(), "remote-write: body is not snappy block data");
  EXPECT_EQ(DecodeBoth("\xff\xff\xff\xff\xff\xff", &view).message(),
            "remote-write: body is not snappy block data");
  // A declared length over the limit is refused before anything is allocated (a bomb).
  std::string bomb = Varint(uint64_t(1) << 30);
  EXPECT_EQ(DecodeBoth(bomb, &view, 1 << 20).message(),
            "remote-write: decoded size 1073741824 over the limit of 1048576");
  // Declared length within the limit, but the data does not decompress to it.
  std::string body = Body(Series(Label("__name__", "a") + SampleOf(1, 10)));
  std::string corrupt = body.substr(0, body.size() - 3);
  EXPECT_EQ(DecodeBoth(corrupt, &view).message(), "remote-write: corrupt snappy data");
  corrupt = Varint(5) + body.substr(1);
  EXPECT_FALSE(DecodeBoth(corrupt, &view).ok());
}

TEST(WriteRequestView, HugeCountsOfTinySeries) {
  // 200 000 empty series and 100 000 samples in one: sizes only bounded by the decoded limit.
  std::string proto;
  for (int i = 0; i < 200'000; ++i) proto += Series("");
  std::string many;
  for (int i = 0; i < 100'000; ++i) many += SampleOf(i, i);
  proto += Series(Label("__name__", "a") + many);
  WriteRequestView view;
  ASSERT_TRUE(DecodeBoth(Body(proto), &view, size_t(64) << 20).ok());
  EXPECT_EQ(view.series_count(), 200'001u);
  EXPECT_EQ(view.sample_count(), 100'000u);
  EXPECT_EQ(view.samples(200'000).back().timestamp_ms, 99'999);
}

// The fast path for the usual TimeSeries layout (labels, then samples of value then timestamp)
// and every way out of it: each body decodes as libprotobuf decodes it, whichever path took it,
// and with remembered labels too.
TEST(WriteRequestView, UsualAndUnusualSeriesLayoutsAgreeWithLibprotobuf) {
  const std::string name = Label("__name__", "up");
  const std::string raw_ts = Tag(2, 0);
  const std::vector<std::string> series = {
      name + SampleOf(1.5, 7),  // the usual
      name + Label("job", "x") + SampleOf(1, 5) + SampleOf(2, 6),
      name + Field(2, Double(1, 3)),                           // a sample without its timestamp
      name + Field(2, Int(2, 9)),                              // without its value
      name + Field(2, ""),                                     // empty
      name + Field(2, Int(2, 9) + Double(1, 3)),               // timestamp first
      name + Field(2, Double(1, 3) + Int(2, 9) + Int(2, 10)),  // the timestamp twice
      name + Field(2, Double(1, 3) + Int(3, 1)),               // an unknown field
      name + Field(2, Double(1, 3) + raw_ts + std::string(9, '\xff') + '\x01'),  // 10 bytes
      name + Field(2, Double(1, 3) + raw_ts + std::string(8, '\xff') + '\x7f'),  // 9 bytes
      name + Field(2, Double(1, 3) + raw_ts + std::string(5, '\xff')),           // cut short
      name + Field(2, Tag(1, 1) + "1234567"),                 // a value of 7 bytes
      name + SampleOf(1, 5) + Label("job", "x"),              // labels not in one run
      name + Int(5, 3),                                       // an unknown series field
      "\x0a\x80\x00",                                         // a label's length in 2 bytes
      "\x0a\x80\x80\x80\x80\x80\x00",                         // in 6 bytes
      "\x0a\x05" + Field(1, "up"),                            // longer than the series
      "\x8a\x00" + Varint(name.size() - 2) + name.substr(2),  // a label's tag in 2 bytes
      "\x12\x0a\x09" + std::string(8, '\x01'),                // the sample crosses its end
      "",
  };
  WriteRequestView view;
  Remembering known;
  int accepted = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    SCOPED_TRACE(i);
    const std::string body = Body(Series(series[i]) + Series(name + SampleOf(4, 4)));
    accepted += DecodeBoth(body, &view).ok() ? 1 : 0;
    DecodeKnown(body, &known, &view, 1 << 20);
    DecodeKnown(body, &known, &view, 1 << 20);  // the second time with its labels known
  }
  EXPECT_GT(accepted, 10);
  EXPECT_LT(accepted, int(series.size()));
  EXPECT_GT(known.hits, 10);
}

// The fast path reads a varint of up to 8 bytes from one 64-bit load when 8 bytes are
// readable, else byte by byte: timestamps and lengths of every varint length (minimal or not),
// with the body going on after them or ending right there, decode as libprotobuf decodes them.
TEST(WriteRequestView, VarintsOfEveryLengthAgreeWithLibprotobuf) {
  const std::string name = Label("__name__", "up");
  const std::string raw_ts = Tag(2, 0);
  std::vector<std::string> series;
  for (int bits = 0; bits <= 64; ++bits) {
    const uint64_t v = bits == 64 ? ~uint64_t(0) : (uint64_t(1) << bits);
    series.push_back(name + Field(2, Double(1, 1) + Int(2, v)));
    series.push_back(name + Field(2, Double(1, 1) + Int(2, v - 1)));
  }
  for (int extra = 1; extra <= 10; ++extra) {  // 0 written in 1 + extra bytes (not minimal)
    series.push_back(name +
                     Field(2, Double(1, 1) + raw_ts + std::string(size_t(extra), '\x80') + '\x00'));
    series.push_back(name +
                     Field(2, Double(1, 1) + raw_ts + std::string(size_t(extra), '\xff') + '\x05'));
  }
  for (size_t size : {0, 1, 5, 100, 127, 128, 129, 300, 16383, 16384, 70000}) {
    series.push_back(name + Label("job", std::string(size, 'x')) + SampleOf(2, 1767225600000));
  }
  WriteRequestView view;
  Remembering known;
  int accepted = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    SCOPED_TRACE(i);
    for (const std::string& body :
         {Body(Series(series[i])), Body(Series(series[i]) + Series(name + SampleOf(4, 4)))}) {
      accepted += DecodeBoth(body, &view).ok() ? 1 : 0;
      DecodeKnown(body, &known, &view, 1 << 20);
      DecodeKnown(body, &known, &view, 1 << 20);
    }
  }
  EXPECT_GT(accepted, int(series.size()));
  EXPECT_LT(accepted, 2 * int(series.size()));  // 11-byte varints, refused by the parser
}

// Differential: valid requests mutated at random (bytes flipped, cut, inserted, lengths
// changed) decode the same way with both decoders, verdict, message and content. Seeded:
// failures reproduce.
TEST(WriteRequestView, MutatedBodiesAgreeWithLibprotobuf) {
  std::mt19937 rng(20261127);
  WriteRequestView view;
  Remembering known;  // the same bodies again, with the labels of accepted ones remembered
  int accepted = 0, refused = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string proto;
    const int series = 1 + int(rng() % 4);
    for (int i = 0; i < series; ++i) {
      std::string inner = Label("__name__", "m" + std::to_string(rng() % 9));
      if (rng() % 2) inner += Label("job", std::string(rng() % 4, 'j'));
      for (int k = 0; k < int(rng() % 3); ++k) inner += SampleOf(double(rng() % 7), rng() % 1000);
      proto += Series(inner);
    }
    if (rng() % 3 == 0) proto += Field(3, Int(1, rng() % 8) + Field(2, "f") + Field(4, "help"));
    const int mutations = 1 + int(rng() % 3);
    for (int m = 0; m < mutations && !proto.empty(); ++m) {
      const size_t at = rng() % proto.size();
      switch (rng() % 5) {
        case 0:
          proto[at] = char(rng());
          break;
        case 1:
          proto.resize(at);
          break;
        case 2:
          proto.insert(at, 1, char(rng()));
          break;
        case 3:
          proto[at] = char(uint8_t(proto[at]) ^ 0x80);  // a varint's continuation bit
          break;
        default:
          proto.erase(at, 1);
      }
    }
    const Status s = DecodeBoth(Body(proto), &view);
    (s.ok() ? accepted : refused)++;
    DecodeKnown(Body(proto), &known, &view, 1 << 20);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "round " << round;
      break;
    }
  }
  // Both outcomes are exercised (the test would prove nothing otherwise), and known labels.
  EXPECT_GT(accepted, 100);
  EXPECT_GT(refused, 100);
  EXPECT_GT(known.hits, 100);
}

// The top level is read straight from the bytes while it holds TimeSeries in the usual layout,
// and the general path goes on from the first field that is not one: whatever comes first,
// between or last (metadata, an unknown field of every wire type, a series in another layout or
// with a two-byte tag, a truncated or overlong field, labels after samples), the verdict and the
// content are libprotobuf's, with and without known labels.
TEST(WriteRequestView, TheTopLevelWalkAgreesWithLibprotobuf) {
  const std::string usual = Series(Label("__name__", "up") + Label("job", "x") + SampleOf(1, 5));
  const std::string other = Series(Label("__name__", "b") + SampleOf(2, 6));
  const std::string metadata = Field(3, Int(1, 1) + Field(2, "up") + Field(4, "help"));
  const std::vector<std::string> parts = {
      usual,
      other,
      metadata,
      Int(7, 300),                                         // an unknown varint field
      Double(8, 1.5),                                      // fixed64
      Tag(9, 5) + "abcd",                                  // fixed32
      Field(10, "xyz"),                                    // length-delimited
      Tag(11, 3) + Int(1, 2) + Tag(11, 4),                 // a group
      Series(SampleOf(1, 5) + Label("__name__", "late")),  // labels after the sample
      Series(Label("__name__", "a") + Int(5, 3)),          // an unknown series field
      Series(""),                                          // an empty series
      Series(Label("__name__", "c")),                      // no sample
      std::string("\x8a\x00", 2) + usual.substr(1),        // a series' tag in 2 bytes
      Series(Label("__name__", std::string(200, 'n')) + SampleOf(3, 1767225600000)),  // 2-byte len
  };
  const std::vector<std::string> endings = {
      "",
      "\x0a",                  // a series' tag, then the end
      "\x0a\x05\x0a",          // a series longer than the body
      "\x0a\x80",              // its length truncated
      "\x0a\x02\x0a\x05",      // a label longer than its series
      "\x0a\x03\x0a\x80\x01",  // a label's length past the series
      "\x0a\x02\x12\x09",      // a sample longer than its series
      Tag(1, 4),               // an unmatched end-group
      std::string(1, '\0'),    // field number 0
  };
  WriteRequestView view;
  Remembering known;
  int accepted = 0, refused = 0;
  for (size_t a = 0; a < parts.size(); ++a) {
    for (size_t b = 0; b < parts.size(); ++b) {
      for (size_t e = 0; e < endings.size(); ++e) {
        SCOPED_TRACE(testing::Message() << a << " " << b << " " << e);
        const std::string body = Body(parts[a] + usual + parts[b] + other + endings[e]);
        (DecodeBoth(body, &view).ok() ? accepted : refused)++;
        DecodeKnown(body, &known, &view, 1 << 20);
        DecodeKnown(body, &known, &view, 1 << 20);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  EXPECT_GT(accepted, int(parts.size() * parts.size()) - 10);
  EXPECT_GT(refused, int(parts.size() * parts.size()));
  EXPECT_GT(known.hits, 100);
  // Labels after a sample are still one run: looked up by their bytes like any other run.
  const std::string late = Label("__name__", "late") + Label("job", "y");
  ASSERT_TRUE(view.Decode(Body(Series(SampleOf(1, 5) + late)), 1 << 20).ok());
  EXPECT_EQ(view.label_bytes(0), late);
  EXPECT_EQ(view.labels(0).size(), 2u);
  EXPECT_EQ(view.samples(0).size(), 1u);
}

TEST(WriteRequestView, KnownLabelsAreOneRunOnly) {
  const std::string labels = Label("__name__", "up") + Label("job", "x");
  const std::string run_body = Body(Series(labels + SampleOf(1, 5)));
  WriteRequestView view;
  Remembering known;
  DecodeKnown(run_body, &known, &view, 1 << 20);
  ASSERT_EQ(view.series_count(), 1u);
  EXPECT_EQ(view.label_bytes(0), labels);  // the Label fields exactly, tags included
  EXPECT_EQ(view.known(0), nullptr);
  DecodeKnown(run_body, &known, &view, 1 << 20);
  EXPECT_NE(view.known(0), nullptr);
  EXPECT_EQ(known.hits, 1);
  // A sample between the labels: no run, never looked up, parsed every time.
  const std::string split =
      Body(Series(Label("__name__", "up") + SampleOf(1, 5) + Label("job", "x")));
  DecodeKnown(split, &known, &view, 1 << 20);
  EXPECT_EQ(view.label_bytes(0), "");
  EXPECT_EQ(view.labels(0).size(), 2u);
  DecodeKnown(split, &known, &view, 1 << 20);
  EXPECT_EQ(view.known(0), nullptr);
  // Known bytes inside an otherwise malformed body: still refused as rw::Decode refuses it.
  const std::string bad = Body(Series(labels + SampleOf(1, 5)) + Tag(1, 7));
  DecodeKnown(bad, &known, &view, 1 << 20);
  EXPECT_EQ(view.series_count(), 0u);
  // Invalid UTF-8 in a label that is not known: refused (and, refused, never remembered).
  const std::string bad_utf8 = Body(Series(Label("__name__", "up") + Label("job", "\xff")));
  DecodeKnown(bad_utf8, &known, &view, 1 << 20);
  DecodeKnown(bad_utf8, &known, &view, 1 << 20);
  EXPECT_EQ(known.hits, 1);
}

}  // namespace
}  // namespace ccmon::rw
