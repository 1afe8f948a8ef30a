// Tests of ccmon-pricing (src/tools/pricing) through RunPricing, with real files and a real
// HTTP server on 127.0.0.1 for `update --from URL`.
#include "tools/pricing/pricing_tool.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "pricing/pricing.h"

namespace ccmon {
namespace {

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

ToolRun Pricing(PricingConfig cfg) {
  std::ostringstream out, err;
  int code = RunPricing(cfg, out, err);
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
  for (const char* bad : {"claude-zero-price", "claude-negative", "claude-absurd", "claude-no-output",
                          "claude-no-cache"}) {
    EXPECT_NE(r.out.find(std::string("rejected  model ") + bad), std::string::npos) << bad << "\n" << r.out;
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
  EXPECT_NE(r.out.find("claude-opus-4-6: in 5 out 25 write5m 6.25 write1h 10 read 0.5 | fast x6 | us x1.1"),
            std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace ccmon
