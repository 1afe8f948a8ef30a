// Pricing (docs/accounting.md A20-A29). Every expected value is computed by hand in pico-dollars.
#include "pricing/pricing.h"

#include <gtest/gtest.h>

#include <string>

#include "testing/fault_env.h"
#include "testing/mem_env.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

constexpr Pico kM = 1000000;  // $1e-6 per token = 1,000,000 pico

CostBreakdown Price(const char* model, TokenCounts t, uint64_t web = 0, bool fast = false,
                    bool has_cost = false, Pico cost = 0, bool us = false) {
  const PriceTable& table = PriceTable::Embedded();
  return PriceRequest(table.Find(model), table.web_search_cost(), t, web, fast, us, has_cost, cost);
}

TEST(Pricing, A29_EmbeddedTableHasTheCurrentModels) {
  const PriceTable& t = PriceTable::Embedded();
  EXPECT_EQ(t.web_search_cost(), 10000000000);
  EXPECT_FALSE(t.updated().empty());
  ASSERT_TRUE(t.models().count("claude-opus-4-6"));
  ASSERT_TRUE(t.models().count("claude-sonnet-4-5-20250929"));
  ASSERT_TRUE(t.models().count("claude-haiku-4-5-20251001"));

  const ModelPrice& opus = t.models().at("claude-opus-4-6");
  EXPECT_EQ(opus.base, (Rates{5 * kM, 25 * kM, 6250000, 500000}));
  EXPECT_EQ(opus.base.cache_write_1h(), 10 * kM);
  EXPECT_FALSE(opus.above_200k.has_value());
  EXPECT_EQ(opus.fast_multiplier_milli, 6000);

  const ModelPrice& sonnet = t.models().at("claude-sonnet-4-5-20250929");
  EXPECT_EQ(sonnet.base, (Rates{3 * kM, 15 * kM, 3750000, 300000}));
  ASSERT_TRUE(sonnet.above_200k.has_value());
  EXPECT_EQ(*sonnet.above_200k, (Rates{6 * kM, 22500000, 7500000, 600000}));
  EXPECT_EQ(sonnet.fast_multiplier_milli, 1000);

  const ModelPrice& haiku = t.models().at("claude-haiku-4-5-20251001");
  EXPECT_EQ(haiku.base, (Rates{1 * kM, 5 * kM, 1250000, 100000}));
  EXPECT_FALSE(haiku.above_200k.has_value());
}

TEST(Pricing, A21_PerRequestFormula) {
  // sonnet-4-5: in 3, out 15, w5m 3.75, w1h 6 (2x in), read 0.30 $/Mtok.
  TokenCounts t{1000, 500, 2000, 3000, 10000};
  CostBreakdown c = Price("claude-sonnet-4-5-20250929", t);
  EXPECT_TRUE(c.priced);
  EXPECT_FALSE(c.premium);
  // 1000*3e6 + 500*15e6 + 2000*3.75e6 + 3000*6e6 + 10000*0.3e6
  EXPECT_EQ(c.cost, 3000000000 + 7500000000 + 7500000000 + 18000000000 + 3000000000);
  EXPECT_EQ(c.cost, 39000000000);
  // haiku-4-5: 1/5/1.25/2/0.10.
  c = Price("claude-haiku-4-5-20251001", TokenCounts{10, 20, 30, 40, 50});
  EXPECT_EQ(c.cost, 10 * 1000000 + 20 * 5000000 + 30 * 1250000 + 40 * 2000000 + 50 * 100000);
  // No tokens: 0, but priced.
  c = Price("claude-opus-4-6", TokenCounts{});
  EXPECT_TRUE(c.priced);
  EXPECT_EQ(c.cost, 0);
}

