// Tests of ccmon-replay (src/tools/replay) through RunReplay on small hand-written histories.
#include "tools/replay/replay.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "testing/fault_env.h"
#include "testing/refusing_stream.h"
#include "testing/temp_dir.h"
#include "tools/replay/flags.h"

namespace ccmon {
namespace {

using testing_util::Fault;
using testing_util::FaultEnv;
using testing_util::FaultOp;
using testing_util::Listing;
using testing_util::RefusingBuf;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "ccmon_replay_XXXXXX";
  char* d = ::mkdtemp(tmpl.data());
  return d ? d : "";
}

// One assistant line; `ts` is an ISO timestamp.
std::string Line(const std::string& id, const std::string& ts, const std::string& session,
                 const std::string& cwd, int input, int output,
                 const std::string& model = "claude-sonnet-4-5-20250929") {
  return R"({"type":"assistant","sessionId":")" + session + R"(","cwd":")" + cwd +
         R"(","timestamp":")" + ts + R"(","requestId":"req_)" + id + R"(","message":{"id":"msg_)" +
         id + R"(","model":")" + model +
         R"(","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":)" +
         std::to_string(input) + R"(,"output_tokens":)" + std::to_string(output) +
         R"(,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}})" + "\n";
}

void Write(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

void SetMtime(const std::string& path, int64_t unix_seconds) {
  struct timespec ts[2] = {{unix_seconds, 0}, {unix_seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0);
}

struct Out {
  int code;
  std::string out, err;
  nlohmann::json json() const { return nlohmann::json::parse(out); }
};

ReplayConfig Defaults(ReplayConfig cfg) {
  cfg.progress = "never";
  if (cfg.device.empty()) cfg.device = "dev";
  if (cfg.timezone.empty()) cfg.timezone = "UTC";
  if (cfg.pricing_file.empty()) cfg.pricing_file = CCMON_DEFAULT_PRICES;
  return cfg;
}

Out Replay(ReplayConfig cfg, Env* env = Env::Default()) {
  std::ostringstream out, err;
  int code = RunReplay(Defaults(cfg), out, err, env);
  return {code, out.str(), err.str()};
}

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    // Two days in UTC; the second file was last written on 2026-09-02.
    old_ = dir_ + "/projects/-w-a/s1.jsonl";
    Write(old_, Line("1", "2026-09-01T10:00:00.000Z", "s1", "/w/a", 100, 10) +
                    Line("2", "2026-09-01T23:30:00.000Z", "s1", "/w/a", 200, 20));
    SetMtime(old_, 1788307200);  // 2026-09-02T00:00:00Z
    Write(dir_ + "/projects/-w-b/s2.jsonl",
          Line("3", "2026-09-03T01:00:00.000Z", "s2", "/w/b", 400, 40));
    SetMtime(dir_ + "/projects/-w-b/s2.jsonl", 1788397200);  // 2026-09-03T01:00:00Z
  }
  ReplayConfig Config() {
    ReplayConfig cfg;
    cfg.config_dirs = {dir_};
    cfg.json = true;
    return cfg;
  }
  std::string dir_, old_;
};

TEST_F(ReplayTest, SummaryByDayInUtc) {
  Out r = Replay(Config());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = r.json();
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["key"], "2026-09-01");
  EXPECT_EQ(j["rows"][0]["input"], 300);
  EXPECT_EQ(j["rows"][1]["key"], "2026-09-03");
  EXPECT_EQ(j["totals"]["requests"], 3);
  EXPECT_EQ(j["totals"]["sessions"], 2);
  EXPECT_EQ(j["files"], 2);
}

