#include "tools/pricing/pricing_tool.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "base/env.h"
#include "transcript/model_id.h"
#include "pricing/pricing.h"
#include "tools/pricing/litellm.h"
#include "http/http_client.h"

namespace ccmon {
namespace {

// The table the other tools would use, or an error on `err`.
bool LoadCurrent(const PricingConfig& cfg, std::ostream& err, PriceTable* table, std::string* origin) {
  Status s = PriceTable::LoadConfigured(cfg.pricing_file, table, origin);
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

Status ReadSource(const std::string& from, std::string* text) {
  if (from.rfind("http://", 0) == 0 || from.rfind("https://", 0) == 0) {
    return HttpGet(from, HttpClientOptions{}, text);
  }
  return ReadFileToString(Env::Default(), from, kMaxSmallFileBytes, text);
}

Status WriteAtomically(const std::string& path, const std::string& content) {
  std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::IoError("cannot write " + tmp);
    out << content;
    out.flush();
    if (!out) return Status::IoError("write failed: " + tmp);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IoError("rename " + tmp + " -> " + path + ": " + ec.message());
  return Status::Ok();
}

std::string Today() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

int Update(const PricingConfig& cfg, std::ostream& out, std::ostream& err) {
  if (cfg.from.empty()) {
    err << "ccmon-pricing: update needs --from FILE|URL (LiteLLM's model_prices_and_context_window.json)\n";
    return 2;
  }
  PriceTable current;
  std::string origin;
  if (!LoadCurrent(cfg, err, &current, &origin)) return 1;
  std::string text;
  Status s = ReadSource(cfg.from, &text);
  if (!s.ok()) {
    err << "ccmon-pricing: " << s.message() << "\n";
    return 1;
  }
  PriceTable source;
  std::vector<std::string> rejected;
  s = PricesFromLiteLlm(text, &source, &rejected);
  if (!s.ok()) {
    err << "ccmon-pricing: " << cfg.from << ": " << s.message() << "\n";
    return 1;
  }
  for (const auto& r : rejected) out << "rejected  " << r << "\n";

  PriceTable next = current;
  int added = 0, changed = 0, removed = 0, kept = 0;
  for (const auto& [name, p] : source.models()) {
    auto it = current.models().find(name);
    if (it == current.models().end()) {
      out << "added     " << name << ": " << PriceText(p) << "\n";
      ++added;
    } else if (!(it->second == p)) {
      out << "changed   " << name << ": " << PriceText(it->second) << "  ->  " << PriceText(p) << "\n";
      ++changed;
    }
    next.Set(name, p);
  }
  for (const auto& [name, p] : current.models()) {
    if (source.models().count(name)) continue;
    if (cfg.prune) {
      out << "removed   " << name << "\n";
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
  s = WriteAtomically(path, next.ToJson());
  if (!s.ok()) {
    err << "ccmon-pricing: " << s.message() << "\n";
    return 1;
  }
  out << "wrote " << path << " (" << next.models().size() << " models)\n";
  return 0;
}

int Show(const PricingConfig& cfg, std::ostream& out, std::ostream& err) {
  PriceTable table;
  std::string origin;
  if (!LoadCurrent(cfg, err, &table, &origin)) return 1;
  out << "# " << (origin == "embedded" ? "embedded table" : origin);
  if (!table.updated().empty()) out << ", updated " << table.updated();
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
  for (const auto& [name, p] : table.models()) out << name << ": " << PriceText(p) << "\n";
  return 0;
}

int Cost(const PricingConfig& cfg, std::ostream& out, std::ostream& err) {
  if (cfg.model.empty()) {
    err << "ccmon-pricing: cost needs a MODEL\n";
    return 2;
  }
  PriceTable table;
  std::string origin;
  if (!LoadCurrent(cfg, err, &table, &origin)) return 1;
  std::string canonical = CanonicalModel(cfg.model);
  const ModelPrice* p = table.Find(canonical);
  if (p == nullptr) {
    err << "ccmon-pricing: no price for " << cfg.model << " (canonical id " << canonical << ")\n";
    return 1;
  }
  TokenCounts t{cfg.input, cfg.output_tokens, cfg.cache_write_5m, cfg.cache_write_1h, cfg.cache_read};
  CostBreakdown c =
      PriceRequest(p, table.web_search_cost(), t, cfg.web_search, cfg.fast, cfg.us, false, 0);
  out << canonical << (c.premium ? " (above-200k rates: prompt " : " (base rates: prompt ")
      << t.PromptTokens() << " tokens)" << (cfg.fast ? ", fast" : "")
      << (cfg.us ? ", US-only inference" : "") << "\n";
  out << "cost $" << FormatUsd(c.cost) << "\n";
  out << "cache savings $" << FormatUsd(c.cache_savings) << "\n";
  return 0;
}

}  // namespace

int RunPricing(const PricingConfig& cfg, std::ostream& out, std::ostream& err) {
  if (cfg.command == "update") return Update(cfg, out, err);
  if (cfg.command == "show") return Show(cfg, out, err);
  if (cfg.command == "cost") return Cost(cfg, out, err);
  err << "ccmon-pricing: unknown command '" << cfg.command << "' (update, show, cost)\n";
  return 2;
}

}  // namespace ccmon
