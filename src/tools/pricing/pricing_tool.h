// ccmon-pricing: maintain the price table (update from LiteLLM, show, price a request).
#pragma once
#include <iosfwd>
#include <string>
#include <vector>
namespace ccmon {
struct PricingConfig {
  std::string command;            // update | show | cost
  std::string from;               // update: LiteLLM JSON file
  std::string output;             // update: pricing file to write (default ~/.config/ccmon/pricing.json)
  std::string pricing_file;       // show/cost/update base: current table (default as replay)
  bool dry_run = false;
  bool prune = false;             // update: drop models the source no longer lists
  std::string model;              // show/cost
  uint64_t input = 0, output_tokens = 0, cache_write_5m = 0, cache_write_1h = 0, cache_read = 0,
           web_search = 0;
  bool fast = false;
  bool us = false;                // cost: US-only inference (usage.inference_geo "us")
};
int RunPricing(const PricingConfig& config, std::ostream& out, std::ostream& err);
}  // namespace ccmon
