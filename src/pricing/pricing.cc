#include "pricing/pricing.h"

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/env.h"

namespace ccmon {

extern const char kDefaultPricesJson[];  // generated from default_prices.json

namespace {

using nlohmann::json;

Status ReadRate(const json& spec, const std::string& model, const char* field, bool required,
                std::optional<Pico>* out) {
  auto it = spec.find(field);
  if (it == spec.end() || it->is_null()) {
    if (required) return Status::InvalidArgument("model " + model + ": missing " + field);
    out->reset();
    return Status::Ok();
  }
  if (!it->is_number())
    return Status::InvalidArgument("model " + model + ": " + field + " is not a number");
  double v = it->get<double>();
  if (!(v >= 0)) return Status::InvalidArgument("model " + model + ": negative " + field);
  if (v > 1e-2) {
    return Status::InvalidArgument("model " + model + ": absurd " + field +
                                   " (over $10000/M tokens)");
  }
  *out = UsdToPico(v);
  return Status::Ok();
}

json RateToJson(Pico p) { return double(p) / 1e12; }

// A factor is kept in thousandths (ModelPrice::*_multiplier_milli): true and *milli for one that
// is a whole number of them (1.1 is, as the nearest double to it); false for one that would be
// rounded (1.0005), which is refused rather than priced at another factor.
bool WholeThousandths(double factor, int64_t* milli) {
  const double x = factor * 1000;
  const int64_t r = std::llround(x);
  if (std::fabs(x - double(r)) > 1e-6) return false;
  *milli = r;
  return true;
}

}  // namespace

namespace {
Status ParseModelPrice(const json& spec, const std::string& model, ModelPrice* out) {
  if (!spec.is_object()) return Status::InvalidArgument("model " + model + ": not an object");
  std::optional<Pico> in, o, cw, cr, in2, o2, cw2, cr2;
  Status s;
  if (!(s = ReadRate(spec, model, "input_cost_per_token", true, &in)).ok()) return s;
  if (!(s = ReadRate(spec, model, "output_cost_per_token", true, &o)).ok()) return s;
  if (!(s = ReadRate(spec, model, "cache_creation_input_token_cost", false, &cw)).ok()) return s;
  if (!(s = ReadRate(spec, model, "cache_read_input_token_cost", false, &cr)).ok()) return s;
  if (!(s = ReadRate(spec, model, "input_cost_per_token_above_200k_tokens", false, &in2)).ok())
    return s;
  if (!(s = ReadRate(spec, model, "output_cost_per_token_above_200k_tokens", false, &o2)).ok())
    return s;
  if (!(s = ReadRate(spec, model, "cache_creation_input_token_cost_above_200k_tokens", false, &cw2))
           .ok())
    return s;
  if (!(s = ReadRate(spec, model, "cache_read_input_token_cost_above_200k_tokens", false, &cr2))
           .ok())
    return s;
  // The long-context tier exists when its input rate is given; its other rates alone would be
  // dropped (and long requests priced at the base rates), so they are refused instead.
  if (!in2 && (o2 || cw2 || cr2)) {
    return Status::InvalidArgument(
        "model " + model + ": above-200k rates without input_cost_per_token_above_200k_tokens");
  }
  ModelPrice p;
  // Anthropic's multipliers when a cache rate is not listed: 1.25x input (5m write), 0.1x (read).
  p.base = Rates{*in, *o, cw ? *cw : *in * 5 / 4, cr ? *cr : *in / 10};
  if (in2) {
    Pico i2 = *in2;
    p.above_200k = Rates{i2, o2 ? *o2 : *o, cw2 ? *cw2 : i2 * 5 / 4, cr2 ? *cr2 : i2 / 10};
  }
  // The factors, like the rates: absent or null means none (1); any other type is refused, never
  // read as 1 (a "fast":"6" would price fast requests at a sixth of their cost).
  auto pse = spec.find("provider_specific_entry");
  if (pse != spec.end() && !pse->is_null()) {
    if (!pse->is_object())
      return Status::InvalidArgument("model " + model +
                                     ": provider_specific_entry is not an object");
    auto f = pse->find("fast");
    if (f != pse->end() && !f->is_null()) {
      if (!f->is_number())
        return Status::InvalidArgument("model " + model + ": fast multiplier is not a number");
      double m = f->get<double>();
      if (!(m >= 1 && m <= 100))
        return Status::InvalidArgument("model " + model + ": fast multiplier out of range");
      if (!WholeThousandths(m, &p.fast_multiplier_milli)) {
        return Status::InvalidArgument("model " + model +
                                       ": fast multiplier is not a whole number of thousandths");
      }
    }
    // US-only inference (usage.inference_geo "us"): 1.1 on Opus 4.6 and later. A factor below 1
    // or above 2 is not a data-residency surcharge.
    auto us = pse->find("us");
    if (us != pse->end() && !us->is_null()) {
      if (!us->is_number()) {
        return Status::InvalidArgument("model " + model +
                                       ": us (US-only inference) multiplier is not a number");
      }
      double m = us->get<double>();
      if (!(m >= 1 && m <= 2)) {
        return Status::InvalidArgument("model " + model +
                                       ": us (US-only inference) multiplier out of range [1, 2]");
      }
      if (!WholeThousandths(m, &p.us_multiplier_milli)) {
        return Status::InvalidArgument(
            "model " + model +
            ": us (US-only inference) multiplier is not a whole number of thousandths");
      }
    }
  }
  *out = p;
  return Status::Ok();
}

}  // namespace

Status PriceTable::ParseModelSpec(const std::string& model, std::string_view spec_json,
                                  ModelPrice* out) {
  json spec = json::parse(spec_json.begin(), spec_json.end(), nullptr, /*allow_exceptions=*/false);
  if (spec.is_discarded()) return Status::InvalidArgument("model " + model + ": not JSON");
  return ParseModelPrice(spec, model, out);
}

const PriceTable& PriceTable::Embedded() {
  static const PriceTable table = [] {
    PriceTable t;
    Status s = FromJson(kDefaultPricesJson, &t);
    if (!s.ok()) std::abort();  // the build embeds a file that tests parse
    return t;
  }();
  return table;
}

Status PriceTable::FromJson(std::string_view text, PriceTable* out) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::InvalidArgument("pricing file is not valid JSON");
  if (!doc.is_object()) return Status::InvalidArgument("pricing file: top level is not an object");
  auto models = doc.find("models");
  if (models == doc.end() || !models->is_object()) {
    return Status::InvalidArgument("pricing file: no \"models\" object");
  }
  PriceTable t;
  if (auto src = doc.find("source"); src != doc.end() && src->is_string()) t.source_ = *src;
  if (auto up = doc.find("updated"); up != doc.end() && up->is_string()) t.updated_ = *up;
  if (auto ws = doc.find("web_search_cost_per_request"); ws != doc.end()) {
    if (!ws->is_number() || ws->get<double>() < 0 || ws->get<double>() > 1) {
      return Status::InvalidArgument("pricing file: bad web_search_cost_per_request");
    }
    t.web_search_cost_ = UsdToPico(ws->get<double>());
  }
  for (auto& [name, spec] : models->items()) {
    ModelPrice p;
    Status s = ParseModelPrice(spec, name, &p);
    if (!s.ok()) return s;
    t.models_[name] = p;
  }
  *out = std::move(t);
  return Status::Ok();
}