TEST(Pricing, A22_LongContextIsWholeRequestAndStrictlyAbove200k) {
  // Prompt exactly 200000 (100000 in + 50000 w5m + 25000 w1h + 25000 read): base rates.
  TokenCounts at{100000, 1000, 50000, 25000, 25000};
  ASSERT_EQ(at.PromptTokens(), 200000u);
  CostBreakdown c = Price("claude-sonnet-4-5-20250929", at);
  EXPECT_FALSE(c.premium);
  EXPECT_EQ(c.cost, 300000000000 + 15000000000 + 187500000000 + 150000000000 + 7500000000);
  EXPECT_EQ(c.cost, 660000000000);
  // One more input token: every token, output included, at the above-200k rates
  // (in 6, out 22.5, w5m 7.5, w1h 12, read 0.6).
  TokenCounts over{100001, 1000, 50000, 25000, 25000};
  c = Price("claude-sonnet-4-5-20250929", over);
  EXPECT_TRUE(c.premium);
  EXPECT_EQ(c.cost, 600006000000 + 22500000000 + 375000000000 + 300000000000 + 15000000000);
  EXPECT_EQ(c.cost, 1312506000000);
  // Output does not count toward the threshold.
  c = Price("claude-sonnet-4-5-20250929", TokenCounts{200000, 1000000, 0, 0, 0});
  EXPECT_FALSE(c.premium);
  EXPECT_EQ(c.cost, 200000 * 3 * kM + 1000000 * 15 * kM);
  // A model without the tier never goes premium.
  c = Price("claude-opus-4-6", TokenCounts{300000, 0, 0, 0, 0});
  EXPECT_FALSE(c.premium);
  EXPECT_EQ(c.cost, 300000 * 5 * kM);
}

TEST(Pricing, A23_FastModeMultipliesTokenCost) {
  // opus-4-6 fast x6: (1000*5e6 + 100*25e6) * 6.
  CostBreakdown slow = Price("claude-opus-4-6", TokenCounts{1000, 100, 0, 0, 0});
  CostBreakdown fast = Price("claude-opus-4-6", TokenCounts{1000, 100, 0, 0, 0}, 0, /*fast=*/true);
  EXPECT_EQ(slow.cost, 7500000000);
  EXPECT_EQ(fast.cost, 45000000000);
  // ccusage's measured case: 1M input on opus-4-6 fast is $30.
  EXPECT_EQ(FormatUsd(Price("claude-opus-4-6", TokenCounts{1000000, 0, 0, 0, 0}, 0, true).cost),
            "30");
  // opus-4-8: x2; a model without a fast factor: unchanged.
  EXPECT_EQ(Price("claude-opus-4-8", TokenCounts{1000, 100, 0, 0, 0}, 0, true).cost, 15000000000);
  EXPECT_EQ(Price("claude-sonnet-4-5-20250929", TokenCounts{1000, 0, 0, 0, 0}, 0, true).cost,
            3000000000);
  // Web searches are not multiplied.
  EXPECT_EQ(Price("claude-opus-4-6", TokenCounts{1000, 100, 0, 0, 0}, 2, true).cost,
            45000000000 + 20000000000);
  // A fractional factor rounds half up on the pico total: 7 pico x 1.5 = 10.5 -> 11.
  ModelPrice p;
  p.base = Rates{7, 0, 0, 0};
  p.fast_multiplier_milli = 1500;
  EXPECT_EQ(PriceRequest(&p, 0, TokenCounts{1, 0, 0, 0, 0}, 0, true, false, false, 0).cost, 11);
}

