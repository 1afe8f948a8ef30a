#include "base/money.h"

#include <cmath>

namespace ccmon {

std::string FormatInt(PicoSum v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;
  std::string s;
  while (u > 0) {
    s.push_back(char('0' + int(u % 10)));
    u /= 10;
  }
  if (neg) s.push_back('-');
  return std::string(s.rbegin(), s.rend());
}

std::string FormatUsd(PicoSum pico) {
  bool neg = pico < 0;
  unsigned __int128 u = neg ? -(unsigned __int128)pico : (unsigned __int128)pico;
  unsigned __int128 whole = u / kPicoPerUsd;
  uint64_t frac = uint64_t(u % kPicoPerUsd);
  std::string s = FormatInt(PicoSum(whole));
  if (frac != 0) {
    std::string f(12, '0');
    for (int i = 11; i >= 0; --i) {
      f[i] = char('0' + frac % 10);
      frac /= 10;
    }
    while (!f.empty() && f.back() == '0') f.pop_back();
    s += "." + f;
  }
  return neg ? "-" + s : s;
}

double PicoToUsd(PicoSum pico) {
  // Split so that both parts convert exactly for realistic magnitudes.
  PicoSum whole = pico / kPicoPerUsd;
  PicoSum frac = pico % kPicoPerUsd;
  return double(whole) + double(frac) / 1e12;
}

Pico UsdToPico(double usd) { return Pico(std::llround(usd * 1e12)); }

bool ParseUsdDecimal(std::string_view t, Pico* out) {
  size_t i = 0;
  if (i < t.size() && t[i] == '-') return false;
  unsigned __int128 mant = 0;
  int frac_digits = 0, digits = 0;
  bool dot = false, any_digit = false;
  int exp = 0;
  for (; i < t.size(); ++i) {
    char c = t[i];
    if (c >= '0' && c <= '9') {
      any_digit = true;
      if (digits < 30) {
        mant = mant * 10 + unsigned(c - '0');
        if (dot) ++frac_digits;
        if (mant != 0) ++digits;
      } else if (!dot) {
        return false;  // absurdly large
      }
    } else if (c == '.' && !dot) {
      dot = true;
    } else if (c == 'e' || c == 'E') {
      if (!any_digit) return false;
      ++i;
      bool eneg = false;
      if (i < t.size() && (t[i] == '+' || t[i] == '-')) eneg = t[i++] == '-';
      if (i >= t.size()) return false;
      for (; i < t.size(); ++i) {
        if (t[i] < '0' || t[i] > '9') return false;
        exp = exp * 10 + (t[i] - '0');
        if (exp > 400) return false;
      }
      if (eneg) exp = -exp;
      break;
    } else {
      return false;
    }
  }
  if (!any_digit) return false;
  // value = mant * 10^(exp - frac_digits); want pico = value * 1e12.
  int shift = 12 + exp - frac_digits;
  unsigned __int128 v = mant;
  if (shift >= 0) {
    for (int k = 0; k < shift; ++k) {
      v *= 10;
      if (v > (unsigned __int128)1e6 * kPicoPerUsd) return false;
    }
  } else {
    unsigned __int128 div = 1;
    for (int k = 0; k < -shift && k < 38; ++k) div *= 10;
    if (-shift >= 38) {
      v = 0;
    } else {
      unsigned __int128 q = v / div, r = v % div;
      v = q + (r * 2 >= div ? 1 : 0);
    }
  }
  if (v > (unsigned __int128)1e6 * kPicoPerUsd) return false;
  *out = Pico(v);
  return true;
}

}  // namespace ccmon