Status PriceTable::FromFile(Env* env, const std::string& path, PriceTable* out) {
  std::string text;
  Status s = ReadFileToString(env, path, kMaxSmallFileBytes, &text);
  if (!s.ok()) {
    // Too large keeps its code (the file is wrong, not the disk); every other failure is I/O.
    std::string message = "cannot read pricing file: " + s.message();
    if (s.code() == Status::Code::kInvalidArgument) {
      return Status::InvalidArgument(message + " (a pricing file is a few kB)");
    }
    return Status::IoError(message);
  }
  s = FromJson(text, out);
  if (!s.ok()) return Status::InvalidArgument(path + ": " + s.message());
  return s;
}

std::string PriceTable::DefaultFilePath(Env* env) {
  const std::string xdg = env->GetEnvVar("XDG_CONFIG_HOME").value_or("");
  if (!xdg.empty()) return xdg + "/ccmon/pricing.json";
  return env->GetEnvVar("HOME").value_or(".") + "/.config/ccmon/pricing.json";
}

Status PriceTable::LoadConfigured(Env* env, const std::string& flag, PriceTable* out,
                                  std::string* origin) {
  std::string path = flag;
  if (path.empty()) path = env->GetEnvVar("CCMON_PRICING").value_or("");
  if (path.empty()) {
    const std::string user_file = DefaultFilePath(env);
    if (env->IsReadable(user_file)) path = user_file;
  }
  if (path.empty()) {
    *out = Embedded();
    *origin = "embedded";
    return Status::Ok();
  }
  *origin = path;
  return FromFile(env, path, out);
}

