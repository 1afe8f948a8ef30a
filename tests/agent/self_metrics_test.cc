// AgentSelfMetrics: the price table's updated date as a Unix-seconds gauge.
#include "agent/self_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace ccmon::agent {
namespace {

// The text 0.0.4 line of the pricing gauge ("" when absent).
std::string PricingLine(const AgentSelfMetrics& m) {
  std::string body;
  m.registry().WriteSelfMetrics(ExpositionFormat::kText, &body);
  const std::string name = "\nccmon_agent_pricing_updated_timestamp_seconds ";
  const size_t at = body.find(name);
  if (at == std::string::npos) return "";
  return body.substr(at + 1, body.find('\n', at + 1) - at - 1);
}

TEST(AgentSelfMetricsTest, PricingUpdatedIsTheDateAtMidnightUtc) {
  AgentSelfMetrics m;
  EXPECT_TRUE(m.SetPricingUpdated("2026-11-01"));
  // date -u -d 2026-11-01 +%s
  EXPECT_EQ(PricingLine(m), "ccmon_agent_pricing_updated_timestamp_seconds 1793491200");
  EXPECT_TRUE(m.SetPricingUpdated("19700102"));
  EXPECT_EQ(PricingLine(m), "ccmon_agent_pricing_updated_timestamp_seconds 86400");
}

TEST(AgentSelfMetricsTest, PricingUpdatedWithoutAValidDateIsZero) {
  AgentSelfMetrics m;
  ASSERT_TRUE(m.SetPricingUpdated("2025-02-28"));
  for (const char* bad :
       {"", "2025-02-29", "2025-13-01", "next week", "2025-1-01", "2025-01-01T00:00:00Z"}) {
    EXPECT_FALSE(m.SetPricingUpdated(bad)) << bad;
    EXPECT_EQ(PricingLine(m), "ccmon_agent_pricing_updated_timestamp_seconds 0") << bad;
    ASSERT_TRUE(m.SetPricingUpdated("2025-02-28"));
  }
}

TEST(AgentSelfMetricsTest, PricingUpdatedHasTypeHelpAndUnitInOpenMetrics) {
  AgentSelfMetrics m;
  m.SetPricingUpdated("2024-02-29");
  std::string body;
  m.registry().WriteSelfMetrics(ExpositionFormat::kOpenMetrics, &body);
  EXPECT_NE(body.find("# TYPE ccmon_agent_pricing_updated_timestamp_seconds gauge\n"),
            std::string::npos);
  EXPECT_NE(body.find("# UNIT ccmon_agent_pricing_updated_timestamp_seconds seconds\n"),
            std::string::npos);
  EXPECT_NE(body.find("\nccmon_agent_pricing_updated_timestamp_seconds 1709164800\n"),
            std::string::npos)
      << body;
}

// Every family the agent documents (README "ccmon-agent") is registered: a family the registry
// refuses (a bad name/unit pair) is silently absent from /metrics, and dashboards show nothing.
TEST(AgentSelfMetricsTest, EveryDocumentedFamilyIsExported) {
  AgentSelfMetrics m;
  std::string body;
  m.registry().WriteSelfMetrics(ExpositionFormat::kText, &body);
  for (const char* name :
       {"ccmon_agent_lines_read_total", "ccmon_agent_bytes_read_total",
        "ccmon_agent_skipped_lines_total", "ccmon_agent_files_tracked", "ccmon_agent_bytes_behind",
        "ccmon_agent_outbox_requests", "ccmon_agent_outbox_bytes", "ccmon_agent_outbox_samples",
        "ccmon_agent_pushes_total", "ccmon_agent_samples_sent_total",
        "ccmon_agent_samples_rejected_total", "ccmon_agent_outbox_dropped_samples_total",
        "ccmon_agent_last_successful_push_timestamp_seconds",
        "ccmon_agent_attribution_conflicts_total", "ccmon_agent_append_to_ack_seconds_bucket",
        "ccmon_agent_pricing_updated_timestamp_seconds"}) {
    EXPECT_NE(body.find(std::string("\n") + name), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace ccmon::agent
