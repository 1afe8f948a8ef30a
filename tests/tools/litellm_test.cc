// The LiteLLM importer of ccmon-pricing (src/tools/pricing/litellm.h).
#include "tools/pricing/litellm.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ccmon {
namespace {

TEST(LiteLlm, A29_FromLiteLlmKeepsSaneFirstPartyClaudeEntries) {
  const char* litellm = R"J({
    "sample_spec": {"input_cost_per_token": 0, "litellm_provider": "openai"},
    "claude-opus-4-6": {"litellm_provider": "anthropic", "input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05,
      "cache_creation_input_token_cost": 6.25e-06, "cache_creation_input_token_cost_above_1hr": 1e-05,
      "cache_read_input_token_cost": 5e-07, "provider_specific_entry": {"us": 1.1, "fast": 6.0}, "mode": "chat"},
    "claude-sonnet-4-5-20250929": {"litellm_provider": "anthropic", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
      "cache_creation_input_token_cost": 3.75e-06, "cache_read_input_token_cost": 3e-07,
      "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
      "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06, "cache_read_input_token_cost_above_200k_tokens": 6e-07},
    "anthropic/claude-opus-4-6": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
    "us.anthropic.claude-haiku-4-5-20251001-v1:0": {"litellm_provider": "bedrock", "input_cost_per_token": 1.1e-06,
      "output_cost_per_token": 5.5e-06, "cache_creation_input_token_cost": 1.375e-06, "cache_read_input_token_cost": 1.1e-07},
    "claude-3-5-haiku-20241022": {"litellm_provider": "anthropic", "input_cost_per_token": 8e-07, "output_cost_per_token": 4e-06},
    "claude-bad-read": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
      "cache_creation_input_token_cost": 1.25e-06, "cache_read_input_token_cost": 2e-06},
    "claude-cheap-out": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-07,
      "cache_creation_input_token_cost": 1.25e-06, "cache_read_input_token_cost": 1e-07},
    "claude-free": {"litellm_provider": "anthropic", "input_cost_per_token": 0, "output_cost_per_token": 5e-06,
      "cache_creation_input_token_cost": 1.25e-06, "cache_read_input_token_cost": 1e-07},
    "claude-huge": {"litellm_provider": "anthropic", "input_cost_per_token": 0.002, "output_cost_per_token": 0.005,
      "cache_creation_input_token_cost": 0.0025, "cache_read_input_token_cost": 0.0002},
    "claude-bad-us": {"litellm_provider": "anthropic", "input_cost_per_token": 5e-06, "output_cost_per_token": 2.5e-05,
      "cache_creation_input_token_cost": 6.25e-06, "cache_read_input_token_cost": 5e-07, "provider_specific_entry": {"us": 110}},
    "gpt-4o": {"litellm_provider": "openai", "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05}
  })J";
  PriceTable t;
  std::vector<std::string> rejected;
  Status s = PricesFromLiteLlm(litellm, &t, &rejected);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(t.models().size(), 2u);
  // provider_specific_entry: fast x6 and us x1.1 (A23, A39), as in the embedded table.
  EXPECT_EQ(t.models().at("claude-opus-4-6").us_multiplier_milli, 1100);
  EXPECT_EQ(t.models().at("claude-opus-4-6"),
            PriceTable::Embedded().models().at("claude-opus-4-6"));
  EXPECT_EQ(t.models().at("claude-sonnet-4-5-20250929"),
            PriceTable::Embedded().models().at("claude-sonnet-4-5-20250929"));
  EXPECT_EQ(rejected,
            (std::vector<std::string>{
                "model claude-3-5-haiku-20241022: missing cache prices",
                "model claude-bad-read: cache read dearer than input",
                "model claude-bad-us: us (US-only inference) multiplier out of range [1, 2]",
                "model claude-cheap-out: output cheaper than input",
                "model claude-free: zero or missing base price",
                "model claude-huge: absurd base price (over $1000/M tokens)",
            }));
  EXPECT_EQ(PricesFromLiteLlm("[1]", &t, nullptr).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(PricesFromLiteLlm("{\"gpt-4o\":{}}", &t, nullptr).message(),
            "no usable Claude model prices in the file");
  EXPECT_EQ(t.models().size(), 2u);  // failures leave the output alone
}

TEST(LiteLlm, ANullPriceIsAMissingPrice) {
  // A rate given as null is treated exactly like a missing one: a null cache rate does not fall
  // back to the default multipliers (LiteLLM lists both for every Claude model), and a null
  // input or output rate is missing.
  const char* litellm = R"J({
    "claude-ok": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
      "cache_creation_input_token_cost": 1.25e-06, "cache_read_input_token_cost": 1e-07},
    "claude-null-read": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
      "cache_creation_input_token_cost": 1.25e-06, "cache_read_input_token_cost": null},
    "claude-null-write": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
      "cache_creation_input_token_cost": null, "cache_read_input_token_cost": 1e-07},
    "claude-null-input": {"litellm_provider": "anthropic", "input_cost_per_token": null, "output_cost_per_token": 5e-06,
      "cache_creation_input_token_cost": 1.25e-06, "cache_read_input_token_cost": 1e-07},
    "claude-missing-read": {"litellm_provider": "anthropic", "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
      "cache_creation_input_token_cost": 1.25e-06}
  })J";
  PriceTable t;
  std::vector<std::string> rejected;
  ASSERT_TRUE(PricesFromLiteLlm(litellm, &t, &rejected).ok());
  EXPECT_EQ(t.models().size(), 1u);
  EXPECT_NE(t.Find("claude-ok"), nullptr);
  EXPECT_EQ(rejected, (std::vector<std::string>{
                          "model claude-missing-read: missing cache prices",
                          "model claude-null-input: missing input_cost_per_token",
                          "model claude-null-read: missing cache prices",
                          "model claude-null-write: missing cache prices",
                      }));
}

}  // namespace
}  // namespace ccmon