const ModelPrice* PriceTable::Find(std::string_view model) const {
  auto it = models_.find(model);
  if (it != models_.end()) return &it->second;
  // "claude-x-20250929" -> "claude-x" (an undated alias listed in the table).
  if (model.size() > 9 && model[model.size() - 9] == '-') {
    std::string_view date = model.substr(model.size() - 8);
    bool digits = true;
    for (char c : date) digits = digits && c >= '0' && c <= '9';
    if (digits) {
      it = models_.find(model.substr(0, model.size() - 9));
      if (it != models_.end()) return &it->second;
    }
  }
  return nullptr;
}

std::string PriceTable::ToJson() const {
  json doc = json::object();
  doc["format"] = "ccmon-pricing/1";
  doc["source"] = source_;
  doc["updated"] = updated_;
  doc["web_search_cost_per_request"] = double(web_search_cost_) / 1e12;
  json models = json::object();
  for (const auto& [name, p] : models_) {
    json m = json::object();
    m["input_cost_per_token"] = RateToJson(p.base.input);
    m["output_cost_per_token"] = RateToJson(p.base.output);
    m["cache_creation_input_token_cost"] = RateToJson(p.base.cache_write_5m);
    m["cache_read_input_token_cost"] = RateToJson(p.base.cache_read);
    if (p.above_200k) {
      m["input_cost_per_token_above_200k_tokens"] = RateToJson(p.above_200k->input);
      m["output_cost_per_token_above_200k_tokens"] = RateToJson(p.above_200k->output);
      m["cache_creation_input_token_cost_above_200k_tokens"] =
          RateToJson(p.above_200k->cache_write_5m);
      m["cache_read_input_token_cost_above_200k_tokens"] = RateToJson(p.above_200k->cache_read);
    }
    json pse = json::object();
    if (p.fast_multiplier_milli != 1000) pse["fast"] = double(p.fast_multiplier_milli) / 1000;
    if (p.us_multiplier_milli != 1000) pse["us"] = double(p.us_multiplier_milli) / 1000;
    if (!pse.empty()) m["provider_specific_entry"] = pse;
    models[name] = m;
  }
  doc["models"] = models;
  return doc.dump(1) + "\n";
}

CostBreakdown PriceRequest(const ModelPrice* price, Pico web_search_cost, const TokenCounts& t,
                           uint64_t web_search_requests, bool fast, bool us_inference,
                           bool has_cost_usd, Pico cost_usd) {
  CostBreakdown out;
  if (price != nullptr) {
    out.premium = price->above_200k.has_value() && t.PromptTokens() > kLongContextThreshold;
    const Rates& r = out.premium ? *price->above_200k : price->base;
    __int128 c = __int128(t.input) * r.input + __int128(t.output) * r.output +
                 __int128(t.cache_write_5m) * r.cache_write_5m +
                 __int128(t.cache_write_1h) * r.cache_write_1h() +
                 __int128(t.cache_read) * r.cache_read;
    __int128 savings = __int128(t.cache_read) * (r.input - r.cache_read);
    // Fast mode (A23) and US-only inference (A39) multiply every token price; both factors are
    // applied together and rounded once, so the result does not depend on their order. With one
    // factor this is (c * f + 500) / 1000, as before.
    const int64_t f = fast ? price->fast_multiplier_milli : 1000;
    const int64_t u = us_inference ? price->us_multiplier_milli : 1000;
    if (f != 1000 || u != 1000) {
      c = (c * f * u + 500'000) / 1'000'000;
      savings = (savings * f * u + 500'000) / 1'000'000;
    }
    out.priced = true;
    out.cost = c + PicoSum(web_search_requests) * web_search_cost;
    out.cache_savings = savings;
  }
  if (has_cost_usd) {
    out.priced = true;
    out.cost = cost_usd;
  }
  return out;
}

}  // namespace ccmon
