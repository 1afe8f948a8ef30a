#include "tools/pricing/litellm.h"

#include <nlohmann/json.hpp>

namespace ccmon {

using nlohmann::json;

Status CheckModelPrice(const std::string& model, const ModelPrice& p) {
  auto check = [&](const Rates& r, const char* tier) -> Status {
    const Pico kMax = 1'000'000'000;  // $1000 per million tokens
    if (r.input <= 0 || r.output <= 0 || r.cache_write_5m <= 0 || r.cache_read <= 0)
      return Status::InvalidArgument("model " + model + ": zero or missing " + tier + " price");
    if (r.input > kMax || r.output > kMax || r.cache_write_5m > kMax || r.cache_read > kMax)
      return Status::InvalidArgument("model " + model + ": absurd " + tier +
                                     " price (over $1000/M tokens)");
    if (r.cache_read > r.input)
      return Status::InvalidArgument("model " + model + ": cache read dearer than input");
    if (r.cache_write_5m < r.input)
      return Status::InvalidArgument("model " + model + ": cache write cheaper than input");
    if (r.output < r.input)
      return Status::InvalidArgument("model " + model + ": output cheaper than input");
    return Status::Ok();
  };
  Status s = check(p.base, "base");
  if (s.ok() && p.above_200k) {
    s = check(*p.above_200k, "above-200k");
    if (s.ok() && (p.above_200k->input < p.base.input || p.above_200k->output < p.base.output))
      s = Status::InvalidArgument("model " + model + ": above-200k rates below the base rates");
  }
  return s;
}
Status PricesFromLiteLlm(std::string_view text, PriceTable* out,
                         std::vector<std::string>* rejected) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::InvalidArgument("not a LiteLLM pricing file (expected one JSON object)");
  }
  PriceTable t;
  for (auto& [name, spec] : doc.items()) {
    if (!spec.is_object() || name.rfind("claude", 0) != 0 || name.find('/') != std::string::npos)
      continue;
    auto provider = spec.find("litellm_provider");
    if (provider == spec.end() || *provider != "anthropic") continue;
    ModelPrice p;
    Status s = PriceTable::ParseModelSpec(name, spec.dump(), &p);
    // LiteLLM lists both cache rates for every Claude model; one that is missing or null (the
    // same thing, as in the pricing file) means the entry is incomplete, not "use the default".
    // (An init-capture: clang before 16 cannot capture a structured binding.)
    auto listed = [&entry = spec](const char* field) {
      auto it = entry.find(field);
      return it != entry.end() && !it->is_null();
    };
    if (s.ok() &&
        (!listed("cache_creation_input_token_cost") || !listed("cache_read_input_token_cost"))) {
      s = Status::InvalidArgument("model " + name + ": missing cache prices");
    }
    if (s.ok()) s = CheckModelPrice(name, p);
    if (!s.ok()) {
      if (rejected) rejected->push_back(s.message());
      continue;
    }
    t.Set(name, p);
  }
  if (t.models().empty())
    return Status::InvalidArgument("no usable Claude model prices in the file");
  *out = std::move(t);
  return Status::Ok();
}

}  // namespace ccmon
