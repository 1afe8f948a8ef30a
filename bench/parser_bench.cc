// parser_bench: throughput of LineParser's two paths over real-shaped transcript files.
// Justifies the simdjson dependency (README, BENCHMARKS.md): the reference path is nlohmann_json.
//
//   parser_bench FILE... : reads every complete line into memory, then times
//     Parse (simdjson fast path, reference fallback), ParseReference (nlohmann SAX only)
//   and prints MB/s and the usage records found by each (they must agree).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "transcript/line_parser.h"

int main(int argc, char** argv) {
  std::vector<std::string> lines;
  size_t bytes = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // incomplete last line
      bytes += line.size() + 1;
      lines.push_back(std::move(line));
    }
  }
  if (lines.empty()) {
    std::fprintf(stderr, "usage: parser_bench FILE...\n");
    return 2;
  }
  ccmon::LineParser parser;
  ccmon::ParsedLine out;
  auto time = [&](const char* name, auto&& fn) {
    double best = 1e9;
    size_t usage = 0;
    for (int rep = 0; rep < 5; ++rep) {
      usage = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (const auto& l : lines) {
        fn(l);
        usage += out.kind == ccmon::LineKind::kUsage;
      }
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("%-28s %8.0f MB/s  %8.3f s  %zu usage records\n", name, double(bytes) / best / 1e6,
                best, usage);
    return usage;
  };
  std::printf("%zu lines, %.1f MB\n", lines.size(), double(bytes) / 1e6);
  size_t a =
      time("Parse (simdjson fast path)", [&](const std::string& l) { parser.Parse(l, &out); });
  size_t b = time("ParseReference (nlohmann)",
                  [&](const std::string& l) { parser.ParseReference(l, &out); });
  return a == b ? 0 : 1;
}
