// ccmon-pricing: parses the command line into a PricingConfig (flags.h) and calls RunPricing().
#include <iostream>
#include <string>
#include <vector>

#include "tools/common/output.h"
#include "tools/common/stop_signals.h"
#include "tools/pricing/flags.h"
#include "tools/pricing/pricing_tool.h"

int main(int argc, char** argv) {
  static ccmon::StopSignals signals;
  signals.Install();
  const ccmon::PricingFlags flags =
      ccmon::ParsePricingFlags(std::vector<std::string>(argv + 1, argv + argc));
  switch (flags.action) {
    case ccmon::PricingFlags::Action::kUsageError:
      std::cerr << "ccmon-pricing: " << flags.text << "\n";
      return 2;
    case ccmon::PricingFlags::Action::kHelp:
      std::cout << flags.text;
      if (ccmon::Status s = ccmon::FlushOutput(std::cout, "standard output"); !s.ok()) {
        std::cerr << "ccmon-pricing: " << s.message() << "\n";
        return 1;
      }
      return 0;
    case ccmon::PricingFlags::Action::kRun:
      break;
  }
  const int code =
      ccmon::RunPricing(flags.config, std::cout, std::cerr, ccmon::Env::Default(), &signals);
  std::cout.flush();
  std::cerr.flush();
  signals.ReraiseIfCaught();  // a signal came while the pricing file was written
  return code;
}
