// live_check: runs the agent's live accounting (agent/engine/live_accounting.h) over every
// transcript of a Claude config dir, file by file in discovery order, with records in memory, and
// prints the claude_* families as text (to diff with `ccmon-replay metrics`), then the
// conflict count and the time taken on stderr. Checks docs/accounting.md A40 on real corpora:
//   live_check CONFIG_DIR > live.txt
//   ccmon-replay metrics --config-dir CONFIG_DIR --device dev | grep -v '^ccmon_\|# .* ccmon_'
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>

#include "agent/engine/live_accounting.h"
#include "transcript/discovery.h"
#include "transcript/line_parser.h"
#include "transcript/line_reader.h"

using namespace ccmon;

class MapRecords : public agent::RecordReader {
 public:
  Status Read(std::string_view key, std::string* value) override {
    auto it = map.find(std::string(key));
    if (it == map.end()) return Status::NotFound("absent");
    *value = it->second;
    return Status::Ok();
  }
  Status Scan(std::string_view prefix,
              const std::function<Status(std::string_view, std::string_view)>& f) override {
    for (auto it = map.lower_bound(std::string(prefix));
         it != map.end() && it->first.starts_with(prefix); ++it)
      if (Status s = f(it->first, it->second); !s.ok()) return s;
    return Status::Ok();
  }
  std::map<std::string, std::string> map;
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: live_check CONFIG_DIR\n";
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> warnings;
  auto files = ListTranscripts({std::string(argv[1]) + "/projects"}, &warnings);
  MapRecords records;
  agent::LiveOptions options;
  options.device = "dev";
  options.prices = &PriceTable::Embedded();
  std::unique_ptr<agent::LiveAccounting> live;
  if (Status s = agent::LiveAccounting::Open(options, &records, &live); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 1;
  }
  LineParser parser;
  ParsedLine line;
  uint64_t lines = 0;
  for (const auto& f : files) {
    std::unique_ptr<SequentialFile> file;
    if (!Env::Default()->NewSequentialFile(f.path, 0, &file).ok()) continue;
    LineReader reader(file.get(), 0, {});
    std::string_view l;
    size_t readable = 0;
    bool first = true;
    while (reader.Next(&l, &readable) == LineReader::Result::kLine) {
      parser.Parse(l, readable, &line, first);
      first = false;
      ++lines;
      if (Status s = live->AddLine(line); !s.ok()) {
        std::cerr << s.message() << "\n";
        return 1;
      }
    }
    std::vector<std::pair<std::string, std::optional<std::string>>> changes;
    live->TakeChanges(&changes);
    for (auto& [k, v] : changes) {
      if (v)
        records.map[k] = *v;
      else
        records.map.erase(k);
    }
    live->TrimCache();
  }
  (void)live->Settle(INT64_MAX / 2, true);
  std::cout << live->series().Exposition(false);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "files " << files.size() << " lines " << lines << " requests "
            << live->stats().requests << " copies " << live->stats().copies << " conflicts "
            << live->stats().conflicts << " records " << records.map.size() << " seconds " << secs
            << "\n";
  return 0;
}
