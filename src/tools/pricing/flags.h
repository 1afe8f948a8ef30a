// ccmon-pricing's command line -> PricingConfig, as a function (so flag validation is unit-tested
// without spawning processes). main.cc prints what it returns and calls RunPricing.
#pragma once

#include <string>
#include <vector>

#include "tools/pricing/pricing_tool.h"

namespace ccmon {

struct PricingFlags {
  enum class Action {
    kRun,         // run `config`
    kHelp,        // print `text` on standard output, exit 0
    kUsageError,  // print "ccmon-pricing: " + `text` on standard error, exit 2
  };
  Action action = Action::kRun;
  PricingConfig config;
  std::string text;
};

// Parses the arguments after the program name: the subcommand and its MODEL, flags that do not
// apply to the subcommand, and the counts of `cost` (strict: digits only, 0..kMaxCostCount).
PricingFlags ParsePricingFlags(const std::vector<std::string>& args);

}  // namespace ccmon
