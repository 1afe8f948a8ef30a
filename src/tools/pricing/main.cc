// ccmon-pricing: parses flags into a PricingConfig and calls RunPricing().
#include <boost/program_options.hpp>
#include <iostream>

#include "tools/pricing/pricing_tool.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  ccmon::PricingConfig cfg;
  po::options_description opts("Options");
  opts.add_options()
      ("help,h", "show this help")
      ("from", po::value<std::string>(&cfg.from), "update: LiteLLM model_prices_and_context_window.json (file or URL)")
      ("to", po::value<std::string>(&cfg.output), "update: pricing file to write (default ~/.config/ccmon/pricing.json)")
      ("pricing", po::value<std::string>(&cfg.pricing_file), "current pricing file (default as ccmon-replay)")
      ("dry-run", po::bool_switch(&cfg.dry_run), "update: print the changes only")
      ("prune", po::bool_switch(&cfg.prune), "update: remove models the source no longer lists")
      ("input", po::value<uint64_t>(&cfg.input), "cost: input tokens")
      ("output", po::value<uint64_t>(&cfg.output_tokens), "cost: output tokens")
      ("cache-write-5m", po::value<uint64_t>(&cfg.cache_write_5m), "cost: 5-minute cache writes")
      ("cache-write-1h", po::value<uint64_t>(&cfg.cache_write_1h), "cost: 1-hour cache writes")
      ("cache-read", po::value<uint64_t>(&cfg.cache_read), "cost: cache reads")
      ("web-search", po::value<uint64_t>(&cfg.web_search), "cost: web searches")
      ("fast", po::bool_switch(&cfg.fast), "cost: fast mode")
      ("us", po::bool_switch(&cfg.us), "cost: US-only inference (usage.inference_geo \"us\")");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>(&cfg.command))("model", po::value<std::string>(&cfg.model));
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1).add("model", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "ccmon-pricing: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help") || cfg.command.empty()) {
    std::cout << "usage: ccmon-pricing update --from FILE|URL [--dry-run] [--prune] [--to FILE]\n"
                 "       ccmon-pricing show [MODEL]\n"
                 "       ccmon-pricing cost MODEL [--input N] [--output N] [--cache-write-5m N]\n"
                 "                               [--cache-write-1h N] [--cache-read N] [--web-search N] [--fast] [--us]\n\n"
              << opts << "\n";
    return cfg.command.empty() && !vm.count("help") ? 2 : 0;
  }
  return ccmon::RunPricing(cfg, std::cout, std::cerr);
}
