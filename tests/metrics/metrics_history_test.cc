// The claude_* families of metrics.h through the history writer of exposition/.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "exposition/history.h"
#include "metrics/metrics.h"
#include "testing/test_util.h"

namespace ccmon {
namespace {

TEST(History, A37_FromCollectedEventsWithOneMinuteSteps) {
  Ledger ledger;
  LineParser parser;
  testing_util::Msg m;
  m.cwd = "/w/p";
  m.model = "claude-sonnet-4-5-20250929";
  m.timestamp = "2025-09-28T06:17:23.678Z";  // 1759040243678 ms
  ASSERT_EQ(testing_util::AddLine(&ledger, parser, testing_util::Line(m)), LineKind::kUsage);
  Accounting a = Accounting::Build(ledger, PriceTable::Embedded(), AccountingOptions{}, {});
  std::ostringstream out;
  HistoryStats st = WriteOpenMetricsHistory(CollectEvents(a, "dev1"), 60000, out);
  EXPECT_EQ(st.end_ms, 1759040280000);
  const std::string text = out.str();
  EXPECT_NE(text.find("claude_requests_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\","
                      "project=\"p\"} 0 1759040220\n"
                      "claude_requests_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\","
                      "project=\"p\"} 1 1759040280\n"
                      "# "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("claude_cost_usd_total{device=\"dev1\",model=\"claude-sonnet-4-5-20250929\","
                      "project=\"p\"} 0.000102 1759040280\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE claude_sessions counter\n# HELP claude_sessions "),
            std::string::npos);
  // The device's error series without events has no history.
  EXPECT_EQ(text.find("claude_api_errors_total"), std::string::npos);
  EXPECT_EQ(text.substr(text.size() - 6), "# EOF\n");
}

}  // namespace
}  // namespace ccmon
