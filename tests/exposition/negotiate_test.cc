// NegotiateExposition (src/exposition/negotiate.h): what real scrapers send, q-values,
// wildcards, versions, and malformed headers.
#include "exposition/negotiate.h"

#include <gtest/gtest.h>

#include <string>

namespace ccmon {
namespace {

constexpr ExpositionFormat kText = ExpositionFormat::kText;
constexpr ExpositionFormat kOm = ExpositionFormat::kOpenMetrics;

ExpositionFormat F(std::string_view accept) { return NegotiateExposition(accept).format; }

TEST(Negotiate, Prometheus242AcceptHeaderGetsOpenMetrics100) {
  Negotiated n = NegotiateExposition(
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
      "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
  EXPECT_EQ(n.format, kOm);
  EXPECT_EQ(n.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST(Negotiate, OlderPrometheusAndPlainScrapersGetText) {
  // Prometheus before OpenMetrics support, curl, a browser, no header at all.
  Negotiated n = NegotiateExposition("text/plain;version=0.0.4;q=1,*/*;q=0.1");
  EXPECT_EQ(n.format, kText);
  EXPECT_EQ(n.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(F("*/*"), kText);
  EXPECT_EQ(F(""), kText);
  EXPECT_EQ(F("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), kText);
  EXPECT_EQ(F("text/plain"), kText);
  EXPECT_EQ(F("text/*"), kText);
}

TEST(Negotiate, QValuesDecide) {
  EXPECT_EQ(F("text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0"), kOm);
  EXPECT_EQ(F("text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;q=0.5"), kText);
  EXPECT_EQ(F("application/openmetrics-text;q=0.001,text/plain;q=0"), kOm);
  EXPECT_EQ(F("application/openmetrics-text;q=0.3, text/plain;q=0.299"), kOm);
  // q=0 refuses a format even when a wildcard would take it.
  EXPECT_EQ(F("text/plain;q=0,*/*"), kOm);
  EXPECT_EQ(F("application/openmetrics-text;q=0,*/*;q=1"), kText);
  // Everything refused: text anyway (a scraper that accepts nothing still gets an answer).
  EXPECT_EQ(F("text/plain;q=0,application/openmetrics-text;q=0"), kText);
}

TEST(Negotiate, TiesGoToTheMoreSpecificThenTheFirstListed) {
  EXPECT_EQ(F("text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0"), kText);
  EXPECT_EQ(F("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4"), kOm);
  EXPECT_EQ(F("text/*,application/openmetrics-text"), kOm);  // type/subtype beats type/*
  EXPECT_EQ(F("application/*"), kOm);
  EXPECT_EQ(F("application/*,text/plain"), kText);
}

TEST(Negotiate, VersionsMatchExactly) {
  Negotiated n = NegotiateExposition("application/openmetrics-text;version=0.0.1");
  EXPECT_EQ(n.format, kOm);
  EXPECT_EQ(n.content_type, "application/openmetrics-text; version=0.0.1; charset=utf-8");
  n = NegotiateExposition("application/openmetrics-text");
  EXPECT_EQ(n.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(F("application/openmetrics-text;version=2.0.0"), kText);
  EXPECT_EQ(F("text/plain;version=1.0.0,application/openmetrics-text;q=0.1"), kOm);
  // A more specific range sets the q even when a wildcard is listed first.
  EXPECT_EQ(F("*/*;q=1,text/plain;version=0.0.4;q=0.2,application/openmetrics-text;q=0.5"), kOm);
}

TEST(Negotiate, SpellingVariants) {
  EXPECT_EQ(F("Application/OpenMetrics-Text; Version=\"1.0.0\"; Q=1.000"), kOm);
  EXPECT_EQ(F("  application/openmetrics-text ; version = 1.0.0 ; charset=utf-8 "), kOm);
  EXPECT_EQ(F("application/openmetrics-text;foo=\"a,b;c\";version=1.0.0"), kOm);
  EXPECT_EQ(F("application/openmetrics-text;escaping=underscores"), kOm);
}

TEST(Negotiate, MalformedRangesAreIgnored) {
  // A malformed q ignores its range: OpenMetrics was offered only there.
  EXPECT_EQ(F("application/openmetrics-text;q=1.5"), kText);
  EXPECT_EQ(F("application/openmetrics-text;q=abc"), kText);
  EXPECT_EQ(F("application/openmetrics-text;q=0.12345"), kText);
  EXPECT_EQ(F("application/openmetrics-text;q=-1"), kText);
  EXPECT_EQ(F("garbage,application/openmetrics-text"), kOm);
  EXPECT_EQ(F("/,*/plain,application/,,;;,application/openmetrics-text"), kOm);
  EXPECT_EQ(F("application/openmetrics-text;version=\"1.0.0"), kText);  // unterminated quote
  EXPECT_EQ(F(std::string(100000, ',') + "application/openmetrics-text"), kOm);
  EXPECT_EQ(F(std::string("\0\xff\x80", 3)), kText);
}

}  // namespace
}  // namespace ccmon
