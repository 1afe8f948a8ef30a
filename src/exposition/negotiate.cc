#include "exposition/negotiate.h"

#include <array>
#include <cstddef>
#include <optional>
#include <string>

namespace ccmon {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits at `sep` outside double-quoted strings (a parameter value may hold ',' or ';').
template <class F>
void SplitOutsideQuotes(std::string_view s, char sep, F&& each) {
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == sep && !quoted) {
      each(s.substr(start, i - start));
      start = i + 1;
    }
  }
  each(s.substr(start));
}

std::string Unquote(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  std::string out;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;
    out.push_back(v[i]);
  }
  return out;
}

// RFC 9110 qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")], as thousandths.
std::optional<int> ParseQ(std::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  int whole = v[0] - '0';
  if (v.size() == 1) return whole * 1000;
  if (v[1] != '.' || v.size() > 5) return std::nullopt;
  int frac = 0, digits = 0;
  for (size_t i = 2; i < v.size(); ++i) {
    if (v[i] < '0' || v[i] > '9') return std::nullopt;
    frac = frac * 10 + (v[i] - '0');
    ++digits;
  }
  for (; digits < 3; ++digits) frac *= 10;
  if (whole == 1 && frac != 0) return std::nullopt;
  return whole * 1000 + frac;
}

struct Range {
  std::string type, subtype;
  std::optional<std::string> version;
  int q = 1000;
};

std::optional<Range> ParseRange(std::string_view text) {
  Range r;
  bool first = true, ok = true;
  SplitOutsideQuotes(text, ';', [&](std::string_view part) {
    part = Trim(part);
    if (first) {
      first = false;
      size_t slash = part.find('/');
      if (slash == std::string_view::npos || slash == 0 || slash + 1 == part.size()) {
        ok = false;
        return;
      }
      r.type = Lower(Trim(part.substr(0, slash)));
      r.subtype = Lower(Trim(part.substr(slash + 1)));
      return;
    }
    if (part.empty()) return;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return;  // a parameter without a value: ignored
    std::string name = Lower(Trim(part.substr(0, eq)));
    std::string value = Unquote(Trim(part.substr(eq + 1)));
    if (name == "q") {
      std::optional<int> q = ParseQ(value);
      if (!q)
        ok = false;
      else
        r.q = *q;
    } else if (name == "version") {
      r.version = value;
    }
  });
  if (!ok || (r.type == "*" && r.subtype != "*")) return std::nullopt;
  return r;
}

// The candidates, in the order that breaks a complete tie (only */* matches more than one
// format: text is then the answer).
enum Candidate { kText004 = 0, kOpenMetrics100 = 1, kOpenMetrics001 = 2, kCandidates = 3 };

// How specifically `r` names candidate `c`: 3 type/subtype with its version, 2 type/subtype
// without a version, 1 type/*, 0 */*; -1 no match.
int Specificity(const Range& r, Candidate c) {
  const bool text = c == kText004;
  const char* type = text ? "text" : "application";
  const char* subtype = text ? "plain" : "openmetrics-text";
  const char* version = c == kText004 ? "0.0.4" : c == kOpenMetrics100 ? "1.0.0" : "0.0.1";
  if (r.type == "*") return 0;
  if (r.type != type) return -1;
  if (r.subtype == "*") return 1;
  if (r.subtype != subtype) return -1;
  if (!r.version) return 2;
  return *r.version == version ? 3 : -1;
}

}  // namespace

Negotiated NegotiateExposition(std::string_view accept) {
  struct Best {
    int specificity = -1;
    int q = 0;
    size_t position = 0;
  };
  std::array<Best, kCandidates> best;
  size_t position = 0;
  SplitOutsideQuotes(accept, ',', [&](std::string_view element) {
    size_t pos = position++;
    if (Trim(element).empty()) return;
    std::optional<Range> r = ParseRange(element);
    if (!r) return;
    for (int c = 0; c < kCandidates; ++c) {
      int spec = Specificity(*r, Candidate(c));
      if (spec > best[c].specificity) best[c] = {spec, r->q, pos};
    }
  });
  int chosen = -1;
  for (int c = 0; c < kCandidates; ++c) {
    const Best& b = best[c];
    if (b.specificity < 0 || b.q == 0) continue;
    if (chosen < 0) {
      chosen = c;
      continue;
    }
    const Best& w = best[chosen];
    if (b.q > w.q ||
        (b.q == w.q && (b.specificity > w.specificity ||
                        (b.specificity == w.specificity && b.position < w.position)))) {
      chosen = c;
    }
  }
  switch (chosen) {
    case kOpenMetrics100:
      return {ExpositionFormat::kOpenMetrics, kOpenMetricsContentType};
    case kOpenMetrics001:
      return {ExpositionFormat::kOpenMetrics, kOpenMetrics001ContentType};
    default:
      return {ExpositionFormat::kText, kTextContentType};
  }
}

}  // namespace ccmon
