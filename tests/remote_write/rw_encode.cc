// rw_encode: reads a remote-write request as JSON on stdin and writes its encoded body
// (rw::Encode: validated protobuf, snappy block format) to stdout. Test helper for
// receivers_test.py. Exit 2 with a message if the request is invalid.
//   {"series": [{"labels": [["__name__", "x_total"], ["device", "m1"]],
//                "samples": [[timestamp_ms, value], ...]}],
//    "metadata": [{"type": "counter", "family": "x", "help": "...", "unit": ""}]}
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "remote_write/write_request.h"

int main() {
  using namespace ccmon;
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    std::cerr << "rw_encode: stdin is not JSON\n";
    return 2;
  }
  const std::map<std::string, rw::MetricKind> kinds = {{"counter", rw::MetricKind::kCounter},
                                                       {"gauge", rw::MetricKind::kGauge},
                                                       {"histogram", rw::MetricKind::kHistogram}};
  rw::WriteRequest req;
  for (const auto& s : j.value("series", nlohmann::json::array())) {
    rw::Series series;
    for (const auto& l : s.at("labels")) series.labels.emplace_back(l.at(0), l.at(1));
    for (const auto& p : s.at("samples")) {
      series.samples.push_back(rw::Sample{p.at(0).get<int64_t>(), p.at(1).get<double>()});
    }
    req.series.push_back(std::move(series));
  }
  for (const auto& m : j.value("metadata", nlohmann::json::array())) {
    req.metadata.push_back(rw::Metadata{kinds.at(m.at("type")), m.at("family"), m.value("help", ""),
                                        m.value("unit", "")});
  }
  std::string body;
  Status st = rw::Encode(req, &body);
  if (!st.ok()) {
    std::cerr << "rw_encode: " << st.message() << "\n";
    return 2;
  }
  std::cout.write(body.data(), std::streamsize(body.size()));
  return 0;
}