TEST(Pricing, A24_WebSearchAddsOneCentEach) {
  CostBreakdown c = Price("claude-sonnet-4-5-20250929", TokenCounts{}, /*web=*/3);
  EXPECT_EQ(c.cost, 30000000000);
  EXPECT_EQ(FormatUsd(c.cost), "0.03");
  c = Price("claude-sonnet-4-5-20250929", TokenCounts{1000, 0, 0, 0, 0}, 1);
  EXPECT_EQ(c.cost, 3000000000 + 10000000000);
  // The price file's web_search_cost_per_request is used.
  PriceTable t;
  ASSERT_TRUE(
      PriceTable::FromJson(
          R"J({"web_search_cost_per_request":0.02,"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":2e-06}}})J",
          &t)
          .ok());
  EXPECT_EQ(t.web_search_cost(), 20000000000);
  EXPECT_EQ(PriceRequest(t.Find("claude-x"), t.web_search_cost(), TokenCounts{}, 2, false, false,
                         false, 0)
                .cost,
            40000000000);
}

TEST(Pricing, A25_CostUsdOverridesTheComputedCost) {
  CostBreakdown c = Price("claude-sonnet-4-5-20250929", TokenCounts{1000, 500, 0, 0, 0}, 4, true,
                          /*has_cost=*/true, 123456789000);
  EXPECT_TRUE(c.priced);
  EXPECT_EQ(c.cost, 123456789000);
  // Also for an unknown model: priced, at exactly costUSD.
  c = Price("claude-unknown-9", TokenCounts{1000, 500, 0, 0, 0}, 0, false, true, 5);
  EXPECT_TRUE(c.priced);
  EXPECT_EQ(c.cost, 5);
  // costUSD 0 is a cost too.
  c = Price("claude-sonnet-4-5-20250929", TokenCounts{1000, 0, 0, 0, 0}, 0, false, true, 0);
  EXPECT_TRUE(c.priced);
  EXPECT_EQ(c.cost, 0);
}

TEST(Pricing, A26_UnknownModelIsUnpriced) {
  CostBreakdown c = Price("claude-unknown-9", TokenCounts{1000000, 10, 20, 30, 40}, 2, true);
  EXPECT_FALSE(c.priced);
  EXPECT_FALSE(c.premium);
  EXPECT_EQ(c.cost, 0);
  EXPECT_EQ(c.cache_savings, 0);
  EXPECT_EQ(PriceTable::Embedded().Find("<synthetic>"), nullptr);
  EXPECT_EQ(PriceTable::Embedded().Find(""), nullptr);
}

TEST(Pricing, A27_DatedIdFallsBackToUndatedAlias) {
  const PriceTable& t = PriceTable::Embedded();
  // An exact entry wins.
  EXPECT_EQ(t.Find("claude-sonnet-4-5-20250929"), &t.models().at("claude-sonnet-4-5-20250929"));
  // A future dated id of an undated alias.
  EXPECT_EQ(t.Find("claude-opus-4-6-20990101"), &t.models().at("claude-opus-4-6"));
  PriceTable custom;
  ModelPrice p;
  p.base = Rates{1, 2, 3, 4};
  custom.Set("claude-x", p);
  EXPECT_EQ(custom.Find("claude-x-20990101"), &custom.models().at("claude-x"));
  EXPECT_EQ(custom.Find("claude-x"), &custom.models().at("claude-x"));
  for (const char* miss : {"claude-x-2099010a", "claude-x20990101", "claude-x-2099010",
                           "claude-x-209901011", "claude-y-20990101", "20990101"}) {
    EXPECT_EQ(custom.Find(miss), nullptr) << miss;
  }
  custom.Erase("claude-x");
  EXPECT_EQ(custom.Find("claude-x"), nullptr);
}

TEST(Pricing, A28_CacheSavingsAtTheRequestsTierAndSpeed) {
  // sonnet-4-5 base: 10000 reads * (3e6 - 0.3e6).
  EXPECT_EQ(
      Price("claude-sonnet-4-5-20250929", TokenCounts{1000, 500, 2000, 3000, 10000}).cache_savings,
      27000000000);
  // Premium: 25000 reads * (6e6 - 0.6e6).
  EXPECT_EQ(Price("claude-sonnet-4-5-20250929", TokenCounts{100001, 1000, 50000, 25000, 25000})
                .cache_savings,
            135000000000);
  // Fast opus-4-6: 10000 * (5e6 - 0.5e6) * 6.
  EXPECT_EQ(Price("claude-opus-4-6", TokenCounts{0, 0, 0, 0, 10000}, 0, true).cache_savings,
            270000000000);
  EXPECT_EQ(Price("claude-opus-4-6", TokenCounts{0, 0, 0, 0, 10000}).cache_savings, 45000000000);
  // No reads, no savings.
  EXPECT_EQ(Price("claude-opus-4-6", TokenCounts{5, 5, 5, 5, 0}).cache_savings, 0);
}

