#include "remote_write/write_request.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <cmath>
#include <cstring>
#include <string>

namespace ccmon::rw {
namespace {

Series MakeSeries(std::vector<std::pair<std::string, std::string>> labels,
                  std::vector<Sample> samples) {
  return Series{std::move(labels), std::move(samples)};
}

std::string Uncompressed(const std::string& body) {
  std::string raw;
  EXPECT_TRUE(snappy::Uncompress(body.data(), body.size(), &raw));
  return raw;
}

// Protobuf wire helpers, written from the encoding spec, independent of the generated code.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
  return out;
}
std::string Field(int number, const std::string& bytes) {  // wire type 2 (length-delimited)
  return Varint(uint64_t(number) << 3 | 2) + Varint(bytes.size()) + bytes;
}
std::string Double(int number, double v) {  // wire type 1 (64-bit)
  std::string out = Varint(uint64_t(number) << 3 | 1);
  char b[8];
  std::memcpy(b, &v, 8);
  return out + std::string(b, 8);
}
std::string Int(int number, uint64_t v) { return Varint(uint64_t(number) << 3) + Varint(v); }

// The bytes on the wire follow the remote-write 1.0 spec's field numbers: WriteRequest.timeseries
// = 1, metadata = 3; TimeSeries.labels = 1, samples = 2; Label.name = 1, value = 2;
// Sample.value = 1 (double), timestamp = 2 (int64); MetricMetadata type = 1,
// metric_family_name = 2, help = 4, unit = 5. Labels go out sorted by name.
TEST(RemoteWrite, WireBytesFollowTheSpec) {
  WriteRequest req;
  req.series.push_back(MakeSeries({{"device", "m1"}, {"__name__", "claude_requests_total"}},
                                  {{1767225600000, 3}, {1767225660000, 4.5}}));
  req.metadata.push_back(Metadata{MetricKind::kCounter, "claude_requests", "Requests.", ""});
  std::string body;
  ASSERT_TRUE(Encode(req, &body).ok());

  const std::string label_name = Field(1, "__name__") + Field(2, "claude_requests_total");
  const std::string label_device = Field(1, "device") + Field(2, "m1");
  const std::string sample1 = Double(1, 3) + Int(2, 1767225600000);
  const std::string sample2 = Double(1, 4.5) + Int(2, 1767225660000);
  const std::string series =
      Field(1, label_name) + Field(1, label_device) + Field(2, sample1) + Field(2, sample2);
  const std::string metadata = Int(1, 1) + Field(2, "claude_requests") + Field(4, "Requests.");
  EXPECT_EQ(Uncompressed(body), Field(1, series) + Field(3, metadata));
}

TEST(RemoteWrite, RoundTripsSeriesAndMetadata) {
  WriteRequest req;
  req.series.push_back(
      MakeSeries({{"__name__", "a_total"}, {"type", "input"}}, {{-5, 0}, {0, 1e300}, {7, -0.5}}));
  req.series.push_back(
      MakeSeries({{"__name__", "a_total"}, {"type", "output"}}, {{1, std::nan("")}}));
  req.metadata.push_back(Metadata{MetricKind::kHistogram, "h", "help \"quoted\"\n", "usd"});
  std::string body;
  ASSERT_TRUE(Encode(req, &body).ok());
  WriteRequest back;
  ASSERT_TRUE(Decode(body, 1 << 20, &back).ok());
  ASSERT_EQ(back.series.size(), 2u);
  EXPECT_EQ(back.series[0], req.series[0]);
  EXPECT_EQ(back.series[1].labels, req.series[1].labels);
  EXPECT_TRUE(std::isnan(back.series[1].samples[0].value));
  EXPECT_EQ(back.metadata, req.metadata);
  EXPECT_EQ(back.sample_count(), 4u);
}

TEST(RemoteWrite, EmptyRequestIsValid) {
  std::string body;
  ASSERT_TRUE(Encode(WriteRequest{}, &body).ok());
  WriteRequest back;
  ASSERT_TRUE(Decode(body, 16, &back).ok());
  EXPECT_TRUE(back.series.empty());
}

TEST(RemoteWrite, EncodeRejectsWhatReceiversWouldMishandle) {
  struct Case {
    const char* why;
    Series series;
    const char* message;
  } cases[] = {
      {"no name", MakeSeries({{"device", "m"}}, {{1, 1}}), "no __name__"},
      {"duplicate label", MakeSeries({{"__name__", "a"}, {"x", "1"}, {"x", "2"}}, {{1, 1}}),
       "duplicate label name \"x\""},
      {"bad metric name", MakeSeries({{"__name__", "1a"}}, {{1, 1}}), "invalid metric name"},
      {"bad label name", MakeSeries({{"__name__", "a"}, {"bad-name", "v"}}, {{1, 1}}),
       "invalid label name \"bad-name\""},
      {"reserved label", MakeSeries({{"__name__", "a"}, {"__x", "v"}}, {{1, 1}}),
       "invalid label name \"__x\""},
      {"empty value", MakeSeries({{"__name__", "a"}, {"x", ""}}, {{1, 1}}), "empty value"},
      {"no samples", MakeSeries({{"__name__", "a"}}, {}), "no samples"},
      {"same timestamp", MakeSeries({{"__name__", "a"}}, {{5, 1}, {5, 2}}), "strictly increasing"},
      {"backwards", MakeSeries({{"__name__", "a"}}, {{5, 1}, {4, 2}}), "strictly increasing"},
      {"not UTF-8", MakeSeries({{"__name__", "a"}, {"cwd", "caf\xe9"}}, {{1, 1}}), "not UTF-8"},
  };
  for (const Case& c : cases) {
    WriteRequest req;
    req.series.push_back(c.series);
    std::string body = "untouched";
    Status s = Encode(req, &body);
    EXPECT_FALSE(s.ok()) << c.why;
    EXPECT_NE(s.message().find(c.message), std::string::npos) << c.why << ": " << s.message();
    EXPECT_EQ(body, "untouched") << c.why;
  }
  WriteRequest twice;  // the same series twice, labels in another order
  twice.series.push_back(MakeSeries({{"__name__", "a"}, {"x", "1"}}, {{1, 1}}));
  twice.series.push_back(MakeSeries({{"x", "1"}, {"__name__", "a"}}, {{2, 1}}));
  std::string body;
  Status s = Encode(twice, &body);
  EXPECT_NE(s.message().find("sent twice"), std::string::npos) << s.message();
  WriteRequest bad_meta;
  bad_meta.metadata.push_back(Metadata{MetricKind::kCounter, "bad name", "", ""});
  EXPECT_FALSE(Encode(bad_meta, &body).ok());
}

TEST(RemoteWrite, DecodeRejectsBadBodiesBeforeDoingTheWork) {
  WriteRequest out;
  EXPECT_NE(Decode("not snappy at all", 1 << 20, &out).message().find("snappy"), std::string::npos);
  // A decompression bomb: the declared length (1 MiB here) is checked against the limit first.
  std::string big(1 << 20, 'a'), bomb;
  snappy::Compress(big.data(), big.size(), &bomb);
  Status s = Decode(bomb, 1000, &out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("over the limit"), std::string::npos) << s.message();
  // Valid snappy around bytes that are not a WriteRequest.
  std::string garbage = "\xff\xff\xff\xff", body;
  snappy::Compress(garbage.data(), garbage.size(), &body);
  EXPECT_NE(Decode(body, 1 << 20, &out).message().find("protobuf"), std::string::npos);
  // Truncated snappy.
  std::string ok_body;
  WriteRequest req;
  req.series.push_back(MakeSeries({{"__name__", "a"}}, {{1, 1}}));
  ASSERT_TRUE(Encode(req, &ok_body).ok());
  EXPECT_FALSE(Decode(std::string_view(ok_body).substr(0, ok_body.size() - 3), 1 << 20, &out).ok());
}

TEST(RemoteWrite, DecodeRejectsLabelsThatAreNotUtf8) {
  // A Label{name: "x", value: "\xff"} in a series, built by hand (the encoder refuses it).
  const std::string label = Field(1, "x") + Field(2, "\xff");
  const std::string raw = Field(1, Field(1, label));
  std::string body;
  snappy::Compress(raw.data(), raw.size(), &body);
  WriteRequest out;
  Status s = Decode(body, 1 << 20, &out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not UTF-8"), std::string::npos) << s.message();
}

// A merged backlog (serialized requests concatenated) must be cut before a series repeats.
TEST(RemoteWrite, SamplesBeforeRepeatedSeriesFindsTheFirstRepeat) {
  auto serialized = [](std::vector<Series> series) {
    WriteRequest r;
    r.series = std::move(series);
    std::string proto;
    EXPECT_TRUE(Serialize(r, &proto).ok());
    return proto;
  };
  const std::string a = serialized({MakeSeries({{"__name__", "m"}, {"k", "a"}}, {{1000, 1}}),
                                    MakeSeries({{"__name__", "m"}, {"k", "b"}}, {{1000, 2}})});
  const std::string b = serialized({MakeSeries({{"__name__", "m"}, {"k", "c"}}, {{2000, 3}})});
  // The same series as a's first, its labels given in another order.
  const std::string a_again =
      serialized({MakeSeries({{"k", "a"}, {"__name__", "m"}}, {{3000, 4}})});
  const std::string two_samples =
      serialized({MakeSeries({{"__name__", "n"}}, {{1000, 1}, {2000, 2}})});
  size_t before = 99;
  bool repeat = true;
  ASSERT_TRUE(SamplesBeforeRepeatedSeries(a + b, &before, &repeat).ok());
  EXPECT_FALSE(repeat);
  EXPECT_EQ(before, 3u);
  ASSERT_TRUE(SamplesBeforeRepeatedSeries(a + b + a_again + b, &before, &repeat).ok());
  EXPECT_TRUE(repeat);
  EXPECT_EQ(before, 3u);
  ASSERT_TRUE(SamplesBeforeRepeatedSeries(b + two_samples, &before, &repeat).ok());
  EXPECT_TRUE(repeat);
  EXPECT_EQ(before, 2u);  // c, then n's first sample; n's second repeats it
  // A label value that differs only by where a name ends is another series.
  const std::string x = serialized({MakeSeries({{"__name__", "m"}, {"ab", "c"}}, {{1, 1}})});
  const std::string y = serialized({MakeSeries({{"__name__", "m"}, {"a", "bc"}}, {{1, 1}})});
  ASSERT_TRUE(SamplesBeforeRepeatedSeries(x + y, &before, &repeat).ok());
  EXPECT_FALSE(repeat);
  ASSERT_TRUE(SamplesBeforeRepeatedSeries("", &before, &repeat).ok());
  EXPECT_FALSE(repeat);
  EXPECT_EQ(before, 0u);
  EXPECT_EQ(SamplesBeforeRepeatedSeries("\xff\xff\xff", &before, &repeat).code(),
            Status::Code::kInvalidArgument);
  // Walked one series at a time, it still checks the whole request: what follows the first
  // repeat must be a WriteRequest too (a series that does not parse, a truncated field).
  const std::string bad_series = std::string("\x0a\x02\x0a\xff", 4);
  EXPECT_EQ(SamplesBeforeRepeatedSeries(a + a_again + bad_series, &before, &repeat).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(SamplesBeforeRepeatedSeries(a + a_again + "\x0a\x05", &before, &repeat).code(),
            Status::Code::kInvalidArgument);
  // Metadata and unknown fields between the series count nothing.
  WriteRequest with_metadata;
  with_metadata.metadata.push_back({MetricKind::kCounter, "m", "help", ""});
  std::string metadata;
  ASSERT_TRUE(Serialize(with_metadata, &metadata).ok());
  const std::string unknown_varint = std::string("\x10\x07", 2);  // field 2, varint 7
  ASSERT_TRUE(
      SamplesBeforeRepeatedSeries(a + metadata + unknown_varint + b, &before, &repeat).ok());
  EXPECT_FALSE(repeat);
  EXPECT_EQ(before, 3u);
}

TEST(RemoteWrite, NameRules) {
  EXPECT_TRUE(IsValidMetricName("claude:cost_usd_total"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_TRUE(IsValidLabelName("_x9"));
  EXPECT_FALSE(IsValidLabelName("9x"));
  EXPECT_FALSE(IsValidLabelName(""));
  EXPECT_FALSE(IsValidMetricName("é"));
}

}  // namespace
}  // namespace ccmon::rw
