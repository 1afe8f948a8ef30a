// Exact money: integer pico-dollars (1e-12 USD).
//
// Every Claude rate in LiteLLM is a whole number of pico-dollars per token, and legacy costUSD
// values have at most 9 decimals, so per-request costs and their sums are exact integers. Sums
// use 128 bits; USD floats are produced once, at output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ccmon {

using Pico = int64_t;      // one request's cost, or one rate per token
using PicoSum = __int128;  // totals
constexpr Pico kPicoPerUsd = 1'000'000'000'000;

// Exact decimal text of `pico / 1e12` with trailing zeros trimmed ("1.25", "0", "-0.000001").
std::string FormatUsd(PicoSum pico);
// Decimal text of an integer (for 128-bit sums).
std::string FormatInt(PicoSum v);
// pico / 1e12 as a double (one rounding of the exact value for |pico| < 2^63).
double PicoToUsd(PicoSum pico);
// Parses a JSON number token (e.g. "0.0123", "1e-3", "12") into pico-dollars, exactly when it has
// at most 12 decimals after scaling; otherwise rounds half away from zero. Returns false for
// non-numeric text, negative values or values above $1e6.
bool ParseUsdDecimal(std::string_view text, Pico* out);
// Rounds a USD amount given as double to pico (prices from JSON files).
Pico UsdToPico(double usd);

}  // namespace ccmon