TEST(Pricing, A29_MissingCacheRatesDefault) {
  PriceTable t;
  Status s = PriceTable::FromJson(R"J({"models":{
    "claude-a":{"input_cost_per_token":4e-06,"output_cost_per_token":2e-05},
    "claude-b":{"input_cost_per_token":4e-06,"output_cost_per_token":2e-05,"cache_creation_input_token_cost":null,"cache_read_input_token_cost":7e-07},
    "claude-c":{"input_cost_per_token":4e-06,"output_cost_per_token":2e-05,"input_cost_per_token_above_200k_tokens":8e-06},
    "claude-d":{"input_cost_per_token":4e-06,"output_cost_per_token":2e-05,"provider_specific_entry":{"fast":2.5,"us":1.1}}}})J",
                                  &t);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(t.models().at("claude-a").base, (Rates{4 * kM, 20 * kM, 5 * kM, 400000}));
  EXPECT_FALSE(t.models().at("claude-a").above_200k.has_value());
  EXPECT_EQ(t.models().at("claude-b").base, (Rates{4 * kM, 20 * kM, 5 * kM, 700000}));
  ASSERT_TRUE(t.models().at("claude-c").above_200k.has_value());
  EXPECT_EQ(*t.models().at("claude-c").above_200k, (Rates{8 * kM, 20 * kM, 10 * kM, 800000}));
  EXPECT_EQ(t.models().at("claude-d").fast_multiplier_milli, 2500);
  EXPECT_EQ(t.models().at("claude-d").us_multiplier_milli, 1100);
  EXPECT_EQ(t.models().at("claude-a").us_multiplier_milli, 1000);
  EXPECT_EQ(t.web_search_cost(), 10000000000);  // default $0.01
}

