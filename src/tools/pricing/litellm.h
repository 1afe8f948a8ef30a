// The LiteLLM importer of ccmon-pricing: model_prices_and_context_window.json -> PriceTable.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "pricing/pricing.h"

namespace ccmon {

// Reads LiteLLM's model_prices_and_context_window.json: first-party Anthropic Claude entries
// (litellm_provider "anthropic", canonical ids) that pass the sanity checks (CheckModelPrice).
// Entries that fail are listed in *rejected (may be null) as "model X: reason". Fails if the text
// is not a JSON object or no model is usable.
Status PricesFromLiteLlm(std::string_view json_text, PriceTable* out,
                         std::vector<std::string>* rejected);

// Rejects prices no real Claude model has: zero, above $1000 per million tokens, cache reads
// dearer than input, cache writes or output cheaper than input, long-context rates below the
// base ones.
Status CheckModelPrice(const std::string& model, const ModelPrice& p);

}  // namespace ccmon
