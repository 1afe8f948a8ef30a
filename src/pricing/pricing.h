// Price table and the per-request cost rule (docs/accounting.md, "Pricing").
//
// Rates are integer pico-dollars per token. The file format keeps LiteLLM's field names
// (docs/pricing-format.md); the embedded default table (default_prices.json) uses the same format.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/money.h"
#include "base/status.h"
#include "transcript/usage.h"

namespace ccmon {

struct Rates {
  Pico input = 0;
  Pico output = 0;
  Pico cache_write_5m = 0;
  Pico cache_read = 0;
  // A 1-hour cache write costs twice the input rate (Anthropic's rule).
  Pico cache_write_1h() const { return 2 * input; }
  bool operator==(const Rates&) const = default;
};

struct ModelPrice {
  Rates base;
  std::optional<Rates> above_200k;       // whole-request long-context tier
  int64_t fast_multiplier_milli = 1000;  // provider_specific_entry.fast x 1000
  int64_t us_multiplier_milli = 1000;    // provider_specific_entry.us x 1000 (US-only inference)
  bool operator==(const ModelPrice&) const = default;
};

inline constexpr uint64_t kLongContextThreshold = 200000;

// Costs are 128-bit: one request's token counts (each below 2^32, A9), rates up to $0.01 per
// token, the fast and US-only factors and up to 2^32 web searches can exceed 2^63 pico-dollars
// ($9.2M), and a request's cost must never wrap around to a negative number.
struct CostBreakdown {
  bool priced = false;   // false: unknown model and no costUSD (cost 0, tokens unpriced)
  bool premium = false;  // the above-200k tier applied
  PicoSum cost = 0;      // what the request cost
  // cache_read x (input rate - read rate) at the request's tier and speed
  PicoSum cache_savings = 0;
};

class PriceTable {
 public:
  // The table compiled into the binaries.
  static const PriceTable& Embedded();
  // Parses a ccmon pricing file (the embedded format). Errors name the model and field.
  static Status FromJson(std::string_view json_text, PriceTable* out);
  // Reads a pricing file through `env` (borrowed; default the POSIX Env). A file over
  // kMaxSmallFileBytes (64 MiB; /dev/zero) is refused with kInvalidArgument without being read
  // whole; a missing or unreadable one is kIoError. Errors name the path.
  static Status FromFile(Env* env, const std::string& path, PriceTable* out);
  static Status FromFile(const std::string& path, PriceTable* out) {
    return FromFile(Env::Default(), path, out);
  }
  // The table the tools use (docs/accounting.md A29): `flag` (--pricing) if set, else
  // $CCMON_PRICING, else $XDG_CONFIG_HOME/ccmon/pricing.json (~/.config/ccmon/…) when it exists
  // and is readable, else the embedded table. *origin names what was used. Variables and files
  // are read through `env`.
  static Status LoadConfigured(Env* env, const std::string& flag, PriceTable* out,
                               std::string* origin);
  static Status LoadConfigured(const std::string& flag, PriceTable* out, std::string* origin) {
    return LoadConfigured(Env::Default(), flag, out, origin);
  }
  // Where `ccmon-pricing update` writes by default: $XDG_CONFIG_HOME/ccmon/pricing.json, else
  // $HOME/.config/ccmon/pricing.json.
  static std::string DefaultFilePath(Env* env);
  static std::string DefaultFilePath() { return DefaultFilePath(Env::Default()); }
  // Parses one model's entry (a JSON object with LiteLLM's field names, as in the file format).
  // Used by the LiteLLM importer of ccmon-pricing, which selects and checks the entries.
  static Status ParseModelSpec(const std::string& model, std::string_view spec_json,
                               ModelPrice* out);

  // Looks up a canonical model id; falls back to the id without a trailing -YYYYMMDD date.
  const ModelPrice* Find(std::string_view canonical_model) const;
  const std::map<std::string, ModelPrice, std::less<>>& models() const { return models_; }
  Pico web_search_cost() const { return web_search_cost_; }
  const std::string& source() const { return source_; }
  const std::string& updated() const { return updated_; }

  void Set(const std::string& model, const ModelPrice& p) { models_[model] = p; }
  void Erase(const std::string& model) { models_.erase(model); }
  void set_source(std::string s) { source_ = std::move(s); }
  void set_updated(std::string s) { updated_ = std::move(s); }
  // Serialises in the file format (stable key order), rates as USD per token.
  std::string ToJson() const;

 private:
  std::map<std::string, ModelPrice, std::less<>> models_;
  Pico web_search_cost_ = 10'000'000'000;  // $0.01
  std::string source_;
  std::string updated_;
};

// The cost rule for one deduplicated request (docs/accounting.md A20-A28, A39). `price` may be
// null (unknown model). The token cost at the request's tier is multiplied by the fast factor when
// `fast` and by the US-only factor when `us_inference` (one rounding, to the nearest pico-dollar);
// cache savings follow the same factors; web searches are added unmultiplied; a costUSD replaces
// everything.
CostBreakdown PriceRequest(const ModelPrice* price, Pico web_search_cost, const TokenCounts& tokens,
                           uint64_t web_search_requests, bool fast, bool us_inference,
                           bool has_cost_usd, Pico cost_usd);

}  // namespace ccmon