TEST(Pricing, A29_FromJsonErrorsNameModelAndField) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {"not json", "pricing file is not valid JSON"},
      {"[1,2]", "pricing file: top level is not an object"},
      {R"({"format":"ccmon-pricing/1"})", "pricing file: no \"models\" object"},
      {R"({"models":[]})", "pricing file: no \"models\" object"},
      {R"({"models":{"claude-x":5}})", "model claude-x: not an object"},
      {R"({"models":{"claude-x":{"output_cost_per_token":1e-06}}})",
       "model claude-x: missing input_cost_per_token"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06}}})",
       "model claude-x: missing output_cost_per_token"},
      {R"({"models":{"claude-x":{"input_cost_per_token":"1e-06","output_cost_per_token":1e-06}}})",
       "model claude-x: input_cost_per_token is not a number"},
      {R"({"models":{"claude-x":{"input_cost_per_token":-1e-06,"output_cost_per_token":1e-06}}})",
       "model claude-x: negative input_cost_per_token"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":0.5}}})",
       "model claude-x: absurd output_cost_per_token (over $10000/M tokens)"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"cache_read_input_token_cost":true}}})",
       "model claude-x: cache_read_input_token_cost is not a number"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":{"fast":0.5}}}})",
       "model claude-x: fast multiplier out of range"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":{"us":0.9}}}})",
       "model claude-x: us (US-only inference) multiplier out of range [1, 2]"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":{"us":11}}}})",
       "model claude-x: us (US-only inference) multiplier out of range [1, 2]"},
      // A factor of another type is no factor: it used to be ignored, so a price file (or a
      // LiteLLM entry) with "fast":"6" priced fast requests at 1x, silently.
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":{"fast":"6"}}}})",
       "model claude-x: fast multiplier is not a number"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":{"fast":true}}}})",
       "model claude-x: fast multiplier is not a number"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":{"us":"1.1"}}}})",
       "model claude-x: us (US-only inference) multiplier is not a number"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":"fast"}}})",
       "model claude-x: provider_specific_entry is not an object"},
      // A long-context tier is keyed by its input rate: the other above-200k rates without it
      // were dropped, so long requests' output was priced at the base rate, silently.
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"output_cost_per_token_above_200k_tokens":2e-06}}})",
       "model claude-x: above-200k rates without input_cost_per_token_above_200k_tokens"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"cache_read_input_token_cost_above_200k_tokens":2e-07}}})",
       "model claude-x: above-200k rates without input_cost_per_token_above_200k_tokens"},
      // Factors are kept in thousandths: one that would be rounded is refused (1.0005 became
      // 1.001, and the table priced fast requests at another factor than its source's).
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":{"fast":1.0005}}}})",
       "model claude-x: fast multiplier is not a whole number of thousandths"},
      {R"({"models":{"claude-x":{"input_cost_per_token":1e-06,"output_cost_per_token":1e-06,"provider_specific_entry":{"us":1.09999}}}})",
       "model claude-x: us (US-only inference) multiplier is not a whole number of thousandths"},
      {R"({"web_search_cost_per_request":-1,"models":{}})",
       "pricing file: bad web_search_cost_per_request"},
      {R"({"web_search_cost_per_request":"0.01","models":{}})",
       "pricing file: bad web_search_cost_per_request"},
  };
  for (const Case& c : cases) {
    PriceTable t;
    ModelPrice keep;
    keep.base = Rates{1, 1, 1, 1};
    t.Set("kept", keep);
    Status s = PriceTable::FromJson(c.json, &t);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.json;
    EXPECT_EQ(s.message(), c.message) << c.json;
    EXPECT_TRUE(t.models().count("kept")) << "a failed parse must not touch the output";
  }
}

TEST(Pricing, A29_FromFile) {
  testing_util::TempDir dir;
  PriceTable t;
  Status s = PriceTable::FromFile(dir / "missing.json", &t);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("missing.json"), std::string::npos);

  testing_util::WriteFile(dir / "bad.json", R"({"models":{"claude-x":{}}})");
  s = PriceTable::FromFile(dir / "bad.json", &t);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), (dir / "bad.json") + ": model claude-x: missing input_cost_per_token");

  testing_util::WriteFile(
      dir / "ok.json",
      R"({"source":"test","updated":"2026-01-02","models":{"claude-x":{"input_cost_per_token":2e-06,"output_cost_per_token":1e-05}}})");
  ASSERT_TRUE(PriceTable::FromFile(dir / "ok.json", &t).ok());
  EXPECT_EQ(t.source(), "test");
  EXPECT_EQ(t.updated(), "2026-01-02");
  ASSERT_EQ(t.models().size(), 1u);  // replaces, not merges
  EXPECT_EQ(t.models().at("claude-x").base, (Rates{2 * kM, 10 * kM, 2500000, 200000}));
}

TEST(Pricing, A29_FromFileRefusesAnEndlessFile) {
  // --pricing /dev/zero used to grow until bad_alloc.
  testing_util::FaultEnv env(Env::Default());
  PriceTable t;
  Status s = PriceTable::FromFile(&env, "/dev/zero", &t);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "cannot read pricing file: /dev/zero: larger than 67108864 bytes, not read (a pricing "
            "file is a few kB)");
  EXPECT_LE(env.bytes_read(), kMaxSmallFileBytes + (64 << 10));
  // A regular file over the cap is refused without being read.
  testing_util::MemEnv mem;
  mem.AddGeneratedFile("/big.json", "{", uint64_t(1) << 32, ' ');
  testing_util::FaultEnv counted(&mem);
  s = PriceTable::FromFile(&counted, "/big.json", &t);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(counted.bytes_read(), 0u);
}

