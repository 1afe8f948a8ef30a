#include "tools/pricing/pricing_tool.h"

#include <cstdlib>
#include <ctime>
#include <iostream>

#include "base/atomic_file.h"
#include "base/env.h"
#include "base/utf8.h"
#include "http/http_client.h"
#include "pricing/pricing.h"
#include "tools/common/output.h"
#include "tools/pricing/litellm.h"
#include "transcript/model_id.h"

namespace ccmon {
namespace {

// The table the other tools would use, or an error on `err`.
bool LoadCurrent(const PricingConfig& cfg, Env* env, std::ostream& err, PriceTable* table,
                 std::string* origin) {
  Status s = PriceTable::LoadConfigured(env, cfg.pricing_file, table, origin);
  if (!s.ok()) err << "ccmon-pricing: " << s.message() << "\n";
  return s.ok();
}

// pico-dollars per token = micro-dollars per million tokens: USD per million = p / 1e6.
std::string PerMillion(Pico p) { return FormatUsd(PicoSum(p) * 1'000'000); }

std::string RatesText(const Rates& r) {
  return "in " + PerMillion(r.input) + " out " + PerMillion(r.output) + " write5m " +
         PerMillion(r.cache_write_5m) + " write1h " + PerMillion(r.cache_write_1h()) + " read " +
         PerMillion(r.cache_read);
}

std::string PriceText(const ModelPrice& p) {
  std::string s = RatesText(p.base);
  if (p.above_200k) s += " | above 200k: " + RatesText(*p.above_200k);
  if (p.fast_multiplier_milli != 1000)
    s += " | fast x" + FormatUsd(PicoSum(p.fast_multiplier_milli) * 1'000'000'000);
  if (p.us_multiplier_milli != 1000)
    s += " | us x" + FormatUsd(PicoSum(p.us_multiplier_milli) * 1'000'000'000);
  return s;
}

Status ReadSource(Env* env, const std::string& from, std::string* text) {
  if (from.rfind("http://", 0) == 0 || from.rfind("https://", 0) == 0) {
    return HttpGet(from, HttpClientOptions{}, text);
  }
  return ReadFileToString(env, from, kMaxSmallFileBytes, text);
}

std::string Today() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

int Update(const PricingConfig& cfg, Env* env, std::ostream& out, std::ostream& err,
           StopSignals* signals) {
  if (cfg.from.empty()) {
    err << "ccmon-pricing: update needs --from FILE|URL (LiteLLM's "
           "model_prices_and_context_window.json)\n";
    return 2;
  }
  PriceTable current;
  std::string origin;
  if (!LoadCurrent(cfg, env, err, &current, &origin)) return 1;
  std::string text;
  Status s = ReadSource(env, cfg.from, &text);
  if (!s.ok()) {
    err << "ccmon-pricing: " << TerminalSafe(s.message()) << "\n";
    return 1;
  }
  PriceTable source;
  std::vector<std::string> rejected;
  s = PricesFromLiteLlm(text, &source, &rejected);
  if (!s.ok()) {
    err << "ccmon-pricing: " << TerminalSafe(cfg.from) << ": " << TerminalSafe(s.message()) << "\n";
    return 1;
  }
  // Names and reasons come from the source file: printed safe for a terminal.
  for (const auto& r : rejected) out << "rejected  " << TerminalSafe(r) << "\n";

  PriceTable next = current;
  int added = 0, changed = 0, removed = 0, kept = 0;
  for (const auto& [name, p] : source.models()) {
    auto it = current.models().find(name);
    if (it == current.models().end()) {
      out << "added     " << TerminalSafe(name) << ": " << PriceText(p) << "\n";
      ++added;
    } else if (!(it->second == p)) {
      out << "changed   " << TerminalSafe(name) << ": " << PriceText(it->second) << "  ->  "
          << PriceText(p) << "\n";
      ++changed;
    }
    next.Set(name, p);
  }
  for (const auto& [name, p] : current.models()) {
    if (source.models().count(name)) continue;
    if (cfg.prune) {
      out << "removed   " << TerminalSafe(name) << "\n";
      next.Erase(name);
      ++removed;
    } else {
      ++kept;
    }
  }
  if (kept > 0) {
    out << kept << " model(s) not in the source kept (use --prune to remove them)\n";
  }
  next.set_source("LiteLLM " + cfg.from + " (merged into " + origin + ")");
  next.set_updated(Today());
  out << added << " added, " << changed << " changed, " << removed << " removed, "
      << rejected.size() << " rejected\n";
  if (cfg.dry_run) {
    out << "dry run: nothing written\n";
    return 0;
  }
  std::string path = cfg.output.empty() ? PriceTable::DefaultFilePath() : cfg.output;
  // PATH.tmp, renamed when complete: a failed write leaves the old table and no temporary file.
  // A signal now waits for the write (a few kB) to finish: main then ends by it.
  StopSignals::Scope scope(signals);
  s = WriteFileAtomically(env, path, next.ToJson(), 0644);
  if (!s.ok()) {
    err << "ccmon-pricing: cannot write " << path << ": " << s.message() << "\n";
    return 1;
  }
  out << "wrote " << path << " (" << next.models().size() << " models)\n";
  return 0;
}

int Show(const PricingConfig& cfg, Env* env, std::ostream& out, std::ostream& err) {
  PriceTable table;
  std::string origin;
  if (!LoadCurrent(cfg, env, err, &table, &origin)) return 1;
  out << "# " << (origin == "embedded" ? "embedded table" : TerminalSafe(origin));
  if (!table.updated().empty()) out << ", updated " << TerminalSafe(table.updated());
  out << "; USD per million tokens; web search $" << FormatUsd(table.web_search_cost()) << "\n";
  if (!cfg.model.empty()) {
    std::string canonical = CanonicalModel(cfg.model);
    const ModelPrice* p = table.Find(canonical);
    if (p == nullptr) {
      err << "ccmon-pricing: no price for " << cfg.model << " (canonical id " << canonical << ")\n";
      return 1;
    }
    out << canonical << ": " << PriceText(*p) << "\n";
    return 0;
  }
  for (const auto& [name, p] : table.models()) {
    out << TerminalSafe(name) << ": " << PriceText(p) << "\n";
  }
  return 0;
}

int Cost(const PricingConfig& cfg, Env* env, std::ostream& out, std::ostream& err) {
  if (cfg.model.empty()) {
    err << "ccmon-pricing: cost needs a MODEL\n";
    return 2;
  }
  PriceTable table;
  std::string origin;
  if (!LoadCurrent(cfg, env, err, &table, &origin)) return 1;
  std::string canonical = CanonicalModel(cfg.model);
  const ModelPrice* p = table.Find(canonical);
  if (p == nullptr) {
    err << "ccmon-pricing: no price for " << cfg.model << " (canonical id " << canonical << ")\n";
    return 1;
  }
  TokenCounts t{cfg.input, cfg.output_tokens, cfg.cache_write_5m, cfg.cache_write_1h,
                cfg.cache_read};
  for (uint64_t n :
       {t.input, t.output, t.cache_write_5m, t.cache_write_1h, t.cache_read, cfg.web_search}) {
    if (n > kMaxCostCount) {
      err << "ccmon-pricing: cost takes at most " << kMaxCostCount << " of each count\n";
      return 2;
    }
  }
  ExactCost c =
      PriceTokensExactly(*p, table.web_search_cost(), t, cfg.web_search, cfg.fast, cfg.us);
  out << canonical << (c.premium ? " (above-200k rates: prompt " : " (base rates: prompt ")
      << t.PromptTokens() << " tokens)" << (cfg.fast ? ", fast" : "")
      << (cfg.us ? ", US-only inference" : "") << "\n";
  out << "cost $" << FormatUsd(c.cost) << "\n";
  out << "cache savings $" << FormatUsd(c.cache_savings) << "\n";
  return 0;
}

}  // namespace

ExactCost PriceTokensExactly(const ModelPrice& price, Pico web_search_cost, const TokenCounts& t,
                             uint64_t web_search_requests, bool fast, bool us_inference) {
  ExactCost out;
  out.premium = price.above_200k.has_value() && t.PromptTokens() > kLongContextThreshold;
  const Rates& r = out.premium ? *price.above_200k : price.base;
  PicoSum c = PicoSum(t.input) * r.input + PicoSum(t.output) * r.output +
              PicoSum(t.cache_write_5m) * r.cache_write_5m +
              PicoSum(t.cache_write_1h) * r.cache_write_1h() + PicoSum(t.cache_read) * r.cache_read;
  PicoSum savings = PicoSum(t.cache_read) * (r.input - r.cache_read);
  // Fast mode and US-only inference: both factors together, rounded once (A23, A39).
  const int64_t f = fast ? price.fast_multiplier_milli : 1000;
  const int64_t u = us_inference ? price.us_multiplier_milli : 1000;
  if (f != 1000 || u != 1000) {
    c = (c * f * u + 500'000) / 1'000'000;
    savings = (savings * f * u + 500'000) / 1'000'000;
  }
  out.cost = c + PicoSum(web_search_requests) * web_search_cost;
  out.cache_savings = savings;
  return out;
}

int RunPricing(const PricingConfig& cfg, std::ostream& out, std::ostream& err, Env* env,
               StopSignals* signals) {
  int code = 0;
  if (cfg.command == "update") {
    code = Update(cfg, env, out, err, signals);
  } else if (cfg.command == "show") {
    code = Show(cfg, env, out, err);
  } else if (cfg.command == "cost") {
    code = Cost(cfg, env, out, err);
  } else {
    err << "ccmon-pricing: unknown command '" << cfg.command << "' (update, show, cost)\n";
    return 2;
  }
  // What was printed must have arrived (a full disk or /dev/full is a failure, not a success).
  if (Status s = FlushOutput(out, "standard output"); !s.ok()) {
    err << "ccmon-pricing: " << s.message() << "\n";
    if (code == 0) code = 1;
  }
  return code;
}

int RunPricing(const PricingConfig& cfg, std::ostream& out, std::ostream& err) {
  return RunPricing(cfg, out, err, Env::Default());
}

}  // namespace ccmon
