// ccmon-pricing: maintain the price table (update from LiteLLM, show it, price a request).
// main.cc only turns the command line into a PricingConfig (flags.h) and calls RunPricing.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "base/env.h"
#include "base/money.h"
#include "pricing/pricing.h"
#include "tools/common/stop_signals.h"
#include "transcript/usage.h"

namespace ccmon {

// The largest count `cost` takes for each token type and for web searches (10^15): far above
// any real request, and small enough that the exact 128-bit cost cannot overflow.
inline constexpr uint64_t kMaxCostCount = 1'000'000'000'000'000;

struct PricingConfig {
  std::string command;       // update | show | cost
  std::string pricing_file;  // the current table (default as ccmon-replay); update's base
  // update
  std::string from;    // LiteLLM JSON file or URL
  std::string output;  // pricing file to write (default ~/.config/ccmon/pricing.json)
  bool dry_run = false;
  bool prune = false;  // drop models the source no longer lists
  // show (optional) and cost (required)
  std::string model;
  // cost: counts of up to kMaxCostCount each
  uint64_t input = 0, output_tokens = 0, cache_write_5m = 0, cache_write_1h = 0, cache_read = 0,
           web_search = 0;
  bool fast = false;
  bool us = false;  // US-only inference (usage.inference_geo "us")
};

// Runs one command. Returns the process exit code (0 ok, 1 failure, including a failed write to
// `out`, 2 usage error); results go to `out`, diagnostics to `err`. `env` (borrowed) reads the
// price tables and the source file and writes the pricing file; the overload without it uses
// Env::Default(). `signals` (borrowed, may be null): a signal while the pricing file is written
// lets the write finish (tools/common/stop_signals.h), so it never leaves PATH.tmp behind.
int RunPricing(const PricingConfig& config, std::ostream& out, std::ostream& err, Env* env,
               StopSignals* signals = nullptr);
int RunPricing(const PricingConfig& config, std::ostream& out, std::ostream& err);

// One request's cost by PriceRequest's rule (pricing/pricing.h), in 128-bit arithmetic, so that
// counts up to kMaxCostCount cannot overflow (PriceRequest computes in 128 bits as well).
// PricingCost tests hold the two equal.
struct ExactCost {
  bool premium = false;  // the above-200k tier applied
  PicoSum cost = 0;
  PicoSum cache_savings = 0;
};
ExactCost PriceTokensExactly(const ModelPrice& price, Pico web_search_cost,
                             const TokenCounts& tokens, uint64_t web_search_requests, bool fast,
                             bool us_inference);

}  // namespace ccmon