TEST(Pricing, A29_LoadConfiguredOrderOfPrecedence) {
  const std::string kFile =
      R"({"source":"%s","models":{"claude-x":{"input_cost_per_token":2e-06,"output_cost_per_token":1e-05}}})";
  auto file = [&](const std::string& source) {
    std::string f = kFile;
    return f.replace(f.find("%s"), 2, source);
  };
  testing_util::MemEnv env;
  env.SetEnvVar("HOME", "/home/u");
  PriceTable t;
  std::string origin;
  // Nothing configured: the embedded table.
  ASSERT_TRUE(PriceTable::LoadConfigured(&env, "", &t, &origin).ok());
  EXPECT_EQ(origin, "embedded");
  EXPECT_EQ(t.models(), PriceTable::Embedded().models());
  EXPECT_EQ(PriceTable::DefaultFilePath(&env), "/home/u/.config/ccmon/pricing.json");
  // The user file, when present and readable.
  env.AddFile("/home/u/.config/ccmon/pricing.json", file("user"));
  ASSERT_TRUE(PriceTable::LoadConfigured(&env, "", &t, &origin).ok());
  EXPECT_EQ(origin, "/home/u/.config/ccmon/pricing.json");
  EXPECT_EQ(t.source(), "user");
  ASSERT_TRUE(env.SetReadable("/home/u/.config/ccmon/pricing.json", false).ok());
  ASSERT_TRUE(PriceTable::LoadConfigured(&env, "", &t, &origin).ok());
  EXPECT_EQ(origin, "embedded");
  // $XDG_CONFIG_HOME moves it.
  env.SetEnvVar("XDG_CONFIG_HOME", "/xdg");
  env.AddFile("/xdg/ccmon/pricing.json", file("xdg"));
  EXPECT_EQ(PriceTable::DefaultFilePath(&env), "/xdg/ccmon/pricing.json");
  ASSERT_TRUE(PriceTable::LoadConfigured(&env, "", &t, &origin).ok());
  EXPECT_EQ(t.source(), "xdg");
  // $CCMON_PRICING before it; the flag before everything.
  env.AddFile("/etc/p.json", file("env"));
  env.SetEnvVar("CCMON_PRICING", "/etc/p.json");
  ASSERT_TRUE(PriceTable::LoadConfigured(&env, "", &t, &origin).ok());
  EXPECT_EQ(t.source(), "env");
  env.AddFile("/flag.json", file("flag"));
  ASSERT_TRUE(PriceTable::LoadConfigured(&env, "/flag.json", &t, &origin).ok());
  EXPECT_EQ(t.source(), "flag");
  EXPECT_EQ(origin, "/flag.json");
  // A named file that is missing is an error, not a fallback.
  Status s = PriceTable::LoadConfigured(&env, "/missing.json", &t, &origin);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_EQ(s.message(),
            "cannot read pricing file: /missing.json: open: No such file or directory");
}

TEST(Pricing, A29_ToJsonRoundTrip) {
  const PriceTable& e = PriceTable::Embedded();
  PriceTable back;
  Status s = PriceTable::FromJson(e.ToJson(), &back);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(back.models(), e.models());
  EXPECT_EQ(back.web_search_cost(), e.web_search_cost());
  EXPECT_EQ(back.source(), e.source());
  EXPECT_EQ(back.updated(), e.updated());
  EXPECT_EQ(back.ToJson(), e.ToJson());

  PriceTable custom;
  ModelPrice p;
  p.base = Rates{3, 15, 4, 1};
  p.above_200k = Rates{6, 22, 8, 2};
  p.fast_multiplier_milli = 1500;
  p.us_multiplier_milli = 1125;
  custom.Set("claude-odd", p);
  ModelPrice us_only;
  us_only.base = Rates{3, 15, 4, 1};
  us_only.us_multiplier_milli = 1100;
  custom.Set("claude-us-only", us_only);
  custom.set_source("unit");
  PriceTable custom_back;
  ASSERT_TRUE(PriceTable::FromJson(custom.ToJson(), &custom_back).ok());
  EXPECT_EQ(custom_back.models(), custom.models());
  EXPECT_NE(custom.ToJson().find("\"format\": \"ccmon-pricing/1\""), std::string::npos)
      << custom.ToJson();
  EXPECT_NE(custom.ToJson().find("\"us\": 1.125"), std::string::npos) << custom.ToJson();
}