TEST_F(ReplayTest, A36_TimezoneMovesRequestsAcrossDays) {
  ReplayConfig cfg = Config();
  cfg.timezone = "Europe/Helsinki";  // UTC+3 in September: 23:30Z is the next local day
  Out r = Replay(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = r.json();
  ASSERT_EQ(j["rows"].size(), 3u);
  EXPECT_EQ(j["rows"][0]["key"], "2026-09-01");
  EXPECT_EQ(j["rows"][0]["input"], 100);
  EXPECT_EQ(j["rows"][1]["key"], "2026-09-02");
  EXPECT_EQ(j["rows"][1]["input"], 200);
  EXPECT_EQ(j["timezone"], "Europe/Helsinki");
}

TEST_F(ReplayTest, A36_SinceSkipsFilesLastModifiedOverADayBeforeItWithoutOpeningThem) {
  ReplayConfig cfg = Config();
  cfg.since = "2026-09-03";
  // s1.jsonl was last written at 2026-09-02T00:00:00Z, a day before --since: within the margin,
  // it is read (its requests are all before the window).
  Out r = Replay(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = r.json();
  EXPECT_EQ(j["files_not_opened"], 0);
  EXPECT_EQ(j["files"], 2);
  EXPECT_EQ(j["totals"]["requests"], 1);
  EXPECT_EQ(j["totals"]["input"], 400);
  // A second earlier, it is not opened; the figures are the same.
  SetMtime(old_, 1788307199);
  r = Replay(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  j = r.json();
  EXPECT_EQ(j["files_not_opened"], 1);
  EXPECT_EQ(j["files"], 1);
  EXPECT_EQ(j["totals"]["requests"], 1);
  EXPECT_EQ(j["totals"]["input"], 400);
}

// Two block lines of one streamed response, either side of midnight: the request is counted
// once, on the day of its preferred copy (the earlier one), with the final output.
TEST_F(ReplayTest, A36_A18_ARequestWhoseCopiesStraddleMidnightCountsOnceOnItsDay) {
  for (bool two_files : {false, true}) {
    const std::string dir = TempDir();
    const std::string before = Line("s", "2025-06-01T23:59:59.900Z", "s9", "/w/a", 10, 5);
    const std::string after = Line("s", "2025-06-02T00:00:00.500Z", "s9", "/w/a", 10, 100);
    const std::string first = dir + "/projects/-w-a/s9.jsonl";
    if (two_files) {
      Write(first, before);
      Write(dir + "/projects/-w-a/s10.jsonl", after);  // a resumed session's copy
    } else {
      Write(first, before + after);
    }
    auto run = [&](const std::string& since, const std::string& until) {
      ReplayConfig cfg;
      cfg.config_dirs = {dir};
      cfg.json = true;
      cfg.since = since;
      cfg.until = until;
      Out r = Replay(cfg);
      EXPECT_EQ(r.code, 0) << r.err;
      return r.json();
    };
    auto whole = run("", "");
    ASSERT_EQ(whole["rows"].size(), 1u) << two_files;
    EXPECT_EQ(whole["rows"][0]["key"], "2025-06-01");
    EXPECT_EQ(whole["totals"]["output"], 100);
    for (auto [since, until] : {std::pair<std::string, std::string>{"", "2025-06-01"},
                                {"2025-06-01", "2025-06-01"},
                                {"2025-05-31", "2025-06-01"}}) {
      auto j = run(since, until);
      EXPECT_EQ(j["totals"]["requests"], 1) << since << ".." << until << " " << two_files;
      EXPECT_EQ(j["totals"]["output"], 100) << since << ".." << until << " " << two_files;
      EXPECT_EQ(j["totals"]["sessions"], 1) << since << ".." << until << " " << two_files;
      EXPECT_EQ(j["totals"]["cost_pusd"], whole["totals"]["cost_pusd"]);
    }
    for (auto [since, until] :
         {std::pair<std::string, std::string>{"2025-06-02", ""}, {"2025-06-02", "2025-06-02"}}) {
      auto j = run(since, until);
      EXPECT_EQ(j["totals"]["requests"], 0) << since << ".." << until << " " << two_files;
      EXPECT_EQ(j["totals"]["output"], 0) << since << ".." << until << " " << two_files;
      EXPECT_EQ(j["totals"]["sessions"], 0) << since << ".." << until << " " << two_files;
      EXPECT_TRUE(j["rows"].empty());
    }
    // Every output sees the same window: the metrics of June 2 have no request either.
    ReplayConfig cfg;
    cfg.config_dirs = {dir};
    cfg.command = ReplayCommand::kMetrics;
    cfg.since = "2025-06-02";
    Out m = Replay(cfg);
    ASSERT_EQ(m.code, 0) << m.err;
    EXPECT_EQ(m.out.find("claude_requests_total{"), std::string::npos) << m.out;
    cfg.since = "";
    cfg.until = "2025-06-01";
    m = Replay(cfg);
    ASSERT_EQ(m.code, 0) << m.err;
    EXPECT_NE(m.out.find("claude_tokens_total{device=\"dev\",model=\"claude-sonnet-4-5-20250929\","
                         "project=\"a\",type=\"output\"} 100\n"),
              std::string::npos)
        << m.out;
  }
}

TEST_F(ReplayTest, A36_UntilIsInclusiveAndFiltersByTimestamp) {
  ReplayConfig cfg = Config();
  cfg.until = "20260901";
  Out r = Replay(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = r.json();
  EXPECT_EQ(j["totals"]["requests"], 2);
  EXPECT_EQ(j["totals"]["sessions"], 1);
}

TEST_F(ReplayTest, GroupByModelProjectSessionMonthDevice) {
  for (const char* by : {"model", "project", "session", "month", "device"}) {
    ReplayConfig cfg = Config();
    ASSERT_TRUE(ParseGroupBy(by, &cfg.group_by));
    Out r = Replay(cfg);
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = r.json();
    size_t expected = std::string(by) == "project" || std::string(by) == "session" ? 2u : 1u;
    EXPECT_EQ(j["rows"].size(), expected) << by;
    EXPECT_EQ(j["group_by"], by);
  }
}

// A local day after 9999-12-31 has a five-digit year: its month is "10000-01" (not the first
// seven characters, "10000-0"), and rows stay in calendar order (not the keys' string order).
TEST_F(ReplayTest, DaysAndMonthsOfYear10000KeepTheirNamesAndCalendarOrder) {
  std::filesystem::remove_all(dir_ + "/projects");
  Write(dir_ + "/projects/-w-a/s1.jsonl",
        Line("1", "9999-12-30T20:00:00.000Z", "s1", "/w/a", 100, 10) +
            Line("2", "9999-12-31T20:00:00.000Z", "s1", "/w/a", 200, 20));
  for (const char* by : {"day", "month"}) {
    ReplayConfig cfg = Config();
    cfg.timezone = "Pacific/Kiritimati";  // UTC+14: both are a day later locally
    ASSERT_TRUE(ParseGroupBy(by, &cfg.group_by));
    Out r = Replay(cfg);
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = r.json();
    ASSERT_EQ(j["rows"].size(), 2u) << by;
    const bool day = std::string(by) == "day";
    EXPECT_EQ(j["rows"][0]["key"], day ? "9999-12-31" : "9999-12") << by;
    EXPECT_EQ(j["rows"][0]["input"], 100) << by;
    EXPECT_EQ(j["rows"][1]["key"], day ? "10000-01-01" : "10000-01") << by;
    EXPECT_EQ(j["rows"][1]["input"], 200) << by;
  }
}

TEST_F(ReplayTest, TableOutputHasTotalsAndSkippedLines) {
  Write(dir_ + "/projects/-w-b/s3.jsonl",
        "not json\n" + Line("4", "2026-09-04T01:00:00Z", "s3", "/w/b", 1, 1) +
            "{\"type\":\"assistant\"");
  ReplayConfig cfg = Config();
  cfg.json = false;
  Out r = Replay(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("total "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("invalid_json 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("incomplete 1"), std::string::npos) << r.out;
}

// A prompt a person typed (docs/accounting.md A38).
std::string Prompt(const std::string& uuid, const std::string& ts, const std::string& session,
                   const std::string& cwd, const std::string& text = "please fix it") {
  return R"({"type":"user","isSidechain":false,"sessionId":")" + session + R"(","cwd":")" + cwd +
         R"(","message":{"role":"user","content":")" + text + R"("},"uuid":")" + uuid +
         R"(","timestamp":")" + ts + R"("})" + "\n";
}

TEST_F(ReplayTest, A38_PromptsColumnInReports) {
  // s1 (/w/a): two prompts on 09-01, one copied into a resumed file (one uuid); a command echo.
  // s4 (/w/c): a prompt on 09-05 with no request at all (its request failed).
  Write(dir_ + "/projects/-w-a/s1b.jsonl",
        Prompt("18b7c636-19c0-4199-8f42-ee2f5e8d22a2", "2026-09-01T09:59:00.000Z", "s1", "/w/a") +
            Prompt("u-2", "2026-09-01T23:29:00.000Z", "s1", "/w/a") +
            Prompt("u-cmd", "2026-09-01T23:29:30.000Z", "s1", "/w/a",
                   "<command-name>/model</command-name>"));
  Write(dir_ + "/projects/-w-a/s1c.jsonl",
        Prompt("18b7c636-19c0-4199-8f42-ee2f5e8d22a2", "2026-09-01T09:59:00.000Z", "s1-resumed",
               "/w/a"));
  Write(dir_ + "/projects/-w-c/s4.jsonl", Prompt("u-4", "2026-09-05T08:00:00.000Z", "s4", "/w/c"));
  Out r = Replay(Config());
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = r.json();
  EXPECT_EQ(j["totals"]["prompts"], 3);
  EXPECT_EQ(j["totals"]["requests"], 3);
  EXPECT_EQ(j["totals"]["sessions"], 2) << "a prompt does not make a session (A32)";
  ASSERT_EQ(j["rows"].size(), 3u);
  EXPECT_EQ(j["rows"][0]["key"], "2026-09-01");
  EXPECT_EQ(j["rows"][0]["prompts"], 2);
  EXPECT_EQ(j["rows"][1]["key"], "2026-09-03");
  EXPECT_EQ(j["rows"][1]["prompts"], 0);
  EXPECT_EQ(j["rows"][2]["key"], "2026-09-05");  // prompts, no request
  EXPECT_EQ(j["rows"][2]["prompts"], 1);
  EXPECT_EQ(j["rows"][2]["requests"], 0);

  ReplayConfig cfg = Config();
  cfg.group_by = GroupBy::kSession;
  j = Replay(cfg).json();
  std::map<std::string, nlohmann::json> rows;
  for (const auto& row : j["rows"]) rows[row["key"]] = row;
  EXPECT_EQ(rows["s1"]["prompts"], 2);
  EXPECT_EQ(rows.count("s1-resumed"), 0u) << "the copy's uuid is the original prompt's";
  EXPECT_EQ(rows["s4"]["prompts"], 1);
  EXPECT_EQ(rows["s4"]["project"], "c");

  cfg.group_by = GroupBy::kProject;
  j = Replay(cfg).json();
  rows.clear();
  for (const auto& row : j["rows"]) rows[row["key"]] = row;
  EXPECT_EQ(rows["a"]["prompts"], 2);
  EXPECT_EQ(rows["b"]["prompts"], 0);
  EXPECT_EQ(rows["c"]["prompts"], 1);

  // A prompt has no model: --by model rows carry no prompts, the totals do.
  cfg.group_by = GroupBy::kModel;
  j = Replay(cfg).json();
  ASSERT_EQ(j["rows"].size(), 1u);
  EXPECT_FALSE(j["rows"][0].contains("prompts"));
  EXPECT_EQ(j["totals"]["prompts"], 3);

  // The table has a prompts column ("-" for model rows).
  cfg.json = false;
  std::string table = Replay(cfg).out;
  EXPECT_NE(table.find(" prompts "), std::string::npos) << table;
  EXPECT_NE(table.find("         -"), std::string::npos) << table;
  cfg.group_by = GroupBy::kDay;
  table = Replay(cfg).out;
  EXPECT_NE(table.find("2026-09-05"), std::string::npos) << table;

  // --since/--until apply to prompts by their timestamp.
  cfg = Config();
  cfg.until = "2026-09-03";
  EXPECT_EQ(Replay(cfg).json()["totals"]["prompts"], 2);

  // The metrics family.
  cfg = Config();
  cfg.command = ReplayCommand::kMetrics;
  std::string text = Replay(cfg).out;
  EXPECT_NE(text.find("claude_user_prompts_total{device=\"dev\",project=\"a\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("claude_user_prompts_total{device=\"dev\",project=\"c\"} 1\n"),
            std::string::npos)
      << text;
}

TEST_F(ReplayTest, BadArgumentsAreClearErrors) {
  ReplayConfig cfg = Config();
  cfg.timezone = "Mars/Olympus";
  Out r = Replay(cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown time zone 'Mars/Olympus'"), std::string::npos) << r.err;
  cfg = Config();
  cfg.since = "2026-13-01";
  r = Replay(cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--since"), std::string::npos) << r.err;
  cfg = Config();
  cfg.config_dirs = {dir_ + "/nowhere"};
  r = Replay(cfg);
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("no Claude Code projects/ directory"), std::string::npos) << r.err;
  cfg = Config();
  cfg.pricing_file = dir_ + "/missing-pricing.json";
  r = Replay(cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing-pricing.json"), std::string::npos) << r.err;
}

// Hostile-trial defects 1, 2 and 13: what cannot be read is named, the report is still written,
// and the exit status says the figures are incomplete.
TEST_F(ReplayTest, UnreadableTranscriptGivesTheReportAndExitStatus4) {
  ReplayConfig cfg = Config();
  Out clean = Replay(cfg);
  ASSERT_EQ(clean.code, 0) << clean.err;
  // A transcript name that cannot be examined (a symlink to itself: ELOOP, even for root).
  const std::string loop = dir_ + "/projects/-w-a/loop.jsonl";
  ASSERT_EQ(::symlink("loop.jsonl", loop.c_str()), 0);
  Out r = Replay(cfg);
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.json()["totals"], clean.json()["totals"]);
  EXPECT_NE(r.err.find("warning: " + loop + ": stat: Too many levels of symbolic links"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("the figures are incomplete"), std::string::npos) << r.err;
  cfg.command = ReplayCommand::kMetrics;
  EXPECT_EQ(Replay(cfg).code, 4);
}

TEST_F(ReplayTest, UnknownModelIsWarnedOnceAndUnpriced) {
  Write(dir_ + "/projects/-w-c/s4.jsonl",
        Line("5", "2026-09-05T01:00:00Z", "s4", "/w/c", 10, 5, "claude-unknown-9") +
            Line("6", "2026-09-05T02:00:00Z", "s4", "/w/c", 20, 5, "claude-unknown-9"));
  Out r = Replay(Config());
  ASSERT_EQ(r.code, 0) << r.err;
  size_t first = r.err.find("no price for model 'claude-unknown-9'");
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("no price for model", first + 1), std::string::npos) << "warned twice";
  EXPECT_EQ(r.json()["unpriced_tokens"]["claude-unknown-9"], 40);
}

TEST_F(ReplayTest, A26_UnpricedModelWarningsNameTenModelsThenCountTheRest) {
  std::string lines;
  for (int i = 0; i < 13; ++i) {
    lines += Line("u" + std::to_string(i), "2026-09-05T01:00:00Z", "s4", "/w/c", 10, 5,
                  "claude-made-up-" + std::to_string(100 + i));
  }
  Write(dir_ + "/projects/-w-c/s4.jsonl", lines);
  Out r = Replay(Config());
  ASSERT_EQ(r.code, 0) << r.err;
  size_t named = 0;
  for (size_t at = 0; (at = r.err.find("no price for model '", at)) != std::string::npos; ++at)
    ++named;
  EXPECT_EQ(named, kMaxUnpricedModelWarnings) << r.err;
  // In the order of first use (the dedup keys' order at one instant): u0..u9 are named.
  EXPECT_NE(r.err.find("no price for model 'claude-made-up-109'"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("'claude-made-up-110'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ccmon-replay: warning: and 3 more models without a price (pricing: "),
            std::string::npos)
      << r.err;
  // Every one of them is still counted as unpriced.
  EXPECT_EQ(r.json()["unpriced_tokens"].size(), 13u);
}

TEST_F(ReplayTest, A31_ModelLabelsAreCappedInReportsAndMetrics) {
  std::string lines;
  for (int i = 0; i < 4; ++i) {
    lines += Line("c" + std::to_string(i), "2026-09-05T01:00:0" + std::to_string(i) + "Z", "s4",
                  "/w/c", 10, 5, "claude-made-up-" + std::to_string(i));
  }
  Write(dir_ + "/projects/-w-c/s4.jsonl", lines);
  ReplayConfig cfg = Config();
  cfg.group_by = GroupBy::kModel;
  Out whole = Replay(cfg);
  ASSERT_EQ(whole.code, 0) << whole.err;
  cfg.labels.max_models = 2;
  Out capped = Replay(cfg);
  ASSERT_EQ(capped.code, 0) << capped.err;
  const nlohmann::json capped_json = capped.json();
  std::vector<std::string> keys;
  for (const auto& row : capped_json["rows"]) keys.push_back(row["key"]);
  // sonnet (2026-09-01) and the first made-up model are admitted; the rest is "other".
  EXPECT_EQ(keys,
            (std::vector<std::string>{"claude-made-up-0", "claude-sonnet-4-5-20250929", "other"}));
  // The same totals (tokens, requests, cost), with "other" among the models.
  nlohmann::json capped_totals = capped_json["totals"], whole_totals = whole.json()["totals"];
  capped_totals.erase("models");
  whole_totals.erase("models");
  EXPECT_EQ(capped_totals, whole_totals);
  cfg.command = ReplayCommand::kMetrics;
  Out metrics = Replay(cfg);
  ASSERT_EQ(metrics.code, 0) << metrics.err;
  EXPECT_NE(
      metrics.out.find("claude_requests_total{device=\"dev\",model=\"other\",project=\"c\"} 3"),
      std::string::npos)
      << metrics.out;
  EXPECT_EQ(metrics.out.find("claude-made-up-1"), std::string::npos) << metrics.out;
}

TEST_F(ReplayTest, MetricsAndOpenMetricsCommands) {
  ReplayConfig cfg = Config();
  cfg.command = ReplayCommand::kMetrics;
  Out r = Replay(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("claude_tokens_total{device=\"dev\",model=\"claude-sonnet-4-5-20250929\","
                       "project=\"a\",type=\"input\"} 300\n"),
            std::string::npos)
      << r.out;
  cfg.metrics_format = "openmetrics";
  r = Replay(cfg);
  EXPECT_EQ(r.out.substr(r.out.size() - 6), "# EOF\n");
  cfg = Config();
  cfg.command = ReplayCommand::kOpenMetrics;
  cfg.output = dir_ + "/history.om";
  r = Replay(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(cfg.output);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("# TYPE claude_tokens counter\n# UNIT claude_tokens tokens\n"),
            std::string::npos);
  EXPECT_NE(r.err.find("history ends at 1788397200"), std::string::npos) << r.err;
}

TEST_F(ReplayTest, AFullDiskIsAClearError) {
  ReplayConfig cfg = Config();
  cfg.command = ReplayCommand::kOpenMetrics;
  cfg.output = "/dev/full";  // every write fails with ENOSPC
  Out r = Replay(cfg);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot write /dev/full: /dev/full: write: No space left on device"),
            std::string::npos)
      << r.err;
}

TEST_F(ReplayTest, SinceAfterUntilIsAUsageError) {
  ReplayConfig cfg = Config();
  cfg.since = "2026-09-03";
  cfg.until = "2026-09-01";
  Out r = Replay(cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--since 2026-09-03 is after --until 2026-09-01"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
  cfg.until = "2026-09-03";  // one day: fine
  r = Replay(cfg);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.json()["totals"]["requests"], 1);
}

TEST_F(ReplayTest, OpenMetricsReplacesTheFileAtomically) {
  ReplayConfig cfg = Config();
  cfg.command = ReplayCommand::kOpenMetrics;
  cfg.output = dir_ + "/out/history.om";
  Write(cfg.output, "old history");
  FaultEnv env(Env::Default());
  Out r = Replay(cfg, &env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(env.calls(FaultOp::kRename), 1);
  std::ifstream in(cfg.output);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str().substr(ss.str().size() - 6), "# EOF\n");
  EXPECT_EQ(Listing(dir_ + "/out"), std::vector<std::string>{"history.om"});
}

TEST_F(ReplayTest, OpenMetricsOnAFullDiskKeepsTheOldFileAndLeavesNoTemporary) {
  ReplayConfig cfg = Config();
  cfg.command = ReplayCommand::kOpenMetrics;
  cfg.output = dir_ + "/out/history.om";
  Write(cfg.output, "old history");
  FaultEnv env(Env::Default());
  env.Inject(Fault(FaultOp::kAppend, ENOSPC).OnPath("history.om"));
  Out r = Replay(cfg, &env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot write " + cfg.output + ": " + cfg.output +
                       ".tmp: write: No space left on device"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("wrote "), std::string::npos) << r.err;
  std::ifstream in(cfg.output);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "old history");
  EXPECT_EQ(Listing(dir_ + "/out"), std::vector<std::string>{"history.om"});

  env.ClearFaults();
  env.Inject(Fault(FaultOp::kRename, EXDEV));
  r = Replay(cfg, &env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(
      r.err.find("rename " + cfg.output + ".tmp to " + cfg.output + ": Invalid cross-device link"),
      std::string::npos)
      << r.err;
  EXPECT_EQ(Listing(dir_ + "/out"), std::vector<std::string>{"history.om"});
}

TEST_F(ReplayTest, OpenMetricsToAPathUnderAFileFails) {
  ReplayConfig cfg = Config();
  cfg.command = ReplayCommand::kOpenMetrics;
  Write(dir_ + "/out/plain", "x");
  cfg.output = dir_ + "/out/plain/history.om";
  Out r = Replay(cfg);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot write " + cfg.output), std::string::npos) << r.err;
  EXPECT_EQ(Listing(dir_ + "/out"), std::vector<std::string>{"plain"});
}

TEST_F(ReplayTest, OpenMetricsToStdoutWithDash) {
  ReplayConfig cfg = Config();
  cfg.command = ReplayCommand::kOpenMetrics;
  cfg.output = "-";
  Out r = Replay(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(r.out.size() - 6), "# EOF\n");
}

TEST_F(ReplayTest, EveryCommandFailsWhenItsOutputCannotBeWritten) {
  for (ReplayCommand command :
       {ReplayCommand::kSummary, ReplayCommand::kMetrics, ReplayCommand::kOpenMetrics}) {
    ReplayConfig cfg = Config();
    cfg.command = command;
    cfg.json = false;
    cfg.output = "-";
    RefusingBuf refusing;
    std::ostream out(&refusing);
    std::ostringstream err;
    int code = RunReplay(Defaults(cfg), out, err);
    EXPECT_EQ(code, 1) << int(command);
    EXPECT_NE(err.str().find("ccmon-replay: write failed for standard output"), std::string::npos)
        << err.str();
  }
}

TEST_F(ReplayTest, EveryFileIsReadThroughTheRunsEnv) {
  FaultEnv env(Env::Default());
  env.Inject(Fault(FaultOp::kNewSequentialFile, EACCES).OnPath("s1.jsonl"));
  Out r = Replay(Config(), &env);
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("s1.jsonl"), std::string::npos) << r.err;
  EXPECT_EQ(r.json()["totals"]["requests"], 1);  // s2 only
  EXPECT_GT(env.calls(FaultOp::kGetChildren), 0) << "discovery walks through the Env";
}

TEST_F(ReplayTest, AFailedWriteOutranksIncompleteFigures) {
  ASSERT_EQ(::symlink("loop.jsonl", (dir_ + "/projects/-w-a/loop.jsonl").c_str()), 0);
  ReplayConfig cfg = Config();
  ASSERT_EQ(Replay(cfg).code, 4);
  RefusingBuf refusing;
  std::ostream out(&refusing);
  std::ostringstream err;
  EXPECT_EQ(RunReplay(Defaults(cfg), out, err), 1) << err.str();
}

// The command line, parsed without a process.
ReplayFlags Flags(std::vector<std::string> args) { return ParseReplayFlags(args); }

TEST(ReplayFlagsTest, DefaultsAreTheConfigDefaults) {
  ReplayFlags f = Flags({});
  ASSERT_EQ(f.action, ReplayFlags::Action::kRun) << f.text;
  const ReplayConfig d;
  EXPECT_EQ(f.config.command, ReplayCommand::kSummary);
  EXPECT_EQ(f.config.threads, d.threads);
  EXPECT_EQ(f.config.max_line_bytes, d.max_line_bytes);
  EXPECT_EQ(f.config.labels.max_projects, d.labels.max_projects);
  EXPECT_EQ(f.config.labels.max_models, 50u);
  EXPECT_EQ(f.config.labels.max_tools, 200u);
  EXPECT_EQ(f.config.step_ms, d.step_ms);
  EXPECT_EQ(f.config.max_samples_per_send, d.max_samples_per_send);
  EXPECT_EQ(f.config.max_retry_seconds, d.max_retry_seconds);
  EXPECT_EQ(f.config.progress, "auto");
  EXPECT_EQ(f.config.metrics_format, "text");
}

TEST(ReplayFlagsTest, ParsesEveryFlagOfEachCommand) {
  ReplayFlags f = Flags({"summary",    "--config-dir",
                         "/a",         "--config-dir",
                         "/b",         "--device",
                         "d",          "--pricing",
                         "p.json",     "--project-label",
                         "hash",       "--max-projects",
                         "7",          "--max-models",
                         "8",          "--max-tools",
                         "9",          "--since",
                         "2026-01-01", "--until",
                         "20260102",   "-z",
                         "UTC",        "--threads",
                         "3",          "--max-line-bytes",
                         "1024",       "--progress",
                         "never",      "--by",
                         "model",      "--json"});
  ASSERT_EQ(f.action, ReplayFlags::Action::kRun) << f.text;
  EXPECT_EQ(f.config.config_dirs, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(f.config.labels.max_projects, 7u);
  EXPECT_EQ(f.config.labels.max_models, 8u);
  EXPECT_EQ(f.config.labels.max_tools, 9u);
  EXPECT_EQ(f.config.labels.project_mode, ProjectLabelMode::kHash);
  EXPECT_EQ(f.config.threads, 3u);
  EXPECT_EQ(f.config.max_line_bytes, 1024u);
  EXPECT_EQ(f.config.group_by, GroupBy::kModel);
  EXPECT_TRUE(f.config.json);
  EXPECT_EQ(f.config.since, "2026-01-01");
  EXPECT_EQ(f.config.until, "20260102");

  f = Flags({"metrics", "--format", "openmetrics"});
  ASSERT_EQ(f.action, ReplayFlags::Action::kRun) << f.text;
  EXPECT_EQ(f.config.command, ReplayCommand::kMetrics);
  EXPECT_EQ(f.config.metrics_format, "openmetrics");

  f = Flags({"openmetrics", "-o", "h.om", "--step", "1d"});
  ASSERT_EQ(f.action, ReplayFlags::Action::kRun) << f.text;
  EXPECT_EQ(f.config.output, "h.om");
  EXPECT_EQ(f.config.step_ms, 86400000);

  f = Flags({"remote-write", "--url", "http://x/w", "--header", "X-Scope-OrgID:  team",
             "--max-samples-per-send", "1000000", "--max-retry-time", "0", "--step", "1s"});
  ASSERT_EQ(f.action, ReplayFlags::Action::kRun) << f.text;
  EXPECT_EQ(f.config.remote_write_url, "http://x/w");
  EXPECT_EQ(f.config.remote_write_headers,
            (std::vector<std::pair<std::string, std::string>>{{"X-Scope-OrgID", "team"}}));
  EXPECT_EQ(f.config.max_samples_per_send, 1000000u);
  EXPECT_EQ(f.config.max_retry_seconds, 0);
  EXPECT_EQ(f.config.step_ms, 1000);
}

void ExpectUsageError(const std::vector<std::string>& args, const std::string& message) {
  ReplayFlags f = Flags(args);
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  EXPECT_EQ(f.action, ReplayFlags::Action::kUsageError) << joined;
  EXPECT_EQ(f.text, message) << joined;
}

TEST(ReplayFlagsTest, NegativeHugeAndMalformedNumbersAreRefusedWithTheirRange) {
  ExpectUsageError({"--max-line-bytes", "-1"},
                   "--max-line-bytes wants an integer from 1024 to 1073741824 bytes, got '-1'");
  ExpectUsageError({"--max-line-bytes", "18446744073709551615"},
                   "--max-line-bytes wants an integer from 1024 to 1073741824 bytes, got "
                   "'18446744073709551615'");
  ExpectUsageError({"--max-line-bytes", "1023"},
                   "--max-line-bytes wants an integer from 1024 to 1073741824 bytes, got '1023'");
  ExpectUsageError({"--max-line-bytes", "1073741825"},
                   "--max-line-bytes wants an integer from 1024 to 1073741824 bytes, got "
                   "'1073741825'");
  ExpectUsageError({"--threads", "-1"}, "--threads wants an integer from 0 to 1024, got '-1'");
  ExpectUsageError({"--threads", "1025"}, "--threads wants an integer from 0 to 1024, got '1025'");
  ExpectUsageError({"--threads", "4294967297"},
                   "--threads wants an integer from 0 to 1024, got '4294967297'");
  ExpectUsageError({"--threads", "2x"}, "--threads wants an integer from 0 to 1024, got '2x'");
  ExpectUsageError({"--max-projects", "-1"},
                   "--max-projects wants an integer from 1 to 1000000, got '-1'");
  ExpectUsageError({"--max-projects", "0"},
                   "--max-projects wants an integer from 1 to 1000000, got '0'");
  for (const char* flag : {"--max-models", "--max-tools"}) {
    for (const char* bad : {"0", "-1", "1000001", "+5", "5k", "", "18446744073709551616"}) {
      ExpectUsageError({flag, bad}, std::string(flag) +
                                        " wants an integer from 1 to 1000000, got '" + bad + "'");
    }
    EXPECT_EQ(Flags({flag, "1000000"}).action, ReplayFlags::Action::kRun);
    EXPECT_EQ(Flags({"metrics", flag, "1"}).action, ReplayFlags::Action::kRun);
  }
  ExpectUsageError({"remote-write", "--url", "http://x", "--max-samples-per-send", "-1"},
                   "--max-samples-per-send wants an integer from 1 to 1000000, got '-1'");
  ExpectUsageError({"remote-write", "--url", "http://x", "--max-samples-per-send", "0"},
                   "--max-samples-per-send wants an integer from 1 to 1000000, got '0'");
  ExpectUsageError({"remote-write", "--url", "http://x", "--max-retry-time", "-1"},
                   "--max-retry-time wants an integer from 0 to 1000000 seconds, got '-1'");
  ExpectUsageError({"remote-write", "--url", "http://x", "--max-retry-time", "1000001"},
                   "--max-retry-time wants an integer from 0 to 1000000 seconds, got '1000001'");
  for (const char* step : {"0s", "2d", "-1m", "1", "1.5m", "1441m", "90000s"}) {
    ExpectUsageError(
        {"openmetrics", "-o", "x", "--step", step},
        std::string("--step wants a duration from 1s to 1d such as 30s, 1m, 1h, got '") + step +
            "'");
  }
}

TEST(ReplayFlagsTest, FlagsOfAnotherCommandAreRefused) {
  ExpectUsageError({"metrics", "-o", "FILE"},
                   "--output does not apply to metrics (only to openmetrics)");
  ExpectUsageError({"summary", "--step", "1h"},
                   "--step does not apply to summary (only to openmetrics, remote-write)");
  ExpectUsageError({"--step", "1h"},  // summary is the default command
                   "--step does not apply to summary (only to openmetrics, remote-write)");
  ExpectUsageError({"metrics", "--json"}, "--json does not apply to metrics (only to summary)");
  ExpectUsageError({"openmetrics", "-o", "x", "--by", "model"},
                   "--by does not apply to openmetrics (only to summary)");
  ExpectUsageError({"summary", "--format", "openmetrics"},
                   "--format does not apply to summary (only to metrics)");
  ExpectUsageError({"openmetrics", "-o", "x", "--url", "http://x"},
                   "--url does not apply to openmetrics (only to remote-write)");
  ExpectUsageError({"metrics", "--max-retry-time", "5"},
                   "--max-retry-time does not apply to metrics (only to remote-write)");
  ExpectUsageError({"remote-write", "--url", "http://x", "-o", "x"},
                   "--output does not apply to remote-write (only to openmetrics)");
}

TEST(ReplayFlagsTest, OtherUsageErrors) {
  ExpectUsageError({"frobnicate"},
                   "unknown command 'frobnicate' (summary, openmetrics, metrics, remote-write)");
  ExpectUsageError({"openmetrics"}, "openmetrics needs -o FILE (or -o - for stdout)");
  ExpectUsageError({"remote-write"}, "remote-write needs --url URL");
  ExpectUsageError({"remote-write", "--url", "http://x", "--header", "novalue"},
                   "a header is 'Name: value'; this one has no ':'");
  ReplayFlags f = Flags({"remote-write", "--url", "ftp://x/w"});
  EXPECT_EQ(f.action, ReplayFlags::Action::kUsageError);
  EXPECT_EQ(f.text.rfind("--url: ", 0), 0u) << f.text;
  f = Flags({"metrics", "--basic-auth-user", "u"});
  EXPECT_EQ(f.text, "--basic-auth-user does not apply to metrics (only to remote-write)");
  ExpectUsageError({"--by", "week"}, "--by must be day, month, session, project, model or device");
  ExpectUsageError({"--progress", "sometimes"}, "--progress must be auto, always or never");
  ExpectUsageError({"--project-label", "x"},
                   "--project-label must be basename, path, hash or none");
  EXPECT_EQ(Flags({"--no-such-flag"}).action, ReplayFlags::Action::kUsageError);
  EXPECT_EQ(Flags({"summary", "extra"}).action, ReplayFlags::Action::kUsageError);
}

TEST(ReplayFlagsTest, HelpListsTheCommandsAndTheRanges) {
  ReplayFlags f = Flags({"--help"});
  ASSERT_EQ(f.action, ReplayFlags::Action::kHelp);
  for (const char* want : {"usage: ccmon-replay", "remote-write options:", "--max-line-bytes N",
                           "1024..1073741824", "--step DURATION", "1s..1d", "3 no projects",
                           "--max-models N", "(default 50)", "--max-tools N", "(default 200)"}) {
    EXPECT_NE(f.text.find(want), std::string::npos) << want << "\n" << f.text;
  }
}

TEST(ReplayStep, ParsesDurations) {
  int64_t ms = 0;
  EXPECT_TRUE(ParseStep("1m", &ms));
  EXPECT_EQ(ms, 60000);
  EXPECT_TRUE(ParseStep("30s", &ms));
  EXPECT_EQ(ms, 30000);
  EXPECT_TRUE(ParseStep("2h", &ms));
  EXPECT_EQ(ms, 7200000);
  EXPECT_FALSE(ParseStep("0m", &ms));
  EXPECT_FALSE(ParseStep("m", &ms));
  EXPECT_FALSE(ParseStep("5x", &ms));
  EXPECT_FALSE(ParseStep("-1m", &ms));
  EXPECT_TRUE(ParseStep("1d", &ms));
  EXPECT_EQ(ms, 86400000);
  EXPECT_TRUE(ParseStep("86400s", &ms));
  EXPECT_FALSE(ParseStep("86401s", &ms));
  EXPECT_FALSE(ParseStep("25h", &ms));
  EXPECT_FALSE(ParseStep("99999999999999999999s", &ms));
}

TEST_F(ReplayTest, NamesFromTranscriptsReachTheTerminalWithoutControlCharacters) {
  // A published or copied transcript set can hold any string: a model or cwd with ESC sequences
  // (clear the screen, set the window title), a raw CR or a C1 CSI must not act on the terminal
  // of whoever prints the report, nor split its lines. JSON output keeps them (JSON-escaped).
  const std::string evil_model = R"(claude-x\u001b[2J\u001b]0;owned\u0007)";
  const std::string evil_cwd = R"(/w/evil\r\u009b31mred)";
  Write(dir_ + "/projects/-w-e/s3.jsonl",
        Line("9", "2026-09-03T02:00:00.000Z", "s3", evil_cwd, 5, 5, evil_model));
  Write(dir_ + "/projects/bad\x1b[2Jdir\n/x.jsonl", "");
  ::chmod((dir_ + "/projects/bad\x1b[2Jdir\n").c_str(), 0);
  const bool root = ::geteuid() == 0;
  for (const char* by : {"model", "project"}) {
    ReplayConfig cfg = Config();
    cfg.json = false;
    ASSERT_TRUE(ParseGroupBy(by, &cfg.group_by));
    Out r = Replay(cfg);
    ASSERT_EQ(r.code, root ? 0 : 4) << r.err;
    for (const std::string* text : {&r.out, &r.err}) {
      EXPECT_EQ(text->find('\x1b'), std::string::npos) << *text;
      EXPECT_EQ(text->find('\x07'), std::string::npos) << *text;
      EXPECT_EQ(text->find('\r'), std::string::npos) << *text;
      EXPECT_EQ(text->find("\xc2\x9b"), std::string::npos) << *text;
    }
    EXPECT_NE(r.err.find("no price for model 'claude-x\\x1b[2J\\x1b]0;owned\\x07'"),
              std::string::npos)
        << r.err;
    if (!root) {
      EXPECT_NE(r.err.find("bad\\x1b[2Jdir\\n"), std::string::npos) << r.err;
    }
    // No name splits a line: the header, 2 models or 3 projects, the rule, the totals, a blank
    // line, the files line and the unpriced line.
    const size_t rows = std::string(by) == "model" ? 2 : 3;
    const size_t lines = size_t(std::count(r.out.begin(), r.out.end(), '\n'));
    EXPECT_EQ(lines, 1 + rows + 5) << r.out;
  }
  ReplayConfig cfg = Config();
  cfg.group_by = GroupBy::kModel;
  Out r = Replay(cfg);
  ASSERT_EQ(r.code, root ? 0 : 4) << r.err;
  EXPECT_EQ(r.json()["rows"][1]["key"], "claude-x\x1b[2J\x1b]0;owned\x07");
  ::chmod((dir_ + "/projects/bad\x1b[2Jdir\n").c_str(), 0755);
}

}  // namespace
}  // namespace ccmon
