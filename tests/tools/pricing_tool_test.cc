// Tests of ccmon-pricing (src/tools/pricing) through RunPricing, with real files and a real
// HTTP server on 127.0.0.1 for `update --from URL`.
#include "tools/pricing/pricing_tool.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "pricing/pricing.h"
#include "testing/fault_env.h"
#include "testing/refusing_stream.h"
#include "testing/temp_dir.h"
#include "tools/pricing/flags.h"

namespace ccmon {
namespace {

using testing_util::Fault;
using testing_util::FaultEnv;
using testing_util::FaultOp;
using testing_util::Listing;
using testing_util::RefusingBuf;

std::string DataFile() { return std::string(CCMON_TEST_DATA) + "/litellm_sample.json"; }

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "ccmon_pricing_XXXXXX";
  char* d = ::mkdtemp(tmpl.data());
  return d ? d : "";
}

struct ToolRun {
  int code;
  std::string out, err;
};

ToolRun Pricing(PricingConfig cfg, Env* env = Env::Default()) {
  std::ostringstream out, err;
  int code = RunPricing(cfg, out, err, env);
  return {code, out.str(), err.str()};
}

PricingConfig Update(const std::string& to) {
  PricingConfig cfg;
  cfg.command = "update";
  cfg.from = DataFile();
  cfg.output = to;
  cfg.pricing_file = std::string(CCMON_DEFAULT_PRICES);  // the embedded table's source file
  return cfg;
}

TEST(PricingUpdate, ReportsAddedChangedRejectedAndWritesTheFile) {
  std::string dir = TempDir();
  ToolRun r = Pricing(Update(dir + "/pricing.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("added     claude-newmodel-9"), std::string::npos) << r.out;
  // haiku-4-5's input moved from $1 to $1.2 per million in the sample.
  EXPECT_NE(r.out.find("changed   claude-haiku-4-5-20251001: in 1 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("->  in 1.2 "), std::string::npos) << r.out;
  for (const char* bad : {"claude-zero-price", "claude-negative", "claude-absurd",
                          "claude-no-output", "claude-no-cache"}) {
    EXPECT_NE(r.out.find(std::string("rejected  model ") + bad), std::string::npos) << bad << "\n"
                                                                                    << r.out;
  }
  // Provider-prefixed and non-Anthropic entries are not models of ours.
  EXPECT_EQ(r.out.find("anthropic/claude-opus-4-6"), std::string::npos);
  EXPECT_EQ(r.out.find("gpt-4o"), std::string::npos);
  EXPECT_EQ(r.out.find("claude-opus-4-6:"), std::string::npos) << "unchanged models are not listed";

  PriceTable written;
  ASSERT_TRUE(PriceTable::FromFile(dir + "/pricing.json", &written).ok());
  ASSERT_NE(written.Find("claude-newmodel-9"), nullptr);
  EXPECT_EQ(written.Find("claude-newmodel-9")->base.input, 2'000'000);
  EXPECT_EQ(written.Find("claude-haiku-4-5-20251001")->base.input, 1'200'000);
  // Models the source does not list are kept unless --prune.
  EXPECT_NE(written.Find("claude-3-5-sonnet-20241022"), nullptr);
  EXPECT_EQ(written.Find("claude-opus-4-6")->fast_multiplier_milli, 6000);
  ASSERT_TRUE(written.Find("claude-sonnet-4-5-20250929")->above_200k.has_value());
}

TEST(PricingUpdate, DryRunWritesNothingAndPruneRemoves) {
  std::string dir = TempDir();
  PricingConfig cfg = Update(dir + "/pricing.json");
  cfg.dry_run = true;
  cfg.prune = true;
  ToolRun r = Pricing(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("removed   claude-3-5-sonnet-20241022"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dry run"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir + "/pricing.json"));
}

TEST(PricingUpdate, WritesThroughTheAtomicWriterWithMode0644) {
  testing_util::TempDir dir;
  FaultEnv env(Env::Default());
  ::umask(022);
  ToolRun r = Pricing(Update(dir / "pricing.json"), &env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(env.calls(FaultOp::kRename), 1);
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"pricing.json"});
  EXPECT_EQ(std::filesystem::status(dir / "pricing.json").permissions(),
            std::filesystem::perms(0644));
}

TEST(PricingUpdate, AFailedWriteKeepsTheOldTableAndLeavesNoTemporary) {
  testing_util::TempDir dir;
  const std::string path = dir / "pricing.json";
  std::ofstream(path) << "old table";
  FaultEnv env(Env::Default());
  env.Inject(Fault(FaultOp::kAppend, ENOSPC));
  ToolRun r = Pricing(Update(path), &env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(
      r.err.find("cannot write " + path + ": " + path + ".tmp: write: No space left on device"),
      std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("wrote "), std::string::npos) << r.out;
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"pricing.json"});
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "old table");

  // --to names a directory: refused before anything is written (a rename would replace it;
  // a failing rename is tested in WriteOutputFile.AFailedRenameLeavesNoTemporary).
  std::filesystem::create_directories(dir / "a-directory/inside");
  r = Pricing(Update(dir / "a-directory"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
  EXPECT_EQ(Listing(dir.path()), (std::vector<std::string>{"a-directory", "pricing.json"}));

  // A path under a regular file cannot be created at all.
  r = Pricing(Update(dir / "pricing.json/sub.json"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Listing(dir.path()), (std::vector<std::string>{"a-directory", "pricing.json"}));
}

TEST(PricingUpdate, RejectsANonLiteLlmFile) {
  std::string dir = TempDir();
  std::ofstream(dir + "/bad.json") << "[1,2,3]";
  PricingConfig cfg = Update(dir + "/pricing.json");
  cfg.from = dir + "/bad.json";
  ToolRun r = Pricing(cfg);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not a LiteLLM pricing file"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/pricing.json"));
}

TEST(PricingUpdate, NamesFromTheSourcePrintWithoutControlCharacters) {
  // LiteLLM's file comes from the network: a key with ESC sequences must not reach the terminal
  // as such, whether the model is added or rejected; the file written keeps the name as it is.
  std::string dir = TempDir();
  std::ofstream(dir + "/evil.json") << R"({
    "claude-evil\u001b[2J\u001b]0;x\u0007": {"litellm_provider": "anthropic",
      "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
      "cache_creation_input_token_cost": 3.75e-06, "cache_read_input_token_cost": 3e-07},
    "claude-bad\u009b31m": {"litellm_provider": "anthropic", "input_cost_per_token": null}})";
  PricingConfig cfg = Update(dir + "/pricing.json");
  cfg.from = dir + "/evil.json";
  ToolRun r = Pricing(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const std::string* text : {&r.out, &r.err}) {
    EXPECT_EQ(text->find('\x1b'), std::string::npos) << *text;
    EXPECT_EQ(text->find('\x07'), std::string::npos) << *text;
    EXPECT_EQ(text->find("\xc2\x9b"), std::string::npos) << *text;
  }
  EXPECT_NE(r.out.find("added     claude-evil\\x1b[2J\\x1b]0;x\\x07: "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("rejected  model claude-bad\\xc2\\x9b31m"), std::string::npos) << r.out;

  PricingConfig show;
  show.command = "show";
  show.pricing_file = dir + "/pricing.json";
  r = Pricing(show);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("claude-evil\\x1b[2J\\x1b]0;x\\x07: "), std::string::npos) << r.out;
  PriceTable written;
  ASSERT_TRUE(PriceTable::FromFile(dir + "/pricing.json", &written).ok());
  EXPECT_TRUE(written.models().count("claude-evil\x1b[2J\x1b]0;x\x07"));
}

// A one-shot HTTP server on 127.0.0.1:0 that answers every request with `response`.
class OneShotServer {
 public:
  explicit OneShotServer(std::string body)
      : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, body] {
      boost::asio::ip::tcp::socket sock(io_);
      acceptor_.accept(sock);
      boost::asio::streambuf req;
      boost::asio::read_until(sock, req, "\r\n\r\n");
      std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      boost::asio::write(sock, boost::asio::buffer(resp));
    });
  }
  ~OneShotServer() { thread_.join(); }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

TEST(PricingUpdate, FetchesFromAnHttpUrl) {
  std::ifstream in(DataFile());
  std::stringstream ss;
  ss << in.rdbuf();
  OneShotServer server(ss.str());
  std::string dir = TempDir();
  PricingConfig cfg = Update(dir + "/pricing.json");
  cfg.from = "http://127.0.0.1:" + std::to_string(server.port()) + "/model_prices.json";
  ToolRun r = Pricing(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("added     claude-newmodel-9"), std::string::npos) << r.out;
}

TEST(PricingCost, PricesAHandMadeRequest) {
  PricingConfig cfg;
  cfg.command = "cost";
  cfg.pricing_file = std::string(CCMON_DEFAULT_PRICES);
  cfg.model = "anthropic/claude-sonnet-4-5-20250929";
  cfg.input = 150000;
  cfg.cache_read = 50001;  // prompt 200001: the whole request at above-200k rates
  cfg.output_tokens = 1000;
  ToolRun r = Pricing(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("above-200k rates"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cost $0.9525006\n"), std::string::npos) << r.out;
  cfg.cache_read = 50000;  // exactly 200000: base rates
  r = Pricing(cfg);
  EXPECT_NE(r.out.find("cost $0.48\n"), std::string::npos) << r.out;
}

TEST(PricingCost, HugeCountsAreExact) {
  PricingConfig cfg;
  cfg.command = "cost";
  cfg.pricing_file = std::string(CCMON_DEFAULT_PRICES);
  cfg.model = "claude-sonnet-4-5-20250929";
  cfg.output_tokens = 1'000'000'000'000;  // $15 per million: $15,000,000 (was $-3446744.07...)
  ToolRun r = Pricing(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cost $15000000\n"), std::string::npos) << r.out;
  // Every count at its maximum, long-context tier, fast mode and US-only inference (opus-4-6:
  // x6 and x1.1).
  cfg.model = "claude-opus-4-6";
  cfg.input = cfg.output_tokens = cfg.cache_write_5m = cfg.cache_write_1h = cfg.cache_read =
      cfg.web_search = kMaxCostCount;
  cfg.fast = true;
  cfg.us = true;
  r = Pricing(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  const ModelPrice& p = *PriceTable::Embedded().Find("claude-opus-4-6");
  const Rates& rates = p.above_200k ? *p.above_200k : p.base;
  const PicoSum n = kMaxCostCount;
  const PicoSum tokens = n * (rates.input + rates.output + rates.cache_write_5m +
                              rates.cache_write_1h() + rates.cache_read);
  const PicoSum want =
      (tokens * p.fast_multiplier_milli * p.us_multiplier_milli + 500'000) / 1'000'000 +
      n * PriceTable::Embedded().web_search_cost();
  EXPECT_NE(r.out.find("cost $" + FormatUsd(want) + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("prompt 4000000000000000 tokens"), std::string::npos) << r.out;
  cfg.cache_read = kMaxCostCount + 1;  // beyond what the flags take: refused, not wrapped
  r = Pricing(cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
}

TEST(PricingCost, TheExactCostIsPriceRequestsRule) {
  // PriceTokensExactly must stay PriceRequest's rule: compare them wherever PriceRequest's 64-bit
  // arithmetic holds (counts below 2^31), on every model, tier, speed and inference region.
  const PriceTable& table = PriceTable::Embedded();
  std::mt19937_64 rng(6);
  auto count = [&] {
    switch (rng() % 4) {
      case 0:
        return uint64_t(0);
      case 1:
        return rng() % 1000;
      case 2:
        return rng() % 300000;
      default:
        return rng() % (uint64_t(1) << 31);
    }
  };
  int compared = 0;
  for (const auto& [name, price] : table.models()) {
    for (int i = 0; i < 200; ++i) {
      TokenCounts t{count(), count(), count(), count(), count()};
      const uint64_t web = rng() % 50;
      const bool fast = rng() % 2 == 0;
      const bool us = rng() % 2 == 0;
      CostBreakdown want =
          PriceRequest(&price, table.web_search_cost(), t, web, fast, us, false, 0);
      ExactCost got = PriceTokensExactly(price, table.web_search_cost(), t, web, fast, us);
      ASSERT_EQ(got.premium, want.premium) << name;
      ASSERT_TRUE(got.cost == want.cost)
          << name << " " << FormatUsd(got.cost) << " " << FormatUsd(want.cost);
      ASSERT_TRUE(got.cache_savings == want.cache_savings) << name;
      ++compared;
    }
  }
  EXPECT_GT(compared, 1000);
}

TEST(PricingCost, A39_UsFlagMultipliesTheTokenCost) {
  PricingConfig cfg;
  cfg.command = "cost";
  cfg.pricing_file = std::string(CCMON_DEFAULT_PRICES);
  cfg.model = "claude-opus-4-6";
  cfg.input = 1000000;
  ToolRun r = Pricing(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cost $5\n"), std::string::npos) << r.out;
  cfg.us = true;
  r = Pricing(cfg);
  EXPECT_NE(r.out.find("US-only inference"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cost $5.5\n"), std::string::npos) << r.out;
  cfg.fast = true;  // 1M input: $5 x 6 x 1.1
  r = Pricing(cfg);
  EXPECT_NE(r.out.find("cost $33\n"), std::string::npos) << r.out;
}

TEST(PricingCost, UnknownModelIsAnError) {
  PricingConfig cfg;
  cfg.command = "cost";
  cfg.pricing_file = std::string(CCMON_DEFAULT_PRICES);
  cfg.model = "claude-unknown-9";
  ToolRun r = Pricing(cfg);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no price for claude-unknown-9"), std::string::npos);
}

TEST(PricingShow, ShowsOneModelPerMillion) {
  PricingConfig cfg;
  cfg.command = "show";
  cfg.pricing_file = std::string(CCMON_DEFAULT_PRICES);
  cfg.model = "us.anthropic.claude-opus-4-6-v1:0";
  ToolRun r = Pricing(cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(
      r.out.find(
          "claude-opus-4-6: in 5 out 25 write5m 6.25 write1h 10 read 0.5 | fast x6 | us x1.1"),
      std::string::npos)
      << r.out;
}

TEST(PricingRun, AFailedWriteToTheOutputIsAFailure) {
  for (const char* command : {"show", "cost"}) {
    PricingConfig cfg;
    cfg.command = command;
    cfg.pricing_file = std::string(CCMON_DEFAULT_PRICES);
    cfg.model = "claude-opus-4-6";
    RefusingBuf refusing;
    std::ostream out(&refusing);
    std::ostringstream err;
    EXPECT_EQ(RunPricing(cfg, out, err), 1) << command;
    EXPECT_NE(err.str().find("ccmon-pricing: write failed for standard output"), std::string::npos)
        << err.str();
  }
}

// The command line, parsed without a process.
PricingFlags Flags(std::vector<std::string> args) { return ParsePricingFlags(args); }

void ExpectUsageError(const std::vector<std::string>& args, const std::string& message) {
  PricingFlags f = Flags(args);
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  EXPECT_EQ(f.action, PricingFlags::Action::kUsageError) << joined;
  EXPECT_EQ(f.text, message) << joined;
}

TEST(PricingFlagsTest, ParsesEachCommand) {
  PricingFlags f = Flags({"update", "--from", "l.json", "--to", "p.json", "--dry-run", "--prune",
                          "--pricing", "cur.json"});
  ASSERT_EQ(f.action, PricingFlags::Action::kRun) << f.text;
  EXPECT_EQ(f.config.command, "update");
  EXPECT_EQ(f.config.from, "l.json");
  EXPECT_EQ(f.config.output, "p.json");
  EXPECT_EQ(f.config.pricing_file, "cur.json");
  EXPECT_TRUE(f.config.dry_run && f.config.prune);
  f = Flags({"show", "claude-opus-4-6"});
  ASSERT_EQ(f.action, PricingFlags::Action::kRun) << f.text;
  EXPECT_EQ(f.config.model, "claude-opus-4-6");
  f = Flags({"cost", "m", "--input", "1", "--output", "1000000000000000", "--cache-write-5m", "3",
             "--cache-write-1h", "4", "--cache-read", "5", "--web-search", "6", "--fast", "--us"});
  ASSERT_EQ(f.action, PricingFlags::Action::kRun) << f.text;
  EXPECT_EQ(f.config.model, "m");
  EXPECT_EQ(f.config.input, 1u);
  EXPECT_EQ(f.config.output_tokens, kMaxCostCount);
  EXPECT_EQ(f.config.cache_write_5m, 3u);
  EXPECT_EQ(f.config.cache_write_1h, 4u);
  EXPECT_EQ(f.config.cache_read, 5u);
  EXPECT_EQ(f.config.web_search, 6u);
  EXPECT_TRUE(f.config.fast);
  EXPECT_TRUE(f.config.us);
}

TEST(PricingFlagsTest, NegativeAndHugeCountsAreRefused) {
  const std::string range = " wants an integer from 0 to 1000000000000000, got '";
  ExpectUsageError({"cost", "m", "--input", "-5"}, "--input" + range + "-5'");
  ExpectUsageError({"cost", "m", "--output", "1000000000000001"},
                   "--output" + range + "1000000000000001'");
  ExpectUsageError({"cost", "m", "--cache-read", "18446744073709551616"},
                   "--cache-read" + range + "18446744073709551616'");
  ExpectUsageError({"cost", "m", "--web-search", "1.5"}, "--web-search" + range + "1.5'");
  ExpectUsageError({"cost", "m", "--cache-write-1h", ""}, "--cache-write-1h" + range + "'");
}

TEST(PricingFlagsTest, FlagsOfAnotherCommandAreRefused) {
  ExpectUsageError({"update", "--from", "x", "--input", "5"},
                   "--input does not apply to update (only to cost)");
  ExpectUsageError({"show", "--fast"}, "--fast does not apply to show (only to cost)");
  ExpectUsageError({"show", "--us"}, "--us does not apply to show (only to cost)");
  ExpectUsageError({"cost", "m", "--to", "p.json"}, "--to does not apply to cost (only to update)");
  ExpectUsageError({"show", "--dry-run"}, "--dry-run does not apply to show (only to update)");
  ExpectUsageError({"update", "--from", "x", "claude-opus-4-6"},
                   "update takes no MODEL (got 'claude-opus-4-6')");
}

TEST(PricingFlagsTest, OtherUsageErrorsAndHelp) {
  ExpectUsageError({"cost"}, "cost needs a MODEL");
  ExpectUsageError({"update"},
                   "update needs --from FILE|URL (LiteLLM's model_prices_and_context_window.json)");
  ExpectUsageError({"price"}, "unknown command 'price' (update, show, cost)");
  PricingFlags f = Flags({});
  EXPECT_EQ(f.action, PricingFlags::Action::kUsageError);
  EXPECT_NE(f.text.find("usage: ccmon-pricing"), std::string::npos) << f.text;
  f = Flags({"--help"});
  EXPECT_EQ(f.action, PricingFlags::Action::kHelp);
  EXPECT_NE(f.text.find("--input N"), std::string::npos) << f.text;
  EXPECT_NE(f.text.find("0..1000000000000000"), std::string::npos) << f.text;
}

}  // namespace
}  // namespace ccmon