TEST(Pricing, A20_CostsAreIntegerPico) {
  // A realistic mixed request is an exact integer; summing in any order gives the same total.
  TokenCounts a{3, 1234, 25277, 8837, 16410};
  TokenCounts b{6, 136, 0, 8837, 16410};
  PicoSum ca = Price("claude-opus-4-6", a).cost;
  PicoSum cb = Price("claude-sonnet-4-5-20250929", b).cost;
  EXPECT_EQ(ca, 3 * 5 * kM + 1234 * 25 * kM + 25277 * Pico(6250000) + 8837 * 10 * kM +
                    16410 * Pico(500000));
  EXPECT_EQ(ca, 285421250000);
  EXPECT_EQ(cb, 6 * 3 * kM + 136 * 15 * kM + 8837 * 6 * kM + 16410 * Pico(300000));
  EXPECT_EQ(cb, 60003000000);
  EXPECT_EQ(PicoSum(ca) + cb, PicoSum(cb) + ca);
  EXPECT_EQ(FormatUsd(PicoSum(ca) + cb), "0.34542425");
}

TEST(Pricing, A20_OneRequestBeyond2To63PicoDoesNotWrap) {
  // Every count of one request may be up to 2^32 - 1 (A9), web searches included, and a price
  // file may hold rates up to $0.01 per token (the importer's limit) with fast and US factors:
  // such a request costs more than 2^63 pico-dollars ($9.2M), which must not wrap to a negative
  // number (a hostile or corrupt line would otherwise subtract millions from every total).
  const uint64_t web = 1000000000;  // 1e9 web searches at $0.01: $1e7 = 1e19 pico > 2^63
  CostBreakdown c = Price("claude-sonnet-4-5-20250929", TokenCounts{1, 1, 0, 0, 0}, web);
  EXPECT_EQ(c.cost, PicoSum(3 * kM + 15 * kM) + PicoSum(web) * 10000000000);
  EXPECT_GT(c.cost, PicoSum(INT64_MAX));
  EXPECT_EQ(FormatUsd(c.cost), "10000000.000018");

  const uint64_t max = 4294967295;  // the largest count a line may carry
  ModelPrice absurd;
  absurd.base = Rates{10000000000, 10000000000, 10000000000, 10000000000};  // $0.01 per token
  absurd.fast_multiplier_milli = 6000;
  absurd.us_multiplier_milli = 2000;
  const PicoSum per_token_sum = PicoSum(max) * 10000000000 * 6;  // 5 types, 1h writes at 2x
  c = PriceRequest(&absurd, 10000000000, TokenCounts{max, max, max, max, max}, max, true, true,
                   false, 0);
  EXPECT_EQ(c.cost, per_token_sum * 12 + PicoSum(max) * 10000000000);
  EXPECT_EQ(c.cache_savings, 0);
  EXPECT_GT(c.cost, PicoSum(INT64_MAX));
}

// ---- A39: US-only inference
// ----------------------------------------------------------------------

