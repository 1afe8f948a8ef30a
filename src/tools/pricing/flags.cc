#include "tools/pricing/flags.h"

#include <boost/program_options.hpp>
#include <sstream>

#include "tools/common/flags.h"

namespace ccmon {
namespace {

namespace po = boost::program_options;

constexpr unsigned kHelpColumns = 100;  // --help line width

const char kUsage[] =
    "usage: ccmon-pricing update --from FILE|URL [--dry-run] [--prune] [--to FILE]\n"
    "       ccmon-pricing show [MODEL]\n"
    "       ccmon-pricing cost MODEL [--input N] [--output N] [--cache-write-5m N]\n"
    "                               [--cache-write-1h N] [--cache-read N] [--web-search N] "
    "[--fast] [--us]\n\n"
    "A flag given to a command it does not apply to is an error. Exit status: 0 ok, 1 failure\n"
    "(including a failed write), 2 usage error.\n";

PricingFlags Usage(std::string message) {
  PricingFlags r;
  r.action = PricingFlags::Action::kUsageError;
  r.text = std::move(message);
  return r;
}

}  // namespace

PricingFlags ParsePricingFlags(const std::vector<std::string>& args) {
  PricingFlags result;
  PricingConfig& cfg = result.config;
  // The counts of `cost`, as text (parsed strictly below).
  std::string input, output, cache_write_5m, cache_write_1h, cache_read, web_search;

  po::options_description common("Options for every command", kHelpColumns);
  common.add_options()("help,h", "show this help")(
      "pricing", po::value<std::string>(&cfg.pricing_file)->value_name("FILE"),
      "current pricing file (default as ccmon-replay)");
  po::options_description update("update options", kHelpColumns);
  update.add_options()("from", po::value<std::string>(&cfg.from)->value_name("FILE|URL"),
                       "LiteLLM model_prices_and_context_window.json (file or URL)")(
      "to", po::value<std::string>(&cfg.output)->value_name("FILE"),
      "pricing file to write (default ~/.config/ccmon/pricing.json), atomically")(
      "dry-run", po::bool_switch(&cfg.dry_run), "print the changes only")(
      "prune", po::bool_switch(&cfg.prune), "remove models the source no longer lists");
  const std::string range = ", 0..1000000000000000";
  po::options_description cost("cost options", kHelpColumns);
  cost.add_options()("input", po::value<std::string>(&input)->value_name("N"),
                     ("input tokens" + range).c_str())(
      "output", po::value<std::string>(&output)->value_name("N"),
      ("output tokens" + range).c_str())("cache-write-5m",
                                         po::value<std::string>(&cache_write_5m)->value_name("N"),
                                         ("5-minute cache writes" + range).c_str())(
      "cache-write-1h", po::value<std::string>(&cache_write_1h)->value_name("N"),
      ("1-hour cache writes" + range).c_str())("cache-read",
                                               po::value<std::string>(&cache_read)->value_name("N"),
                                               ("cache reads" + range).c_str())(
      "web-search", po::value<std::string>(&web_search)->value_name("N"),
      ("web searches" + range).c_str())("fast", po::bool_switch(&cfg.fast), "fast mode")(
      "us", po::bool_switch(&cfg.us), "US-only inference (usage.inference_geo \"us\")");
  po::options_description visible;
  visible.add(common).add(update).add(cost);

  std::vector<FlagScope> scopes;
  auto scope = [&](const po::options_description& group, std::vector<std::string> commands) {
    for (const auto& opt : group.options()) scopes.push_back({opt->long_name(), commands});
  };
  scope(update, {"update"});
  scope(cost, {"cost"});

  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>(&cfg.command))(
      "model", po::value<std::string>(&cfg.model));
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description pos;
  pos.add("command", 1).add("model", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return Usage(e.what());
  }
  if (vm.count("help") || cfg.command.empty()) {
    std::ostringstream help;
    help << kUsage << visible << "\n";
    // Without a command the usage is the answer, but the run is still a usage error (exit 2).
    result.action =
        vm.count("help") ? PricingFlags::Action::kHelp : PricingFlags::Action::kUsageError;
    result.text = vm.count("help") ? help.str() : "no command given\n\n" + help.str();
    return result;
  }
  if (cfg.command != "update" && cfg.command != "show" && cfg.command != "cost")
    return Usage("unknown command '" + cfg.command + "' (update, show, cost)");
  std::vector<std::string> given;
  for (const auto& [name, value] : vm)
    if (!value.defaulted() && name != "command" && name != "model") given.push_back(name);
  if (Status s = CheckFlagsApply(cfg.command, given, scopes); !s.ok()) return Usage(s.message());
  if (cfg.command == "update" && !cfg.model.empty())
    return Usage("update takes no MODEL (got '" + cfg.model + "')");
  if (cfg.command == "update" && cfg.from.empty())
    return Usage("update needs --from FILE|URL (LiteLLM's model_prices_and_context_window.json)");
  if (cfg.command == "cost" && cfg.model.empty()) return Usage("cost needs a MODEL");

  struct Count {
    const char* flag;
    const std::string& text;
    uint64_t* out;
  };
  const Count counts[] = {
      {"input", input, &cfg.input},
      {"output", output, &cfg.output_tokens},
      {"cache-write-5m", cache_write_5m, &cfg.cache_write_5m},
      {"cache-write-1h", cache_write_1h, &cfg.cache_write_1h},
      {"cache-read", cache_read, &cfg.cache_read},
      {"web-search", web_search, &cfg.web_search},
  };
  for (const Count& c : counts) {
    if (!vm.count(c.flag)) continue;
    if (Status s = ParseUnsignedFlag(c.flag, c.text, 0, kMaxCostCount, c.out); !s.ok())
      return Usage(s.message());
  }
  return result;
}

}  // namespace ccmon
