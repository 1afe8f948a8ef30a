// SerializedFamilyMetadata: every family the agent can send, with its TYPE, HELP and UNIT, as one
// metadata-only WriteRequest (what OutboxShardSource::SendMetadata carries).
#include "agent/engine/family_metadata.h"

#include <gtest/gtest.h>

#include <string>

#include "metrics/contributions.h"
#include "remote_write/write_request.h"

namespace ccmon::agent {
namespace {

TEST(FamilyMetadata, EveryFamilyTheAgentSendsWithItsTypeHelpAndUnit) {
  std::string body;
  rw::Compress(SerializedFamilyMetadata(), &body);
  rw::WriteRequest r;
  ASSERT_TRUE(rw::Decode(body, size_t(64) << 20, &r).ok());
  EXPECT_TRUE(r.series.empty());
  EXPECT_EQ(r.metadata.size(), FamilyCatalogue().size() + AgentFamilyCatalogue().size());
  bool cost = false;
  for (const rw::Metadata& m : r.metadata) {
    cost = cost || (m.family == "claude_cost_usd" && m.kind == rw::MetricKind::kCounter &&
                    m.unit == "usd" && !m.help.empty());
  }
  EXPECT_TRUE(cost);
}

}  // namespace
}  // namespace ccmon::agent