TEST(Pricing, A39_EmbeddedTableHasTheUsFactorOnOpus46AndLater) {
  const PriceTable& t = PriceTable::Embedded();
  for (const char* m : {"claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8"}) {
    EXPECT_EQ(t.models().at(m).us_multiplier_milli, 1100) << m;
  }
  for (const char* m :
       {"claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"}) {
    EXPECT_EQ(t.models().at(m).us_multiplier_milli, 1000) << m;
  }
}

TEST(Pricing, A39_UsMultipliesEveryTokenTypeAndTheSavings) {
  // opus-4-6: 1000 in, 100 out, 2000 5m writes, 3000 1h writes, 10000 reads.
  TokenCounts t{1000, 100, 2000, 3000, 10000};
  const Pico base =
      1000 * 5 * kM + 100 * 25 * kM + 2000 * Pico(6250000) + 3000 * 10 * kM + 10000 * Pico(500000);
  ASSERT_EQ(Price("claude-opus-4-6", t).cost, base);
  CostBreakdown us = Price("claude-opus-4-6", t, 0, false, false, 0, /*us=*/true);
  EXPECT_EQ(us.cost, base * 11 / 10);
  EXPECT_EQ(us.cache_savings, 10000 * Pico(4500000) * 11 / 10);
  // Each token type on its own is multiplied.
  for (int type = 0; type < 5; ++type) {
    TokenCounts one;
    (&one.input)[type] = 1000;
    EXPECT_EQ(Price("claude-opus-4-6", one, 0, false, false, 0, true).cost,
              Price("claude-opus-4-6", one).cost * 11 / 10)
        << kTokenTypes[type];
  }
  // A model without the factor: unchanged.
  EXPECT_EQ(Price("claude-sonnet-4-5-20250929", t, 0, false, false, 0, true).cost,
            Price("claude-sonnet-4-5-20250929", t).cost);
}

TEST(Pricing, A39_UsCombinesWithFastLongContextWebSearchAndCostUsd) {
  TokenCounts t{1000, 100, 0, 0, 0};
  const Pico base = Price("claude-opus-4-6", t).cost;  // 7,500,000,000
  // With fast: both factors (6 x 1.1).
  EXPECT_EQ(Price("claude-opus-4-6", t, 0, true, false, 0, true).cost, base * 66 / 10);
  // Web searches are not token prices: added after the factors.
  EXPECT_EQ(Price("claude-opus-4-6", t, 2, true, false, 0, true).cost,
            base * 66 / 10 + 2 * 10000000000);
  // A costUSD replaces everything.
  EXPECT_EQ(Price("claude-opus-4-6", t, 2, true, true, 123, true).cost, 123);
  // Long context: the factor applies to the above-200k rates.
  ModelPrice p;
  p.base = Rates{10, 50, 12, 1};
  p.above_200k = Rates{20, 75, 25, 2};
  p.us_multiplier_milli = 1100;
  TokenCounts big{200001, 10, 0, 0, 0};
  EXPECT_EQ(PriceRequest(&p, 0, big, 0, false, true, false, 0).cost,
            (200001 * 20 + 10 * 75) * 11 / 10);
  // One rounding for both factors, to the nearest: 3 x 1.5 x 1.1 = 4.95 -> 5 (rounding after each
  // factor would give 3 x 1.5 = 4.5 -> 5, then 5 x 1.1 = 5.5 -> 6); 7 x 1.5 x 1.1 = 11.55 -> 12.
  ModelPrice q;
  q.base = Rates{3, 0, 0, 0};
  q.fast_multiplier_milli = 1500;
  q.us_multiplier_milli = 1100;
  EXPECT_EQ(PriceRequest(&q, 0, TokenCounts{1, 0, 0, 0, 0}, 0, true, true, false, 0).cost, 5);
  q.base = Rates{7, 0, 0, 0};
  EXPECT_EQ(PriceRequest(&q, 0, TokenCounts{1, 0, 0, 0, 0}, 0, true, true, false, 0).cost, 12);
}

}  // namespace
}  // namespace ccmon
